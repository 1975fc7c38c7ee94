// What the differential tests share: the host's JIT, run sizes from the environment, and the
// comparison of a JIT's run with the interpreter's.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/bpfvm.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::test {

#if defined(__x86_64__)
inline constexpr Engine host_jit = Engine::jit_x64;
#else
inline constexpr Engine host_jit = Engine::jit_a64;
#endif

// The environment variable as a number, or `fallback` when it is unset or empty.
inline std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

inline std::string describe(const vm::RunResult& r) {
  if (!r.trap) return "exit r0=" + std::to_string(r.r0) + " executed=" + std::to_string(r.executed);
  return "trap " + r.trap->message() + " region=" + r.trap->region +
         " executed=" + std::to_string(r.executed);
}

// The JIT's run `jit` gives what the interpreter's `interp` gave: the same trap (kind, pc,
// address, size, region, message) or the same r0, and the same executed count.
inline void check_same_result(const vm::RunResult& interp, const vm::RunResult& jit) {
  INFO("interpreter: " << describe(interp) << "\njit:         " << describe(jit));
  REQUIRE(interp.trap.has_value() == jit.trap.has_value());
  CHECK(interp.executed == jit.executed);
  if (interp.trap) {
    CHECK(interp.trap->kind == jit.trap->kind);
    CHECK(interp.trap->pc == jit.trap->pc);
    CHECK(interp.trap->address == jit.trap->address);
    CHECK(interp.trap->size == jit.trap->size);
    CHECK(interp.trap->region == jit.trap->region);
    CHECK(interp.trap->detail == jit.trap->detail);
  } else {
    CHECK(interp.r0 == jit.r0);
  }
}

}  // namespace bpfvm::test
