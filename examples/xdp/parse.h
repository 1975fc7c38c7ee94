/* Shared by the XDP examples: find the IPv4 header and the L4 ports of a frame, with the
 * bounds checks the verifier wants before every packet access. */
#ifndef BPFVM_EXAMPLES_PARSE_H
#define BPFVM_EXAMPLES_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* The IPv4 header of an Ethernet frame, or 0 when the frame is something else or too short. */
static __always_inline struct iphdr* ipv4_header(void* data, void* end) {
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return 0;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->ihl < 5) return 0;
  return ip;
}

/* The source and destination ports of a TCP or UDP packet (both start with them), network
 * order; 0 when the packet has no ports or is cut short. */
static __always_inline __u16* l4_ports(struct iphdr* ip, void* end) {
  if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) return 0;
  __u16* ports = (void*)ip + ip->ihl * 4;
  if ((void*)(ports + 2) > end) return 0;
  return ports;
}

#endif
