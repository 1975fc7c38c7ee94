/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) computed bit by bit, without a table.
 * Input: 4096 bytes, random. */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  const u8* p = (const u8*)mem;
  u32 crc = 0xffffffffu;
  for (u64 i = 0; i < len; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
  }
  return ~crc;
}
