/* XDP firewall: drops IPv4 packets whose source address is in the `blocklist` hash map (the
 * host fills it; each entry counts the packets it dropped) and TCP/UDP packets to
 * `blocked_port` (a .rodata constant the host may change before loading: telnet by default).
 * `verdicts` counts passed (0) and dropped (1) packets. */
#include "parse.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32); /* IPv4 source address, network byte order */
  __type(value, __u64);
  __uint(max_entries, 1024);
} blocklist SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 2);
} verdicts SEC(".maps");

const volatile __u16 blocked_port = 23;

static __always_inline int verdict(int action) {
  __u32 key = action == XDP_DROP;
  __u64* count = bpf_map_lookup_elem(&verdicts, &key);
  if (count) __sync_fetch_and_add(count, 1);
  return action;
}

SEC("xdp")
int xdp_firewall(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct iphdr* ip = ipv4_header(data, end);
  if (!ip) return verdict(XDP_PASS);
  __u32 source = ip->saddr;
  __u64* hits = bpf_map_lookup_elem(&blocklist, &source);
  if (hits) {
    __sync_fetch_and_add(hits, 1);
    return verdict(XDP_DROP);
  }
  __u16* ports = l4_ports(ip, end);
  if (ports && ports[1] == bpf_htons(blocked_port)) return verdict(XDP_DROP);
  return verdict(XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
