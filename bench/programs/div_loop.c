/* Division-heavy loop: unsigned and signed 64-bit and 32-bit division and modulo of input words
 * by divisors derived from their neighbours (never zero).
 * Input: 16384 bytes, random (2048 words). */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  const u64* w = (const u64*)mem;
  u64 acc = 0;
  for (u64 i = 0; i + 1 < len / 8; i++) {
    u64 a = w[i], b = w[i + 1];
    acc += a / ((b >> 33) | 1);
    acc ^= (u32)a % ((u32)b | 1);
    acc += (u64)((s64)a / (s64)((b & 0xffff) | 3));
    acc ^= (u64)(s64)((s32)b % (s32)((a >> 48) | 5));
  }
  return acc;
}
