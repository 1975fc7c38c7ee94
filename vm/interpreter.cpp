#include "vm/interpreter.hpp"

#include <array>
#include <bit>
#include <climits>
#include <cstring>
#include <limits>
#include <type_traits>

#include "isa/validate.hpp"

namespace bpfvm::vm {
namespace {

using isa::Kind;
using isa::Op;
using isa::Operation;
using isa::Source;

// One pre-decoded instruction: the handler (the isa::Op) and its operands ready to use.
struct Decoded {
  Op op = Op::exit;
  std::uint8_t dst = 0;
  std::uint8_t src = 0;
  bool proven = false;  // a load, store or atomic the verifier proved in bounds: no check
  std::int16_t off = 0;
  std::uint32_t target = 0;   // jump / call-local target pc
  std::uint64_t imm = 0;      // sign-extended imm, or lddw's 64-bit value
  HelperFn helper = nullptr;  // call N
};

struct Frame {
  const Decoded* ret;
  std::uint64_t saved[4];  // r6..r9
};

// Everything a memory check needs during one run.
struct Memory {
  std::uint64_t stack_lo;  // lowest byte of the deepest live frame
  std::uint64_t stack_hi;  // end of frame 0
  const RunContext* ctx;
};

constexpr bool allows(Access have, Access need) {
  return (static_cast<unsigned>(have) & static_cast<unsigned>(need)) == static_cast<unsigned>(need);
}

// The slow path of a check: the run's regions, then a trap naming the region involved.
[[gnu::noinline]] bool check_regions(const Memory& m, std::uint64_t addr, std::uint32_t size, Access need,
                                     std::optional<Trap>& trap) {
  const std::uint64_t end = addr + size;
  const Region* near = nullptr;
  for (const Region& r : m.ctx->regions()) {
    if (addr >= r.start && end >= addr && end <= r.start + r.size) {
      if (allows(r.access, need)) return true;
      trap = Trap{TrapKind::permission, 0, addr, size, std::string(r.name), {}};
      return false;
    }
    if (addr >= r.start && addr < r.start + r.size)
      near = &r;
    else if (near == nullptr && end > r.start && addr < r.start)
      near = &r;
  }
  if (near == nullptr && addr >= m.stack_lo - isa::stack_frame_size &&
      addr < m.stack_hi + isa::stack_frame_size) {
    trap = Trap{TrapKind::out_of_bounds, 0, addr, size, "stack", {}};
    return false;
  }
  trap = Trap{TrapKind::out_of_bounds, 0, addr, size, near ? std::string(near->name) : std::string(), {}};
  return false;
}

inline bool check(const Memory& m, std::uint64_t addr, std::uint32_t size, Access need,
                  std::optional<Trap>& trap) {
  if (addr >= m.stack_lo && addr + size <= m.stack_hi && addr + size > addr) return true;
  return check_regions(m, addr, size, need, trap);
}

template <typename T>
T load_as(std::uint64_t addr) {
  T v;
  std::memcpy(&v, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(addr)), sizeof v);
  return v;
}
template <typename T>
void store_as(std::uint64_t addr, T v) {
  std::memcpy(reinterpret_cast<void*>(static_cast<std::uintptr_t>(addr)), &v, sizeof v);
}

template <int Width>
using UInt =
    std::conditional_t<Width == 8, std::uint8_t,
                       std::conditional_t<Width == 16, std::uint16_t,
                                          std::conditional_t<Width == 32, std::uint32_t, std::uint64_t>>>;

template <typename U>
U swap_bytes(U v) {
  if constexpr (sizeof(U) == 1)
    return v;
  else if constexpr (sizeof(U) == 2)
    return __builtin_bswap16(v);
  else if constexpr (sizeof(U) == 4)
    return __builtin_bswap32(v);
  else
    return __builtin_bswap64(v);
}

// ALU at one width: U is the unsigned type, S the signed one.
template <Operation O, typename U>
U alu(U a, U b) {
  using S = std::make_signed_t<U>;
  constexpr U mask = sizeof(U) * 8 - 1;
  if constexpr (O == Operation::add)
    return a + b;
  else if constexpr (O == Operation::sub)
    return a - b;
  else if constexpr (O == Operation::mul)
    return static_cast<U>(a * b);
  else if constexpr (O == Operation::div)
    return b == 0 ? 0 : a / b;
  else if constexpr (O == Operation::mod)
    return b == 0 ? a : a % b;
  else if constexpr (O == Operation::sdiv) {
    const S sa = static_cast<S>(a), sb = static_cast<S>(b);
    if (sb == 0) return 0;
    if (sb == -1) return static_cast<U>(U{0} - a);  // INT_MIN / -1 wraps to INT_MIN
    return static_cast<U>(sa / sb);
  } else if constexpr (O == Operation::smod) {
    const S sa = static_cast<S>(a), sb = static_cast<S>(b);
    if (sb == 0) return a;
    if (sb == -1) return 0;
    return static_cast<U>(sa % sb);
  } else if constexpr (O == Operation::bor)
    return a | b;
  else if constexpr (O == Operation::band)
    return a & b;
  else if constexpr (O == Operation::bxor)
    return a ^ b;
  else if constexpr (O == Operation::lsh)
    return static_cast<U>(a << (b & mask));
  else if constexpr (O == Operation::rsh)
    return a >> (b & mask);
  else if constexpr (O == Operation::arsh)
    return static_cast<U>(static_cast<S>(a) >> (b & mask));
  else if constexpr (O == Operation::neg)
    return static_cast<U>(U{0} - a);
  else if constexpr (O == Operation::mov)
    return b;
  else
    static_assert(O == Operation::mov, "not a binary ALU operation");
}

template <Op K>
inline void exec_alu(std::uint64_t* r, const Decoded& d) {
  static constexpr isa::OpInfo I = isa::info(K);
  std::uint64_t& dst = r[d.dst];
  if constexpr (I.operation == Operation::le) {
    dst = static_cast<UInt<I.width>>(dst);  // little-endian host: only truncation
  } else if constexpr (I.operation == Operation::be || I.operation == Operation::bswap) {
    dst = swap_bytes(static_cast<UInt<I.width>>(dst));
  } else if constexpr (I.operation == Operation::movsx) {
    using From = std::make_signed_t<UInt<I.ext_width>>;
    const auto v = static_cast<std::int64_t>(static_cast<From>(r[d.src]));
    dst = I.width == 64 ? static_cast<std::uint64_t>(v) : static_cast<std::uint32_t>(v);
  } else {
    const std::uint64_t b = I.source == Source::reg ? r[d.src] : d.imm;
    if constexpr (I.width == 64) {
      dst = alu<I.operation, std::uint64_t>(dst, b);
    } else {
      dst = alu<I.operation, std::uint32_t>(static_cast<std::uint32_t>(dst), static_cast<std::uint32_t>(b));
    }
  }
}

template <Op K>
inline bool jump_taken(const std::uint64_t* r, const Decoded& d) {
  static constexpr isa::OpInfo I = isa::info(K);
  using U = std::conditional_t<I.width == 64, std::uint64_t, std::uint32_t>;
  using S = std::make_signed_t<U>;
  const U a = static_cast<U>(r[d.dst]);
  const U b = static_cast<U>(I.source == Source::reg ? r[d.src] : d.imm);
  constexpr Operation O = I.operation;
  if constexpr (O == Operation::ja)
    return true;
  else if constexpr (O == Operation::jeq)
    return a == b;
  else if constexpr (O == Operation::jne)
    return a != b;
  else if constexpr (O == Operation::jgt)
    return a > b;
  else if constexpr (O == Operation::jge)
    return a >= b;
  else if constexpr (O == Operation::jlt)
    return a < b;
  else if constexpr (O == Operation::jle)
    return a <= b;
  else if constexpr (O == Operation::jset)
    return (a & b) != 0;
  else if constexpr (O == Operation::jsgt)
    return static_cast<S>(a) > static_cast<S>(b);
  else if constexpr (O == Operation::jsge)
    return static_cast<S>(a) >= static_cast<S>(b);
  else if constexpr (O == Operation::jslt)
    return static_cast<S>(a) < static_cast<S>(b);
  else if constexpr (O == Operation::jsle)
    return static_cast<S>(a) <= static_cast<S>(b);
  else
    static_assert(O == Operation::ja, "not a jump");
}

template <typename U>
U atomic_op(Operation o, U* p, U v, std::uint64_t* r0) {
  switch (o) {
    case Operation::add:
    case Operation::fetch_add: return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    case Operation::bor:
    case Operation::fetch_bor: return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);
    case Operation::band:
    case Operation::fetch_band: return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST);
    case Operation::bxor:
    case Operation::fetch_bxor: return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST);
    case Operation::xchg: return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
    case Operation::cmpxchg: {
      U expected = static_cast<U>(*r0);
      __atomic_compare_exchange_n(p, &expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      return expected;  // the old value either way
    }
    default: return 0;
  }
}

// A misaligned atomic cannot use the host's atomics; the program gets the same values without
// atomicity (the verifier rejects such programs anyway).
template <typename U>
U atomic_unaligned(Operation o, std::uint64_t addr, U v, std::uint64_t* r0) {
  const U old = load_as<U>(addr);
  U next = old;
  switch (o) {
    case Operation::add:
    case Operation::fetch_add: next = static_cast<U>(old + v); break;
    case Operation::bor:
    case Operation::fetch_bor: next = old | v; break;
    case Operation::band:
    case Operation::fetch_band: next = old & v; break;
    case Operation::bxor:
    case Operation::fetch_bxor: next = old ^ v; break;
    case Operation::xchg: next = v; break;
    case Operation::cmpxchg: next = old == static_cast<U>(*r0) ? v : old; break;
    default: break;
  }
  store_as<U>(addr, next);
  return old;
}

// Loads, stores and atomics: false with `trap` set when the access is not allowed.
template <Op K>
inline bool exec_memory(std::uint64_t* r, const Decoded& d, const Memory& m, std::optional<Trap>& trap) {
  static constexpr isa::OpInfo I = isa::info(K);
  using U = UInt<I.width>;
  constexpr std::uint32_t size = I.width / 8;
  if constexpr (I.kind == Kind::load) {
    const std::uint64_t addr = r[d.src] + static_cast<std::uint64_t>(static_cast<std::int64_t>(d.off));
    if (!d.proven && !check(m, addr, size, Access::read, trap)) return false;
    const U v = load_as<U>(addr);
    if constexpr (I.operation == Operation::loadsx) {
      r[d.dst] = static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::make_signed_t<U>>(v)));
    } else {
      r[d.dst] = v;
    }
    return true;
  } else if constexpr (I.kind == Kind::store) {
    const std::uint64_t addr = r[d.dst] + static_cast<std::uint64_t>(static_cast<std::int64_t>(d.off));
    if (!d.proven && !check(m, addr, size, Access::write, trap)) return false;
    store_as<U>(addr, static_cast<U>(I.source == Source::reg ? r[d.src] : d.imm));
    return true;
  } else if constexpr (I.kind == Kind::atomic) {
    const std::uint64_t addr = r[d.dst] + static_cast<std::uint64_t>(static_cast<std::int64_t>(d.off));
    if (!d.proven && !check(m, addr, size, Access::read_write, trap)) return false;
    const U v = static_cast<U>(r[d.src]);
    const U old =
        addr % size == 0
            ? atomic_op<U>(I.operation, reinterpret_cast<U*>(static_cast<std::uintptr_t>(addr)), v, &r[0])
            : atomic_unaligned<U>(I.operation, addr, v, &r[0]);
    constexpr Operation O = I.operation;
    if constexpr (O == Operation::cmpxchg) {
      r[0] = old;
    } else if constexpr (O == Operation::fetch_add || O == Operation::fetch_bor ||
                         O == Operation::fetch_band || O == Operation::fetch_bxor || O == Operation::xchg) {
      r[d.src] = old;
    }
    return true;
  } else if constexpr (I.kind == Kind::legacy) {
    // Legacy packet loads read the input region (r6 in the kernel holds the skb; here the
    // packet is the input memory) in network byte order into r0.
    const std::uint64_t base = m.ctx->regions().empty() ? 0 : m.ctx->regions()[0].start;
    std::uint64_t offset = d.imm;
    if constexpr (I.operation == Operation::ind) offset += static_cast<std::uint32_t>(r[d.src]);
    const std::uint64_t addr = base + offset;
    if (m.ctx->regions().empty() || !check_regions(m, addr, size, Access::read, trap)) {
      if (!trap) trap = Trap{TrapKind::out_of_bounds, 0, addr, size, {}, {}};
      return false;
    }
    r[0] = swap_bytes(load_as<U>(addr));
    return true;
  } else {
    static_assert(I.kind == Kind::load, "not a memory instruction");
  }
}

class Interpreter final : public Executable {
 public:
  Interpreter(std::vector<Decoded> code, std::shared_ptr<const HelperRegistry> helpers, bool counted)
      : code_(std::move(code)), helpers_(std::move(helpers)), counted_(counted) {}

  RunResult run(RunContext& ctx) const override {
    if (ctx.trace())
      return follow_tail_calls(ctx, counted_ ? execute<true, true>(ctx) : execute<true, false>(ctx));
    return follow_tail_calls(ctx, counted_ ? execute<false, true>(ctx) : execute<false, false>(ctx));
  }

 private:
  // Counted: the budget is enforced (CompileOptions::enforce_budget).
  template <bool Trace, bool Counted>
  RunResult execute(RunContext& ctx) const;

  std::vector<Decoded> code_;
  std::shared_ptr<const HelperRegistry> helpers_;
  bool counted_;
};

template <bool Trace, bool Counted>
RunResult Interpreter::execute(RunContext& ctx) const {
  static constexpr void* labels[] = {
#define BPFVM_OP(id, ...) &&L_##id,
#include "isa/opcodes.def"
#undef BPFVM_OP
  };
  static_assert(std::size(labels) == isa::op_count);

  const std::span<std::uint8_t> stack = ctx.prepare_run();
  const auto stack_top = reinterpret_cast<std::uint64_t>(stack.data() + stack.size());
  const int max_depth = ctx.max_call_depth();
  // Call frames live on the host stack for the usual depths; deeper limits get a heap block.
  std::array<Frame, 16> frames_inline;
  std::vector<Frame> frames_heap(max_depth > 16 ? static_cast<std::size_t>(max_depth) : 0);
  Frame* const frames = max_depth > 16 ? frames_heap.data() : frames_inline.data();
  int depth = 0;

  Memory mem{stack_top - isa::stack_frame_size, stack_top, &ctx};
  RunResult result;
  std::uint64_t r[register_count] = {};
  for (int i = 0; i < 5; ++i) r[i + 1] = ctx.args()[static_cast<std::size_t>(i)];
  r[isa::frame_pointer] = stack_top;

  const Decoded* const base = code_.data();
  const Decoded* ip = base;
  const std::uint64_t budget = ctx.budget();
  std::uint64_t left = budget;
  std::optional<Trap> trap;

#define BPFVM_DISPATCH()                                      \
  do {                                                        \
    if constexpr (Counted) {                                  \
      if (left == 0) goto budget_exhausted;                   \
      --left;                                                 \
    }                                                         \
    if constexpr (Trace) {                                    \
      Registers regs;                                         \
      std::copy(std::begin(r), std::end(r), regs.begin());    \
      ctx.trace()(static_cast<std::size_t>(ip - base), regs); \
    }                                                         \
    goto* labels[static_cast<std::size_t>(ip->op)];           \
  } while (0)

  BPFVM_DISPATCH();

#define BPFVM_OP(id, ...)                                              \
  L_##id : {                                                           \
    constexpr Op kOp = Op::id;                                         \
    constexpr Kind kKind = isa::info(kOp).kind;                        \
    if constexpr (kKind == Kind::alu) {                                \
      exec_alu<kOp>(r, *ip);                                           \
      ++ip;                                                            \
    } else if constexpr (kKind == Kind::jump) {                        \
      ip = jump_taken<kOp>(r, *ip) ? base + ip->target : ip + 1;       \
    } else if constexpr (kKind == Kind::lddw) {                        \
      r[ip->dst] = ip->imm;                                            \
      ip += 2;                                                         \
    } else if constexpr (kKind == Kind::call) {                        \
      if constexpr (isa::info(kOp).operation == Operation::local)      \
        goto call_local;                                               \
      else if constexpr (isa::info(kOp).operation == Operation::callx) \
        goto call_x;                                                   \
      else                                                             \
        goto call_helper;                                              \
    } else if constexpr (kKind == Kind::exit) {                        \
      goto do_exit;                                                    \
    } else {                                                           \
      if (!exec_memory<kOp>(r, *ip, mem, trap)) goto memory_trap;      \
      ++ip;                                                            \
    }                                                                  \
    BPFVM_DISPATCH();                                                  \
  }
#include "isa/opcodes.def"
#undef BPFVM_OP

call_helper : {
  r[0] = ip->helper(r[1], r[2], r[3], r[4], r[5], &ctx);
  if (ctx.failure()) {
    trap = Trap{TrapKind::helper_error, 0, 0, 0, {}, *ctx.failure()};
    goto trapped;
  }
  if (ctx.tail_call_pending()) goto tail_call;
  ++ip;
  BPFVM_DISPATCH();
}
call_x : {
  const std::uint64_t target = r[ip->dst];
  const Helper* h = target <= std::numeric_limits<std::uint32_t>::max()
                        ? helpers_->find(static_cast<std::uint32_t>(target))
                        : nullptr;
  if (h == nullptr) {
    trap = Trap{TrapKind::bad_call_target, 0, target, 0, {}, {}};
    goto trapped;
  }
  r[0] = h->fn(r[1], r[2], r[3], r[4], r[5], &ctx);
  if (ctx.failure()) {
    trap = Trap{TrapKind::helper_error, 0, 0, 0, {}, *ctx.failure()};
    goto trapped;
  }
  if (ctx.tail_call_pending()) goto tail_call;
  ++ip;
  BPFVM_DISPATCH();
}
call_local : {
  if (depth + 1 >= max_depth) {
    trap = Trap{TrapKind::call_depth, 0, 0, 0, {}, {}};
    goto trapped;
  }
  Frame& f = frames[depth];
  f.ret = ip + 1;
  std::copy(r + 6, r + 10, f.saved);
  ++depth;
  r[isa::frame_pointer] = stack_top - static_cast<std::uint64_t>(depth) * isa::stack_frame_size;
  mem.stack_lo = r[isa::frame_pointer] - isa::stack_frame_size;
  ip = base + ip->target;
  BPFVM_DISPATCH();
}
do_exit : {
  if (depth == 0) {
    result.r0 = r[0];
    goto finish;
  }
  --depth;
  const Frame& f = frames[depth];
  std::copy(f.saved, f.saved + 4, r + 6);
  r[isa::frame_pointer] = stack_top - static_cast<std::uint64_t>(depth) * isa::stack_frame_size;
  mem.stack_lo = r[isa::frame_pointer] - isa::stack_frame_size;
  ip = f.ret;
  BPFVM_DISPATCH();
}
tail_call:  // this program ends here; follow_tail_calls() runs the target
  result.r0 = r[0];
  ++ip;
  goto finish;
#undef BPFVM_DISPATCH

budget_exhausted:  // reached only when Counted
  __attribute__((unused));
  trap = Trap{TrapKind::budget_exhausted, 0, 0, 0, {}, {}};
  result.executed = budget;
  result.trap = std::move(trap);
  result.trap->pc = static_cast<std::size_t>(ip - base);
  std::copy(std::begin(r), std::end(r), result.regs.begin());
  return result;

memory_trap:
trapped:
  result.trap = std::move(trap);
  result.trap->pc = static_cast<std::size_t>(ip - base);
finish:
  result.executed = Counted ? budget - left : 0;
  std::copy(std::begin(r), std::end(r), result.regs.begin());
  return result;
}

Error at(std::size_t pc, std::string message) {
  Error e(std::move(message));
  e.insn = pc;
  return e;
}

}  // namespace

Result<std::unique_ptr<Executable>> make_interpreter(const isa::Program& program,
                                                     std::shared_ptr<const HelperRegistry> helpers,
                                                     const CompileOptions& options) {
  // Kept per thread so that validation does not allocate per compile; not for large programs,
  // whose layout would stay with the thread.
  thread_local isa::Layout kept;
  isa::Layout own;
  isa::Layout& layout = program.insns.size() <= (std::size_t{1} << 16) ? kept : own;
  isa::ValidateOptions vopts;
  vopts.cpu_version = options.cpu_version;
  if (Status s = isa::validate(program, vopts, layout); !s) return s.error();
  if (!helpers) helpers = std::make_shared<const HelperRegistry>();

  const auto& insns = program.insns;
  std::vector<Decoded> code(insns.size());
  const bool any_proven = !options.proven_accesses.empty();
  const Op* const ops = layout.ops.data();  // not reloaded after each byte stored
  for (std::size_t pc = 0; pc < insns.size(); ++pc) {
    const isa::Insn& in = insns[pc];
    const Op op = ops[pc];
    const isa::OpInfo& info = isa::info(op);
    Decoded& d = code[pc];
    d.op = op;
    d.dst = static_cast<std::uint8_t>(in.dst());
    d.src = static_cast<std::uint8_t>(in.src());
    d.off = in.off;
    d.imm = static_cast<std::uint64_t>(static_cast<std::int64_t>(in.imm));
    d.proven = any_proven && options.proven(pc);
    switch (info.kind) {
      case Kind::jump: d.target = static_cast<std::uint32_t>(isa::branch_target(in, op, pc)); break;
      case Kind::lddw: {
        auto value = lddw_operand(in, insns[pc + 1], op, options);
        if (!value) return at(pc, value.error().message);
        d.imm = *value;
        ++pc;  // the second slot is never executed
        code[pc].op = Op::exit;
        break;
      }
      case Kind::call:
        if (info.operation == Operation::local) {
          d.target = static_cast<std::uint32_t>(isa::branch_target(in, op, pc));
        } else if (info.operation == Operation::helper) {
          const Helper* h = helpers->find(static_cast<std::uint32_t>(in.imm));
          if (h == nullptr) return at(pc, "call to unknown helper " + std::to_string(in.imm));
          d.helper = h->fn;
        } else if (info.operation == Operation::kfunc) {
          return at(pc, "kfunc calls are not supported");
        }
        break;
      default: break;
    }
  }
  return std::unique_ptr<Executable>(
      std::make_unique<Interpreter>(std::move(code), std::move(helpers), options.enforce_budget));
}

}  // namespace bpfvm::vm
