#include "isa/helpers.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace bpfvm::isa {
namespace {

using A = ArgKind;
using R = ReturnKind;

struct Row {
  std::uint32_t id;
  std::string_view name;
  ReturnKind ret;
  std::array<ArgKind, helper_arg_count> args;
  bool changes_packet = false;
  bool calls_callback = false;
};

// Ids are enum bpf_func_id (linux/bpf.h, __BPF_FUNC_MAPPER); argument kinds follow each helper's
// bpf_func_proto in the kernel.
constexpr Row builtin_rows[] = {
    {1, "map_lookup_elem", R::map_value_or_null, {A::const_map_ptr, A::map_key}},
    {2, "map_update_elem", R::integer, {A::const_map_ptr, A::map_key, A::map_value, A::anything}},
    {3, "map_delete_elem", R::integer, {A::const_map_ptr, A::map_key}},
    {4, "probe_read", R::integer, {A::uninit_mem, A::const_size_or_zero, A::anything}},
    {5, "ktime_get_ns", R::integer, {}},
    // As in Linux, only the format is typed: bpf_printk leaves the registers it does not use unset.
    {6, "trace_printk", R::integer, {A::mem, A::const_size}},
    {7, "get_prandom_u32", R::integer, {}},
    {8, "get_smp_processor_id", R::integer, {}},
    {9, "skb_store_bytes", R::integer, {A::ctx, A::anything, A::mem, A::const_size, A::anything}, true},
    {10, "l3_csum_replace", R::integer, {A::ctx, A::anything, A::anything, A::anything, A::anything}, true},
    {11, "l4_csum_replace", R::integer, {A::ctx, A::anything, A::anything, A::anything, A::anything}, true},
    {12, "tail_call", R::none, {A::ctx, A::const_map_ptr, A::anything}},
    {13, "clone_redirect", R::integer, {A::ctx, A::anything, A::anything}},
    {14, "get_current_pid_tgid", R::integer, {}},
    {15, "get_current_uid_gid", R::integer, {}},
    {16, "get_current_comm", R::integer, {A::uninit_mem, A::const_size}},
    {17, "get_cgroup_classid", R::integer, {A::ctx}},
    {18, "skb_vlan_push", R::integer, {A::ctx, A::anything, A::anything}, true},
    {19, "skb_vlan_pop", R::integer, {A::ctx}, true},
    {23, "redirect", R::integer, {A::anything, A::anything}},
    {25,
     "perf_event_output",
     R::integer,
     {A::ctx, A::const_map_ptr, A::anything, A::mem, A::const_size_or_zero}},
    {26, "skb_load_bytes", R::integer, {A::ctx, A::anything, A::uninit_mem, A::const_size}},
    {28,
     "csum_diff",
     R::integer,
     {A::mem_or_null, A::const_size_or_zero, A::mem_or_null, A::const_size_or_zero, A::anything}},
    {31, "skb_change_proto", R::integer, {A::ctx, A::anything, A::anything}, true},
    {32, "skb_change_type", R::integer, {A::ctx, A::anything}},
    {34, "get_hash_recalc", R::integer, {A::ctx}},
    {35, "get_current_task", R::integer, {}},
    {38, "skb_change_tail", R::integer, {A::ctx, A::anything, A::anything}, true},
    {39, "skb_pull_data", R::integer, {A::ctx, A::anything}, true},
    {40, "csum_update", R::integer, {A::ctx, A::anything}},
    {41, "set_hash_invalid", R::none, {A::ctx}},
    {42, "get_numa_node_id", R::integer, {}},
    {43, "skb_change_head", R::integer, {A::ctx, A::anything, A::anything}, true},
    {44, "xdp_adjust_head", R::integer, {A::ctx, A::anything}, true},
    {45, "probe_read_str", R::integer, {A::uninit_mem, A::const_size_or_zero, A::anything}},
    {46, "get_socket_cookie", R::integer, {A::ctx}},
    {47, "get_socket_uid", R::integer, {A::ctx}},
    {48, "set_hash", R::integer, {A::ctx, A::anything}},
    {50, "skb_adjust_room", R::integer, {A::ctx, A::anything, A::anything, A::anything}, true},
    {51, "redirect_map", R::integer, {A::const_map_ptr, A::anything, A::anything}},
    {54, "xdp_adjust_meta", R::integer, {A::ctx, A::anything}, true},
    {65, "xdp_adjust_tail", R::integer, {A::ctx, A::anything}, true},
    {80, "get_current_cgroup_id", R::integer, {}},
    {87, "map_push_elem", R::integer, {A::const_map_ptr, A::map_value, A::anything}},
    {88, "map_pop_elem", R::integer, {A::const_map_ptr, A::uninit_map_value}},
    {89, "map_peek_elem", R::integer, {A::const_map_ptr, A::uninit_map_value}},
    {112, "probe_read_user", R::integer, {A::uninit_mem, A::const_size_or_zero, A::anything}},
    {113, "probe_read_kernel", R::integer, {A::uninit_mem, A::const_size_or_zero, A::anything}},
    {114, "probe_read_user_str", R::integer, {A::uninit_mem, A::const_size_or_zero, A::anything}},
    {115, "probe_read_kernel_str", R::integer, {A::uninit_mem, A::const_size_or_zero, A::anything}},
    {118, "jiffies64", R::integer, {}},
    {125, "ktime_get_boot_ns", R::integer, {}},
    {130, "ringbuf_output", R::integer, {A::const_map_ptr, A::mem, A::const_size_or_zero, A::anything}},
    {131,
     "ringbuf_reserve",
     R::alloc_mem_or_null,
     {A::const_map_ptr, A::const_alloc_size_or_zero, A::anything}},
    {132, "ringbuf_submit", R::none, {A::alloc_mem, A::anything}},
    {133, "ringbuf_discard", R::none, {A::alloc_mem, A::anything}},
    {134, "ringbuf_query", R::integer, {A::const_map_ptr, A::anything}},
    {160, "ktime_get_coarse_ns", R::integer, {}},
    {181, "loop", R::integer, {A::anything, A::func, A::stack_or_null, A::anything}, false, true},
    {182, "strncmp", R::integer, {A::mem, A::const_size, A::anything}},
    {188, "xdp_get_buff_len", R::integer, {A::ctx}},
    {208, "ktime_get_tai_ns", R::integer, {}},
};

bool is_memory_arg(ArgKind k) { return k == A::mem || k == A::mem_or_null || k == A::uninit_mem; }

}  // namespace

int HelperPrototype::arg_count() const {
  int n = 0;
  for (int i = 0; i < helper_arg_count; ++i)
    if (args[i] != ArgKind::none) n = i + 1;
  return n;
}

std::string_view to_string(ArgKind k) {
  static constexpr std::string_view names[] = {"none",
                                               "anything",
                                               "scalar",
                                               "const_map_ptr",
                                               "map_key",
                                               "map_value",
                                               "uninit_map_value",
                                               "mem",
                                               "mem_or_null",
                                               "uninit_mem",
                                               "const_size",
                                               "const_size_or_zero",
                                               "const_alloc_size_or_zero",
                                               "ctx",
                                               "stack_or_null",
                                               "func",
                                               "alloc_mem"};
  static_assert(std::size(names) == static_cast<std::size_t>(ArgKind::alloc_mem) + 1);
  return names[static_cast<std::size_t>(k)];
}

std::string_view to_string(ReturnKind k) {
  static constexpr std::string_view names[] = {"integer", "none", "map_value_or_null", "alloc_mem_or_null"};
  return names[static_cast<std::size_t>(k)];
}

std::span<const HelperPrototype> linux_helpers() {
  static const std::vector<HelperPrototype> table = [] {
    std::vector<HelperPrototype> v;
    for (const auto& r : builtin_rows)
      v.push_back(
          HelperPrototype{r.id, std::string(r.name), r.ret, r.args, r.changes_packet, r.calls_callback});
    return v;
  }();
  return table;
}

HelperSet HelperSet::linux_builtin() {
  HelperSet set;
  set.helpers_.assign(linux_helpers().begin(), linux_helpers().end());
  return set;
}

Status HelperSet::add(HelperPrototype proto) {
  bool map_seen = false;
  bool alloc_size_seen = false;
  for (int i = 0; i < helper_arg_count; ++i) {
    ArgKind k = proto.args[i];
    if (k == A::const_map_ptr) map_seen = true;
    if (k == A::const_alloc_size_or_zero) alloc_size_seen = true;
    if ((k == A::map_key || k == A::map_value || k == A::uninit_map_value) && !map_seen)
      return Error(fmt::format("helper {} ({}): argument {} is a map {} but no map argument precedes it",
                               proto.id, proto.name, i + 1, k == A::map_key ? "key" : "value"));
    if ((k == A::const_size || k == A::const_size_or_zero) && (i == 0 || !is_memory_arg(proto.args[i - 1])))
      return Error(fmt::format("helper {} ({}): size argument {} does not follow a memory argument", proto.id,
                               proto.name, i + 1));
    if (is_memory_arg(k) && (i + 1 == helper_arg_count || (proto.args[i + 1] != A::const_size &&
                                                           proto.args[i + 1] != A::const_size_or_zero)))
      return Error(fmt::format("helper {} ({}): memory argument {} has no size argument after it", proto.id,
                               proto.name, i + 1));
  }
  if (proto.ret == R::map_value_or_null && !map_seen)
    return Error(fmt::format("helper {} ({}): returns a map value but takes no map", proto.id, proto.name));
  if (proto.ret == R::alloc_mem_or_null && !alloc_size_seen)
    return Error(
        fmt::format("helper {} ({}): returns memory but takes no allocation size", proto.id, proto.name));
  for (const auto& h : helpers_)
    if (h.name == proto.name && h.id != proto.id)
      return Error(fmt::format("helper name '{}' already belongs to id {}", proto.name, h.id));
  auto it = std::lower_bound(helpers_.begin(), helpers_.end(), proto.id,
                             [](const HelperPrototype& h, std::uint32_t id) { return h.id < id; });
  if (it != helpers_.end() && it->id == proto.id)
    *it = std::move(proto);
  else
    helpers_.insert(it, std::move(proto));
  return {};
}

const HelperPrototype* HelperSet::find(std::uint32_t id) const {
  auto it = std::lower_bound(helpers_.begin(), helpers_.end(), id,
                             [](const HelperPrototype& h, std::uint32_t v) { return h.id < v; });
  return it != helpers_.end() && it->id == id ? &*it : nullptr;
}

const HelperPrototype* HelperSet::find(std::string_view name) const {
  for (const auto& h : helpers_)
    if (h.name == name) return &h;
  return nullptr;
}

}  // namespace bpfvm::isa
