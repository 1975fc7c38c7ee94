// bpfvm's C++ embedding API: load a program, register helpers, compile it for an engine and
// run it on input memory or a context pointer.
//
// Threads: a Vm is configured (load, helpers) from one thread. compile() returns an immutable
// Executable that any number of threads may run at once, each with its own RunContext (the
// run() functions below make one per call). Helpers must be safe to call concurrently then.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/load.hpp"
#include "isa/program.hpp"
#include "verifier/verifier.hpp"
#include "vm/context.hpp"
#include "vm/helpers.hpp"
#include "vm/linux_helpers.hpp"
#include "vm/maps.hpp"
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
// Runs with r1 = the packet context (set_packet() first); afterwards packet.packet() is the
// packet as the program left it.
vm::RunResult run_packet(const vm::Executable& exe, vm::PacketContext& packet,
                         const RunOptions& options = {});

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

  // The Linux helpers (vm/linux_helpers.hpp): maps, time, random, trace_printk, tail calls,
  // ring buffers, xdp_adjust_head/tail.
  Status add_linux_helpers() { return vm::add_linux_helpers(helpers_); }
  // Where trace_printk's lines go (by default nowhere).
  void set_print(std::function<void(std::string_view)> print) { print_ = std::move(print); }

  // The maps the program's lddw map references use. compile() creates the program's maps in
  // this set (finding maps of the same name that are already there), and every run of the
  // compiled program can reach them. The Vm starts with a set of its own; programs that must
  // share maps (one object's programs, tail calls) share one set through use_maps().
  const std::shared_ptr<vm::MapSet>& maps() const { return maps_; }
  void use_maps(std::shared_ptr<vm::MapSet> maps) { maps_ = std::move(maps); }
  // Creates the program's maps now, to fill them before the first compile.
  Status create_maps();

  // Compiles for `engine`; every access is checked at run time. When options.maps is empty the
  // program's maps are created in maps() and the Executable attaches that set (and the print
  // sink) to each run. options.proven_accesses must be empty: only the verified compile sets it.
  Result<std::shared_ptr<const vm::Executable>> compile(Engine engine = Engine::interpreter,
                                                        const vm::CompileOptions& options = {}) const;

  // Verifies the loaded program for `env`; an accepted one comes back as result.program.
  verifier::VerifyResult verify(const verifier::Environment& env,
                                const verifier::Options& options = {}) const;

  // Compiles a program the verifier accepted, with this Vm's helpers and maps (options.maps
  // must be empty): the loads, stores and atomics it proved in bounds run without checks. So
  // that the proof holds, each run first checks that its entry is what the verifier assumed
  // (api/entry_contract.hpp: raw memory of the verified size, or a context of the
  // environment's layout, on a vm::PacketContext of that type for packet programs) and ends at
  // once with an entry_mismatch trap otherwise. The budget, the call depth and legacy packet
  // loads are enforced as for any program; with options.enforce_budget = false the run's budget
  // is not (the verifier proved every loop ends) and no instruction is counted: the fastest
  // form, bounded only by that proof, whose runs report executed = 0. Helpers registered here must do what the
  // environment's prototypes say (the verifier trusts them).
  Result<std::shared_ptr<const vm::Executable>> compile(Engine engine,
                                                        const verifier::VerifiedProgram& verified,
                                                        const vm::CompileOptions& options = {}) const;

 private:
  Result<std::shared_ptr<const vm::Executable>> compile_program(const isa::Program& program, Engine engine,
                                                                vm::CompileOptions options) const;

  isa::Program program_;
  bool loaded_ = false;
  vm::HelperRegistry helpers_;
  std::function<void(std::string_view)> print_;
  std::shared_ptr<vm::MapSet> maps_ = std::make_shared<vm::MapSet>();
};

}  // namespace bpfvm
