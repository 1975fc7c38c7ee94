/* Tail-call dispatcher: `dispatch` parses the frame and tail-calls the handler for its IPv4
 * protocol from the `handlers` program array (the host puts handle_tcp at 6 and handle_udp at
 * 17). A protocol without a handler falls through the tail call and passes. `handled` counts
 * TCP (0), UDP (1) and everything else (2). UDP is dropped, the rest passes. */
#include "parse.h"

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 256);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} handlers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 3);
} handled SEC(".maps");

static __always_inline void count(__u32 key) {
  __u64* n = bpf_map_lookup_elem(&handled, &key);
  if (n) __sync_fetch_and_add(n, 1);
}

SEC("xdp")
int dispatch(struct xdp_md* ctx) {
  struct iphdr* ip = ipv4_header((void*)(long)ctx->data, (void*)(long)ctx->data_end);
  if (ip) bpf_tail_call(ctx, &handlers, ip->protocol);
  count(2);
  return XDP_PASS;
}

SEC("xdp")
int handle_tcp(struct xdp_md* ctx __attribute__((unused))) {
  count(0);
  return XDP_PASS;
}

SEC("xdp")
int handle_udp(struct xdp_md* ctx __attribute__((unused))) {
  count(1);
  return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
