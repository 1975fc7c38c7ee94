/* Integer loop: the Collatz stopping times of 1000 consecutive numbers, a data-dependent branch
 * on every step and no memory traffic at all.
 * Input: 8 bytes, random (the driver's xorshift stream); the first byte picks the start. */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  if (len < 8) return 0;
  u64 start = 1 + ((const u8*)mem)[0];
  u64 total = 0;
  for (u64 n = start; n < start + 1000; n++) {
    u64 x = n;
    u64 steps = 0;
    while (x != 1 && steps < 1000) {
      x = (x & 1) ? 3 * x + 1 : x >> 1;
      steps++;
    }
    total += steps;
  }
  return total;
}
