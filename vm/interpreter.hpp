// The interpreter: CPU v4, pre-decoded, dispatched with computed goto; every memory access
// is checked against the run's regions.
#pragma once

#include <memory>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::vm {

// Validates and pre-decodes `program`. Fails (naming the instruction) on forms the runtime
// cannot run: a `call N` the registry lacks, a kfunc call, lddw map kinds without a map
// address, lddw kinds other than imm64 / map_idx / map_idx_value.
// `callx rX` calls the helper whose id rX holds (as the conformance suite's callx.data does).
Result<std::unique_ptr<Executable>> make_interpreter(const isa::Program& program,
                                                     std::shared_ptr<const HelperRegistry> helpers,
                                                     const CompileOptions& options = {});

}  // namespace bpfvm::vm
