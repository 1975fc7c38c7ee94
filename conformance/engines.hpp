// Running a program in this process on one of bpfvm's engines, by name: the one place where
// the conformance runner, its plugin and `bpfvm run` meet the embedding API.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/runner.hpp"
#include "isa/program.hpp"

namespace bpfvm::conformance {

// The engines this build can run ("interp", and the JITs when they are built).
std::vector<std::string_view> engine_names();

inline constexpr std::uint64_t default_budget = 10'000'000;

struct TrapInfo {
  std::string kind;
  std::uint64_t pc = 0;
  std::optional<std::uint64_t> address;  // for memory traps
  std::uint32_t size = 0;                // access size, for memory traps
  std::string region;                    // the region missed or violated, when known
  std::string message;                   // the whole trap as one sentence
};

// Called before each executed instruction with its index and the registers r0..r10.
using TraceHook = std::function<void(std::size_t pc, const std::array<std::uint64_t, 11>& regs)>;

struct RunSettings {
  std::string engine = "interp";
  std::uint64_t budget = default_budget;
  TraceHook trace;  // empty: no trace
  // Verify first (raw, the memory's exact size) and run the verified form, the proven accesses
  // unchecked; a rejection is an error.
  bool verified = false;
  // With verified: no instruction counted (vm::CompileOptions::enforce_budget off).
  bool no_budget = false;
};

struct RunOutcome {
  std::string error;  // the engine refused the program (or the engine is unknown)
  std::uint64_t r0 = 0;
  std::optional<TrapInfo> trap;
  std::array<std::uint64_t, 11> regs{};  // the registers at exit or at the trap
};

// Runs `program` with r1 = `memory`'s address (0 when empty) and r2 = its size; the program may
// write to it. Helper 5 returns its first argument (the suite's callx and unwind tests).
RunOutcome run_program(const isa::Program& program, std::span<std::uint8_t> memory,
                       const RunSettings& settings);

// run_program on a copy of `memory`, as an Execution: a refusal or a trap is ok = false.
Execution run_on_engine(const RunSettings& settings, const isa::Program& program,
                        std::span<const std::uint8_t> memory);

// An Executor for the runner that runs each test as `settings` say.
Executor engine_executor(RunSettings settings);

}  // namespace bpfvm::conformance
