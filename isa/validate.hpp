// Structural validation: what can be checked from the instruction words alone, before any
// engine or the verifier looks at a program.
#pragma once

#include <cstddef>

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

// The target pc of a jump or call-local at `pc` (ja32 uses imm, the others off; call local imm).
std::ptrdiff_t branch_target(const Insn& insn, Op op, std::size_t pc);

}  // namespace bpfvm::isa
