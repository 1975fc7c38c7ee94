// The x86-64 JIT: lowers an isa::Program to native code with the interpreter's exact
// semantics, traps and budget (docs/JIT-x64.md).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "vm/helpers.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::jit::x64 {

// The api::EngineFactory of the x86-64 JIT.
Result<std::unique_ptr<vm::Executable>> compile(const isa::Program& program,
                                                std::shared_ptr<const vm::HelperRegistry> helpers,
                                                const vm::CompileOptions& options);

// The machine code compile() would run, with where each BPF instruction's code starts
// (`insn_offset[pc]`; an lddw's second slot gets its first slot's end). The code after the
// last instruction's is the shared exit, the out-of-line trap paths and the slow-path thunks.
struct Listing {
  std::vector<std::uint8_t> code;
  std::vector<std::uint32_t> insn_offset;
  std::uint32_t body_end = 0;  // where the functions end and the out-of-line code begins
};
Result<Listing> listing(const isa::Program& program, std::shared_ptr<const vm::HelperRegistry> helpers,
                        const vm::CompileOptions& options);

}  // namespace bpfvm::jit::x64
