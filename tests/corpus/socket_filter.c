// Socket filter: keeps TCP over IPv4 (the whole packet) and DNS over UDP (the first 512 bytes),
// drops the rest. Reads the packet through bpf_skb_load_bytes and through the legacy
// BPF_ABS / BPF_IND packet loads.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// The legacy packet loads (BPF_LD | BPF_ABS / BPF_IND), as LLVM exposes them.
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int tcp_and_dns(struct __sk_buff *skb) {
  __u16 proto;
  if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto)) < 0) return 0;
  if (proto != bpf_htons(ETH_P_IP)) return 0;
  __u8 ver_ihl = load_byte(skb, ETH_HLEN);
  __u32 ihl = (ver_ihl & 0xf) * 4;
  if (ihl < sizeof(struct iphdr)) return 0;
  __u8 l4 = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
  if (l4 == IPPROTO_TCP) return skb->len;
  if (l4 != IPPROTO_UDP) return 0;
  __u16 dport = load_half(skb, ETH_HLEN + ihl + 2);
  __u32 first_word = load_word(skb, ETH_HLEN + ihl);
  if (dport == 53 || (first_word & 0xffff) == 53) return 512;
  return 0;
}

char _license[] SEC("license") = "GPL";
