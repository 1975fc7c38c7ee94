// Global data: initialised variables (.data), constants (.rodata), zeroed variables (.bss),
// string literals (.rodata.str1.1), and a custom data section (.data.stats).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int packets_seen = 7;                      // .data
long long byte_budget = 1000000;           // .data
const unsigned short port_table[4] = {22, 80, 443, 8080};  // .rodata
const int verbose = 1;                     // .rodata
unsigned long long drops;                  // .bss
unsigned char last_bytes[16];              // .bss
unsigned int per_port[4] SEC(".data.stats") = {1, 2, 3, 4};

// Not inlined, so the strings reach it as pointers into .rodata.str1.1. Both hold at least n
// bytes.
static __attribute__((noinline)) int starts_with(const char *s, const char *prefix, int n) {
#pragma clang loop unroll(disable)
  for (int i = 0; i < n && i < 8; i++)
    if (s[i] != prefix[i]) return 0;
  return 1;
}

SEC("xdp")
int account(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  packets_seen++;
  long long len = end - data;
  if (len > byte_budget) {
    drops++;
    return XDP_DROP;
  }
  byte_budget -= len;
  if (data + 16 <= end) __builtin_memcpy(last_bytes, data, 16);
  for (int i = 0; i < 4; i++)
    if (len == port_table[i]) per_port[i]++;
  if (verbose && starts_with("GET /index", "GET ", 4)) return XDP_PASS;
  return starts_with("POST", "PUT", 3) ? XDP_DROP : XDP_PASS;
}

// bpf_printk keeps its format in .rodata.
SEC("xdp")
int log_drops(struct xdp_md *ctx __attribute__((unused))) {
  bpf_printk("drops %llu", drops);
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
