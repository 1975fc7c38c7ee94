/* Bit tricks: population count (the SWAR way), bit reversal by swapping ever smaller blocks,
 * and parity, on every 64-bit word of the input.
 * Input: 32768 bytes, random (4096 words). */
#include "bench.h"

static inline u64 popcount64(u64 x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (x * 0x0101010101010101ull) >> 56;
}

static inline u64 reverse64(u64 x) {
  x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
  x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
  x = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((x & 0x0f0f0f0f0f0f0f0full) << 4);
  x = ((x >> 8) & 0x00ff00ff00ff00ffull) | ((x & 0x00ff00ff00ff00ffull) << 8);
  x = ((x >> 16) & 0x0000ffff0000ffffull) | ((x & 0x0000ffff0000ffffull) << 16);
  return (x >> 32) | (x << 32);
}

static inline u64 parity64(u64 x) {
  x ^= x >> 32;
  x ^= x >> 16;
  x ^= x >> 8;
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return x & 1;
}

u64 bpf_main(void* mem, u64 len) {
  const u64* w = (const u64*)mem;
  u64 bits = 0, rev = 0, par = 0;
  for (u64 i = 0; i < len / 8; i++) {
    bits += popcount64(w[i]);
    rev ^= reverse64(w[i]) + i;
    par += parity64(w[i]);
  }
  return bits ^ rev ^ (par << 56);
}
