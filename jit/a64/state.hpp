// The block of memory the generated code and the C++ runtime share during one run. x26 points
// at it for the whole run; the generated code reads and writes it at the fixed offsets below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "vm/runtime.hpp"

namespace bpfvm::jit::a64 {

// The access kinds a region cache exists for (read, write, and atomics' read+write).
inline constexpr int access_kinds = 3;
// Access sizes 1, 2, 4, 8 bytes: index log2(size).
inline constexpr int access_sizes = 4;

// A range the last slow check found: an access of size 1 << s at addr is allowed when
// addr - lo < limit[s] (unsigned), limit[s] being the region's length minus the size plus one
// (0 when the region is shorter than the access, or when nothing is cached).
struct RegionCache {
  std::uint64_t lo;
  std::uint64_t limit;
};

// What stopped the code early, besides a normal exit. `recorded` means the C++ runtime already
// filled State::trap (memory, helper and callx traps); `tail_call` that a helper requested a tail
// call, which ends the program as an exit would (the C++ runtime sets both); the others are
// raised by the code itself.
enum class TrapCode : std::uint64_t { none = 0, recorded = 1, budget = 2, call_depth = 3, tail_call = 4 };

struct State {
  RegionCache cache[access_kinds][access_sizes];  // first: ldp-reachable from x26
  std::uint64_t regs[vm::register_count];         // in: r1-r5, r10; out: r0-r10
  std::uint64_t budget_left;                      // in and out
  std::uint64_t depth_left;                       // calls still allowed below the entry
  std::uint64_t saved_sp;                         // host sp after the prologue: traps return there
  std::uint64_t stack_hi;                         // end of frame 0
  std::uint64_t trap_code;                        // TrapCode
  std::uint64_t trap_pc;
  std::uint64_t loaded;        // a legacy packet load's value
  std::uint64_t blinding_key;  // constant blinding: the code holds constants xor this
  vm::RunContext* ctx;
  const vm::HelperRegistry* helpers;  // callx looks its target up here
  vm::Trap* trap;                     // filled by the C++ runtime for TrapCode::recorded
};
static_assert(std::is_standard_layout_v<State>);

inline constexpr std::int64_t cache_offset(int kind, int size_log2) {
  return static_cast<std::int64_t>(offsetof(State, cache) +
                                   sizeof(RegionCache) * (static_cast<std::size_t>(kind) * access_sizes +
                                                          static_cast<std::size_t>(size_log2)));
}
inline constexpr std::int64_t reg_offset(int r) {
  return static_cast<std::int64_t>(offsetof(State, regs) + 8 * static_cast<std::size_t>(r));
}
static_assert(cache_offset(access_kinds - 1, access_sizes - 1) <= 504, "ldp reaches the caches");

}  // namespace bpfvm::jit::a64
