// Maps of every kind bpfvm knows, declared both ways: the legacy `maps` section (struct
// bpf_map_def, as iproute2 and old samples write it) and BTF `.maps` (libbpf's __uint/__type).
// Three programs in three sections use them: counters, a ring buffer, and a tail-call dispatcher.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// libbpf 1.x no longer declares the legacy definition; its layout is the kernel samples' one.
struct bpf_map_def {
  unsigned int type;
  unsigned int key_size;
  unsigned int value_size;
  unsigned int max_entries;
  unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_hash = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 1024, .map_flags = 0};
struct bpf_map_def SEC("maps") legacy_array = {
    .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 16, .max_entries = 64};
struct bpf_map_def SEC("maps") legacy_percpu = {
    .type = BPF_MAP_TYPE_PERCPU_HASH, .key_size = 8, .value_size = 8, .max_entries = 128,
    .map_flags = BPF_F_NO_PREALLOC};
struct bpf_map_def SEC("maps") legacy_lru = {
    .type = BPF_MAP_TYPE_LRU_HASH, .key_size = 4, .value_size = 4, .max_entries = 512};

struct event {
  __u32 ifindex;
  __u32 len;
  __u64 seq;
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 8);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} jump_table SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
  __type(key, __u64);
  __type(value, struct event);
  __uint(max_entries, 2048);
  __uint(map_flags, 0);
} recent SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 4);
} seq SEC(".maps");

SEC("xdp")
int count_packets(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  __u32 key = ctx->ingress_ifindex;
  __u64 one = 1;
  __u64 *hits = bpf_map_lookup_elem(&legacy_hash, &key);
  if (hits)
    __sync_fetch_and_add(hits, 1);
  else
    bpf_map_update_elem(&legacy_hash, &key, &one, BPF_ANY);
  __u32 slot = key & 63;
  __u64 *bucket = bpf_map_lookup_elem(&legacy_array, &slot);
  if (bucket) bucket[1] += end - data;
  __u64 wide = key;
  __u64 *per_cpu = bpf_map_lookup_elem(&legacy_percpu, &wide);
  if (per_cpu) *per_cpu += 1;
  __u32 *last = bpf_map_lookup_elem(&legacy_lru, &key);
  if (!last) {
    __u32 now = (__u32)bpf_ktime_get_ns();
    bpf_map_update_elem(&legacy_lru, &key, &now, BPF_ANY);
  } else {
    bpf_map_delete_elem(&legacy_lru, &key);
  }
  return XDP_PASS;
}

SEC("tc")
int report(struct __sk_buff *skb) {
  __u32 zero = 0;
  __u64 *n = bpf_map_lookup_elem(&seq, &zero);
  if (!n) return 0;
  *n += 1;
  struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  e->ifindex = skb->ifindex;
  e->len = skb->len;
  e->seq = *n;
  __u64 k = *n;
  bpf_map_update_elem(&recent, &k, e, BPF_ANY);
  bpf_ringbuf_submit(e, 0);
  struct event copy = {skb->ifindex, skb->len, k};
  bpf_ringbuf_output(&events, &copy, sizeof(copy), 0);
  return 0;
}

SEC("xdp")
int dispatch(struct xdp_md *ctx) {
  bpf_tail_call(ctx, &jump_table, ctx->rx_queue_index & 7);
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
