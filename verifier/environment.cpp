#include "verifier/environment.hpp"

#include <algorithm>
#include <initializer_list>
#include <span>

#include <fmt/format.h>

namespace bpfvm::verifier {
namespace {

isa::HelperSet helpers_named(std::span<const std::string_view> names) {
  isa::HelperSet set;
  auto all = isa::HelperSet::linux_builtin();
  for (auto n : names)
    if (const auto* h = all.find(n)) (void)set.add(*h);
  return set;
}

// Helpers every networking program type has in Linux (bpf_base_func_proto, the parts we carry).
constexpr std::string_view base_helpers[] = {"map_lookup_elem",
                                             "map_update_elem",
                                             "map_delete_elem",
                                             "ktime_get_ns",
                                             "trace_printk",
                                             "get_prandom_u32",
                                             "get_smp_processor_id",
                                             "tail_call",
                                             "get_numa_node_id",
                                             "map_push_elem",
                                             "map_pop_elem",
                                             "map_peek_elem",
                                             "jiffies64",
                                             "ktime_get_boot_ns",
                                             "ringbuf_output",
                                             "ringbuf_reserve",
                                             "ringbuf_submit",
                                             "ringbuf_discard",
                                             "ringbuf_query",
                                             "ktime_get_coarse_ns",
                                             "loop",
                                             "strncmp",
                                             "ktime_get_tai_ns"};

void add_names(isa::HelperSet& set, std::initializer_list<std::string_view> names) {
  auto all = isa::HelperSet::linux_builtin();
  for (auto n : names)
    if (const auto* h = all.find(n)) (void)set.add(*h);
}

CtxField scalar(std::string name, std::uint32_t off, std::uint32_t size = 4, bool writable = false) {
  return CtxField{std::move(name), off, size, FieldKind::scalar, writable, 0};
}
CtxField pointer(std::string name, std::uint32_t off, FieldKind kind) {
  return CtxField{std::move(name), off, 4, kind, false, 0};
}

// struct __sk_buff (linux/bpf.h): the fields both socket filters and tc programs may read.
std::vector<CtxField> skb_common_fields(bool tc) {
  std::vector<CtxField> f = {
      scalar("len", 0),
      scalar("pkt_type", 4),
      scalar("mark", 8, 4, tc),
      scalar("queue_mapping", 12, 4, tc),
      scalar("protocol", 16),
      scalar("vlan_present", 20),
      scalar("vlan_tci", 24),
      scalar("vlan_proto", 28),
      scalar("priority", 32, 4, tc),
      scalar("ingress_ifindex", 36),
      scalar("ifindex", 40),
      scalar("tc_index", 44, 4, tc),
  };
  for (std::uint32_t i = 0; i < 5; ++i) f.push_back(scalar(fmt::format("cb[{}]", i), 48 + 4 * i, 4, true));
  f.push_back(scalar("hash", 68));
  f.push_back(scalar("napi_id", 84));
  f.push_back(scalar("gso_segs", 164));
  f.push_back(scalar("gso_size", 176));
  return f;
}

}  // namespace

const CtxField* Environment::field_at(std::uint32_t offset, std::uint32_t size) const {
  for (const auto& f : fields)
    if (offset >= f.offset && std::uint64_t{offset} + size <= std::uint64_t{f.offset} + f.size) return &f;
  return nullptr;
}

Environment raw_environment(std::optional<std::uint64_t> mem_size) {
  Environment env;
  env.name = "raw";
  env.raw_memory = true;
  env.raw_memory_size = mem_size;
  env.allow_pointer_leaks = true;
  env.callx_helper_ids = true;
  env.packet_writable = true;
  env.helpers = isa::HelperSet::linux_builtin();
  // The conformance suite's helper 5 returns its first argument.
  isa::HelperPrototype identity;
  identity.id = 5;
  identity.name = "ktime_get_ns";
  identity.args[0] = isa::ArgKind::anything;
  (void)env.helpers.add(identity);
  return env;
}

Environment xdp_environment() {
  Environment env;
  env.name = "xdp";
  env.ctx_size = 24;  // struct xdp_md
  env.fields = {pointer("data", 0, FieldKind::packet),
                pointer("data_end", 4, FieldKind::packet_end),
                pointer("data_meta", 8, FieldKind::packet_meta),
                scalar("ingress_ifindex", 12),
                scalar("rx_queue_index", 16),
                scalar("egress_ifindex", 20)};
  env.packet_writable = true;
  env.helpers = helpers_named(base_helpers);
  add_names(env.helpers,
            {"redirect", "redirect_map", "perf_event_output", "csum_diff", "xdp_adjust_head",
             "xdp_adjust_meta", "xdp_adjust_tail", "xdp_get_buff_len", "fib_lookup", "check_mtu"});
  return env;
}

Environment socket_filter_environment() {
  Environment env;
  env.name = "socket_filter";
  env.ctx_size = 192;  // struct __sk_buff
  env.fields = skb_common_fields(false);
  env.legacy_packet_loads = true;
  env.helpers = helpers_named(base_helpers);
  add_names(env.helpers, {"skb_load_bytes", "get_socket_cookie", "get_socket_uid", "perf_event_output"});
  return env;
}

Environment sched_cls_environment() {
  Environment env;
  env.name = "sched_cls";
  env.ctx_size = 192;
  env.fields = skb_common_fields(true);
  env.fields.push_back(scalar("tc_classid", 72, 4, true));
  env.fields.push_back(pointer("data", 76, FieldKind::packet));
  env.fields.push_back(pointer("data_end", 80, FieldKind::packet_end));
  env.fields.push_back(pointer("data_meta", 140, FieldKind::packet_meta));
  env.fields.push_back(scalar("tstamp", 152, 8, true));
  env.fields.push_back(scalar("wire_len", 160));
  env.fields.push_back(scalar("hwtstamp", 184, 8));
  std::sort(env.fields.begin(), env.fields.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
  env.packet_writable = true;
  env.legacy_packet_loads = true;
  env.helpers = helpers_named(base_helpers);
  add_names(env.helpers, {"skb_store_bytes",    "l3_csum_replace",  "l4_csum_replace", "clone_redirect",
                          "get_cgroup_classid", "skb_vlan_push",    "skb_vlan_pop",    "redirect",
                          "perf_event_output",  "skb_load_bytes",   "csum_diff",       "skb_change_proto",
                          "skb_change_type",    "get_hash_recalc",  "skb_change_tail", "skb_pull_data",
                          "csum_update",        "set_hash_invalid", "skb_change_head", "get_socket_cookie",
                          "get_socket_uid",     "set_hash",         "skb_adjust_room", "redirect_map",
                          "fib_lookup",         "check_mtu",        "csum_level",      "skb_ecn_set_ce"});
  return env;
}

Result<Environment> environment_by_name(std::string_view name, std::optional<std::uint64_t> mem_size) {
  if (name == "raw") return raw_environment(mem_size);
  if (name == "xdp") return xdp_environment();
  if (name == "socket_filter" || name == "socket") return socket_filter_environment();
  if (name == "sched_cls" || name == "tc") return sched_cls_environment();
  return Error(fmt::format("unknown program type '{}' (raw, xdp, socket_filter, sched_cls)", name));
}

Status check_environment(const Environment& env) {
  for (std::size_t i = 0; i < env.fields.size(); ++i) {
    const auto& f = env.fields[i];
    if (f.size == 0 || std::uint64_t{f.offset} + f.size > env.ctx_size)
      return Error(fmt::format("context field '{}' ({}+{}) lies outside the {}-byte context", f.name,
                               f.offset, f.size, env.ctx_size));
    if (f.kind != FieldKind::scalar && ((f.size != 4 && f.size != 8) || f.writable))
      return Error(fmt::format("pointer field '{}' must be 4 or 8 bytes and read-only", f.name));
    if (f.kind == FieldKind::region && f.region >= env.regions.size())
      return Error(fmt::format("field '{}' names region {} of {}", f.name, f.region, env.regions.size()));
    for (std::size_t j = 0; j < i; ++j) {
      const auto& g = env.fields[j];
      if (f.offset < g.offset + g.size && g.offset < f.offset + f.size)
        return Error(fmt::format("context fields '{}' and '{}' overlap", g.name, f.name));
    }
  }
  return {};
}

}  // namespace bpfvm::verifier
