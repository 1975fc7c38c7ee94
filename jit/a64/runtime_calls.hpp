// The C++ side of the generated code: the slow paths it calls with `blr` (memory checks that
// miss the region cache, legacy packet loads, helper calls that must notice a failure). Each
// follows AAPCS64, so the code calls them like any C function. Portable C++: the code generator
// only needs their addresses, which also lets it run on other hosts (code size figures).
#pragma once

#include <cstdint>

#include "jit/a64/state.hpp"
#include "vm/helpers.hpp"

namespace bpfvm::jit::a64 {

// Memory access of (packed & 0xff) bytes at addr needing Access (packed >> 8), with r10 the
// current frame pointer: the interpreter's rules (the live stack frames, then the run's regions
// in order). Returns 1 when allowed (caching the region when that is exact), else records the
// trap in *state->trap and returns 0.
std::uint64_t check_access(State* state, std::uint64_t addr, std::uint64_t packed, std::uint64_t r10);

// ldabs/ldind: `size` bytes at regions()[0].start + offset, in network byte order, into
// state->loaded. Returns 1, or records the trap and returns 0.
std::uint64_t legacy_load(State* state, std::uint64_t offset, std::uint64_t size, std::uint64_t r10);

// `call N`: runs fn and, when it reported failure, records a helper_error trap and sets
// state->trap_code; when it requested a tail call, sets state->trap_code to tail_call. Returns
// the helper's result (the new r0) either way.
std::uint64_t call_helper(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                          std::uint64_t r5, State* state, vm::HelperFn fn);

// `callx`: the helper whose id is `target`; a target naming none records bad_call_target and
// returns `r0` unchanged.
std::uint64_t call_indirect(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                            std::uint64_t r5, State* state, std::uint64_t target, std::uint64_t r0);

// Empties the region caches (at the start of a run, and after helpers, which may change regions).
void clear_region_caches(State& state);

// Where the generated code finds the functions above.
struct RuntimeCalls {
  std::uint64_t check_access = 0;
  std::uint64_t legacy_load = 0;
  std::uint64_t call_helper = 0;
  std::uint64_t call_indirect = 0;

  static RuntimeCalls host();
};

}  // namespace bpfvm::jit::a64
