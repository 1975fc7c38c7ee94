// XDP packet parser: Ethernet, up to two VLAN tags, IPv4 (with options), IPv6 (with extension
// headers), TCP and UDP. Counts packets per flow in a BTF hash map and per IP protocol in a
// per-CPU array. Two programs share the section "xdp".
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct vlan_hdr {
  __be16 tci;
  __be16 encapsulated_proto;
};

struct flow_key {
  __u32 src;  // IPv4 address, or the last 32 bits of an IPv6 one
  __u32 dst;
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 pad[3];
};

struct flow_stats {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, struct flow_key);
  __type(value, struct flow_stats);
  __uint(max_entries, 4096);
} flows SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 256);
} proto_packets SEC(".maps");

#define MAX_VLAN 2
#define MAX_EXT_HEADERS 4

// Parses the TCP or UDP header at `l4`; fills the ports. Returns -1 when the packet is short.
static __attribute__((noinline)) int parse_ports(void *l4, void *end, __u8 proto, struct flow_key *key) {
  if (proto == IPPROTO_TCP) {
    struct tcphdr *tcp = l4;
    if ((void *)(tcp + 1) > end) return -1;
    key->sport = bpf_ntohs(tcp->source);
    key->dport = bpf_ntohs(tcp->dest);
    return tcp->doff * 4;
  }
  if (proto == IPPROTO_UDP) {
    struct udphdr *udp = l4;
    if ((void *)(udp + 1) > end) return -1;
    key->sport = bpf_ntohs(udp->source);
    key->dport = bpf_ntohs(udp->dest);
    return sizeof(*udp);
  }
  return 0;
}

SEC("xdp")
int xdp_flow_count(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return XDP_DROP;
  __u16 proto = eth->h_proto;
  void *cursor = eth + 1;
#pragma clang loop unroll(disable)
  for (int i = 0; i < MAX_VLAN; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_hdr *vlan = cursor;
    if ((void *)(vlan + 1) > end) return XDP_DROP;
    proto = vlan->encapsulated_proto;
    cursor = vlan + 1;
  }
  struct flow_key key = {};
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = cursor;
    if ((void *)(ip + 1) > end) return XDP_DROP;
    if (ip->ihl < 5) return XDP_DROP;
    key.src = ip->saddr;
    key.dst = ip->daddr;
    key.proto = ip->protocol;
    cursor = (void *)ip + ip->ihl * 4;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = cursor;
    if ((void *)(ip6 + 1) > end) return XDP_DROP;
    key.src = ip6->saddr.in6_u.u6_addr32[3];
    key.dst = ip6->daddr.in6_u.u6_addr32[3];
    __u8 next = ip6->nexthdr;
    cursor = ip6 + 1;
#pragma clang loop unroll(disable)
    for (int i = 0; i < MAX_EXT_HEADERS; i++) {
      if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS) break;
      __u8 *ext = cursor;
      if ((void *)(ext + 2) > end) return XDP_DROP;
      next = ext[0];
      cursor = ext + (ext[1] + 1) * 8;
    }
    key.proto = next;
  } else {
    return XDP_PASS;
  }
  if (parse_ports(cursor, end, key.proto, &key) < 0) return XDP_DROP;

  __u32 slot = key.proto;
  __u64 *count = bpf_map_lookup_elem(&proto_packets, &slot);
  if (count) *count += 1;
  struct flow_stats *stats = bpf_map_lookup_elem(&flows, &key);
  if (stats) {
    __sync_fetch_and_add(&stats->packets, 1);
    __sync_fetch_and_add(&stats->bytes, (__u64)(end - data));
  } else {
    struct flow_stats fresh = {1, (__u64)(end - data)};
    bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
  }
  return XDP_PASS;
}

// Drops UDP to one port; passes everything else. TTL/hop limit below 2 is dropped too.
SEC("xdp")
int xdp_udp_guard(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return XDP_DROP;
  struct flow_key key = {};
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return XDP_DROP;
    if (ip->ttl < 2) return XDP_DROP;
    if (ip->protocol != IPPROTO_UDP) return XDP_PASS;
    if (parse_ports((void *)(ip + 1), end, IPPROTO_UDP, &key) < 0) return XDP_DROP;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > end) return XDP_DROP;
    if (ip6->hop_limit < 2) return XDP_DROP;
    if (ip6->nexthdr != IPPROTO_UDP) return XDP_PASS;
    if (parse_ports((void *)(ip6 + 1), end, IPPROTO_UDP, &key) < 0) return XDP_DROP;
  } else {
    return XDP_PASS;
  }
  return key.dport == 9999 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
