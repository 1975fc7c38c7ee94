/* Memory copies and compares, in 8 passes: each pass copies the first half of the input, from
 * an offset of `pass` words, onto the second half eight bytes at a time, compares the two word
 * by word (all equal: the longest memcmp), then compares 32-byte records of the first half
 * byte by byte against their neighbour until the first difference. Copying from the untouched
 * first half keeps every run identical.
 * Input: 65536 bytes, random. */
#include "bench.h"

#define HALF 32768
#define PASSES 8

__attribute__((no_builtin)) u64 bpf_main(void* mem, u64 len) {
  if (len < 2 * HALF) return 0;
  const u8* b = (const u8*)mem;
  u64* dst = (u64*)(b + HALF);
  u64 result = 0;
  for (u64 pass = 0; pass < PASSES; pass++) {
    const u64* src = (const u64*)mem + pass;
    u64 words = HALF / 8 - pass;
    for (u64 i = 0; i < words; i++) dst[i] = src[i];

    u64 equal = 0;
    for (u64 i = 0; i < words; i++) equal += src[i] == dst[i];

    u64 order = 0;
    for (u64 r = pass * 8; r + 64 <= HALF; r += 32) {
      u64 k = 0;
      while (k < 32 && b[r + k] == b[r + 32 + k]) k++;
      order = order * 3 + (k < 32 && b[r + k] < b[r + 32 + k]);
    }
    result = result * 7 + (equal ^ order ^ dst[0]);
  }
  return result;
}
