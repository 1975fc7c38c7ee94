/* Per-protocol packet counters: a per-CPU array indexed by the IPv4 protocol number (IPv6's
 * next header) counts packets and bytes; index 255 counts frames that are neither. Per-CPU
 * values need no atomics: each thread of execution has its own copy, the host adds them up. */
#include <linux/ipv6.h>
#include "parse.h"

struct counter {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, struct counter);
  __uint(max_entries, 256);
} protocols SEC(".maps");

SEC("xdp")
int proto_counters(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  __u32 key = 255;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) <= end) {
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
      struct iphdr* ip = (void*)(eth + 1);
      if ((void*)(ip + 1) <= end) key = ip->protocol;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
      struct ipv6hdr* ip6 = (void*)(eth + 1);
      if ((void*)(ip6 + 1) <= end) key = ip6->nexthdr;
    }
  }
  struct counter* c = bpf_map_lookup_elem(&protocols, &key);
  if (c) {
    c->packets += 1;
    c->bytes += (__u64)(end - data);
  }
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
