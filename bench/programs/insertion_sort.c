/* Sorting: the input's 32-bit values in blocks of 32, each block copied to the stack and
 * sorted by insertion sort, then folded with position weights.
 * Input: 16384 bytes, random (128 blocks of 32 values). */
#include "bench.h"

#define BLOCK 32

__attribute__((no_builtin)) u64 bpf_main(void* mem, u64 len) {
  const u32* in = (const u32*)mem;
  u64 result = 0;
  for (u64 b = 0; b + BLOCK <= len / 4; b += BLOCK) {
    u32 a[BLOCK];
    for (int i = 0; i < BLOCK; i++) a[i] = in[b + i];
    for (int i = 1; i < BLOCK; i++) {
      u32 v = a[i];
      int j = i - 1;
      while (j >= 0 && a[j] > v) {
        a[j + 1] = a[j];
        j--;
      }
      a[j + 1] = v;
    }
    for (int i = 0; i < BLOCK; i++) result += (u64)a[i] * (u64)(i + 1);
  }
  return result;
}
