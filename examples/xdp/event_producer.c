/* Ring-buffer event producer: one event per IPv4 packet (addresses, protocol, ports, length)
 * into the `events` ring buffer, which the host drains. When the buffer is full the event is
 * lost and `lost` counts it; the packet passes either way. */
#include "parse.h"

struct event {
  __u32 source;
  __u32 destination;
  __u16 source_port;
  __u16 destination_port;
  __u16 length;
  __u8 protocol;
  __u8 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 1);
} lost SEC(".maps");

SEC("xdp")
int event_producer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct iphdr* ip = ipv4_header(data, end);
  if (!ip) return XDP_PASS;
  struct event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __u32 zero = 0;
    __u64* n = bpf_map_lookup_elem(&lost, &zero);
    if (n) __sync_fetch_and_add(n, 1);
    return XDP_PASS;
  }
  e->source = ip->saddr;
  e->destination = ip->daddr;
  e->protocol = ip->protocol;
  /* A 64-bit pointer difference: clang would otherwise subtract 32-bit copies of the pointers,
   * which bpfvm's verifier refuses for xdp (no pointer may become a number there). */
  __u64 length = end - data;
  barrier_var(length);
  e->length = (__u16)length;
  e->pad = 0;
  e->source_port = 0;
  e->destination_port = 0;
  __u16* ports = l4_ports(ip, end);
  if (ports) {
    e->source_port = bpf_ntohs(ports[0]);
    e->destination_port = bpf_ntohs(ports[1]);
  }
  bpf_ringbuf_submit(e, 0);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
