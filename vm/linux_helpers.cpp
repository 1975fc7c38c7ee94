#include "vm/linux_helpers.hpp"

#include <chrono>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "vm/context.hpp"
#include "vm/maps.hpp"

namespace bpfvm::vm {
namespace {

using u64 = std::uint64_t;

constexpr std::uint64_t errno_result(int negative) {
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(negative));
}

Map* map_arg(RunContext* ctx, u64 address, std::string_view helper) {
  Map* map = ctx->maps() != nullptr ? ctx->maps()->map_at(address) : nullptr;
  if (map == nullptr) ctx->fail(fmt::format("{}: r1 = {:#x} is not a map of this run", helper, address));
  return map;
}

bool readable(RunContext* ctx, u64 address, u64 size, std::string_view helper, std::string_view what) {
  if (ctx->can_access(address, size, Access::read)) return true;
  ctx->fail(fmt::format("{}: the {} ({} bytes at {:#x}) is not memory the program may read", helper, what,
                        size, address));
  return false;
}

const void* ptr(u64 address) { return reinterpret_cast<const void*>(static_cast<std::uintptr_t>(address)); }

u64 map_lookup_elem(u64 r1, u64 r2, u64, u64, u64, RunContext* ctx) {
  Map* map = map_arg(ctx, r1, "map_lookup_elem");
  if (map == nullptr || !readable(ctx, r2, map->def().key_size, "map_lookup_elem", "key")) return 0;
  return reinterpret_cast<u64>(map->lookup(ptr(r2)));
}

u64 map_update_elem(u64 r1, u64 r2, u64 r3, u64 r4, u64, RunContext* ctx) {
  Map* map = map_arg(ctx, r1, "map_update_elem");
  if (map == nullptr || !readable(ctx, r2, map->def().key_size, "map_update_elem", "key") ||
      !readable(ctx, r3, map->def().value_size, "map_update_elem", "value"))
    return 0;
  return errno_result(map->update(ptr(r2), ptr(r3), r4));
}

u64 map_delete_elem(u64 r1, u64 r2, u64, u64, u64, RunContext* ctx) {
  Map* map = map_arg(ctx, r1, "map_delete_elem");
  if (map == nullptr || !readable(ctx, r2, map->def().key_size, "map_delete_elem", "key")) return 0;
  return errno_result(map->remove(ptr(r2)));
}

u64 ktime_get_ns(u64, u64, u64, u64, u64, RunContext*) {
  return static_cast<u64>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count());
}

// trace_printk's format: %d %i %u %x %X with l/ll, %c, %p, %%; up to three arguments.
std::string format_printk(std::string_view format, const u64 (&args)[3]) {
  std::string out;
  int next = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 == format.size()) {
      out += format[i];
      continue;
    }
    std::size_t j = i + 1;
    int longs = 0;
    while (j < format.size() && format[j] == 'l') ++longs, ++j;
    if (j == format.size()) break;
    const char conv = format[j];
    if (conv == '%') {
      out += '%';
      i = j;
      continue;
    }
    const u64 v = next < 3 ? args[next++] : 0;
    const u64 u = longs == 0 ? static_cast<std::uint32_t>(v) : v;
    switch (conv) {
      case 'd':
      case 'i':
        out += longs == 0 ? fmt::format("{}", static_cast<std::int32_t>(v))
                          : fmt::format("{}", static_cast<std::int64_t>(v));
        break;
      case 'u': out += fmt::format("{}", u); break;
      case 'x': out += fmt::format("{:x}", u); break;
      case 'X': out += fmt::format("{:X}", u); break;
      case 'c': out += static_cast<char>(v); break;
      case 'p': out += fmt::format("{:#x}", v); break;
      default: out += format.substr(i, j - i + 1); break;
    }
    i = j;
  }
  return out;
}

u64 trace_printk(u64 r1, u64 r2, u64 r3, u64 r4, u64 r5, RunContext* ctx) {
  if (r2 == 0 || r2 > 4096 || !readable(ctx, r1, r2, "trace_printk", "format")) return 0;
  const char* text = static_cast<const char*>(ptr(r1));
  if (text[r2 - 1] != '\0') return errno_result(-22);  // Linux wants the format's terminating NUL
  const std::string line = format_printk(std::string_view(text, std::strlen(text)), {r3, r4, r5});
  if (ctx->print()) ctx->print()(line);
  return line.size();
}

u64 get_prandom_u32(u64, u64, u64, u64, u64, RunContext*) {
  thread_local std::mt19937 engine{std::random_device{}()};
  return static_cast<std::uint32_t>(engine());
}

u64 get_smp_processor_id(u64, u64, u64, u64, u64, RunContext* ctx) {
  const int cpu = this_cpu();
  if (cpu < 0)
    ctx->fail(fmt::format("get_smp_processor_id: all {} CPU slots are held by other threads", cpu_slots));
  return static_cast<u64>(cpu < 0 ? 0 : cpu);
}

u64 tail_call(u64 r1, u64 r2, u64 r3, u64, u64, RunContext* ctx) {
  Map* map = map_arg(ctx, r2, "tail_call");
  if (map == nullptr) return 0;
  auto* programs = dynamic_cast<ProgramArray*>(map);
  if (programs == nullptr) {
    ctx->fail(fmt::format("tail_call: map '{}' is not a program array", map->name()));
    return 0;
  }
  // As in Linux, a failed tail call (no program there, or too many) continues after the call.
  if (ctx->tail_calls() >= max_tail_calls) return errno_result(-map_errno::noent);
  std::shared_ptr<const Executable> target = programs->get(static_cast<std::uint32_t>(r3));
  if (!target) return errno_result(-map_errno::noent);
  auto args = ctx->args();
  args[0] = r1;
  ctx->set_args(args);
  ctx->request_tail_call(std::move(target));
  return 0;
}

PacketContext* packet_arg(RunContext* ctx, u64 r1, std::string_view helper) {
  PacketContext* packet = ctx->packet();
  if (packet == nullptr || packet->kind() != ContextKind::xdp || packet->address() != r1) {
    ctx->fail(fmt::format("{}: r1 = {:#x} is not this run's xdp context", helper, r1));
    return nullptr;
  }
  return packet;
}

u64 xdp_adjust_head(u64 r1, u64 r2, u64, u64, u64, RunContext* ctx) {
  PacketContext* packet = packet_arg(ctx, r1, "xdp_adjust_head");
  return packet == nullptr ? 0 : errno_result(packet->adjust_head(static_cast<std::int32_t>(r2)));
}

u64 xdp_adjust_tail(u64 r1, u64 r2, u64, u64, u64, RunContext* ctx) {
  PacketContext* packet = packet_arg(ctx, r1, "xdp_adjust_tail");
  return packet == nullptr ? 0 : errno_result(packet->adjust_tail(static_cast<std::int32_t>(r2)));
}

// bpf_skb_load_bytes(skb, offset, to, len): copies packet bytes out (socket filters and tc).
u64 skb_load_bytes(u64 r1, u64 r2, u64 r3, u64 r4, u64, RunContext* ctx) {
  PacketContext* packet = ctx->packet();
  if (packet == nullptr || packet->kind() == ContextKind::xdp || packet->address() != r1) {
    ctx->fail(fmt::format("skb_load_bytes: r1 = {:#x} is not this run's __sk_buff", r1));
    return 0;
  }
  if (!ctx->can_access(r3, r4, Access::write)) {
    ctx->fail(
        fmt::format("skb_load_bytes: the destination ({} bytes at {:#x}) is not writable memory", r4, r3));
    return 0;
  }
  const std::span<const std::uint8_t> bytes = packet->packet();
  const auto offset = static_cast<std::uint32_t>(r2);
  if (r4 == 0 || offset > bytes.size() || r4 > bytes.size() - offset) {
    if (r4 != 0) std::memset(reinterpret_cast<void*>(static_cast<std::uintptr_t>(r3)), 0, r4);
    return errno_result(-14);  // EFAULT, as Linux after zeroing the destination
  }
  std::memcpy(reinterpret_cast<void*>(static_cast<std::uintptr_t>(r3)), bytes.data() + offset, r4);
  return 0;
}

RingBuffer* ring_arg(RunContext* ctx, u64 r1, std::string_view helper) {
  Map* map = map_arg(ctx, r1, helper);
  if (map == nullptr) return nullptr;
  auto* ring = dynamic_cast<RingBuffer*>(map);
  if (ring == nullptr) ctx->fail(fmt::format("{}: map '{}' is not a ring buffer", helper, map->name()));
  return ring;
}

constexpr u64 ringbuf_wakeup_flags = 3;  // BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP: no meaning here

u64 ringbuf_output(u64 r1, u64 r2, u64 r3, u64 r4, u64, RunContext* ctx) {
  RingBuffer* ring = ring_arg(ctx, r1, "ringbuf_output");
  if (ring == nullptr || !readable(ctx, r2, r3, "ringbuf_output", "data")) return 0;
  if ((r4 & ~ringbuf_wakeup_flags) != 0) return errno_result(-map_errno::inval);
  return errno_result(ring->output(ptr(r2), r3));
}

u64 ringbuf_reserve(u64 r1, u64 r2, u64 r3, u64, u64, RunContext* ctx) {
  RingBuffer* ring = ring_arg(ctx, r1, "ringbuf_reserve");
  if (ring == nullptr || r3 != 0) return 0;
  return reinterpret_cast<u64>(ring->reserve(r2));
}

u64 ringbuf_commit(u64 r1, bool discard, RunContext* ctx) {
  if (ctx->maps() != nullptr) {
    for (const auto& map : ctx->maps()->all()) {
      auto* ring = dynamic_cast<RingBuffer*>(map.get());
      if (ring != nullptr && ring->commit(reinterpret_cast<void*>(static_cast<std::uintptr_t>(r1)), discard))
        return 0;
    }
  }
  ctx->fail(fmt::format("{}: r1 = {:#x} is not a reserved ring buffer record",
                        discard ? "ringbuf_discard" : "ringbuf_submit", r1));
  return 0;
}

u64 ringbuf_submit(u64 r1, u64, u64, u64, u64, RunContext* ctx) { return ringbuf_commit(r1, false, ctx); }
u64 ringbuf_discard(u64 r1, u64, u64, u64, u64, RunContext* ctx) { return ringbuf_commit(r1, true, ctx); }

u64 ringbuf_query(u64 r1, u64 r2, u64, u64, u64, RunContext* ctx) {
  RingBuffer* ring = ring_arg(ctx, r1, "ringbuf_query");
  if (ring == nullptr) return 0;
  switch (r2) {
    case 0: return ring->pending();          // BPF_RB_AVAIL_DATA
    case 1: return ring->def().max_entries;  // BPF_RB_RING_SIZE
    default: return 0;
  }
}

struct Implementation {
  std::uint32_t id;
  HelperFn fn;
};

constexpr Implementation implementations[] = {
    {1, map_lookup_elem},   {2, map_update_elem},  {3, map_delete_elem},      {5, ktime_get_ns},
    {6, trace_printk},      {7, get_prandom_u32},  {8, get_smp_processor_id}, {12, tail_call},
    {26, skb_load_bytes},   {44, xdp_adjust_head}, {65, xdp_adjust_tail},     {130, ringbuf_output},
    {131, ringbuf_reserve}, {132, ringbuf_submit}, {133, ringbuf_discard},    {134, ringbuf_query},
};

}  // namespace

Status add_linux_helpers(HelperRegistry& registry) {
  const isa::HelperSet prototypes = isa::HelperSet::linux_builtin();
  for (const Implementation& impl : implementations) {
    const isa::HelperPrototype* proto = prototypes.find(impl.id);
    if (proto == nullptr) return Error(fmt::format("helper {} has no prototype in isa/helpers.cpp", impl.id));
    if (Status s = registry.add(impl.id, proto->name, impl.fn, *proto); !s) return s;
  }
  return {};
}

}  // namespace bpfvm::vm
