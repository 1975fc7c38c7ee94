/* Packet parsing, 32 passes: walks a stream of length-prefixed Ethernet frames and parses each as an XDP
 * program would, checking every header against the frame's end: Ethernet (with one optional
 * 802.1Q tag), IPv4 (with options), then TCP or UDP ports and TCP flags. Counts frames per
 * kind and folds a hash of each flow's 5-tuple.
 * Input: 16384 bytes, "packets": records of a little-endian u16 frame length then the frame,
 * each record padded to a multiple of 4 bytes (so IP headers are 4-byte aligned), ended by a
 * zero length; frames are synthetic (the driver's generator, deterministic). */
#include "bench.h"

struct eth {
  u8 dst[6];
  u8 src[6];
  u16 proto;
};

struct vlan {
  u16 tci;
  u16 proto;
};

struct ipv4 {
  u8 version_ihl;
  u8 tos;
  u16 total_len;
  u16 id;
  u16 frag;
  u8 ttl;
  u8 proto;
  u16 check;
  u32 saddr;
  u32 daddr;
};

struct ports {
  u16 sport;
  u16 dport;
};

struct tcp {
  u16 sport;
  u16 dport;
  u32 seq;
  u32 ack;
  u8 doff;
  u8 flags;
  u16 window;
  u16 check;
  u16 urg;
};

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100

static inline u16 ntohs(u16 x) { return __builtin_bswap16(x); }

static inline u64 mix(u64 h, u64 v) {
  h ^= v;
  h *= 0x100000001b3ull;
  return h ^ (h >> 29);
}

u64 bpf_main(void* mem, u64 len) {
  u8* base = (u8*)mem;
  u64 ipv4 = 0, tcp = 0, udp = 0, syn = 0, other = 0, bad = 0;
  u64 flows = 0xcbf29ce484222325ull;
  for (u64 pass = 0; pass < 32; pass++) {
    flows += pass;
    u64 off = 0;
    for (u64 n = 0; n < len / 4 && off + 2 <= len; n++) {
      u64 flen = *(u16*)(base + off);
      if (flen == 0) break;
      u8* data = base + off + 2;
      u8* end = data + flen;
      off += (2 + flen + 3) & ~3ull;
      if (off > len) break;

      struct eth* eth = (struct eth*)data;
      if ((u8*)(eth + 1) > end) {
        bad++;
        continue;
      }
      u16 proto = eth->proto;
      u8* next = (u8*)(eth + 1);
      if (proto == ntohs(ETH_P_8021Q)) {
        struct vlan* vlan = (struct vlan*)next;
        if ((u8*)(vlan + 1) > end) {
          bad++;
          continue;
        }
        proto = vlan->proto;
        next = (u8*)(vlan + 1);
      }
      if (proto != ntohs(ETH_P_IP)) {
        other++;
        continue;
      }
      struct ipv4* ip = (struct ipv4*)next;
      if ((u8*)(ip + 1) > end) {
        bad++;
        continue;
      }
      u64 ihl = (ip->version_ihl & 15) * 4;
      if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(struct ipv4) || next + ihl > end ||
          ntohs(ip->total_len) > (u64)(end - next)) {
        bad++;
        continue;
      }
      ipv4++;
      u8* l4 = next + ihl;
      u64 sport = 0, dport = 0;
      if (ip->proto == 6) {
        struct tcp* th = (struct tcp*)l4;
        if ((u8*)(th + 1) > end) {
          bad++;
          continue;
        }
        tcp++;
        syn += (th->flags & 0x12) == 0x02;
        sport = ntohs(th->sport);
        dport = ntohs(th->dport);
      } else if (ip->proto == 17) {
        struct ports* uh = (struct ports*)l4;
        if ((u8*)(uh + 1) + 4 > end) {
          bad++;
          continue;
        }
        udp++;
        sport = ntohs(uh->sport);
        dport = ntohs(uh->dport);
      }
      flows = mix(flows, ip->saddr);
      flows = mix(flows, ip->daddr);
      flows = mix(flows, (sport << 16 | dport) << 8 | ip->proto);
    }
  }
  return flows ^ (ipv4 << 48) ^ (tcp << 40) ^ (udp << 32) ^ (syn << 24) ^ (other << 16) ^ bad;
}
