/* Hash map lookups from BPF code, for timing: each run looks up 1000 keys in a 1024-entry hash
 * map that holds the even keys 0..2046 (so half the lookups hit) and returns the hits (500).
 * The first run fills the map. `bpfvm run hash_lookups.v4.o --type raw --repeat N` prints the
 * time per run; a tenth of a microsecond per run is 0.1 ns per lookup. */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 1024);
} table SEC(".maps");

__u32 filled; /* .bss */

SEC("socket")
int hash_lookups(void* ctx __attribute__((unused))) {
  if (!filled) {
    for (__u32 i = 0; i < 2048; i += 2) {
      __u32 key = i; /* a copy: the loop counter stays in a register */
      __u64 v = i;
      bpf_map_update_elem(&table, &key, &v, BPF_ANY);
    }
    filled = 1;
  }
  int hits = 0;
#pragma nounroll
  for (__u32 i = 0; i < 1000; i++) {
    __u32 key = (i * 7) & 2047;
    if (bpf_map_lookup_elem(&table, &key)) hits++;
  }
  return hits;
}

char LICENSE[] SEC("license") = "GPL";
