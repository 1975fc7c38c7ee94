// The abstract state the analysis carries from instruction to instruction (internal).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "isa/isa.hpp"
#include "verifier/domain.hpp"

namespace bpfvm::verifier::detail {

enum class RegKind : std::uint8_t {
  uninit,       // never written, clobbered by a call, or different kinds on joined paths
  scalar,       // a number
  ctx,          // the context
  stack,        // a stack frame (region = frame index)
  packet,       // packet data (id, delta: see Reg)
  packet_end,   // one past the packet's last byte
  packet_meta,  // packet metadata
  map_value,    // a map's value (region = map index, size = value size)
  map_ptr,      // a map itself (region = map index)
  mem,          // a sized memory block: raw input, embedder region, helper-allocated memory
  func,         // a bpf-to-bpf function (region = function index)
};

enum class Why : std::uint8_t { never_written, call_clobbered, packet_moved, released, frame_ended, merged };

inline constexpr std::uint32_t packet_base_id = 0;  // data itself (variable part 0)
inline constexpr std::uint32_t meta_base_id = 1;    // data_meta itself
inline constexpr std::uint32_t first_free_id = 2;
inline constexpr std::int64_t no_range = INT64_MIN / 4;

// One register. For pointers `val` is the offset from the region's start (from r10 for stack).
// Packet pointers also carry (id, delta): the pointer is data + var(id) + delta where var(id) is
// an unknown shared by every register with that id, and State::ranges records, per id, an R with
// var(id) + R <= packet length. Nullable pointers share an id with their copies so that one null
// check refines them all; scalars share an id while they are copies of each other, give or take
// a constant: a scalar with an id is var(id) + delta (64-bit, wrapping), so that a check of
// `r7 = r4 + 10` bounds r4 too.
struct Reg {
  RegKind kind = RegKind::uninit;
  bool nullable = false;
  bool is_len = false;     // a scalar known to equal the raw input's length (unknown-size raw)
  bool writable = false;   // mem, map_value
  bool allocated = false;  // mem from a helper that must be released (ringbuf_reserve)
  std::uint32_t region = 0;
  std::uint32_t id = 0;
  std::int64_t delta = 0;
  std::uint64_t size = 0;  // map_value, mem: bytes in the region
  Scalar val;
  // Loop progress (scalars, while a loop is analysed by widening): this value is the value
  // register `origin` held at the head of loop activation `tag`, plus a step in
  // [step_lo, step_hi] applied by `step_width`-bit additions (0: none yet).
  std::uint32_t tag = 0;
  std::int8_t origin = -1;
  std::uint8_t step_width = 0;
  std::int64_t step_lo = 0, step_hi = 0;

  static Reg scalar(Scalar v) {
    Reg r;
    r.kind = RegKind::scalar;
    r.val = v;
    return r;
  }
  bool is_pointer() const { return kind != RegKind::uninit && kind != RegKind::scalar; }
  // Why an uninit register is unusable, for diagnostics only (not part of the value).
  Why why = Why::never_written;
  std::uint32_t why_pc = 0;

  static Reg unusable(Why w, std::uint32_t pc) {
    Reg r;
    r.why = w;
    r.why_pc = pc;
    return r;
  }
  friend bool operator==(const Reg& a, const Reg& b) {
    return a.kind == b.kind && a.nullable == b.nullable && a.is_len == b.is_len && a.writable == b.writable &&
           a.allocated == b.allocated && a.region == b.region && a.id == b.id && a.delta == b.delta &&
           a.size == b.size && a.val == b.val && a.tag == b.tag && a.origin == b.origin &&
           a.step_width == b.step_width && a.step_lo == b.step_lo && a.step_hi == b.step_hi;
  }
};

enum ByteKind : std::uint8_t { byte_uninit = 0, byte_misc = 1, byte_spill = 2 };

struct Frame {
  std::array<std::uint8_t, isa::stack_frame_size> bytes{};  // ByteKind per byte, index 512 + offset
  std::vector<std::pair<std::uint16_t, Reg>> spills;        // 8-byte slot index -> register, sorted
  std::array<Reg, 4> saved;  // the caller's r6..r9 while this frame runs (frames above the first)
  std::uint32_t function = 0;
  bool callback = false;  // called by a helper: must return a scalar
  friend bool operator==(const Frame&, const Frame&) = default;
};

struct State {
  std::array<Reg, isa::register_count> regs;
  std::vector<Frame> frames;
  std::vector<std::pair<std::uint32_t, std::int64_t>> ranges;  // packet id -> R, sorted by id
  // Helper-allocated memory not yet released (ids of the allocations), sorted.
  std::vector<std::uint32_t> refs;
  friend bool operator==(const State&, const State&) = default;
};

}  // namespace bpfvm::verifier::detail
