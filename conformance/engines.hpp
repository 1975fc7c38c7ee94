// Running a program in this process on one of bpfvm's engines, by name.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conformance/runner.hpp"
#include "isa/program.hpp"

namespace bpfvm::conformance {

// The engines this build can run ("interp", and the JITs when they are built).
std::vector<std::string_view> engine_names();

// Loads `program` on `engine`, gives it a writable copy of `memory` (r1 = its address or 0
// when empty, r2 = its size), a helper 5 that returns its first argument, and runs it with an
// instruction budget. A rejected program or a trap is an Execution with ok = false.
Execution run_on_engine(std::string_view engine, const isa::Program& program,
                        std::span<const std::uint8_t> memory, std::uint64_t budget);

// An Executor for the runner that runs each test on `engine`.
Executor engine_executor(std::string engine, std::uint64_t budget);

inline constexpr std::uint64_t default_budget = 10'000'000;

}  // namespace bpfvm::conformance
