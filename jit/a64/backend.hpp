// The AArch64 JIT: compiles an eBPF program to native code with the interpreter's semantics,
// checks and traps. Built only when the target is AArch64 (jit/CMakeLists.txt).
#pragma once

#include <memory>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "jit/a64/codegen.hpp"
#include "vm/helpers.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::jit::a64 {

// Validates and compiles; fails (naming the instruction) where the interpreter's compile step
// fails. Runs with a trace, or with a call depth above the JIT's host-stack allowance, go to
// an interpreter compiled alongside (same semantics; the JIT keeps no per-instruction hooks).
// Atomics use LSE when the host has it (host_target()).
Result<std::unique_ptr<vm::Executable>> compile(const isa::Program& program,
                                                std::shared_ptr<const vm::HelperRegistry> helpers,
                                                const vm::CompileOptions& options);

// As compile(), for the given features instead of the host's (the tests run both kinds of
// atomics; `lse` must only be set where the host has it).
Result<std::unique_ptr<vm::Executable>> compile_for(const isa::Program& program,
                                                    std::shared_ptr<const vm::HelperRegistry> helpers,
                                                    const vm::CompileOptions& options, const Target& target);

// What this processor has: LSE when getauxval(AT_HWCAP) reports HWCAP_ATOMICS.
Target host_target();

}  // namespace bpfvm::jit::a64
