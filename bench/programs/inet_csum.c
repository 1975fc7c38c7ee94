/* Internet checksum (RFC 1071): the ones' complement sum of 16-bit words, carries folded at the
 * end, of every 1480-byte window (an IPv4 payload) that starts at a multiple of 256 bytes.
 * Input: 32768 bytes, random. */
#include "bench.h"

#define WINDOW 1480

u64 bpf_main(void* mem, u64 len) {
  const u8* base = (const u8*)mem;
  u64 result = 0;
  for (u64 off = 0; off + WINDOW <= len; off += 256) {
    const u16* w = (const u16*)(base + off);
    u64 sum = 0;
    for (u64 i = 0; i < WINDOW / 2; i++) sum += w[i];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    result = result * 31 + (u16)~sum;
  }
  return result;
}
