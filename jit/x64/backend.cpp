#include "jit/x64/backend.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>

#include "jit/executable_memory.hpp"
#include "jit/lowering/analysis.hpp"
#include "jit/x64/assembler.hpp"
#include "jit/x64/emit.hpp"
#include "jit/x64/state.hpp"
#include "vm/interpreter.hpp"

namespace bpfvm::jit::x64 {
namespace {

constexpr bool allows(vm::Access have, vm::Access need) {
  return (static_cast<unsigned>(have) & static_cast<unsigned>(need)) == static_cast<unsigned>(need);
}

constexpr vm::Access need_of(AccessKind kind) {
  return kind == access_read    ? vm::Access::read
         : kind == access_write ? vm::Access::write
                                : vm::Access::read_write;
}

// The interpreter's region walk (vm/interpreter.cpp check_regions): the first region holding the
// whole access decides; a miss names the region nearest to it, or the stack.
bool check_regions(const JitState& s, std::uint64_t addr, std::uint32_t size, vm::Access need,
                   std::optional<vm::Trap>& trap) {
  const std::uint64_t end = addr + size;
  const vm::Region* near = nullptr;
  for (const vm::Region& r : s.ctx->regions()) {
    if (addr >= r.start && end >= addr && end <= r.start + r.size) {
      if (allows(r.access, need)) return true;
      trap = vm::Trap{vm::TrapKind::permission, 0, addr, size, std::string(r.name), {}};
      return false;
    }
    if (addr >= r.start && addr < r.start + r.size)
      near = &r;
    else if (near == nullptr && end > r.start && addr < r.start)
      near = &r;
  }
  const std::uint64_t stack_lo = s.frame - isa::stack_frame_size;
  if (near == nullptr && addr >= stack_lo - isa::stack_frame_size &&
      addr < s.stack_hi + isa::stack_frame_size) {
    trap = vm::Trap{vm::TrapKind::out_of_bounds, 0, addr, size, "stack", {}};
    return false;
  }
  trap = vm::Trap{
      vm::TrapKind::out_of_bounds, 0, addr, size, near ? std::string(near->name) : std::string(), {}};
  return false;
}

struct Unpacked {
  std::uint32_t pc;
  AccessKind kind;
  std::uint32_t size;
};
Unpacked unpack(std::uint64_t packed) {
  return {static_cast<std::uint32_t>(packed >> 8), static_cast<AccessKind>((packed >> 4) & 15u),
          static_cast<std::uint32_t>(packed & 15u)};
}

std::uint64_t swap_bytes(std::uint64_t v, std::uint32_t size) {
  switch (size) {
    case 1: return v & 0xff;
    case 2: return __builtin_bswap16(static_cast<std::uint16_t>(v));
    case 4: return __builtin_bswap32(static_cast<std::uint32_t>(v));
    default: return __builtin_bswap64(v);
  }
}

}  // namespace

bool check_access(JitState* state, std::uint64_t addr, std::uint64_t packed) {
  const Unpacked u = unpack(packed);
  const std::uint64_t stack_lo = state->frame - isa::stack_frame_size;
  if (addr >= stack_lo && addr + u.size <= state->stack_hi && addr + u.size > addr) return true;
  if (check_regions(*state, addr, u.size, need_of(u.kind), state->run->trap)) return true;
  state->run->trap->pc = u.pc;
  state->trap_kind = static_cast<std::uint64_t>(Exit::memory);
  return false;
}

bool legacy_load(JitState* state, std::uint64_t offset, std::uint64_t packed) {
  const Unpacked u = unpack(packed);
  const auto regions = state->ctx->regions();
  const std::uint64_t addr = (regions.empty() ? 0 : regions[0].start) + offset;
  auto& trap = state->run->trap;
  if (regions.empty() || !check_regions(*state, addr, u.size, vm::Access::read, trap)) {
    if (!trap) trap = vm::Trap{vm::TrapKind::out_of_bounds, 0, addr, u.size, {}, {}};
    trap->pc = u.pc;
    state->trap_kind = static_cast<std::uint64_t>(Exit::memory);
    return false;
  }
  std::uint64_t v = 0;
  std::memcpy(&v, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(addr)), u.size);
  state->legacy_value = swap_bytes(v, u.size);
  return true;
}

vm::HelperFn find_helper(JitState* state, std::uint64_t id) {
  if (id > std::numeric_limits<std::uint32_t>::max()) return nullptr;
  const vm::Helper* h = state->run->helpers->find(static_cast<std::uint32_t>(id));
  return h != nullptr ? h->fn : nullptr;
}

bool helper_failed(JitState* state) {
  return state->ctx->failure().has_value() || state->ctx->tail_call_pending();
}

namespace {

bool host_has_bmi2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("bmi2");
}

class JitExecutable final : public vm::Executable {
 public:
  JitExecutable(ExecutableMemory code, std::vector<PaidAhead> paid_ahead,
                std::vector<BudgetSite> budget_sites, std::uint64_t blinding_key, isa::Program program,
                std::shared_ptr<const vm::HelperRegistry> helpers, vm::CompileOptions options)
      : code_(std::move(code)),
        paid_ahead_(std::move(paid_ahead)),
        budget_sites_(std::move(budget_sites)),
        blinding_key_(blinding_key),
        program_(std::move(program)),
        helpers_(std::move(helpers)),
        options_(std::move(options)) {}

  vm::RunResult run(vm::RunContext& ctx) const override;

 private:
  // One program, up to its exit, a trap, or a tail call a helper requested.
  vm::RunResult run_once(vm::RunContext& ctx) const;
  // The index of the `n`-th instruction (0-based, lddw counting once) from `first` (the program
  // was validated by the compile, so every slot stepped on decodes).
  std::size_t nth_of_block(std::uint32_t first, std::uint64_t n) const {
    std::size_t pc = first;
    for (; n > 0; --n) pc += static_cast<std::size_t>(isa::slot_count(*isa::decode(program_.insns[pc])));
    return pc;
  }

  ExecutableMemory code_;
  // Instructions paid for but not run when a trap comes at pc (Emitted::paid_ahead).
  std::uint64_t paid_ahead(std::size_t pc) const {
    const auto it = std::lower_bound(paid_ahead_.begin(), paid_ahead_.end(), pc,
                                     [](const PaidAhead& p, std::size_t at) { return p.pc < at; });
    return it != paid_ahead_.end() && it->pc == pc ? it->count : 0;
  }

  std::vector<PaidAhead> paid_ahead_;
  std::vector<BudgetSite> budget_sites_;
  std::uint64_t blinding_key_;
  // Tracing runs on the interpreter (the JIT has no per-instruction hook), built on first use.
  isa::Program program_;
  std::shared_ptr<const vm::HelperRegistry> helpers_;
  vm::CompileOptions options_;
  mutable std::once_flag tracer_once_;
  mutable std::unique_ptr<vm::Executable> tracer_;
};

void set_fast_region(JitState& s, std::span<const vm::Region> regions) {
  for (auto& f : s.fast) {
    f.start = std::numeric_limits<std::uint64_t>::max();
    f.end = 0;
    for (auto& l : f.last) l = 0;
  }
  if (regions.empty()) return;
  // Spans are at most 64 KiB + 8 (16-bit offsets): a region below that address (or wrapping
  // around) is left to the slow path, so end - span cannot wrap.
  const vm::Region& r = regions[0];
  if (r.start < 0x20000 || r.start + r.size < r.start) return;
  for (unsigned k = 0; k < 3; ++k) {
    if (!allows(r.access, need_of(static_cast<AccessKind>(k)))) continue;
    s.fast[k].start = r.start;
    s.fast[k].end = r.start + r.size;
    for (unsigned i = 0; i < 4; ++i) {
      const std::uint64_t bytes = 1u << i;
      s.fast[k].last[i] = r.size >= bytes ? r.start + r.size - bytes : 0;
    }
  }
}

vm::RunResult JitExecutable::run(vm::RunContext& ctx) const {
  if (ctx.trace()) {
    std::call_once(tracer_once_, [&] {
      auto exe = vm::make_interpreter(program_, helpers_, options_);
      if (exe) tracer_ = std::move(exe).value();
    });
    if (tracer_) return tracer_->run(ctx);
  }
  return vm::follow_tail_calls(ctx, run_once(ctx));
}

vm::RunResult JitExecutable::run_once(vm::RunContext& ctx) const {
  const std::span<std::uint8_t> stack = ctx.prepare_run();
  const auto top = reinterpret_cast<std::uint64_t>(stack.data() + stack.size());
  Run run{&ctx, helpers_.get(), std::nullopt};
  JitState s{};
  for (std::size_t i = 0; i < 5; ++i) s.args[i] = ctx.args()[i];
  s.frame_top = top;
  s.budget = ctx.budget();
  s.lowest_frame = top - static_cast<std::uint64_t>(ctx.max_call_depth() - 1) * isa::stack_frame_size;
  s.frame = top;
  s.stack_hi = top;
  set_fast_region(s, ctx.regions());
  s.ctx = &ctx;
  s.run = &run;
  s.blinding_key = blinding_key_;

  code_.as<std::uint64_t (*)(JitState*)>()(&s);

  vm::RunResult result;
  std::copy(std::begin(s.regs), std::end(s.regs), result.regs.begin());
  const std::uint64_t budget = ctx.budget();
  auto kind = static_cast<Exit>(s.trap_kind);
  if (kind == Exit::budget_site) {
    // The check that failed had subtracted its count and its stub does not give it back.
    const auto ret =
        static_cast<std::uint32_t>(s.trap_address - reinterpret_cast<std::uint64_t>(code_.entry()));
    const auto site = std::lower_bound(budget_sites_.begin(), budget_sites_.end(), ret,
                                       [](const BudgetSite& b, std::uint32_t r) { return b.ret < r; });
    s.budget += site->count;
    s.trap_pc = site->pc;
    kind = Exit::budget;
  }
  if (kind == Exit::normal) {
    result.r0 = s.regs[0];
    result.executed = budget - s.budget;
    return result;
  }
  if (kind == Exit::budget) {
    const std::size_t pc = nth_of_block(static_cast<std::uint32_t>(s.trap_pc), s.budget);
    result.trap = vm::Trap{vm::TrapKind::budget_exhausted, pc, 0, 0, {}, {}};
    result.executed = budget;
    return result;
  }
  if (kind == Exit::helper_error && !ctx.failure()) {
    // A tail call: this program ends after the call, as at an exit.
    result.r0 = s.regs[0];
    result.executed = budget - s.budget - paid_ahead(s.trap_pc);
    return result;
  }
  vm::Trap trap;
  switch (kind) {
    case Exit::memory: trap = std::move(*run.trap); break;
    case Exit::call_depth: trap.kind = vm::TrapKind::call_depth; break;
    case Exit::bad_call_target:
      trap.kind = vm::TrapKind::bad_call_target;
      trap.address = s.trap_address;
      break;
    case Exit::helper_error:
      trap.kind = vm::TrapKind::helper_error;
      trap.detail = ctx.failure().value_or(std::string());
      break;
    default: break;
  }
  if (kind != Exit::memory) trap.pc = s.trap_pc;
  // The trapping segment paid for the instructions after the trap too.
  result.executed = budget - s.budget - paid_ahead(trap.pc);
  result.trap = std::move(trap);
  return result;
}

struct Compiled {
  Emitted emitted;
  std::uint64_t key = 0;
};

// The analysis is only needed while compiling: one per thread, refilled each time, so its
// per-instruction tables are not allocated and faulted in again per compile.
lowering::Analysis& thread_analysis() {
  thread_local lowering::Analysis analysis;
  return analysis;
}

// The per-thread buffers (the analysis, the emitter's workspace: about 100 bytes per
// instruction) are kept after programs up to this size; a larger program's are given back when
// its compile ends, so a thread does not hold on to them.
constexpr std::size_t kept_buffers_max_insns = std::size_t{1} << 16;
struct ReleaseLargeBuffers {
  const isa::Program& program;
  ~ReleaseLargeBuffers() {
    if (program.insns.size() <= kept_buffers_max_insns) return;
    thread_analysis() = lowering::Analysis{};
    release_workspace();
  }
};

Result<Compiled> build(const isa::Program& program, const vm::HelperRegistry& helpers,
                       const vm::CompileOptions& options) {
  lowering::Analysis& analysis = thread_analysis();
  if (Status s = lowering::analyze(program, helpers, options, analysis); !s) return s.error();
  Compiled c;
  if (options.blind_constants) {
    std::random_device rd;
    while (c.key == 0) c.key = (std::uint64_t{rd()} << 32) | rd();
  }
  static const bool bmi2 = host_has_bmi2();
  auto emitted = emit(analysis, EmitOptions{bmi2, c.key, options.enforce_budget});
  if (!emitted) return emitted.error();
  c.emitted = std::move(emitted).value();
  return c;
}

}  // namespace

Result<std::unique_ptr<vm::Executable>> compile(const isa::Program& program,
                                                std::shared_ptr<const vm::HelperRegistry> helpers,
                                                const vm::CompileOptions& options) {
  if (!helpers) helpers = std::make_shared<const vm::HelperRegistry>();
  const ReleaseLargeBuffers release{program};
  auto c = build(program, *helpers, options);
  if (!c) return c.error();
  auto code = ExecutableMemory::create(c->emitted.code);
  if (!code) return code.error();
  return std::unique_ptr<vm::Executable>(std::make_unique<JitExecutable>(
      std::move(code).value(), std::move(c->emitted.paid_ahead), std::move(c->emitted.budget_sites), c->key,
      isa::instructions_only(program), std::move(helpers), options));
}

Result<Listing> listing(const isa::Program& program, std::shared_ptr<const vm::HelperRegistry> helpers,
                        const vm::CompileOptions& options) {
  if (!helpers) helpers = std::make_shared<const vm::HelperRegistry>();
  const ReleaseLargeBuffers release{program};
  auto c = build(program, *helpers, options);
  if (!c) return c.error();
  const Emitted& e = c->emitted;
  return Listing{{e.code.begin(), e.code.end()}, {e.insn_offset.begin(), e.insn_offset.end()}, e.body_end};
}

}  // namespace bpfvm::jit::x64
