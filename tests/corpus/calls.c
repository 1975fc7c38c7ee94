// Several functions: static __noinline subprograms in .text, a global one (a call relocation
// against the function symbol), a chain of calls, the same subprograms called from programs in
// two sections, a callback passed by address (bpf_loop), and v4 arithmetic (signed division
// and modulo, sign-extending moves and loads).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int mix(int a, int b) { return (a * 31) ^ (b >> 3); }

static __attribute__((noinline)) long scaled(long v, int by) {
  if (by == 0) return v;
#if __BPF_CPU_VERSION__ >= 4
  return v / by + v % by;  // sdiv / smod
#else
  return (long)((unsigned long)v / (unsigned)by);  // CPU v3 has no signed division
#endif
}

__attribute__((noinline)) int checksum(const unsigned char *p, int n) {
  int sum = 0;
#pragma clang loop unroll(disable)
  for (int i = 0; i < n && i < 64; i++) sum = mix(sum, p[i]);
  return sum;
}

static __attribute__((noinline)) int chain3(int x) { return mix(x, x + 1) + 3; }
static __attribute__((noinline)) int chain2(int x) { return chain3(x) * 2; }
static __attribute__((noinline)) int chain1(int x) { return chain2(x) - (int)scaled(x, 7); }

struct loop_ctx {
  const signed char *bytes;
  long total;
};

static long add_signed(__u32 index, void *arg) {
  struct loop_ctx *c = arg;
  c->total += c->bytes[index & 7];  // sign-extending load
  return 0;
}

SEC("xdp")
int xdp_calls(struct xdp_md *ctx) {
  unsigned char *data = (void *)(long)ctx->data;
  unsigned char *end = (void *)(long)ctx->data_end;
  if (data + 64 > end) return XDP_PASS;
  int sum = checksum(data, 64);
#if __BPF_CPU_VERSION__ >= 4
  // clang emits gotol only for jumps past 32767 instructions; one from inline assembly keeps
  // the 32-bit jump in a real object.
  asm volatile("gotol +0" ::: "memory");
#endif
  signed char first = (signed char)data[0];
  long wide = first;  // movsx
  return (chain1(sum) + (int)scaled(wide, -3)) & 1 ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_calls(struct __sk_buff *skb) {
  int r = chain1(skb->len) + mix(skb->protocol, skb->mark);
  short s = (short)skb->hash;
#if __BPF_CPU_VERSION__ >= 4
  return (r + s) % 3 == 0;  // smod, movsx
#else
  return (unsigned)(r + s) % 3 == 0;
#endif
}

SEC("tc")
int tc_loop(struct __sk_buff *skb) {
  signed char buf[8] = {1, -2, 3, -4, 5, -6, 7, -8};
  struct loop_ctx c = {buf, skb->len};
  bpf_loop(8, add_signed, &c, 0);
  return c.total > 0;
}

char _license[] SEC("license") = "GPL";
