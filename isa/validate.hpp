// Structural validation: what can be checked from the instruction words alone, before any
// engine or the verifier looks at a program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"

namespace bpfvm::isa {

struct ValidateOptions {
  std::size_t max_insns = 1'000'000;
  int cpu_version = 4;  // reject instructions newer than this
};

// Checks every instruction (known form, reserved fields zero, register numbers, no write to
// r10, lddw pairs whole), every jump (in range, within its function, not into an lddw's second
// slot), every call local (to a function start) and every function's end (no falling off).
// When `program.functions` is empty it is filled in: the entry at 0 plus every call-local
// target, each running up to the next function's start.
Status validate(Program& program, const ValidateOptions& options = {});

// What validate() learns about a program's slots, for the engines that decode it next. Its
// vectors keep their capacity from one call to the next.
struct Layout {
  std::vector<Op> ops;              // per slot its form (an lddw's second slot repeats the first)
  std::vector<Function> functions;  // the program's (sorted by start) or the discovered ones

  // Scratch of validate(), kept here for its capacity.
  std::vector<std::uint64_t> second_slots;  // bit pc: pc is an lddw's second slot
  std::vector<std::uint32_t> branches;      // pcs of jumps and calls local, in order
  std::vector<std::uint32_t> call_targets;  // of calls local and function references
  std::vector<std::int32_t> function_of;    // per pc, only when given functions overlap
};

// The same checks and errors on a program that stays as it is; `out` receives its layout
// (complete only when the program is valid).
Status validate(const Program& program, const ValidateOptions& options, Layout& out);

// The target pc of a jump or call-local at `pc` (ja32 uses imm, the others off; call local imm).
// Inline: the engines resolve every jump through it.
constexpr std::ptrdiff_t branch_target(const Insn& insn, Op op, std::size_t pc) {
  const OpInfo& row = info(op);
  const auto pc1 = static_cast<std::ptrdiff_t>(pc) + 1;
  if (row.kind == Kind::call) return pc1 + insn.imm;
  if (row.kind == Kind::jump && row.operation == Operation::ja && row.width == 32) return pc1 + insn.imm;
  return pc1 + insn.off;
}

}  // namespace bpfvm::isa
