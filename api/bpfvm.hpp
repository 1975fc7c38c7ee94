// bpfvm's C++ embedding API: load a program, register helpers, compile it for an engine and
// run it on input memory or a context pointer.
//
// Threads: a Vm is configured (load, helpers) from one thread. compile() returns an immutable
// Executable that any number of threads may run at once, each with its own RunContext (the
// run() functions below make one per call). Helpers must be safe to call concurrently then.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/load.hpp"
#include "isa/program.hpp"
#include "vm/helpers.hpp"
#include "vm/runtime.hpp"

namespace bpfvm {

enum class Engine { interpreter, jit_x64, jit_a64 };
std::string_view to_string(Engine);  // "interp", "jit-x64", "jit-a64"
std::optional<Engine> engine_from_string(std::string_view);

// An engine's compiler. The interpreter's is built in; each JIT registers its own.
using EngineFactory = Result<std::unique_ptr<vm::Executable>> (*)(const isa::Program&,
                                                                  std::shared_ptr<const vm::HelperRegistry>,
                                                                  const vm::CompileOptions&);
void register_engine(Engine engine, EngineFactory factory);
// True when the engine has a factory in this build.
bool engine_available(Engine engine);

struct RunOptions {
  std::uint64_t budget = vm::default_budget;
  int max_call_depth = vm::default_max_call_depth;
  void* user = nullptr;             // RunContext::user() for helpers
  std::vector<vm::Region> regions;  // extra memory beyond the input / context
  vm::TraceFn trace;
};

// Runs with r1 = memory's address (0 when empty) and r2 = its size; the program may read and
// write the memory (region "input").
vm::RunResult run(const vm::Executable& exe, std::span<std::uint8_t> memory, const RunOptions& options = {});
// Runs with r1 = ctx; [ctx, ctx + size) is region "context" with `access`.
vm::RunResult run_with_context(const vm::Executable& exe, void* ctx, std::size_t size,
                               vm::Access access = vm::Access::read_write, const RunOptions& options = {});

class Vm {
 public:
  Vm() = default;

  Status load(isa::Program program);
  // isa::load_file (ELF, raw or assembly).
  Status load_file(const std::string& path, const isa::LoadOptions& options = {});
  const isa::Program& program() const { return program_; }

  // Helpers the program may call. Registered before compile(); a compiled Executable keeps
  // the set it was compiled with.
  vm::HelperRegistry& helpers() { return helpers_; }
  Status add_helper(std::uint32_t id, std::string name, vm::HelperFn fn) {
    return helpers_.add(id, std::move(name), fn);
  }

  Result<std::shared_ptr<const vm::Executable>> compile(Engine engine = Engine::interpreter,
                                                        const vm::CompileOptions& options = {}) const;

 private:
  isa::Program program_;
  bool loaded_ = false;
  vm::HelperRegistry helpers_;
};

}  // namespace bpfvm
