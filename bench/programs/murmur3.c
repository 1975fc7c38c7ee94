/* 32-bit arithmetic: MurmurHash3 (x86_32 variant) of every 256-byte block of the input, 32-bit
 * multiplies and rotates throughout (each a 32-bit ALU instruction with zero extension in BPF).
 * Input: 32768 bytes, random. */
#include "bench.h"

static inline u32 rotl32(u32 x, int r) { return (x << r) | (x >> (32 - r)); }

static inline u32 murmur3_32(const u8* data, u64 n, u32 seed) {
  const u32 c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
  u32 h = seed;
  for (u64 i = 0; i + 4 <= n; i += 4) {
    u32 k = *(const u32*)(data + i);
    k *= c1;
    k = rotl32(k, 15);
    k *= c2;
    h ^= k;
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64u;
  }
  h ^= (u32)n;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

u64 bpf_main(void* mem, u64 len) {
  const u8* p = (const u8*)mem;
  u64 result = 0;
  for (u64 off = 0; off + 256 <= len; off += 256) result = result * 33 + murmur3_32(p + off, 256, (u32)off);
  return result;
}
