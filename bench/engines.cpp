#include "bench/engines.hpp"

#include <limits>
#include <map>
#include <string>
#include <utility>

#include "api/bpfvm.hpp"

namespace bpfvm::bench {
namespace {

// Bench programs run long: the budget is there to stop a broken engine, not to measure.
constexpr std::uint64_t bench_budget = std::numeric_limits<std::uint64_t>::max() / 2;

class ApiLoaded final : public Loaded {
 public:
  explicit ApiLoaded(std::shared_ptr<const vm::Executable> exe) : exe_(std::move(exe)) {}
  EngineRun run(std::span<std::uint8_t> mem) override {
    RunOptions options;
    options.budget = bench_budget;
    auto result = bpfvm::run(*exe_, mem, options);
    EngineRun out;
    out.r0 = result.r0;
    out.executed = result.executed;
    if (result.trap) out.trap = result.trap->message();
    return out;
  }

 private:
  std::shared_ptr<const vm::Executable> exe_;
};

// The verifier's verdict on a bench program for its input size, computed once for all the
// verified engines (the driver runs one program at a time, from one thread).
const verifier::VerifyResult& verdict_for(const isa::Program& program, std::size_t input_bytes) {
  static std::map<std::pair<std::string, std::size_t>, verifier::VerifyResult> verdicts;
  auto key = std::make_pair(program.name, input_bytes);
  auto it = verdicts.find(key);
  if (it == verdicts.end())
    it = verdicts.emplace(key, verifier::verify(program, verifier::raw_environment(input_bytes))).first;
  return it->second;
}

// How an engine runs a program: checked, verified (with the budget), or verified without the
// budget (no instruction counted).
enum class Form { checked, verified, verified_unbounded };

Engine api_engine(bpfvm::Engine which, Form form) {
  const std::string name(to_string(which));
  const bool verified = form != Form::checked;
  auto load = [which, verified, form](const isa::Program& program,
                                      std::size_t input_bytes) -> Result<std::unique_ptr<Loaded>> {
    Vm vm;
    if (auto s = vm.load(program); !s) return s.error();
    Result<std::shared_ptr<const vm::Executable>> exe = Error("not compiled");
    if (verified) {
      const verifier::VerifyResult& verdict = verdict_for(program, input_bytes);
      if (!verdict.accepted()) return verdict.diagnostic->to_error();
      vm::CompileOptions options;
      options.enforce_budget = form != Form::verified_unbounded;
      exe = vm.compile(which, *verdict.program, options);
    } else {
      exe = vm.compile(which);
    }
    if (!exe) return exe.error();
    return std::unique_ptr<Loaded>(std::make_unique<ApiLoaded>(std::move(*exe)));
  };
  if (!verified) return Engine{name, load, "", nullptr};
  auto rejection = [](const isa::Program& program, std::size_t input_bytes) {
    const verifier::VerifyResult& verdict = verdict_for(program, input_bytes);
    return verdict.accepted() ? std::string() : verdict.diagnostic->to_error().to_string();
  };
  return Engine{name + (form == Form::verified ? "/v" : "/vu"), load, name, rejection};
}

}  // namespace

const std::vector<Engine>& engines() {
  static const std::vector<Engine> all = [] {
    std::vector<Engine> list;
    for (auto which : {bpfvm::Engine::interpreter, bpfvm::Engine::jit_x64, bpfvm::Engine::jit_a64})
      if (engine_available(which)) {
        list.push_back(api_engine(which, Form::checked));
        list.push_back(api_engine(which, Form::verified));
        list.push_back(api_engine(which, Form::verified_unbounded));
      }
    return list;
  }();
  return all;
}

}  // namespace bpfvm::bench
