// What a verified program's run must look like at entry: the verifier proved the program's
// accesses safe for an environment (r1 = memory of a size, or a context of a layout whose
// pointer fields point where the layout says), so an engine may leave those checks out only
// when the run's r1, r2 and regions are what the verifier assumed. An EntryContract is built
// once per compile and checked at the start of every run (and of every tail call's target).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "verifier/environment.hpp"
#include "vm/context.hpp"
#include "vm/runtime.hpp"

namespace bpfvm {

class EntryContract {
 public:
  // Fails for environments no run can match: packet fields in a layout that is not the one
  // vm::PacketContext builds for a program type of that name.
  static Result<EntryContract> of(const verifier::Environment& env);

  // "" when the run about to start on `ctx` matches; otherwise what differs, for the trap.
  std::string mismatch(const vm::RunContext& ctx) const;

 private:
  enum class Entry {
    no_memory,      // raw of size 0: r1 = 0, r2 = 0
    sized_memory,   // raw of a known size: r1 = writable memory of exactly r2 = `bytes`
    length_memory,  // raw of an unknown size: r1 = writable memory of at least r2 bytes
    context,        // r1 = a context of `bytes` bytes
  };
  // A context field the verifier read as a pointer to an embedder region of `bytes` bytes.
  struct RegionField {
    std::uint32_t offset = 0;
    std::uint32_t size = 0;  // of the field: 4 or 8
    std::uint64_t bytes = 0;
    vm::Access access = vm::Access::read;
    std::string name;
  };

  Entry entry_ = Entry::context;
  std::uint64_t bytes_ = 0;
  vm::Access context_access_ = vm::Access::read;
  std::optional<vm::ContextKind> packet_;  // the PacketContext kind the run must carry
  std::string packet_type_;                // its name
  std::vector<RegionField> region_fields_;
};

}  // namespace bpfvm
