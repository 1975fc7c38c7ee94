// Helper functions the programs call: `call N` by id, `callx rX` by the id held in rX.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/helpers.hpp"

namespace bpfvm::vm {

class RunContext;

// r1..r5, then the run's context, so that a JIT can call a helper directly (System V and
// AAPCS64 both pass six integer arguments in registers). The result becomes r0. A helper
// that fails calls `ctx->fail(...)`: the run then stops with a helper_error trap.
using HelperFn = std::uint64_t (*)(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                                   std::uint64_t r5, RunContext* ctx);

struct Helper {
  std::uint32_t id = 0;
  std::string name;
  HelperFn fn = nullptr;
  // What the verifier checks at a call; empty for helpers nobody described.
  std::optional<isa::HelperPrototype> prototype;
};

// The helpers a program may call. Built before compiling, read-only afterwards (engines keep
// a copy), so lookups need no locking.
class HelperRegistry {
 public:
  // Adds or replaces (same id) a helper. Fails on a null function, an empty name, or a name
  // that belongs to another id.
  Status add(std::uint32_t id, std::string name, HelperFn fn,
             std::optional<isa::HelperPrototype> prototype = {});
  const Helper* find(std::uint32_t id) const;
  const Helper* find(std::string_view name) const;
  std::span<const Helper> all() const { return helpers_; }

  // The conformance suite's helpers: id 5 returns its first argument.
  Status add_conformance_helpers();
  // A registry holding just the conformance suite's helpers.
  static HelperRegistry conformance();

 private:
  std::vector<Helper> helpers_;  // sorted by id
};

}  // namespace bpfvm::vm
