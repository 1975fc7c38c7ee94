#include "conformance/engines.hpp"

#include <vector>

#include "api/bpfvm.hpp"

namespace bpfvm::conformance {
namespace {

// Every engine the API knows; the ones this build has are found with engine_available().
constexpr Engine all_engines[] = {Engine::interpreter, Engine::jit_x64, Engine::jit_a64};

#if defined(__x86_64__)
constexpr Engine host_jit = Engine::jit_x64;
#elif defined(__aarch64__)
constexpr Engine host_jit = Engine::jit_a64;
#endif

std::optional<Engine> engine_by_name(std::string_view name) {
#if defined(__x86_64__) || defined(__aarch64__)
  if (name == "jit") return host_jit;  // the JIT for the machine we run on
#endif
  return engine_from_string(name);
}

}  // namespace

std::vector<std::string_view> engine_names() {
  std::vector<std::string_view> names;
  for (auto e : all_engines)
    if (engine_available(e)) names.push_back(to_string(e));
#if defined(__x86_64__) || defined(__aarch64__)
  if (engine_available(host_jit)) names.push_back("jit");
#endif
  return names;
}

RunOutcome run_program(const isa::Program& program, std::span<std::uint8_t> memory,
                       const RunSettings& settings) {
  RunOutcome out;
  auto engine = engine_by_name(settings.engine);
  if (!engine || !engine_available(*engine)) {
    out.error = "unknown engine '" + settings.engine + "'";
    return out;
  }
  Vm vm;
  if (auto s = vm.load(program); !s) {
    out.error = s.error().to_string();
    return out;
  }
  if (auto s = vm.helpers().add_conformance_helpers(); !s) {
    out.error = s.error().to_string();
    return out;
  }
  Result<std::shared_ptr<const vm::Executable>> exe = Error("not compiled");
  if (settings.verified) {
    auto verdict = vm.verify(verifier::raw_environment(memory.size()));
    if (!verdict.accepted()) {
      out.error = "rejected by the verifier: " + verdict.diagnostic->to_string();
      return out;
    }
    vm::CompileOptions options;
    options.enforce_budget = !settings.no_budget;
    exe = vm.compile(*engine, *verdict.program, options);
  } else {
    exe = vm.compile(*engine);
  }
  if (!exe) {
    out.error = exe.error().to_string();
    return out;
  }
  RunOptions options;
  options.budget = settings.budget;
  options.trace = settings.trace;
  auto result = run(**exe, memory, options);
  out.r0 = result.r0;
  out.regs = result.regs;
  if (result.trap) {
    const auto& t = *result.trap;
    TrapInfo info;
    info.kind = to_string(t.kind);
    info.pc = t.pc;
    if (t.kind == vm::TrapKind::out_of_bounds || t.kind == vm::TrapKind::permission) {
      info.address = t.address;
      info.size = t.size;
    }
    info.region = t.region;
    info.message = t.message();
    out.trap = std::move(info);
  }
  return out;
}

Execution run_on_engine(const RunSettings& settings, const isa::Program& program,
                        std::span<const std::uint8_t> memory) {
  std::vector<std::uint8_t> copy(memory.begin(), memory.end());
  auto outcome = run_program(program, copy, settings);
  Execution e;
  if (!outcome.error.empty()) {
    e.error = outcome.error;
  } else if (outcome.trap) {
    e.error = outcome.trap->message;
  } else {
    e.ok = true;
    e.r0 = outcome.r0;
  }
  return e;
}

Executor engine_executor(RunSettings settings) {
  return [settings = std::move(settings)](const DataFile& data) {
    isa::Program program;
    program.name = data.name;
    program.insns = data.insns;
    return run_on_engine(settings, program, data.memory);
  };
}

}  // namespace bpfvm::conformance
