// Program contexts built from packet bytes: xdp (struct xdp_md) and socket_filter / sched_cls
// (a struct __sk_buff subset), with the Linux layouts the verifier's environments describe.
//
// Their data / data_end / data_meta fields are 32 bits wide, as in Linux, where the kernel
// rewrites the program's context loads into loads of the real 64-bit pointers. bpfvm keeps the
// program unchanged and every engine unaware instead: a context and its packet buffer live in
// one mapping placed below 4 GiB, so a 32-bit field holds the packet's real address and a
// zero-extending load gives a pointer the engines check like any other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "isa/error.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::vm {

enum class ContextKind { xdp, socket_filter, sched_cls };
// "xdp", "socket_filter", "sched_cls" (also "socket", "tc").
std::optional<ContextKind> context_kind(std::string_view name);
// The name of a program's verdict: "XDP_PASS", "TC_ACT_SHOT", "drop" / "keep" for sockets.
std::string verdict_name(ContextKind kind, std::uint64_t r0);

class PacketContext {
 public:
  static constexpr std::size_t headroom = 256;            // XDP_PACKET_HEADROOM
  static constexpr std::size_t max_packet = 65535;        // largest packet set_packet() takes
  static constexpr std::size_t tailroom = 4096;           // room bpf_xdp_adjust_tail may grow into
  static constexpr std::uint32_t min_packet_length = 14;  // ETH_HLEN: what adjust_* leave at least

  // Maps the context and its buffer below 4 GiB; fails when the address space has no room there.
  static Result<std::unique_ptr<PacketContext>> create(ContextKind kind);
  ~PacketContext();
  PacketContext(const PacketContext&) = delete;
  PacketContext& operator=(const PacketContext&) = delete;

  ContextKind kind() const { return kind_; }
  // Copies the packet in after the headroom and fills the context's fields (ingress_ifindex 1,
  // rx_queue_index 0; __sk_buff len, protocol from the Ethernet type, pkt_type, ...).
  Status set_packet(std::span<const std::uint8_t> bytes);
  // Makes the next run on `ctx` see this context: r1 = the context, its regions ("context", and
  // "packet": for xdp the buffer from the headroom to the tailroom, for sockets and tc exactly
  // the packet, first among the regions so legacy ld_abs loads read it), and the xdp helpers.
  // Call after set_packet().
  void attach(RunContext& ctx);
  // The packet as the program left it (xdp_adjust_head/tail move its ends).
  std::span<const std::uint8_t> packet() const;
  std::uint64_t address() const { return reinterpret_cast<std::uint64_t>(base_); }

  // bpf_xdp_adjust_head / bpf_xdp_adjust_tail: 0, or -EINVAL when the result would leave the
  // buffer or hold fewer than 14 bytes.
  int adjust_head(std::int64_t delta);
  int adjust_tail(std::int64_t delta);

 private:
  PacketContext(ContextKind kind, std::uint8_t* base, std::size_t size)
      : kind_(kind), base_(base), size_(size) {}
  std::uint8_t* buffer() const { return base_ + context_bytes; }  // headroom starts here
  void store_field(std::uint32_t offset, std::uint32_t value);
  std::uint32_t field(std::uint32_t offset) const;

  static constexpr std::size_t context_bytes = 256;  // room for struct __sk_buff (192 bytes)
  ContextKind kind_;
  std::uint8_t* base_;
  std::size_t size_;
  std::uint64_t data_ = 0, data_end_ = 0;
};

}  // namespace bpfvm::vm
