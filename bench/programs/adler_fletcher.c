/* Adler-32 (RFC 1950) over the input bytes, reducing modulo 65521 every 5552 bytes as zlib
 * may, and Fletcher-32 over its 16-bit words.
 * Input: 32768 bytes, random. */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  const u8* p = (const u8*)mem;
  u32 a = 1, b = 0;
  u64 i = 0;
  while (i < len) {
    u64 end = len - i > 5552 ? i + 5552 : len;
    for (; i < end; i++) {
      a += p[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  u32 adler = (b << 16) | a;

  const u16* w = (const u16*)mem;
  u32 s1 = 0xffff, s2 = 0xffff;
  for (u64 j = 0; j < len / 2; j++) {
    s1 += w[j];
    s2 += s1;
    if ((j & 255) == 255) {
      s1 = (s1 & 0xffff) + (s1 >> 16);
      s2 = (s2 & 0xffff) + (s2 >> 16);
    }
  }
  s1 = (s1 & 0xffff) + (s1 >> 16);
  s2 = (s2 & 0xffff) + (s2 >> 16);
  u32 fletcher = (s2 << 16) | s1;
  return ((u64)adler << 32) | fletcher;
}
