/* Branchy min/max: running minimum and maximum of the input's signed 32-bit values and the sum
 * of each value clamped to [-2^30, 2^30] (conditional moves natively).
 * Input: 65536 bytes, random (16384 values). */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  const s32* v = (const s32*)mem;
  s64 lo = 0x7fffffff, hi = -0x7fffffff - 1, sum = 0;
  for (u64 i = 0; i < len / 4; i++) {
    s64 x = v[i];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
    if (x > (1 << 30)) x = 1 << 30;
    if (x < -(1 << 30)) x = -(1 << 30);
    sum += x;
  }
  return (u64)sum ^ ((u64)lo << 32) ^ (u64)hi;
}
