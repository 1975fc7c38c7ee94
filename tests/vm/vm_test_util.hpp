// Assembling and running small programs on the interpreter through the embedding API.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"

namespace bpfvm::test {

inline isa::Program assemble_or_fail(std::string_view text) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  return std::move(program).value();
}

inline std::shared_ptr<const vm::Executable> compile_or_fail(Vm& vm, std::string_view text,
                                                             const vm::CompileOptions& options = {}) {
  REQUIRE(vm.load(assemble_or_fail(text)).ok());
  auto exe = vm.compile(Engine::interpreter, options);
  INFO((exe ? std::string() : exe.error().to_string()));
  REQUIRE(exe.ok());
  return exe.value();
}

// Runs `text` with r1/r2 = `memory`; the conformance helpers are registered.
inline vm::RunResult run_text(std::string_view text, std::span<std::uint8_t> memory = {},
                              const RunOptions& options = {}) {
  Vm vm;
  REQUIRE(vm.helpers().add_conformance_helpers().ok());
  auto exe = compile_or_fail(vm, text);
  return run(*exe, memory, options);
}

// r0 of a run that must not trap.
inline std::uint64_t r0_of(std::string_view text, std::span<std::uint8_t> memory = {}) {
  const vm::RunResult result = run_text(text, memory);
  INFO((result.trap ? result.trap->message() : std::string()));
  REQUIRE_FALSE(result.trap.has_value());
  return result.r0;
}

}  // namespace bpfvm::test
