#include "bench/engines.hpp"

#include <limits>

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

Engine api_engine(bpfvm::Engine which) {
  return {to_string(which), [which](const isa::Program& program) -> Result<std::unique_ptr<Loaded>> {
            Vm vm;
            if (auto s = vm.load(program); !s) return s.error();
            auto exe = vm.compile(which);
            if (!exe) return exe.error();
            return std::unique_ptr<Loaded>(std::make_unique<ApiLoaded>(std::move(*exe)));
          }};
}

}  // namespace

const std::vector<Engine>& engines() {
  static const std::vector<Engine> all = [] {
    std::vector<Engine> list;
    for (auto which : {bpfvm::Engine::interpreter, bpfvm::Engine::jit_x64, bpfvm::Engine::jit_a64})
      if (engine_available(which)) list.push_back(api_engine(which));
    return list;
  }();
  return all;
}

}  // namespace bpfvm::bench
