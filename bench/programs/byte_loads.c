/* Byte-load-heavy loop: reads 32-bit and 16-bit little-endian values one byte at a time at
 * every 4-byte step (a JIT can fuse such byte loads into one wide load), hashing them.
 * Input: 32768 bytes, random. */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  const u8* p = (const u8*)mem;
  u64 h = 0xcbf29ce484222325ull;
  for (u64 i = 0; i + 6 <= len; i += 4) {
    u32 v = load32(p + i);
    u16 s = load16(p + i + 4);
    h = (h ^ v) * 0x100000001b3ull;
    h += s;
  }
  return h;
}
