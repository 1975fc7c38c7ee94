#include "vm/context.hpp"

#include <sys/mman.h>

#include <cstring>

#include <fmt/format.h>

namespace bpfvm::vm {
namespace {

constexpr int einval = 22;

// struct xdp_md and struct __sk_buff field offsets (linux/bpf.h).
namespace xdp_md {
constexpr std::uint32_t data = 0, data_end = 4, data_meta = 8, ingress_ifindex = 12, rx_queue_index = 16;
constexpr std::uint32_t size = 24;
}  // namespace xdp_md
namespace sk_buff {
constexpr std::uint32_t len = 0, pkt_type = 4, protocol = 16, ingress_ifindex = 36, ifindex = 40, data = 76,
                        data_end = 80, data_meta = 140, wire_len = 160, gso_segs = 164;
constexpr std::uint32_t size = 192;
}  // namespace sk_buff

constexpr std::uint64_t four_gib = std::uint64_t{1} << 32;

// Anonymous memory that ends below 4 GiB: MAP_32BIT where the host has it (x86-64: below
// 2 GiB, which also suits ASan's low-memory range), else address hints from 256 MiB up.
void* map_low(std::size_t size) {
#ifdef MAP_32BIT
  if (void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
      p != MAP_FAILED)
    return p;
#endif
  for (std::uint64_t hint = 0x10000000; hint + size < four_gib; hint += 0x1000000) {
    void* p =
        mmap(reinterpret_cast<void*>(hint), size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) continue;
    if (reinterpret_cast<std::uint64_t>(p) + size <= four_gib) return p;
    munmap(p, size);
  }
  return nullptr;
}

}  // namespace

std::optional<ContextKind> context_kind(std::string_view name) {
  if (name == "xdp") return ContextKind::xdp;
  if (name == "socket_filter" || name == "socket") return ContextKind::socket_filter;
  if (name == "sched_cls" || name == "tc") return ContextKind::sched_cls;
  return std::nullopt;
}

std::string verdict_name(ContextKind kind, std::uint64_t r0) {
  switch (kind) {
    case ContextKind::xdp: {
      static constexpr const char* names[] = {"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
                                              "XDP_REDIRECT"};
      return r0 < std::size(names) ? names[r0] : "unknown XDP action";
    }
    case ContextKind::sched_cls: {
      static constexpr const char* names[] = {"TC_ACT_OK",     "TC_ACT_RECLASSIFY", "TC_ACT_SHOT",
                                              "TC_ACT_PIPE",   "TC_ACT_STOLEN",     "TC_ACT_QUEUED",
                                              "TC_ACT_REPEAT", "TC_ACT_REDIRECT"};
      if (static_cast<std::int32_t>(r0) == -1) return "TC_ACT_UNSPEC";
      return r0 < std::size(names) ? names[r0] : "unknown TC action";
    }
    case ContextKind::socket_filter:
      return static_cast<std::uint32_t>(r0) == 0
                 ? std::string("drop")
                 : fmt::format("keep {} bytes", static_cast<std::uint32_t>(r0));
  }
  return "?";
}

Result<std::unique_ptr<PacketContext>> PacketContext::create(ContextKind kind) {
  const std::size_t size = (context_bytes + headroom + max_packet + tailroom + 4095) & ~std::size_t{4095};
  void* p = map_low(size);
  if (p == nullptr) return Error("cannot map a packet buffer below 4 GiB (needed for 32-bit context fields)");
  return std::unique_ptr<PacketContext>(new PacketContext(kind, static_cast<std::uint8_t*>(p), size));
}

PacketContext::~PacketContext() { munmap(base_, size_); }

void PacketContext::store_field(std::uint32_t offset, std::uint32_t value) {
  std::memcpy(base_ + offset, &value, sizeof value);
}

std::uint32_t PacketContext::field(std::uint32_t offset) const {
  std::uint32_t v;
  std::memcpy(&v, base_ + offset, sizeof v);
  return v;
}

Status PacketContext::set_packet(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > max_packet)
    return Error(fmt::format("packet of {} bytes is larger than {} bytes", bytes.size(), max_packet));
  std::memset(base_, 0, context_bytes);
  std::uint8_t* data = buffer() + headroom;
  if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
  data_ = reinterpret_cast<std::uint64_t>(data);
  data_end_ = data_ + bytes.size();
  const auto low = [](std::uint64_t a) { return static_cast<std::uint32_t>(a); };
  if (kind_ == ContextKind::xdp) {
    store_field(xdp_md::data, low(data_));
    store_field(xdp_md::data_end, low(data_end_));
    store_field(xdp_md::data_meta, low(data_));
    store_field(xdp_md::ingress_ifindex, 1);
    store_field(xdp_md::rx_queue_index, 0);
  } else {
    const auto len = static_cast<std::uint32_t>(bytes.size());
    store_field(sk_buff::len, len);
    store_field(sk_buff::pkt_type, 0);  // PACKET_HOST
    // skb->protocol is the Ethernet type in network byte order, as the two bytes sit in memory.
    std::uint16_t proto = 0;
    if (bytes.size() >= 14) std::memcpy(&proto, bytes.data() + 12, 2);
    store_field(sk_buff::protocol, proto);
    store_field(sk_buff::ingress_ifindex, 1);
    store_field(sk_buff::ifindex, 1);
    store_field(sk_buff::data, low(data_));
    store_field(sk_buff::data_end, low(data_end_));
    store_field(sk_buff::data_meta, low(data_));
    store_field(sk_buff::wire_len, len);
    store_field(sk_buff::gso_segs, 1);
  }
  return {};
}

void PacketContext::attach(RunContext& ctx) {
  ctx.clear_regions();
  if (kind_ == ContextKind::xdp) {
    ctx.add_region({reinterpret_cast<std::uint64_t>(buffer()), headroom + max_packet + tailroom,
                    Access::read_write, "packet"});
    ctx.add_region({address(), xdp_md::size, Access::read, "context"});
  } else {
    ctx.add_region({data_, data_end_ - data_,
                    kind_ == ContextKind::sched_cls ? Access::read_write : Access::read, "packet"});
    ctx.add_region({address(), sk_buff::size, Access::read_write, "context"});
  }
  ctx.set_args({address(), 0, 0, 0, 0});
  ctx.set_packet(this);
  ctx.set_maps(nullptr);  // the regions were cleared: a MapSet must attach again
}

std::span<const std::uint8_t> PacketContext::packet() const {
  return {reinterpret_cast<const std::uint8_t*>(data_), static_cast<std::size_t>(data_end_ - data_)};
}

int PacketContext::adjust_head(std::int64_t delta) {
  const auto lo = reinterpret_cast<std::uint64_t>(buffer());
  const std::uint64_t next = data_ + static_cast<std::uint64_t>(delta);
  if (kind_ != ContextKind::xdp || next < lo || next > data_end_ || data_end_ - next < min_packet_length)
    return -einval;
  data_ = next;
  store_field(xdp_md::data, static_cast<std::uint32_t>(data_));
  store_field(xdp_md::data_meta, static_cast<std::uint32_t>(data_));
  return 0;
}

int PacketContext::adjust_tail(std::int64_t delta) {
  const auto hi = reinterpret_cast<std::uint64_t>(buffer()) + headroom + max_packet + tailroom;
  const std::uint64_t next = data_end_ + static_cast<std::uint64_t>(delta);
  if (kind_ != ContextKind::xdp || next > hi || next < data_ || next - data_ < min_packet_length)
    return -einval;
  if (next > data_end_) std::memset(reinterpret_cast<void*>(data_end_), 0, next - data_end_);
  data_end_ = next;
  store_field(xdp_md::data_end, static_cast<std::uint32_t>(data_end_));
  return 0;
}

}  // namespace bpfvm::vm
