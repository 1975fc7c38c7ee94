#include "jit/a64/backend.hpp"

#include <sys/auxv.h>

#include <mutex>
#include <utility>

#include "jit/a64/codegen.hpp"
#include "jit/a64/runtime_calls.hpp"
#include "jit/a64/state.hpp"
#include "jit/executable_memory.hpp"
#include "vm/interpreter.hpp"

namespace bpfvm::jit::a64 {
namespace {

// Each bpf-to-bpf call level takes 48 bytes of host stack (the saved link register, r6-r9);
// deeper limits than this run on the interpreter rather than risk the host stack.
constexpr int max_jit_call_depth = 4096;

class JitExecutable final : public vm::Executable {
 public:
  JitExecutable(ExecutableMemory code, std::uint64_t blinding_key,
                std::shared_ptr<const vm::HelperRegistry> helpers, isa::Program program,
                vm::CompileOptions options)
      : code_(std::move(code)),
        blinding_key_(blinding_key),
        helpers_(std::move(helpers)),
        program_(std::move(program)),
        options_(std::move(options)) {}

  vm::RunResult run(vm::RunContext& ctx) const override {
    if (ctx.trace() || ctx.max_call_depth() > max_jit_call_depth) return run_interpreted(ctx);
    return vm::follow_tail_calls(ctx, run_once(ctx));
  }

 private:
  // Tracing and call depths past the JIT's run on the interpreter, built on first use (most
  // programs never need it, and building it costs about as much as the JIT's compile).
  vm::RunResult run_interpreted(vm::RunContext& ctx) const {
    std::call_once(interpreter_once_, [&] {
      auto exe = vm::make_interpreter(program_, helpers_, options_);
      if (exe)
        interpreter_ = std::move(exe).value();
      else
        interpreter_error_ = exe.error().to_string();
    });
    if (interpreter_) return interpreter_->run(ctx);
    // Not expected: the compile validated the same program with the same options.
    vm::RunResult result;
    result.trap = vm::Trap{vm::TrapKind::helper_error, 0, 0, 0, {}, interpreter_error_};
    return result;
  }

  // One program, up to its exit, a trap, or a tail call a helper requested.
  vm::RunResult run_once(vm::RunContext& ctx) const {
    const std::span<std::uint8_t> stack = ctx.prepare_run();
    const auto stack_top = reinterpret_cast<std::uint64_t>(stack.data() + stack.size());

    vm::Trap trap;
    State state{};
    for (int i = 0; i < 5; ++i) state.regs[i + 1] = ctx.args()[static_cast<std::size_t>(i)];
    state.regs[isa::frame_pointer] = stack_top;
    state.budget_left = ctx.budget();
    state.depth_left = static_cast<std::uint64_t>(ctx.max_call_depth() - 1);
    state.stack_hi = stack_top;
    state.ctx = &ctx;
    state.helpers = helpers_.get();
    state.trap = &trap;
    state.blinding_key = blinding_key_;
    code_.as<void (*)(State*)>()(&state);

    vm::RunResult result;
    for (int i = 0; i < vm::register_count; ++i) result.regs[static_cast<std::size_t>(i)] = state.regs[i];
    result.executed = ctx.budget() - state.budget_left;
    switch (static_cast<TrapCode>(state.trap_code)) {
      case TrapCode::none:
      case TrapCode::tail_call: result.r0 = state.regs[0]; return result;
      case TrapCode::recorded: break;
      case TrapCode::budget: trap = vm::Trap{vm::TrapKind::budget_exhausted, 0, 0, 0, {}, {}}; break;
      case TrapCode::call_depth: trap = vm::Trap{vm::TrapKind::call_depth, 0, 0, 0, {}, {}}; break;
    }
    trap.pc = state.trap_pc;
    result.trap = std::move(trap);
    return result;
  }

  ExecutableMemory code_;
  std::uint64_t blinding_key_;
  std::shared_ptr<const vm::HelperRegistry> helpers_;
  isa::Program program_;
  vm::CompileOptions options_;
  mutable std::once_flag interpreter_once_;
  mutable std::unique_ptr<vm::Executable> interpreter_;
  mutable std::string interpreter_error_;
};

}  // namespace

Target host_target() {
  constexpr unsigned long hwcap_atomics = 1ul << 8;  // HWCAP_ATOMICS (asm/hwcap.h)
  Target target;
  target.lse = (getauxval(AT_HWCAP) & hwcap_atomics) != 0;
  return target;
}

Result<std::unique_ptr<vm::Executable>> compile(const isa::Program& program,
                                                std::shared_ptr<const vm::HelperRegistry> helpers,
                                                const vm::CompileOptions& options) {
  return compile_for(program, std::move(helpers), options, host_target());
}

Result<std::unique_ptr<vm::Executable>> compile_for(const isa::Program& program,
                                                    std::shared_ptr<const vm::HelperRegistry> helpers,
                                                    const vm::CompileOptions& options, const Target& target) {
  if (!helpers) helpers = std::make_shared<const vm::HelperRegistry>();
  auto generated = generate(program, *helpers, options, RuntimeCalls::host(), target);
  if (!generated) return generated.error();
  auto memory = ExecutableMemory::create(generated->code);
  if (!memory) return memory.error();
  return std::unique_ptr<vm::Executable>(
      std::make_unique<JitExecutable>(std::move(memory).value(), generated->blinding_key, std::move(helpers),
                                      isa::instructions_only(program), options));
}

}  // namespace bpfvm::jit::a64
