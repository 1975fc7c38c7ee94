#include "api/bpfvm.hpp"

#include <array>
#include <mutex>

#include "api/entry_contract.hpp"
#include "isa/isa.hpp"
#include "vm/interpreter.hpp"
#ifdef BPFVM_JIT_X64
#include "jit/x64/backend.hpp"
#endif
#ifdef BPFVM_JIT_A64
#include "jit/a64/backend.hpp"
#endif

namespace bpfvm {
namespace {

constexpr std::size_t engine_count = 3;

Result<std::unique_ptr<vm::Executable>> interpreter_factory(const isa::Program& program,
                                                            std::shared_ptr<const vm::HelperRegistry> helpers,
                                                            const vm::CompileOptions& options) {
  return vm::make_interpreter(program, std::move(helpers), options);
}

// Each JIT is built only for the host it emits code for (jit/CMakeLists.txt defines the macro).
#ifdef BPFVM_JIT_X64
constexpr EngineFactory jit_x64_factory = jit::x64::compile;
#else
constexpr EngineFactory jit_x64_factory = nullptr;
#endif
#ifdef BPFVM_JIT_A64
constexpr EngineFactory jit_a64_factory = jit::a64::compile;
#else
constexpr EngineFactory jit_a64_factory = nullptr;
#endif

struct Factories {
  std::mutex mutex;
  std::array<EngineFactory, engine_count> table{interpreter_factory, jit_x64_factory, jit_a64_factory};
};

Factories& factories() {
  static Factories f;
  return f;
}

vm::RunResult run_in(const vm::Executable& exe, vm::RunContext& ctx, const RunOptions& options) {
  for (const vm::Region& r : options.regions) ctx.add_region(r);
  ctx.set_budget(options.budget);
  ctx.set_max_call_depth(options.max_call_depth);
  ctx.set_user(options.user);
  if (options.trace) ctx.set_trace(options.trace);
  return exe.run(ctx);
}

// A compiled program bound to its maps: each run sees the maps' regions and the print sink.
class WithMaps final : public vm::Executable {
 public:
  WithMaps(std::unique_ptr<vm::Executable> inner, std::shared_ptr<const vm::MapSet> maps,
           std::function<void(std::string_view)> print)
      : inner_(std::move(inner)), maps_(std::move(maps)), print_(std::move(print)) {}

  vm::RunResult run(vm::RunContext& ctx) const override {
    maps_->attach(ctx);
    if (print_ && !ctx.print()) ctx.set_print(print_);
    return inner_->run(ctx);
  }

 private:
  std::unique_ptr<vm::Executable> inner_;
  std::shared_ptr<const vm::MapSet> maps_;
  std::function<void(std::string_view)> print_;
};

// A compiled verified program: runs only when the entry is what the verifier assumed.
class VerifiedEntry final : public vm::Executable {
 public:
  VerifiedEntry(std::shared_ptr<const vm::Executable> inner, EntryContract contract)
      : inner_(std::move(inner)), contract_(std::move(contract)) {}

  vm::RunResult run(vm::RunContext& ctx) const override {
    std::string mismatch = contract_.mismatch(ctx);
    if (mismatch.empty()) return inner_->run(ctx);
    vm::RunResult result;
    result.trap = vm::Trap{vm::TrapKind::entry_mismatch, 0, 0, 0, {}, std::move(mismatch)};
    return result;
  }

 private:
  std::shared_ptr<const vm::Executable> inner_;
  EntryContract contract_;
};

}  // namespace

std::string_view to_string(Engine engine) {
  switch (engine) {
    case Engine::interpreter: return "interp";
    case Engine::jit_x64: return "jit-x64";
    case Engine::jit_a64: return "jit-a64";
  }
  return "?";
}

std::optional<Engine> engine_from_string(std::string_view name) {
  for (Engine e : {Engine::interpreter, Engine::jit_x64, Engine::jit_a64}) {
    if (to_string(e) == name) return e;
  }
  return std::nullopt;
}

void register_engine(Engine engine, EngineFactory factory) {
  std::lock_guard lock(factories().mutex);
  factories().table[static_cast<std::size_t>(engine)] = factory;
}

bool engine_available(Engine engine) {
  std::lock_guard lock(factories().mutex);
  return factories().table[static_cast<std::size_t>(engine)] != nullptr;
}

vm::RunResult run(const vm::Executable& exe, std::span<std::uint8_t> memory, const RunOptions& options) {
  vm::RunContext ctx;
  const auto address = memory.empty() ? std::uint64_t{0} : reinterpret_cast<std::uint64_t>(memory.data());
  if (!memory.empty()) ctx.add_region({address, memory.size(), vm::Access::read_write, "input"});
  ctx.set_args({address, memory.size(), 0, 0, 0});
  return run_in(exe, ctx, options);
}

vm::RunResult run_with_context(const vm::Executable& exe, void* context, std::size_t size, vm::Access access,
                               const RunOptions& options) {
  vm::RunContext ctx;
  const auto address = reinterpret_cast<std::uint64_t>(context);
  if (context != nullptr && size > 0) ctx.add_region({address, size, access, "context"});
  ctx.set_args({address, 0, 0, 0, 0});
  return run_in(exe, ctx, options);
}

vm::RunResult run_packet(const vm::Executable& exe, vm::PacketContext& packet, const RunOptions& options) {
  vm::RunContext ctx;
  packet.attach(ctx);
  return run_in(exe, ctx, options);
}

Status Vm::create_maps() {
  if (!loaded_) return Error("create_maps: no program loaded");
  auto addresses = maps_->bind(program_);
  if (!addresses) return addresses.error();
  return {};
}

Status Vm::load(isa::Program program) {
  program_ = std::move(program);
  loaded_ = true;
  return {};
}

Status Vm::load_file(const std::string& path, const isa::LoadOptions& options) {
  Result<isa::Program> program = isa::load_file(path, options);
  if (!program) return program.error();
  return load(std::move(program).value());
}

Result<std::shared_ptr<const vm::Executable>> Vm::compile(Engine engine,
                                                          const vm::CompileOptions& options) const {
  if (!loaded_) return Error("compile: no program loaded");
  if (!options.proven_accesses.empty())
    return Error("compile: unchecked accesses need a program the verifier accepted (compile it as verified)");
  if (!options.enforce_budget)
    return Error(
        "compile: only a program the verifier accepted may run without a budget (compile it as verified)");
  return compile_program(program_, engine, options);
}

verifier::VerifyResult Vm::verify(const verifier::Environment& env, const verifier::Options& options) const {
  return verifier::verify(program_, env, options);
}

Result<std::shared_ptr<const vm::Executable>> Vm::compile(Engine engine,
                                                          const verifier::VerifiedProgram& verified,
                                                          const vm::CompileOptions& options) const {
  if (!options.proven_accesses.empty() || !options.maps.empty())
    return Error(
        "compile: a verified program takes its map addresses and proofs from this Vm and the verifier");
  auto contract = EntryContract::of(verified.environment());
  if (!contract) return contract.error();
  const isa::Program& program = verified.program();
  vm::CompileOptions proven = options;
  proven.proven_accesses = verified.proven_accesses();
  auto exe = compile_program(program, engine, std::move(proven));
  if (!exe) return exe.error();
  return std::shared_ptr<const vm::Executable>(
      std::make_shared<VerifiedEntry>(std::move(exe).value(), std::move(contract).value()));
}

Result<std::shared_ptr<const vm::Executable>> Vm::compile_program(const isa::Program& program, Engine engine,
                                                                  vm::CompileOptions options) const {
  EngineFactory factory = nullptr;
  {
    std::lock_guard lock(factories().mutex);
    factory = factories().table[static_cast<std::size_t>(engine)];
  }
  if (factory == nullptr)
    return Error("engine " + std::string(to_string(engine)) + " is not available in this build");
  const bool bind_maps = options.maps.empty() && !program.maps.empty();
  if (bind_maps) {
    auto addresses = maps_->bind(program);
    if (!addresses) return addresses.error();
    options.maps = std::move(addresses).value();
  }
  auto exe = factory(program, std::make_shared<const vm::HelperRegistry>(helpers_), options);
  if (!exe) {
    Error e = exe.error();
    if (e.section.empty()) e.section = program.name;
    return e;
  }
  if (bind_maps || print_)
    return std::shared_ptr<const vm::Executable>(
        std::make_shared<WithMaps>(std::move(exe).value(), maps_, print_));
  return std::shared_ptr<const vm::Executable>(std::move(exe).value());
}

}  // namespace bpfvm
