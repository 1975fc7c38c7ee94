// Code generation: one analysed program to x86-64 machine code (docs/JIT-x64.md).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "isa/error.hpp"
#include "jit/lowering/analysis.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::jit::x64 {

struct EmitOptions {
  bool bmi2 = false;               // shlx/shrx/sarx for shifts by a register
  std::uint64_t blinding_key = 0;  // 0: constants are emitted as they are
  bool budget = true;              // false: no instruction is counted (vm::CompileOptions::enforce_budget)
};

// A budget check whose stub is `call` to the shared budget thunk: the stub's return address
// (code offset `ret`) says which check failed.
struct BudgetSite {
  std::uint32_t ret;    // code offset after the stub's call
  std::uint32_t pc;     // the pc the trap reports (the first of what could not be paid)
  std::uint32_t count;  // what the check subtracted, given back before the trap
};

// A trap at `pc` leaves `count` instructions of its budget segment paid for but not run.
struct PaidAhead {
  std::uint32_t pc;
  std::uint32_t count;
};

// `code` and `insn_offset` live in the emitting thread's workspace: they stay valid until that
// thread's next emit() (keeping the buffers saves allocating and faulting them in per compile).
struct Emitted {
  std::span<const std::uint8_t> code;  // entry at offset 0: std::uint64_t (*)(JitState*)
  std::span<const std::uint32_t> insn_offset;
  // The pcs where a trap leaves instructions paid for but not executed (docs/JIT-x64.md, budget
  // segments), so that RunResult::executed matches the interpreter's; any other pc leaves none.
  std::vector<PaidAhead> paid_ahead;     // in increasing pc order
  std::vector<BudgetSite> budget_sites;  // in increasing `ret` order
  std::uint32_t body_end = 0;
};

Result<Emitted> emit(const lowering::Analysis& analysis, const EmitOptions& options);
// Gives the calling thread's emit buffers back (the next emit() allocates them again).
void release_workspace();

}  // namespace bpfvm::jit::x64
