#include "jit/a64/codegen.hpp"

#include <optional>
#include <random>
#include <string>
#include <utility>

#include "jit/a64/assembler.hpp"
#include "jit/a64/state.hpp"
#include "jit/lowering/analysis.hpp"
#include "jit/lowering/patterns.hpp"

namespace bpfvm::jit::a64 {
namespace {

using isa::Kind;
using isa::Op;
using isa::Operation;
using isa::Source;

// ---- register map (docs/JIT-a64.md)
constexpr unsigned kBpfToHost[isa::register_count] = {7, 0, 1, 2, 3, 4, 19, 20, 21, 22, 25};
constexpr Reg kState = X(26);                     // State*
constexpr Reg kBudget = X(27);                    // instructions left
constexpr Reg kDepth = X(28);                     // bpf-to-bpf calls still allowed
constexpr Reg kStackHi = X(24);                   // the end of frame 0
constexpr Reg kKey = X(23);                       // constant blinding's key
constexpr Reg kFp = X(25);                        // r10
constexpr Reg kAddr = X(9);                       // the address of a checked access (kept by the slow check)
constexpr unsigned kT0 = 10, kT1 = 11, kT2 = 12;  // scratch within one instruction

Reg bpf(int r, bool is64) { return is64 ? X(kBpfToHost[r]) : W(kBpfToHost[r]); }
Reg tmp(unsigned n, bool is64) { return is64 ? X(n) : W(n); }

int log2_size(unsigned bytes) { return bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : 3; }

Cond jump_cond(Operation o) {
  switch (o) {
    case Operation::jeq: return Cond::eq;
    case Operation::jne: return Cond::ne;
    case Operation::jgt: return Cond::hi;
    case Operation::jge: return Cond::hs;
    case Operation::jlt: return Cond::lo;
    case Operation::jle: return Cond::ls;
    case Operation::jsgt: return Cond::gt;
    case Operation::jsge: return Cond::ge;
    case Operation::jslt: return Cond::lt;
    case Operation::jsle: return Cond::le;
    case Operation::jset: return Cond::ne;
    default: return Cond::al;
  }
}

// Out-of-line code, emitted after all functions.
struct Stub {
  enum class Kind : std::uint8_t { access, trap, budget, misaligned_atomic } kind;
  Label entry;
  Label resume;
  std::size_t pc = 0;
  std::int64_t adjust = 0;   // budget units to give back when trapping here
  std::uint32_t packed = 0;  // access: size | access << 8
  TrapCode code = TrapCode::none;
  Reg address = kAddr;  // access: where the address is (the slow check wants it in x9)
};

class Codegen {
 public:
  Codegen(const lowering::Analysis& analysis, const RuntimeCalls& calls, const Target& target,
          std::uint64_t key, bool budget, bool far)
      : an_(analysis), calls_(calls), target_(target), key_(key), budget_(budget) {
    a_.set_far_branches(far);
  }

  Result<GeneratedCode> run();

 private:
  void entry_and_exit();
  void function(const lowering::Function& f);
  void instruction(std::size_t pc, std::int64_t adjust);
  void folded(std::size_t from, std::size_t to);
  void alu(const lowering::Insn& s);
  void jump(const lowering::Insn& s);
  Cond compare(const lowering::Insn& s);
  void conditional_move(const lowering::ConditionalMove& m);
  void address_sum(const lowering::AddressSum& sum);
  void memory(std::size_t pc, const lowering::Insn& s, std::int64_t adjust);
  void atomic(std::size_t pc, const lowering::Insn& s, Reg value_src, bool is64);
  void misaligned_atomic(const lowering::Insn& s, Label done);
  void lse_atomic(Operation o, Reg src, Reg old, Reg scratch, Reg r0);
  void atomic_op(Operation o, Reg out, Reg old, Reg src);
  void legacy(std::size_t pc, const lowering::Insn& s, std::int64_t adjust);
  void call(std::size_t pc, const lowering::Insn& s);
  void stub(std::size_t index);
  void trap_tail(std::size_t pc, std::int64_t adjust, TrapCode code);
  Label trap_stub(std::size_t pc, std::int64_t adjust, TrapCode code);
  void check_routine();
  void slow_call_routine(Label label, std::uint64_t fn);
  void adjust_budget(std::int64_t units);
  void constant(Reg dst, std::uint64_t value);

  const lowering::Analysis& an_;
  RuntimeCalls calls_;
  Target target_;
  std::uint64_t key_;  // constant blinding: 0 when off
  bool budget_;        // instructions are counted (vm::CompileOptions::enforce_budget)
  Assembler a_;
  std::vector<Label> pc_label_;
  std::vector<Label> fn_label_;  // per pc: the callable entry of a function starting there
  std::vector<Stub> stubs_;
  std::vector<std::uint32_t> insn_offset_;
  Label exit_done_, trap_exit_, budget_trap_, check_routine_, legacy_routine_;
  bool uses_check_ = false, uses_legacy_ = false;
};

Result<GeneratedCode> Codegen::run() {
  const std::size_t n = an_.insns.size();
  pc_label_.resize(n);
  fn_label_.resize(n);
  insn_offset_.resize(n);
  for (std::size_t pc = 0; pc < n; ++pc) {
    if (an_.block_start(static_cast<std::uint32_t>(pc))) pc_label_[pc] = a_.new_label();
  }
  for (const lowering::Function& f : an_.functions) fn_label_[f.start] = a_.new_label();
  exit_done_ = a_.new_label();
  trap_exit_ = a_.new_label();
  budget_trap_ = a_.new_label();
  check_routine_ = a_.new_label();
  legacy_routine_ = a_.new_label();

  entry_and_exit();
  const std::size_t body_start = a_.size();
  for (const lowering::Function& f : an_.functions) function(f);
  const std::size_t body_end = a_.size();
  for (std::size_t i = 0; i < stubs_.size(); ++i) stub(i);  // stubs may add stubs

  // Budget exhaustion: x27 is 0 and w9 holds the pc.
  a_.bind(budget_trap_);
  a_.mov_imm(W(kT0), static_cast<std::uint64_t>(TrapCode::budget));
  a_.b(trap_exit_);
  if (uses_check_) check_routine();
  if (uses_legacy_) slow_call_routine(legacy_routine_, calls_.legacy_load);

  auto bytes = a_.finish();
  if (!bytes) return bytes.error();
  GeneratedCode out;
  out.code = std::move(bytes).value();
  out.body_bytes = body_end - body_start;
  out.insn_offset = std::move(insn_offset_);
  out.body_end = body_end;
  for (std::size_t pc = 0; pc < n; pc += static_cast<std::size_t>(isa::slot_count(an_.insns[pc].op)))
    ++out.insn_count;
  return out;
}

// void entry(State*): saves what AAPCS64 asks, loads the BPF registers, calls the entry
// function, stores the registers back. A trap anywhere resets sp and joins at exit_done_.
void Codegen::entry_and_exit() {
  a_.stp(X(29), X(30), Mem::pre(sp, -96));
  a_.mov(X(29), sp);
  a_.stp(X(19), X(20), Mem::at(sp, 16));
  a_.stp(X(21), X(22), Mem::at(sp, 32));
  a_.stp(X(23), X(24), Mem::at(sp, 48));
  a_.stp(X(25), X(26), Mem::at(sp, 64));
  a_.stp(X(27), X(28), Mem::at(sp, 80));
  a_.mov(kState, X(0));
  a_.ldp(X(0), X(1), Mem::at(kState, reg_offset(1)));
  a_.ldp(X(2), X(3), Mem::at(kState, reg_offset(3)));
  a_.ldr(X(4), Mem::at(kState, reg_offset(5)));
  a_.ldr(kFp, Mem::at(kState, reg_offset(10)));
  for (int r : {0, 6, 7, 8, 9}) a_.mov(bpf(r, true), xzr);
  a_.ldr(kBudget, Mem::at(kState, offsetof(State, budget_left)));
  a_.ldr(kDepth, Mem::at(kState, offsetof(State, depth_left)));
  a_.ldr(kStackHi, Mem::at(kState, offsetof(State, stack_hi)));
  if (key_ != 0) a_.ldr(kKey, Mem::at(kState, offsetof(State, blinding_key)));
  a_.mov(X(kT0), sp);
  a_.str(X(kT0), Mem::at(kState, offsetof(State, saved_sp)));
  a_.bl(fn_label_[0]);

  a_.bind(exit_done_);
  a_.str(X(7), Mem::at(kState, reg_offset(0)));
  a_.stp(X(0), X(1), Mem::at(kState, reg_offset(1)));
  a_.stp(X(2), X(3), Mem::at(kState, reg_offset(3)));
  a_.stp(X(4), X(19), Mem::at(kState, reg_offset(5)));
  a_.stp(X(20), X(21), Mem::at(kState, reg_offset(7)));
  a_.stp(X(22), X(25), Mem::at(kState, reg_offset(9)));
  a_.str(kBudget, Mem::at(kState, offsetof(State, budget_left)));
  a_.ldp(X(19), X(20), Mem::at(sp, 16));
  a_.ldp(X(21), X(22), Mem::at(sp, 32));
  a_.ldp(X(23), X(24), Mem::at(sp, 48));
  a_.ldp(X(25), X(26), Mem::at(sp, 64));
  a_.ldp(X(27), X(28), Mem::at(sp, 80));
  a_.ldp(X(29), X(30), Mem::post(sp, 96));
  a_.ret();

  // Trap: w9 = pc, w10 = TrapCode. The registers are as the trapping instruction found them.
  a_.bind(trap_exit_);
  a_.str(X(9), Mem::at(kState, offsetof(State, trap_pc)));
  a_.str(X(kT0), Mem::at(kState, offsetof(State, trap_code)));
  a_.ldr(X(kT1), Mem::at(kState, offsetof(State, saved_sp)));
  a_.mov(sp, X(kT1));
  a_.b(exit_done_);
}

// A BPF function: x30 saved on entry (calls inside clobber it), blocks in order, each charging
// its instruction count to the budget on entry.
void Codegen::function(const lowering::Function& f) {
  insn_offset_[f.start] = static_cast<std::uint32_t>(a_.size());
  a_.bind(fn_label_[f.start]);
  a_.str(X(30), Mem::pre(sp, -16));
  for (std::size_t pc = f.start; pc < f.end;) {
    const lowering::Insn& s = an_.insns[pc];
    if (pc != f.start) insn_offset_[pc] = static_cast<std::uint32_t>(a_.size());
    if (an_.block_start(static_cast<std::uint32_t>(pc))) a_.bind(pc_label_[pc]);
    if (budget_ && an_.block_start(static_cast<std::uint32_t>(pc))) {
      a_.subs(kBudget, kBudget, an_.blocks[an_.block_of[pc]].count, X(kT0));
      Stub st{Stub::Kind::budget, a_.new_label(), {}, pc, 0, 0, TrapCode::budget};
      a_.b(Cond::lo, st.entry);
      stubs_.push_back(st);
    }
    const auto at = static_cast<std::uint32_t>(pc);
    if (const auto move = lowering::conditional_move(an_, at)) {
      conditional_move(*move);
      folded(pc + 1, move->move + 1);
      pc = move->move + 1;
      continue;
    }
    if (const auto sum = lowering::address_sum(an_, at)) {
      address_sum(*sum);
      folded(pc + 1, sum->add + 1);
      pc = sum->add + 1;
      continue;
    }
    instruction(pc, an_.left_after[pc]);
    const auto slots = static_cast<std::size_t>(isa::slot_count(s.op));
    folded(pc + 1, pc + slots);
    pc += slots;
  }
}

// The instructions [from, to) were emitted with the one before them: they start at its end.
void Codegen::folded(std::size_t from, std::size_t to) {
  for (std::size_t pc = from; pc < to; ++pc) insn_offset_[pc] = static_cast<std::uint32_t>(a_.size());
}

// `if cond goto +1; rD = x` without the branch: the mov's one-instruction block pays the budget
// only when it runs (cond false); rD changes after the budget check, so a trap at the mov finds
// the interpreter's registers.
void Codegen::conditional_move(const lowering::ConditionalMove& m) {
  const lowering::Insn& mov = an_.insns[m.move];
  const Reg value = mov.info().source == Source::reg ? bpf(mov.src, true) : X(kT2);
  if (mov.info().source == Source::imm) constant(value, mov.imm64);  // before the flags are set
  const Cond cond = compare(an_.insns[m.jump]);
  const Reg d = bpf(mov.dst, true);
  if (!budget_) return a_.csel(d, d, value, cond);
  a_.cset(W(kT0), invert(cond));
  a_.csel(X(kT1), d, value, cond);
  a_.subs(kBudget, kBudget, X(kT0));
  Stub st{Stub::Kind::budget, a_.new_label(), {}, m.move, 0, 0, TrapCode::budget};
  a_.b(Cond::lo, st.entry);
  stubs_.push_back(st);
  a_.mov(d, X(kT1));
}

// `rD = rS; rD += rT | imm` (one block, neither can trap): one add.
void Codegen::address_sum(const lowering::AddressSum& sum) {
  const lowering::Insn& mov = an_.insns[sum.mov];
  const lowering::Insn& add = an_.insns[sum.add];
  const Reg d = bpf(mov.dst, true), s = bpf(mov.src, true);
  if (add.info().source == Source::reg) {
    a_.add(d, s, add.src == mov.dst ? s : bpf(add.src, true));
  } else if (key_ != 0) {
    constant(X(kT0), add.imm64);
    a_.add(d, s, X(kT0));
  } else {
    a_.add(d, s, static_cast<std::int64_t>(add.imm64), X(kT0));
  }
}

// dst = value (at dst's width). Blinded, the code holds value ^ key and the key is in State.
void Codegen::constant(Reg dst, std::uint64_t value) {
  if (key_ == 0) return a_.mov_imm(dst, value);
  a_.mov_imm(dst, value ^ key_);
  a_.eor(dst, dst, dst.is64() ? kKey : kKey.as_w());
}

void Codegen::adjust_budget(std::int64_t units) {
  if (!budget_) return;
  if (units > 0) a_.add(kBudget, kBudget, units, X(kT1));
  if (units < 0) a_.sub(kBudget, kBudget, -units, X(kT1));
}

// Records pc and code for trap_exit_ after giving back the budget charged for instructions
// of the block that will not run. `recorded`: the C++ runtime has set the code already.
void Codegen::trap_tail(std::size_t pc, std::int64_t adjust, TrapCode code) {
  adjust_budget(adjust);
  a_.mov_imm(W(9), pc);
  if (code == TrapCode::recorded)
    a_.ldr(X(kT0), Mem::at(kState, offsetof(State, trap_code)));
  else
    a_.mov_imm(W(kT0), static_cast<std::uint64_t>(code));
  a_.b(trap_exit_);
}

Label Codegen::trap_stub(std::size_t pc, std::int64_t adjust, TrapCode code) {
  Stub st{Stub::Kind::trap, a_.new_label(), {}, pc, adjust, 0, code};
  stubs_.push_back(st);
  return st.entry;
}

void Codegen::instruction(std::size_t pc, std::int64_t adjust) {
  const lowering::Insn& s = an_.insns[pc];
  const isa::OpInfo& info = isa::info(s.op);
  switch (info.kind) {
    case Kind::alu: return alu(s);
    case Kind::jump: return jump(s);
    case Kind::lddw: return constant(bpf(s.dst, true), s.imm64);
    case Kind::load:
    case Kind::store:
    case Kind::atomic: return memory(pc, s, adjust);
    case Kind::legacy: return legacy(pc, s, adjust);
    case Kind::call: return call(pc, s);
    case Kind::exit:
      a_.ldr(X(30), Mem::post(sp, 16));
      a_.ret();
      return;
  }
}

void Codegen::alu(const lowering::Insn& s) {
  const isa::OpInfo& info = isa::info(s.op);
  const bool is64 = info.width == 64;
  const Reg d = bpf(s.dst, is64);
  const Operation o = info.operation;
  switch (o) {
    case Operation::le:
      if (info.width == 16) a_.uxth(d.as_w(), d.as_w());
      if (info.width == 32) a_.mov(d.as_w(), d.as_w());
      return;  // le64 is nothing on a little-endian host
    case Operation::be:
    case Operation::bswap:
      if (info.width == 16) {
        a_.rev16(d.as_w(), d.as_w());
        a_.uxth(d.as_w(), d.as_w());
      } else {
        a_.rev(info.width == 64 ? d.as_x() : d.as_w(), info.width == 64 ? d.as_x() : d.as_w());
      }
      return;
    case Operation::movsx: {
      const Reg src = bpf(s.src, false);
      if (info.ext_width == 8) a_.sxtb(d, src);
      if (info.ext_width == 16) a_.sxth(d, src);
      if (info.ext_width == 32) a_.sxtw(d, src);
      return;
    }
    case Operation::neg: a_.neg(d, d); return;
    default: break;
  }

  const std::uint64_t imm = is64 ? s.imm64 : (s.imm64 & 0xffffffffu);
  if (o == Operation::mov && info.source == Source::imm) return constant(d, imm);
  // Blinded immediates always go through a register, so the register forms serve them.
  const bool reg = info.source == Source::reg || key_ != 0;
  const Reg rb = info.source == Source::reg ? bpf(s.src, is64) : tmp(kT0, is64);
  if (info.source == Source::imm && key_ != 0) constant(rb, imm);
  // The second operand as a register (immediates materialised in a scratch register).
  auto operand = [&]() {
    if (reg) return rb;
    if (imm == 0) return is64 ? xzr : wzr;
    a_.mov_imm(rb, imm);
    return rb;
  };
  const Reg scratch = X(kT0);
  const unsigned mask = is64 ? 63 : 31;
  switch (o) {
    case Operation::mov: a_.mov(d, rb); return;
    case Operation::add:
      if (reg)
        a_.add(d, d, rb);
      else
        a_.add(d, d, static_cast<std::int64_t>(imm), scratch);
      return;
    case Operation::sub:
      if (reg)
        a_.sub(d, d, rb);
      else
        a_.sub(d, d, static_cast<std::int64_t>(imm), scratch);
      return;
    case Operation::bor:
      if (reg)
        a_.orr(d, d, rb);
      else
        a_.orr(d, d, imm, scratch);
      return;
    case Operation::band:
      if (reg)
        a_.and_(d, d, rb);
      else
        a_.and_(d, d, imm, scratch);
      return;
    case Operation::bxor:
      if (reg)
        a_.eor(d, d, rb);
      else
        a_.eor(d, d, imm, scratch);
      return;
    case Operation::lsh:
    case Operation::rsh:
    case Operation::arsh:
      if (reg) {
        // lslv/lsrv/asrv use the amount modulo the width, as BPF masks it.
        const Reg amount = rb;
        if (o == Operation::lsh) a_.lslv(d, d, amount);
        if (o == Operation::rsh) a_.lsrv(d, d, amount);
        if (o == Operation::arsh) a_.asrv(d, d, amount);
      } else {
        const auto amount = static_cast<unsigned>(imm & mask);
        if (o == Operation::lsh) a_.lsl(d, d, amount);
        if (o == Operation::rsh) a_.lsr(d, d, amount);
        if (o == Operation::arsh) a_.asr(d, d, amount);
      }
      return;
    // udiv/sdiv give 0 for a zero divisor and sdiv gives INT_MIN for INT_MIN / -1: BPF's rules.
    case Operation::mul: a_.mul(d, d, operand()); return;
    case Operation::div: a_.udiv(d, d, operand()); return;
    case Operation::sdiv: a_.sdiv(d, d, operand()); return;
    case Operation::mod:
    case Operation::smod: {
      // dst - (dst / src) * src: dst itself for a zero divisor, 0 for INT_MIN % -1.
      const Reg divisor = operand();
      const Reg q = tmp(kT1, is64);
      if (o == Operation::mod)
        a_.udiv(q, d, divisor);
      else
        a_.sdiv(q, d, divisor);
      a_.msub(d, q, divisor, d);
      return;
    }
    default: return;
  }
}

void Codegen::jump(const lowering::Insn& s) {
  if (isa::info(s.op).operation == Operation::ja) return a_.b(pc_label_[s.target]);
  a_.b(compare(s), pc_label_[s.target]);
}

// Sets the flags for a conditional jump; returns the condition under which it is taken.
Cond Codegen::compare(const lowering::Insn& s) {
  const isa::OpInfo& info = isa::info(s.op);
  const bool is64 = info.width == 64;
  const Reg d = bpf(s.dst, is64);
  const std::uint64_t imm = is64 ? s.imm64 : (s.imm64 & 0xffffffffu);
  const bool reg = info.source == Source::reg || key_ != 0;
  const Reg rb = info.source == Source::reg ? bpf(s.src, is64) : tmp(kT0, is64);
  if (info.source == Source::imm && key_ != 0) constant(rb, imm);
  if (info.operation == Operation::jset) {
    if (reg)
      a_.tst(d, rb);
    else
      a_.tst(d, imm, X(kT0));
  } else if (reg) {
    a_.cmp(d, rb);
  } else {
    a_.cmp(d, static_cast<std::int64_t>(imm), X(kT0));
  }
  return jump_cond(info.operation);
}

// Loads, stores, atomics. r10 plus a constant inside the current frame needs no check (r10 is
// read-only, and the frame is always live), nor does an access the verifier proved. Otherwise the address
// goes to x9 and is compared with the region cache for the access; a miss goes to the slow check out of line.
void Codegen::memory(std::size_t pc, const lowering::Insn& s, std::int64_t adjust) {
  const isa::OpInfo& info = isa::info(s.op);
  const unsigned size = info.width / 8u;
  const int base_reg = info.kind == Kind::load ? s.src : s.dst;
  const std::int64_t off = s.off;
  const int kind = info.kind == Kind::load ? 0 : info.kind == Kind::store ? 1 : 2;
  const bool in_frame = base_reg == isa::frame_pointer && off >= -isa::stack_frame_size &&
                        off + static_cast<std::int64_t>(size) <= 0;
  Mem where = Mem::at(kAddr, 0);
  if (in_frame && info.kind != Kind::atomic) {
    where = Mem::at(kFp, off);
  } else {
    const Reg base = bpf(base_reg, true);
    // A zero offset checks and accesses through the base itself (atomics want x9 throughout).
    Reg address = kAddr;
    if (off == 0 && info.kind != Kind::atomic)
      address = base;
    else if (off == 0)
      a_.mov(kAddr, base);
    else
      a_.add(kAddr, base, off);
    where = Mem::at(address, 0);
    if (!in_frame && !s.proven) {
      Stub st{Stub::Kind::access, a_.new_label(), a_.new_label(), pc, adjust, 0, TrapCode::recorded};
      st.address = address;
      st.packed = size | static_cast<std::uint32_t>(kind == 0   ? vm::Access::read
                                                    : kind == 1 ? vm::Access::write
                                                                : vm::Access::read_write)
                             << 8;
      a_.ldp(X(kT0), X(kT1), Mem::at(kState, cache_offset(kind, log2_size(size))));
      a_.sub(X(kT0), address, X(kT0));
      a_.cmp(X(kT0), X(kT1));
      a_.b(Cond::hs, st.entry);
      a_.bind(st.resume);
      stubs_.push_back(st);
      uses_check_ = true;
    }
  }

  const bool is64 = size == 8;
  if (info.kind == Kind::load) {
    const Reg d = bpf(s.dst, true);
    const bool sx = info.operation == Operation::loadsx;
    const Reg scratch = X(kT0);
    switch (size) {
      case 1: sx ? a_.ldrsb(d, where, scratch) : a_.ldrb(d.as_w(), where, scratch); break;
      case 2: sx ? a_.ldrsh(d, where, scratch) : a_.ldrh(d.as_w(), where, scratch); break;
      case 4: sx ? a_.ldrsw(d, where, scratch) : a_.ldr(d.as_w(), where, scratch); break;
      default: a_.ldr(d, where, scratch); break;
    }
    return;
  }
  if (info.kind == Kind::store) {
    Reg v = bpf(s.src, is64);
    if (info.source == Source::imm) {
      v = s.imm64 == 0 ? (is64 ? xzr : wzr) : tmp(kT2, is64);
      if (s.imm64 != 0) constant(v, is64 ? s.imm64 : (s.imm64 & 0xffffffffu));
    }
    const Reg scratch = X(kT0);
    switch (size) {
      case 1: a_.strb(v, where, scratch); break;
      case 2: a_.strh(v, where, scratch); break;
      default: a_.str(v, where, scratch); break;
    }
    return;
  }
  atomic(pc, s, bpf(s.src, is64), is64);
}

void Codegen::atomic_op(Operation o, Reg out, Reg old, Reg src) {
  switch (o) {
    case Operation::add:
    case Operation::fetch_add: a_.add(out, old, src); break;
    case Operation::bor:
    case Operation::fetch_bor: a_.orr(out, old, src); break;
    case Operation::band:
    case Operation::fetch_band: a_.and_(out, old, src); break;
    case Operation::bxor:
    case Operation::fetch_bxor: a_.eor(out, old, src); break;
    default: break;
  }
}

// Atomics at x9 as ldxr/stlxr loops (they run on every ARMv8.0 core) followed by dmb ish: fully
// ordered, like the interpreter's sequentially consistent builtins; with LSE, one
// acquire-release instruction. A misaligned address would fault in either; it takes the
// interpreter's path out of line (the same values, not atomic).
void Codegen::atomic(std::size_t pc, const lowering::Insn& s, Reg src, bool is64) {
  const Operation o = isa::info(s.op).operation;
  const Reg old = tmp(kT0, is64), next = tmp(kT1, is64), status = W(kT2);
  const Reg r0 = bpf(0, is64);
  const Label retry = a_.new_label(), fence = a_.new_label(), done = a_.new_label();
  Stub misaligned{Stub::Kind::misaligned_atomic, a_.new_label(), done, pc, 0, 0, TrapCode::none};
  stubs_.push_back(misaligned);
  a_.tst(kAddr, is64 ? 7 : 3);
  a_.b(Cond::ne, misaligned.entry);
  if (target_.lse) {
    lse_atomic(o, src, old, next, r0);
  } else {
    a_.bind(retry);
    a_.ldxr(old, kAddr);
    if (o == Operation::cmpxchg) {
      a_.cmp(old, r0);
      a_.b(Cond::ne, fence);
      a_.stlxr(status, src, kAddr);
    } else if (o == Operation::xchg) {
      a_.stlxr(status, src, kAddr);
    } else {
      atomic_op(o, next, old, src);
      a_.stlxr(status, next, kAddr);
    }
    a_.cbnz(status, retry);
    a_.bind(fence);
    a_.dmb(Barrier::ish);
  }
  a_.bind(done);
  if (o == Operation::cmpxchg)
    a_.mov(r0, old);
  else if (o == Operation::xchg || o == Operation::fetch_add || o == Operation::fetch_bor ||
           o == Operation::fetch_band || o == Operation::fetch_bxor)
    a_.mov(src, old);
}

// One ARMv8.1 atomic with acquire and release semantics; the value found goes to `old`.
void Codegen::lse_atomic(Operation o, Reg src, Reg old, Reg scratch, Reg r0) {
  switch (o) {
    case Operation::add:
    case Operation::fetch_add: a_.ldadd(src, old, kAddr, Order::acq_rel); break;
    case Operation::bor:
    case Operation::fetch_bor: a_.ldset(src, old, kAddr, Order::acq_rel); break;
    case Operation::bxor:
    case Operation::fetch_bxor: a_.ldeor(src, old, kAddr, Order::acq_rel); break;
    case Operation::band:
    case Operation::fetch_band:  // ldclr clears the bits set in its operand
      a_.mvn(scratch, src);
      a_.ldclr(scratch, old, kAddr, Order::acq_rel);
      break;
    case Operation::xchg: a_.swp(src, old, kAddr, Order::acq_rel); break;
    case Operation::cmpxchg:
      a_.mov(old, r0);  // the value compared, then the value found
      a_.cas(old, src, kAddr, Order::acq_rel);
      break;
    default: break;
  }
}

// The misaligned path of an atomic: load, operation, store; then the results as usual.
void Codegen::misaligned_atomic(const lowering::Insn& s, Label done) {
  const Operation o = isa::info(s.op).operation;
  const bool is64 = isa::info(s.op).width == 64;
  const Reg old = tmp(kT0, is64), next = tmp(kT1, is64);
  const Reg r0 = bpf(0, is64), src = bpf(s.src, is64);
  a_.ldr(old, Mem::at(kAddr, 0));
  if (o == Operation::cmpxchg) {
    a_.cmp(old, r0);
    a_.csel(next, src, old, Cond::eq);
  } else if (o == Operation::xchg) {
    a_.mov(next, src);
  } else {
    atomic_op(o, next, old, src);
  }
  a_.str(next, Mem::at(kAddr, 0));
  a_.b(done);
}

// ldabs/ldind through the C++ runtime (rare, legacy): offset in x9, size in x10.
void Codegen::legacy(std::size_t pc, const lowering::Insn& s, std::int64_t adjust) {
  const isa::OpInfo& info = isa::info(s.op);
  if (info.operation == Operation::ind) {
    a_.mov(W(9), bpf(s.src, false));  // (u32)src
    constant(X(kT0), s.imm64);
    a_.add(kAddr, kAddr, X(kT0));
  } else {
    constant(kAddr, s.imm64);
  }
  a_.mov_imm(W(kT0), info.width / 8u);
  a_.bl(legacy_routine_);
  a_.cbz(X(kT0), trap_stub(pc, adjust, TrapCode::recorded));
  a_.ldr(bpf(0, true), Mem::at(kState, offsetof(State, loaded)));
  uses_legacy_ = true;
}

// Helper calls go through the C++ runtime (call_helper / call_indirect) so that a failure
// reported with ctx->fail() becomes a trap and a tail call a helper requests ends the program;
// r1-r5 are kept as the interpreter keeps them.
// bpf-to-bpf calls keep r6-r9 and move r10 to the next frame, as the interpreter does.
void Codegen::call(std::size_t pc, const lowering::Insn& s) {
  const Operation o = isa::info(s.op).operation;
  if (o == Operation::local) {
    // Only the r6-r9 the callee itself writes need saving: its own calls restore theirs.
    const lowering::RegSet written = an_.functions[an_.function_of[s.target]].written;
    const bool low = (written & (lowering::reg_bit(6) | lowering::reg_bit(7))) != 0;
    const bool high = (written & (lowering::reg_bit(8) | lowering::reg_bit(9))) != 0;
    a_.cbz(kDepth, trap_stub(pc, 0, TrapCode::call_depth));
    if (low) a_.stp(X(19), X(20), Mem::pre(sp, -32));
    if (high) a_.stp(X(21), X(22), low ? Mem::at(sp, 16) : Mem::pre(sp, -32));
    a_.sub(kDepth, kDepth, 1);
    a_.sub(kFp, kFp, isa::stack_frame_size);
    a_.bl(fn_label_[s.target]);
    a_.add(kFp, kFp, isa::stack_frame_size);
    a_.add(kDepth, kDepth, 1);
    if (high) a_.ldp(X(21), X(22), low ? Mem::at(sp, 16) : Mem::post(sp, 32));
    if (low) a_.ldp(X(19), X(20), Mem::post(sp, 32));
    return;
  }
  if (o == Operation::callx) a_.mov(X(6), bpf(s.dst, true));
  a_.stp(X(0), X(1), Mem::pre(sp, -48));
  a_.stp(X(2), X(3), Mem::at(sp, 16));
  a_.str(X(4), Mem::at(sp, 32));
  a_.mov(X(5), kState);
  if (o == Operation::callx) {
    a_.mov_imm(ip0, calls_.call_indirect);  // x6 = target, x7 = r0
  } else {
    a_.mov_imm(X(6), reinterpret_cast<std::uint64_t>(s.helper));
    a_.mov_imm(ip0, calls_.call_helper);
  }
  a_.blr(ip0);
  a_.mov(bpf(0, true), X(0));
  a_.ldp(X(2), X(3), Mem::at(sp, 16));
  a_.ldr(X(4), Mem::at(sp, 32));
  a_.ldp(X(0), X(1), Mem::post(sp, 48));
  a_.ldr(X(kT0), Mem::at(kState, offsetof(State, trap_code)));
  a_.cbnz(X(kT0), trap_stub(pc, 0, TrapCode::recorded));
}

void Codegen::stub(std::size_t index) {
  const Stub st = stubs_[index];  // a copy: emitting may add stubs
  a_.bind(st.entry);
  switch (st.kind) {
    case Stub::Kind::access:
      if (st.address != kAddr) a_.mov(kAddr, st.address);
      a_.mov_imm(W(kT0), st.packed);
      a_.bl(check_routine_);
      a_.cbnz(X(kT0), st.resume);
      trap_tail(st.pc, st.adjust, TrapCode::recorded);
      return;
    case Stub::Kind::trap: trap_tail(st.pc, st.adjust, st.code); return;
    case Stub::Kind::misaligned_atomic: misaligned_atomic(an_.insns[st.pc], st.resume); return;
    case Stub::Kind::budget: {
      // Fewer instructions left than the block holds: give the charge back and run the block
      // one instruction at a time until the budget is gone, as the interpreter would (so the
      // registers and memory at the trap are the interpreter's too). Only the block's last
      // instruction can leave it, and it is never reached here.
      const std::uint32_t count = an_.blocks[an_.block_of[st.pc]].count;
      adjust_budget(count);
      std::size_t pc = st.pc;
      for (std::uint32_t i = 0; i + 1 < count; ++i) {
        a_.mov_imm(W(9), pc);
        a_.cbz(kBudget, budget_trap_);
        a_.sub(kBudget, kBudget, 1);
        instruction(pc, 0);
        pc += static_cast<std::size_t>(isa::slot_count(an_.insns[pc].op));
      }
      a_.mov_imm(W(9), pc);
      a_.b(budget_trap_);
      return;
    }
  }
}

// The slow path of a memory check (x9 = address, w10 = size | access << 8; answer in x10).
void Codegen::check_routine() {
  // The live stack frames first, as the interpreter checks them, without leaving the code:
  // lo = r10 - 512, and the access (x9, size in w10's low byte) fits when
  // addr - lo <= (stack_hi - lo) - size (the span is at least 512 bytes).
  const Label regions = a_.new_label();
  a_.bind(check_routine_);
  a_.sub(X(kT1), kFp, isa::stack_frame_size);
  a_.sub(X(kT2), kStackHi, X(kT1));
  a_.sub(X(kT1), kAddr, X(kT1));
  a_.and_(X(13), X(kT0), 0xff);
  a_.sub(X(kT2), X(kT2), X(13));
  a_.cmp(X(kT1), X(kT2));
  a_.b(Cond::hi, regions);
  a_.mov_imm(X(kT0), 1);
  a_.ret();
  slow_call_routine(regions, calls_.check_access);
}

// Calls fn(State*, x9, x10, r10) keeping the BPF registers (and x9); the result goes to x10.
void Codegen::slow_call_routine(Label label, std::uint64_t fn) {
  a_.bind(label);
  a_.stp(X(29), X(30), Mem::pre(sp, -80));
  a_.stp(X(0), X(1), Mem::at(sp, 16));
  a_.stp(X(2), X(3), Mem::at(sp, 32));
  a_.stp(X(4), X(7), Mem::at(sp, 48));
  a_.str(X(9), Mem::at(sp, 64));
  a_.mov(X(0), kState);
  a_.mov(X(1), X(9));
  a_.mov(X(2), X(kT0));
  a_.mov(X(3), kFp);
  a_.mov_imm(ip0, fn);
  a_.blr(ip0);
  a_.mov(X(kT0), X(0));
  a_.ldr(X(9), Mem::at(sp, 64));
  a_.ldp(X(4), X(7), Mem::at(sp, 48));
  a_.ldp(X(2), X(3), Mem::at(sp, 32));
  a_.ldp(X(0), X(1), Mem::at(sp, 16));
  a_.ldp(X(29), X(30), Mem::post(sp, 80));
  a_.ret();
}

}  // namespace

Result<GeneratedCode> generate(const isa::Program& program, const vm::HelperRegistry& helpers,
                               const vm::CompileOptions& options, const RuntimeCalls& calls,
                               const Target& target) {
  auto analysis = lowering::analyze(program, helpers, options);
  if (!analysis) return analysis.error();
  std::uint64_t key = 0;
  if (options.blind_constants) {
    std::random_device random;
    while (key == 0) key = std::uint64_t{random()} << 32 | random();
  }
  // Short branch forms first; a program too large for them is generated again with far forms.
  auto code = Codegen(*analysis, calls, target, key, options.enforce_budget, false).run();
  if (!code) code = Codegen(*analysis, calls, target, key, options.enforce_budget, true).run();
  if (code) code->blinding_key = key;
  return code;
}

}  // namespace bpfvm::jit::a64
