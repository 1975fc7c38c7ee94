/* bpf-to-bpf calls: every input word goes through a chain of three small functions that the
 * compiler must keep as calls (noinline), so each word costs four calls and returns.
 * Input: 32768 bytes, random (4096 words). */
#include "bench.h"

static NOINLINE u64 rotl(u64 x, u64 r) { return (x << (r & 63)) | (x >> ((64 - r) & 63)); }

static NOINLINE u64 mix(u64 a, u64 b) {
  a ^= rotl(b, 17);
  return a * 0x9e3779b97f4a7c15ull;
}

static NOINLINE u64 transform(u64 acc, u64 w, u64 i) {
  u64 m = mix(acc, w);
  return mix(m, i) + (w >> 7);
}

u64 bpf_main(void* mem, u64 len) {
  const u64* w = (const u64*)mem;
  u64 acc = 0x123456789abcdefull;
  for (u64 i = 0; i < len / 8; i++) acc = transform(acc, w[i], i);
  return acc;
}
