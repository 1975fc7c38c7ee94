// Lowering an eBPF program to AArch64 code (portable: it produces bytes on any host).
// docs/JIT-a64.md describes the register map, the frame and the checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "jit/a64/runtime_calls.hpp"
#include "vm/helpers.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::jit::a64 {

struct GeneratedCode {
  // Entry at offset 0, called as void (*)(State*).
  std::vector<std::uint8_t> code;
  // Bytes of the in-line code of the program's instructions (function bodies); the rest is the
  // entry and exit, out-of-line check and trap stubs, and the budget-exhaustion paths.
  std::size_t body_bytes = 0;
  // Per pc: where its in-line code starts (`bpfvm disasm --jit`). An instruction folded into the
  // one before it (an lddw's second slot, a fused pattern's tail) gets that code's end, and the
  // bodies end at body_end.
  std::vector<std::uint32_t> insn_offset;
  std::size_t body_end = 0;
  std::size_t insn_count = 0;  // BPF instructions (an lddw counts once)
  // CompileOptions::blind_constants: the code holds each constant xor this key, which the run
  // puts in State::blinding_key (0: constants as they are).
  std::uint64_t blinding_key = 0;
};

// What the code may use beyond ARMv8.0.
struct Target {
  bool lse = false;  // ARMv8.1 atomics (ldaddal, casal...) instead of ldxr/stlxr loops
};

// Validates `program` and generates its code. Fails, naming the instruction, where the
// interpreter's compile step fails (unknown helper, kfunc call, unresolved map reference).
Result<GeneratedCode> generate(const isa::Program& program, const vm::HelperRegistry& helpers,
                               const vm::CompileOptions& options, const RuntimeCalls& calls,
                               const Target& target = {});

}  // namespace bpfvm::jit::a64
