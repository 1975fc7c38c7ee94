/* Token-bucket rate limiter per IPv4 source on an LRU hash map: each source may send `burst`
 * packets at once and `packets_per_second` after that; the rest are dropped. The LRU map
 * forgets the sources heard from least recently when it is full, so any number of sources fits.
 * Credit is kept in nanoseconds of bpf_ktime_get_ns(): a packet costs 1e9 / rate of it. */
#include "parse.h"

struct bucket {
  __u64 credit_ns;
  __u64 last_ns;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __type(key, __u32);
  __type(value, struct bucket);
  __uint(max_entries, 4096);
} buckets SEC(".maps");

const volatile __u64 packets_per_second = 1;
const volatile __u64 burst = 5;

SEC("xdp")
int rate_limiter(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct iphdr* ip = ipv4_header(data, end);
  if (!ip) return XDP_PASS;
  __u32 source = ip->saddr;
  __u64 now = bpf_ktime_get_ns();
  __u64 cost = 1000000000ull / packets_per_second;
  __u64 cap = cost * burst;
  struct bucket* b = bpf_map_lookup_elem(&buckets, &source);
  if (!b) {
    struct bucket fresh = {.credit_ns = cap - cost, .last_ns = now};
    bpf_map_update_elem(&buckets, &source, &fresh, BPF_ANY);
    return XDP_PASS;
  }
  __u64 credit = b->credit_ns + (now - b->last_ns);
  if (credit > cap) credit = cap;
  b->last_ns = now;
  if (credit < cost) {
    b->credit_ns = credit;
    return XDP_DROP;
  }
  b->credit_ns = credit - cost;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
