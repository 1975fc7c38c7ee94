// What emitted code and the C++ around it share during one run: the JitState block (r12 points
// at it for the whole run) and the slow paths the code calls. Only emit.cpp and backend.cpp
// include this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "vm/runtime.hpp"

namespace bpfvm::jit::x64 {

// How a run ended, as emitted code stores it in JitState::trap_kind.
enum class Exit : std::uint64_t {
  normal = 0,
  memory,  // the slow path filled Run::trap (out_of_bounds / permission)
  budget,  // trap_pc holds the first pc of the block that could not pay
  // A budget check's stub called the shared thunk: trap_address holds the stub's return
  // address, which Emitted::budget_sites maps to the pc and the count to refund.
  budget_site,
  call_depth,
  bad_call_target,  // trap_address holds the register's value
  helper_error,
};

// The access kinds of the fast region check, in JitState::fast order.
enum AccessKind : unsigned { access_read = 0, access_write = 1, access_read_write = 2 };

// The region the inline check tries first (the run's first region): an access of `size` bytes
// at addr passes when start <= addr <= last[log2 size], a span of n bytes when
// start <= addr <= end - n. The bounds are set so that nothing passes when the region does not
// allow the access (start = ~0, end = last = 0).
struct FastRegion {
  std::uint64_t start;
  std::uint64_t end;
  std::uint64_t last[4];
};

struct Run;

// Standard layout: emitted code addresses fields with offsetof.
struct JitState {
  std::uint64_t args[5];       // r1..r5 at entry
  std::uint64_t frame_top;     // r10 of the entry function (end of frame 0)
  std::uint64_t budget;        // remaining instructions (r9 while running)
  std::uint64_t lowest_frame;  // the lowest r10 a bpf-to-bpf call may set (the depth limit)
  std::uint64_t frame;         // r10 when a slow path was called (its frame is the deepest)
  std::uint64_t stack_hi;      // end of frame 0
  FastRegion fast[3];          // per AccessKind
  vm::RunContext* ctx;         // sixth argument of every helper
  Run* run;                    // the C++ side of the run
  std::uint64_t saved_rsp;     // rsp after the prologue: traps unwind to it
  std::uint64_t regs[11];      // r0..r10 at exit or trap
  std::uint64_t trap_kind;     // an Exit
  std::uint64_t trap_pc;
  std::uint64_t trap_address;
  std::uint64_t spill[8];      // scratch for sequences that need more than r10 and r11
  std::uint64_t legacy_value;  // result of a legacy packet load
  std::uint64_t blinding_key;  // constant blinding: the code holds constants xor this
  std::uint64_t trips;         // a hoisted loop's entry check: the last iteration that can start
};

// The C++ side of a run, reached from JitState::run.
struct Run {
  const vm::RunContext* ctx;
  const vm::HelperRegistry* helpers;
  std::optional<vm::Trap> trap;  // memory traps, filled by the slow paths
};

// Slow paths, called from emitted code with the caller-saved registers preserved around them.
// `packed` is (pc << 8) | (AccessKind << 4) | size.
inline constexpr std::uint64_t pack_access(std::uint32_t pc, AccessKind kind, std::uint32_t size) {
  return (std::uint64_t{pc} << 8) | (std::uint64_t{kind} << 4) | size;
}
// The whole check of the interpreter (stack, then the regions in order); false after
// recording the trap (pc, address, size, region).
bool check_access(JitState* state, std::uint64_t addr, std::uint64_t packed);
// A legacy packet load (ldabs/ldind): offset from the first region, network byte order; the
// value goes to JitState::legacy_value.
bool legacy_load(JitState* state, std::uint64_t offset, std::uint64_t packed);
// callx: the helper whose id `id` is, or null.
vm::HelperFn find_helper(JitState* state, std::uint64_t id);
// True when the last helper called RunContext::fail or requested a tail call: either way the
// program ends there (through the helper_error exit; run() tells the two apart).
bool helper_failed(JitState* state);

}  // namespace bpfvm::jit::x64
