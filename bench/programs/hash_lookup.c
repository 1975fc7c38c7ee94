/* Hash table lookups, in 8 rounds: each round builds an open-addressing table (linear probing,
 * multiplicative hash) of 2048 32-bit slots in the input's second part from 512 of the keys in
 * its first part (a window that moves by 64 keys a round), then probes it with all 1024 keys
 * (half present, half mostly absent). Key 0 marks an empty
 * slot, so every key has its low bit set. Rebuilding from the untouched keys keeps every run
 * identical.
 * Input: 12288 bytes, random: 1024 keys, then the table's 8192 bytes (overwritten). */
#include "bench.h"

#define KEYS 1024
#define INSERTED 512
#define SLOTS 2048
#define ROUNDS 8

static inline u32 slot_of(u32 key) { return (key * 2654435761u) >> 21; }

__attribute__((no_builtin)) u64 bpf_main(void* mem, u64 len) {
  if (len < KEYS * 4 + SLOTS * 4) return 0;
  const u32* keys = (const u32*)mem;
  u32* table = (u32*)mem + KEYS;
  u64 hits = 0, probes = 0;
  for (u32 round = 0; round < ROUNDS; round++) {
    for (u32 i = 0; i < SLOTS; i++) table[i] = 0;

    for (u32 i = 0; i < INSERTED; i++) {
      u32 key = keys[(round * 64 + i) & (KEYS - 1)] | 1;
      u32 s = slot_of(key);
      for (u32 n = 0; n < SLOTS; n++) {
        if (table[s] == 0 || table[s] == key) {
          table[s] = key;
          break;
        }
        s = (s + 1) & (SLOTS - 1);
      }
    }

    for (u32 i = 0; i < KEYS; i++) {
      u32 key = keys[i] | 1;
      u32 s = slot_of(key);
      for (u32 n = 0; n < SLOTS; n++) {
        probes++;
        if (table[s] == key) {
          hits += i;
          break;
        }
        if (table[s] == 0) break;
        s = (s + 1) & (SLOTS - 1);
      }
    }
  }
  return (hits << 20) ^ probes;
}
