#include "jit/x64/emit.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>

#include "jit/lowering/loops.hpp"
#include "jit/lowering/patterns.hpp"
#include "jit/x64/assembler.hpp"
#include "jit/x64/state.hpp"

namespace bpfvm::jit::x64 {
namespace {

using isa::Kind;
using isa::Operation;
using isa::Source;
using lowering::Analysis;
using lowering::Insn;

// BPF r0..r10 (docs/JIT-x64.md: r1-r5 are the System V argument registers, r6-r9 and r10
// callee-saved, r0 is rax for helper results and cmpxchg).
constexpr std::array<Reg, 11> host = {rax, rdi, rsi, rdx, rcx, r8, rbx, r13, r14, r15, rbp};
constexpr Reg state_reg = r12;  // JitState* for the whole run
constexpr Reg budget_reg = r9;  // remaining instructions
constexpr Reg tmp = r10;        // scratch
constexpr Reg addr_reg = r11;   // scratch: checked addresses, call targets

#define BPFVM_FIELD(f) static_cast<std::int32_t>(offsetof(JitState, f))
#define BPFVM_FIELD_OF(type, f) static_cast<std::int32_t>(offsetof(type, f))
Mem field(std::int32_t offset) { return ptr(state_reg, offset); }
Mem spill(int i) { return field(BPFVM_FIELD(spill) + 8 * i); }
constexpr int spill_r0 = 5, spill_id = 6, spill_ok = 7;  // spill[0..4]: r1..r5 around calls

Size alu_size(const isa::OpInfo& row) { return row.width == 64 ? Size::b64 : Size::b32; }
Size bytes_size(unsigned bytes) {
  switch (bytes) {
    case 1: return Size::b8;
    case 2: return Size::b16;
    case 4: return Size::b32;
    default: return Size::b64;
  }
}
unsigned log2_bytes(unsigned bytes) { return bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : 3; }

Cond condition(Operation o) {
  switch (o) {
    case Operation::jeq: return Cond::e;
    case Operation::jne: return Cond::ne;
    case Operation::jgt: return Cond::a;
    case Operation::jge: return Cond::ae;
    case Operation::jlt: return Cond::b;
    case Operation::jle: return Cond::be;
    case Operation::jsgt: return Cond::g;
    case Operation::jsge: return Cond::ge;
    case Operation::jslt: return Cond::l;
    case Operation::jsle: return Cond::le;
    case Operation::jset: return Cond::ne;
    default: return Cond::e;
  }
}

Alu alu_of(Operation o) {
  switch (o) {
    case Operation::add:
    case Operation::fetch_add: return Alu::add;
    case Operation::sub: return Alu::sub;
    case Operation::bor:
    case Operation::fetch_bor: return Alu::or_;
    case Operation::band:
    case Operation::fetch_band: return Alu::and_;
    case Operation::bxor:
    case Operation::fetch_bxor: return Alu::xor_;
    default: return Alu::add;
  }
}

Shift shift_of(Operation o) {
  switch (o) {
    case Operation::lsh: return Shift::shl;
    case Operation::rsh: return Shift::shr;
    default: return Shift::sar;
  }
}

// Out-of-line code after the functions: trap paths and the rare halves of division.
struct Cold {
  enum class What {
    budget,
    budget_after_move,
    budget_after_goto,
    goto_paid_early,
    to_slow,
    group_retry,
    call_depth,
    helper_error,
    bad_call,
    div_zero,
    div_minus_one,
    move_chain
  } what = What::budget;
  Label at;  // budget: unused (jump holds the jcc to patch)
  Label back;
  Label exact;             // move_chain: the exact copy's entry (a slow copy's way into the chain)
  std::uint32_t jump = 0;  // budget: where the jcc's displacement sits
  std::uint32_t pc = 0;
  std::uint32_t value = 0;  // budget: the block's count
  AccessKind access = access_read;
  Reg dst = rax;
  Size size = Size::b64;
  Operation op = Operation::div;
  std::uint32_t span = 0;    // group_retry: bytes covered by the group; budget_after_goto: the target pc
  bool stack_first = false;  // group_retry: the in-line check was the stack's
};

// What the planning pass looks at in a form (from the ISA table): whether a window may start
// there (a 64-bit register mov or shift, a conditional jump), a memory access, a legacy load.
enum PlanFlag : std::uint8_t { plan_window = 1, plan_access = 2, plan_legacy = 4 };
constexpr std::array<std::uint8_t, isa::op_count> plan_flags = [] {
  std::array<std::uint8_t, isa::op_count> flags{};
  for (const isa::OpInfo& row : isa::op_table) {
    std::uint8_t f = 0;
    if (row.id == isa::Op::mov64_reg || row.id == isa::Op::lsh64_imm ||
        (row.kind == Kind::jump && row.operation != Operation::ja))
      f |= plan_window;
    if (row.kind == Kind::load || row.kind == Kind::store || row.kind == Kind::atomic) f |= plan_access;
    if (row.kind == Kind::legacy) f |= plan_legacy;
    flags[static_cast<std::size_t>(row.id)] = f;
  }
  return flags;
}();

// A group of accesses through one base register: [base + lo, base + hi) is checked once.
struct Group {
  int base;
  std::int32_t lo, hi;
  unsigned kinds;  // 1 read, 2 write, 3 both
};

// A hoisted loop's labels (lowering/loops.hpp): its copy without the hoisted checks has a label
// per pc (`copy + pc - head`) and per block start after the payment (`copy_body + pc - head`).
// Entered at its head, the entry check is in line and the ordinary copy's back edges come in
// after it (`after_check`); entered inside (rotated), the check is out of line (`check`) and
// only the jumps from outside go there.
struct LoopLabels {
  std::uint32_t copy = 0, copy_body = 0;
  Label after_check, check;
};

// What an Emitter allocates, kept per thread between compiles (emit.hpp): the vectors keep
// their capacity, so a compile neither allocates them again nor faults their pages in.
struct Workspace {
  Assembler a;
  std::vector<Label> slow;
  std::vector<std::int32_t> group_at;
  std::vector<std::uint8_t> window;
  std::vector<Group> groups;
  std::vector<bool> has_slow, prepaid, merged_goto, outlined;
  std::vector<Label> body;
  std::vector<Cold> cold;
  std::vector<std::uint32_t> insn_offset;
  std::vector<lowering::HoistedLoop> loops;
  std::vector<LoopLabels> loop_labels;
  std::vector<std::int32_t> entry_of;
};

class Emitter {
 public:
  Emitter(const Analysis& analysis, const EmitOptions& options, Workspace& w)
      : an_(analysis),
        opt_(options),
        a_(w.a),
        slow_(w.slow),
        group_at_(w.group_at),
        window_(w.window),
        groups_(w.groups),
        has_slow_(w.has_slow),
        prepaid_(w.prepaid),
        merged_goto_(w.merged_goto),
        outlined_(w.outlined),
        body_(w.body),
        cold_(w.cold),
        insn_offset_(w.insn_offset),
        loops_(w.loops),
        loop_labels_(w.loop_labels),
        entry_of_(w.entry_of) {}

  Result<Emitted> run() {
    const auto n = static_cast<std::uint32_t>(an_.insns.size());
    a_.reset();
    groups_.clear();
    cold_.clear();
    // At most (measured on the bench suite) about 18 bytes, 2 labels and 1.4 forward jumps per
    // instruction with the slow copies and stubs, and 0.45 out-of-line stubs.
    a_.reserve(24 * std::size_t{n} + 4096, 3 * std::size_t{n} + 16, 2 * std::size_t{n} + 16);
    cold_.reserve(std::size_t{n} / 2 + 16);
    first_pc_label_ = a_.new_labels(n).id;
    exit_ = a_.new_label();
    check_thunk_ = a_.new_label();
    check_entry_ = a_.new_label();
    trap_tail_ = a_.new_label();
    legacy_thunk_ = a_.new_label();
    budget_thunk_ = a_.new_label();
    Emitted out;
    insn_offset_.assign(n, 0);
    paid_ahead_ = &out.paid_ahead;
    budget_sites_ = &out.budget_sites;
    group_at_.assign(n, -1);
    slow_.assign(n, Label{});
    has_slow_.assign(an_.blocks.size(), false);
    window_.assign(n, 0);
    for (std::size_t b = 0; b < an_.blocks.size(); ++b) plan(b);
    plan_loops();
    // Block-level decisions, each needing the one before complete for every block: which blocks
    // the conditional move before them pays for, which gotos pay with their target, which
    // loops close with one jcc. Jumps end blocks, so only a block's last slot can start these.
    prepaid_.assign(an_.blocks.size(), false);
    merged_goto_.assign(an_.blocks.size(), false);
    body_.assign(an_.blocks.size(), Label{});
    outlined_.assign(n, false);
    for (const lowering::Block& b : an_.blocks) {
      const std::uint32_t jump = last_of(b);
      if ((window_[jump] & conditional_move_window) == 0) continue;
      const std::uint32_t next = an_.block_of[jump + 2];
      prepaid_[next] = opt_.budget && an_.jumps_to[jump + 2] == 1 && !has_slow_[next];
    }
    for (std::uint32_t i = 0; opt_.budget && i < an_.blocks.size(); ++i) plan_merged_goto(i);
    for (const lowering::Block& b : an_.blocks)
      if (b.end < n) mark_goto_after_jump(last_of(b));
    plan_move_chains();

    prologue();
    for (std::size_t f = 0; f < an_.functions.size(); ++f) {
      const lowering::Function& fn = an_.functions[f];
      for (std::uint32_t i = an_.block_of[fn.start]; i < an_.blocks.size() && an_.blocks[i].first < fn.end;
           ++i)
        fast_block(i);
      if (f == 0) epilogue();
    }
    out.body_end = static_cast<std::uint32_t>(a_.size());
    for (std::uint32_t i = 0; i < an_.blocks.size(); ++i) {
      const std::uint32_t pc = an_.blocks[i].first;
      if (!outlined_[pc]) continue;
      a_.bind(at_pc(pc));
      block_entry(i);
      instruction(pc);
    }
    for (std::size_t i = 0; i < loops_.size(); ++i) unchecked_copy(i);
    // The thunks first: the slow copies and stubs after them call and jump back to them, which
    // needs no fix-up.
    thunks();
    fast_ = false;
    for (std::size_t b = 0; b < an_.blocks.size(); ++b)
      if (has_slow_[b]) slow_copy(an_.blocks[b]);
    // By value: a chain's exact copy defers stubs of its own (the vector may grow).
    for (std::size_t i = 0; i < cold_.size(); ++i) emit_cold(Cold(cold_[i]));
    if (Status s = a_.link(); !s) return s.error();
    out.code = a_.bytes();
    out.insn_offset = insn_offset_;
    return out;
  }

 private:
  // ---- entry and exit ----

  void prologue() {
    for (Reg r : {rbp, rbx, r12, r13, r14, r15}) a_.push(r);
    a_.alu(Alu::sub, Size::b64, rsp, 8);  // 16-byte alignment at every call we make
    a_.mov(Size::b64, state_reg, rdi);
    a_.mov(Size::b64, field(BPFVM_FIELD(saved_rsp)), rsp);
    a_.mov(Size::b64, rbp, field(BPFVM_FIELD(frame_top)));
    a_.mov(Size::b64, budget_reg, field(BPFVM_FIELD(budget)));
    for (Reg r : {rax, rbx, r13, r14, r15}) a_.alu(Alu::xor_, Size::b32, r, r);
    for (int i = 5; i >= 1; --i) a_.mov(Size::b64, host[i], field(BPFVM_FIELD(args) + 8 * (i - 1)));
  }

  // The common exit: registers and the budget back to the state, then the host's frame.
  void epilogue() {
    a_.bind(exit_);
    for (int i = 0; i < 11; ++i) a_.mov(Size::b64, field(BPFVM_FIELD(regs) + 8 * i), host[i]);
    a_.mov(Size::b64, field(BPFVM_FIELD(budget)), budget_reg);
    a_.mov(Size::b64, rsp, field(BPFVM_FIELD(saved_rsp)));
    a_.alu(Alu::add, Size::b64, rsp, 8);
    for (Reg r : {r15, r14, r13, r12, rbx, rbp}) a_.pop(r);
    a_.ret();
  }

  // Out-of-line code leaves through one shared tail that records the trap (r10 = pc, r11 = kind;
  // both are scratch by then).
  void trap_exit(Exit kind, std::uint32_t pc) {
    a_.mov_imm32(tmp, pc);
    a_.mov_imm32(addr_reg, static_cast<std::uint32_t>(kind));
    a_.jmp(trap_tail_);
  }

  // A new out-of-line stub, built in place (the caller sets what else it needs before the next
  // defer(), which may move it).
  // A budget check's jcc (the flags are set) to its stub: `call` to the shared budget thunk.
  void budget_check(std::uint32_t pc, std::uint32_t count) {
    Cold& c = cold_.emplace_back();
    c.what = Cold::What::budget;
    c.pc = pc;
    c.value = count;
    c.jump = a_.jcc_forward(Cond::b);
  }

  Cold& defer(Cold::What what, std::uint32_t pc, std::uint32_t value = 0) {
    Cold& c = cold_.emplace_back();
    c.what = what;
    c.pc = pc;
    c.value = value;
    c.at = a_.new_label();
    // Only a group's retry comes back to a label of its own (division comes back after its result).
    if (what == Cold::What::group_retry) c.back = a_.new_label();
    return c;
  }

  // ---- blocks: a fast copy and, where needed, a slow copy ----
  //
  // Fast copy (in line): the block pays its whole count on entry; the memory accesses of the
  // block are grouped by base register (a group ends where its base is written), and one check
  // of the group's whole span before its first access covers all of them, so the accesses
  // themselves are bare `[base + off]` operands. Slow copy (out of line, only for blocks with
  // checked accesses): the fast copy jumps there, refunding what it paid for the rest of the
  // block, when the budget does not cover the block or a group's span is not inside the first
  // region. The slow copy checks every access on its own and pays the budget per segment (a
  // segment ends after every access that may trap), so that when the budget runs out inside a
  // segment the instructions the interpreter would still have run there touch registers only,
  // and the trap can be taken at the segment's entry with the exact pc and count.

  bool checked(const Insn& in) const {
    const Kind kind = in.info().kind;
    return (kind == Kind::load || kind == Kind::store || kind == Kind::atomic) && lowering::needs_check(in);
  }
  bool ends_segment(std::uint32_t pc) const {
    return checked(an_.insns[pc]) || an_.insns[pc].info().kind == Kind::legacy;
  }
  Label at_pc(std::uint32_t pc) const { return Label{first_pc_label_ + pc}; }
  std::uint32_t pc_before(std::uint32_t pc) const { return an_.insns[pc - 1].second_slot ? pc - 2 : pc - 1; }
  static bool valid(Label l) { return l.id != Label{}.id; }

  // One pass over a block: the windows starting at each slot (jit/lowering/patterns.hpp), and
  // the groups of checked accesses with the slow copy's entries.
  void plan(std::size_t index) {
    const lowering::Block& b = an_.blocks[index];
    std::array<std::int32_t, 11> open;
    lowering::RegSet open_bases = 0;  // the registers with an entry in `open`
    bool slow = false;
    for (std::uint32_t pc = b.first; pc < b.end; ++pc) {
      const Insn& in = an_.insns[pc];
      if (in.second_slot) continue;
      const lowering::RegSet written = an_.writes[pc];
      const std::uint8_t flags = plan_flags[static_cast<std::size_t>(in.op)];
      if (flags == 0) {  // most slots: nothing to plan, unless they end a group
        open_bases &= static_cast<lowering::RegSet>(~written);
        continue;
      }
      const isa::OpInfo& row = in.info();
      if ((flags & plan_window) != 0) plan_windows(pc, in, row);
      if ((flags & plan_legacy) != 0) {
        slow = true;
        slow_[pc] = a_.new_label();
      } else if ((flags & plan_access) != 0 && checked(in)) {
        slow = true;
        const int base = row.kind == Kind::load ? in.src : in.dst;
        const std::int32_t lo = in.off, hi = in.off + static_cast<std::int32_t>(row.width / 8u);
        const unsigned kind = row.kind == Kind::load ? 1u : row.kind == Kind::store ? 2u : 3u;
        if ((open_bases & lowering::reg_bit(base)) == 0) {
          open_bases |= lowering::reg_bit(base);
          open[base] = static_cast<std::int32_t>(groups_.size());
          group_at_[pc] = open[base];
          groups_.push_back(Group{base, lo, hi, kind});
          slow_[pc] = a_.new_label();
        } else {
          Group& g = groups_[static_cast<std::size_t>(open[base])];
          g.lo = std::min(g.lo, lo);
          g.hi = std::max(g.hi, hi);
          g.kinds |= kind;
        }
      }
      open_bases &= static_cast<lowering::RegSet>(~written);
    }
    if (!slow) return;
    has_slow_[index] = true;
    if (!valid(slow_[b.first])) slow_[b.first] = a_.new_label();
  }

  // The windows starting at pc: each starts with a 64-bit register mov or shift (address and
  // scaled sums) or a conditional jump (conditional move).
  void plan_windows(std::uint32_t pc, const Insn& first, const isa::OpInfo& row) {
    if (first.op == isa::Op::mov64_reg || first.op == isa::Op::lsh64_imm) {
      // A blinded displacement would show its constant in the code.
      const auto scaled = lowering::scaled_sum(an_, pc);
      if (scaled && !(scaled->has_disp && blinding())) window_[pc] |= scaled_sum_window;
    }
    if (first.op == isa::Op::mov64_reg && lowering::address_sum(an_, pc)) {
      window_[pc] |= address_sum_window;
      // A blinded constant goes through a register anyway: nothing to fold.
      const Insn& add = an_.insns[pc + 1];
      const bool imm = add.info().source == Source::imm;
      if (!(imm && blinding()) && lowering::foldable_access(an_, pc + 2, first.dst, imm ? add.imm : 0))
        window_[pc] |= folded_access_window;
    }
    if (row.kind == Kind::jump && lowering::conditional_move(an_, pc)) window_[pc] |= conditional_move_window;
  }

  // A block that is only a goto pays for itself with its target's block (not for a goto to a
  // goto, to itself or to the next slot, nor where a conditional move pays already).
  void plan_merged_goto(std::uint32_t i) {
    const lowering::Block& b = an_.blocks[i];
    const Insn& in = an_.insns[b.first];
    if (b.count != 1 || in.info().kind != Kind::jump || in.info().operation != Operation::ja) return;
    const std::uint32_t target = an_.block_of[in.target];
    const lowering::Block& t = an_.blocks[target];
    const bool target_is_goto = t.count == 1 && an_.insns[t.first].info().kind == Kind::jump &&
                                an_.insns[t.first].info().operation == Operation::ja;
    if (target == i || target_is_goto || in.target == b.first + 1 || prepaid_[i] || prepaid_[target]) return;
    merged_goto_[i] = true;
    if (!valid(body_[target])) body_[target] = a_.new_label();
  }

  // The block's last instruction (not an lddw's second slot).
  std::uint32_t last_of(const lowering::Block& b) const {
    return an_.insns[b.end - 1].second_slot ? b.end - 2 : b.end - 1;
  }

  // The fast copy of a block (an outlined goto comes after the functions; a conditional move's
  // mov was emitted with its jump).
  // In a hoisted loop's unchecked copy (copy_), the same with the copy's labels; the listing's
  // offsets stay the ordinary copy's.
  void fast_block(std::uint32_t index) {
    const lowering::Block& b = an_.blocks[index];
    const bool ordinary = copy_ == nullptr;
    if (ordinary) insn_offset_[b.first] = static_cast<std::uint32_t>(a_.size());
    if (outlined_[b.first]) return;
    // A loop starts a 64-byte line (nops on the way in): a small loop that crosses a line
    // runs up to twice as slow on AMD Zen (measured: inet_csum, memcpy_cmp).
    if (b.loop_head) a_.nop(-a_.size() % loop_alignment);
    // Jumps, calls and fall-throughs out of slow copies only ever enter at a block start.
    a_.bind(ordinary ? at_pc(b.first) : copy_label(b.first));
    if (fused_move(b.first)) return;
    if (ordinary && !loops_.empty()) inline_entry_check(b.first);
    block_entry(index);
    for (std::uint32_t pc = b.first; pc < b.end; ++pc) {
      // The block's first instruction starts with the alignment and the payment.
      if (ordinary && pc != b.first) insn_offset_[pc] = static_cast<std::uint32_t>(a_.size());
      if (an_.insns[pc].second_slot) continue;
      access_entry(pc);
      if (const std::uint32_t more = address_sum(pc)) {
        for (const std::uint32_t last = pc + more; pc < last;)
          if (++pc; ordinary) insn_offset_[pc] = static_cast<std::uint32_t>(a_.size());
        continue;
      }
      instruction(pc);
    }
  }

  // ---- loops checked once per entry (jit/lowering/loops.hpp) ----

  // Not with blinding: the entry check's constants come from the program's.
  void plan_loops() {
    loops_.clear();
    loop_labels_.clear();
    if (blinding() || std::find(has_slow_.begin(), has_slow_.end(), true) == has_slow_.end()) return;
    lowering::hoisted_loops(an_, loops_);
    if (loops_.empty()) return;
    entry_of_.assign(an_.blocks.size(), -1);
    for (std::size_t i = 0; i < loops_.size(); ++i) {
      const lowering::HoistedLoop& loop = loops_[i];
      entry_of_[an_.block_of[loop.entry]] = static_cast<std::int32_t>(i);
      const std::uint32_t n = loop.end - loop.head;
      loop_labels_.push_back(
          LoopLabels{a_.new_labels(n).id, a_.new_labels(n).id, a_.new_label(), a_.new_label()});
    }
  }
  // The loop entered at pc (a block start), or -1.
  std::int32_t loop_entered_at(std::uint32_t pc) const {
    if (loops_.empty()) return -1;
    const std::int32_t i = entry_of_[an_.block_of[pc]];
    return i >= 0 && loops_[static_cast<std::size_t>(i)].entry == pc ? i : -1;
  }
  bool in_copy(std::uint32_t pc) const { return copy_ && pc >= copy_->head && pc < copy_->end; }
  Label copy_label(std::uint32_t pc) const { return Label{copy_labels_->copy + pc - copy_->head}; }
  bool hoisted(std::uint32_t pc) const {
    return copy_ && std::binary_search(copy_->accesses.begin(), copy_->accesses.end(), pc);
  }

  // Where a jump from `from` to `to` goes: within an unchecked copy, to the copy. In the
  // ordinary fast copy, to a hoisted loop's entry: from inside, past the entry check (it failed
  // when the loop was entered); from outside a rotated loop, to its out-of-line check. Slow
  // copies go to the ordinary copy.
  Label pc_label(std::uint32_t from, std::uint32_t to) const {
    if (in_copy(to)) return copy_label(to);
    const std::int32_t entered = fast_ && !copy_ ? loop_entered_at(to) : -1;
    if (entered < 0) return at_pc(to);
    const auto i = static_cast<std::size_t>(entered);
    const bool inside = from >= loops_[i].head && from < loops_[i].end;
    if (loops_[i].entry == loops_[i].head) return inside ? loop_labels_[i].after_check : at_pc(to);
    return inside ? at_pc(to) : loop_labels_[i].check;
  }
  // The same for entering a block after its payment (a merged goto's target).
  Label body_label(std::uint32_t block) const {
    const std::uint32_t first = an_.blocks[block].first;
    return in_copy(first) ? Label{copy_labels_->copy_body + first - copy_->head} : body_[block];
  }

  // The copy of a hoisted loop without its hoisted checks, out of line: entered only from its
  // entry check, it leaves for the ordinary code (whose own checks make any way out sound).
  void unchecked_copy(std::size_t i) {
    if (loops_[i].entry != loops_[i].head) {
      a_.bind(loop_labels_[i].check);
      const Label fail = a_.new_label();
      entry_check(i, fail);
      a_.bind(fail);
      a_.jmp(at_pc(loops_[i].entry));
    }
    copy_ = &loops_[i];
    copy_labels_ = &loop_labels_[i];
    const std::uint32_t first = an_.block_of[copy_->head], last = an_.block_of[copy_->end - 1];
    for (std::uint32_t b = first; b <= last; ++b) fast_block(b);
    // The loop's end falls through unless its last block is a goto in line.
    const Insn& end = an_.insns[last_of(an_.blocks[last])];
    if (outlined_[an_.blocks[last].first] ||
        !(end.info().kind == Kind::jump && end.info().operation == Operation::ja))
      a_.jmp(at_pc(copy_->end));
    // Its outlined gotos (a jump over a goto enters them) after it, as the ordinary copy's.
    for (std::uint32_t b = first; b <= last; ++b) {
      if (!outlined_[an_.blocks[b].first]) continue;
      a_.bind(copy_label(an_.blocks[b].first));
      block_entry(b);
      instruction(an_.blocks[b].first);
    }
    copy_ = nullptr;
    copy_labels_ = nullptr;
  }

  // At the head of a loop entered there (before its payment): the entry check, the ordinary
  // copy after it.
  void inline_entry_check(std::uint32_t pc) {
    const std::int32_t entered = loop_entered_at(pc);
    if (entered < 0 || loops_[static_cast<std::size_t>(entered)].head != pc) return;
    const auto i = static_cast<std::size_t>(entered);
    entry_check(i, loop_labels_[i].after_check);
    a_.bind(loop_labels_[i].after_check);
  }

  // Each bounded register within its bound, K (lowering::Trip) from the registers, then every
  // range [sum + lo, sum + hi + bounded + K * step) inside the first region (or the current
  // frame) for the access kinds it holds: then the unchecked copy runs, from the entry; else
  // this jumps to `fail`.
  void entry_check(std::size_t i, Label fail) {
    const lowering::HoistedLoop* loop = &loops_[i];
    for (const lowering::Bound& b : loop->bounds) {
      a_.alu(Alu::cmp, Size::b64, host[b.reg], static_cast<std::int32_t>(b.max));
      a_.jcc(Cond::a, fail);
    }
    trips(loop->trip, fail);
    for (const lowering::Range& r : loop->ranges) {
      // r11 = K * step + (hi - lo) + bounded: the span; r10 = the scaled registers + lo: the start.
      const auto span = static_cast<std::int32_t>(r.hi - r.lo + static_cast<std::int32_t>(r.bounded));
      if (r.step != 0) {
        a_.mov(Size::b64, tmp, field(BPFVM_FIELD(trips)));
        a_.imul(Size::b64, addr_reg, tmp, static_cast<std::int32_t>(r.step));
        a_.alu(Alu::add, Size::b64, addr_reg, span);
      } else {
        a_.mov_imm32(addr_reg, static_cast<std::uint32_t>(span));
      }
      const Reg start = tmp;
      if (r.count == 0) a_.mov_imm(start, static_cast<std::uint64_t>(std::int64_t{r.lo}));
      for (std::uint8_t term = 0; term < r.count; ++term) {
        const Reg reg = host[r.regs[term]];
        const auto scale = static_cast<std::uint8_t>(1u << r.log2_scale[term]);
        if (term == 0)
          a_.lea(Size::b64, start, scale == 1 ? ptr(reg, r.lo) : index_ptr(reg, scale, r.lo));
        else
          a_.lea(Size::b64, start, ptr(start, reg, scale, 0));
      }
      if (r.stack) {  // [start, start + span) inside [r10 - 512, r10)
        a_.alu(Alu::add, Size::b64, addr_reg, start);
        a_.jcc(Cond::b, fail);
        a_.alu(Alu::cmp, Size::b64, addr_reg, rbp);
        a_.jcc(Cond::a, fail);
        a_.alu(Alu::add, Size::b64, start, isa::stack_frame_size);
        a_.alu(Alu::cmp, Size::b64, start, rbp);
        a_.jcc(Cond::b, fail);
      } else {
        const std::int32_t region = BPFVM_FIELD(fast) + static_cast<std::int32_t>(sizeof(FastRegion)) *
                                                            static_cast<std::int32_t>(r.kinds - 1);
        a_.alu(Alu::cmp, Size::b64, start, field(region + BPFVM_FIELD_OF(FastRegion, start)));
        a_.jcc(Cond::b, fail);
        a_.alu(Alu::add, Size::b64, addr_reg, start);
        a_.jcc(Cond::b, fail);
        a_.alu(Alu::cmp, Size::b64, addr_reg, field(region + BPFVM_FIELD_OF(FastRegion, end)));
        a_.jcc(Cond::a, fail);
      }
    }
    a_.jmp(copy_label_of(i, loop->entry));
  }

  // K into state.trips (lowering::Trip), or to `fail` when the counter and its bound are outside
  // what the check covers.
  void trips(const lowering::Trip& t, Label fail) {
    const std::int32_t step = std::int32_t{1} << t.log2_step;
    // r10 = D = B - c, where c <= B < 2^62: the counter stays below B + step < 2^63, where
    // signed compares agree with unsigned ones.
    if (t.bound_is_reg) {
      a_.mov(Size::b64, tmp, host[t.bound_reg]);
      a_.shift(Shift::shr, Size::b64, tmp, 62);
      a_.jcc(Cond::ne, fail);
      a_.mov(Size::b64, tmp, host[t.bound_reg]);
    } else {
      a_.mov_imm(tmp, t.bound);
    }
    a_.alu(Alu::sub, Size::b64, tmp, host[t.counter]);
    a_.jcc(Cond::b, fail);
    switch (t.cont) {
      case lowering::Trip::Continue::at_most:
      case lowering::Trip::Continue::below:
        if (t.cont == lowering::Trip::Continue::at_most) a_.alu(Alu::add, Size::b64, tmp, 1);
        if (t.counted_first) {  // D - 1, or 0 when D is 0: floor((D - 1) / s) = ceil(D / s) - 1
          a_.alu(Alu::sub, Size::b64, tmp, 1);
          a_.alu(Alu::adc, Size::b64, tmp, 0);
        } else if (step > 1) {
          a_.alu(Alu::add, Size::b64, tmp, step - 1);
        }
        if (t.log2_step != 0) a_.shift(Shift::shr, Size::b64, tmp, t.log2_step);
        break;
      case lowering::Trip::Continue::not_equal:
        if (step > 1) {
          a_.test(Size::b64, tmp, step - 1);
          a_.jcc(Cond::ne, fail);
          a_.shift(Shift::shr, Size::b64, tmp, t.log2_step);
        }
        if (t.counted_first) {
          a_.alu(Alu::sub, Size::b64, tmp, 1);
          a_.jcc(Cond::b, fail);
        }
        break;
    }
    // K < 2^31, so K * step (< 2^31) + span cannot wrap.
    a_.alu(Alu::cmp, Size::b64, tmp, 0x7fffffff);
    a_.jcc(Cond::a, fail);
    a_.mov(Size::b64, field(BPFVM_FIELD(trips)), tmp);
  }
  Label copy_label_of(std::size_t i, std::uint32_t pc) const {
    return Label{loop_labels_[i].copy + pc - loops_[i].head};
  }

  // The fast copy's entry to a block: its budget, and the label a merged goto enters by.
  void block_entry(std::uint32_t index) {
    const lowering::Block& b = an_.blocks[index];
    if (opt_.budget && !prepaid_[index] && !merged_goto_[index]) {
      a_.alu(Alu::sub, Size::b64, budget_reg, static_cast<std::int32_t>(b.count));
      if (has_slow_[index])
        a_.jcc(Cond::b, defer(Cold::What::to_slow, b.first, b.count).at);
      else
        budget_check(b.first, b.count);
    }
    if (valid(body_[index])) a_.bind(body_label(index));
  }

  // What the fast copy emits before the instruction at pc: a group check, or (for a legacy
  // packet load, which may trap after the block paid) the move to the slow copy.
  void access_entry(std::uint32_t pc) {
    const std::uint32_t rest = an_.left_after[pc] + 1;  // paid for, from pc to the block's end
    if (an_.insns[pc].info().kind == Kind::legacy) {
      refund(rest);
      a_.jmp(slow_[pc]);
      return;
    }
    if (group_at_[pc] < 0 || hoisted(pc)) return;
    const Group& g = groups_[static_cast<std::size_t>(group_at_[pc])];
    // Bases derived from r10 are tried against the stack first, others against the first
    // region; the other place is tried out of line before falling back to the slow copy.
    const bool stack_first = (an_.frame_derived[pc] & lowering::reg_bit(g.base)) != 0;
    const auto access = static_cast<AccessKind>(g.kinds - 1);
    const auto span = static_cast<std::uint32_t>(g.hi - g.lo);
    // The span's first byte: the base itself, or base + lo in r11.
    const Reg first = g.lo == 0 ? host[static_cast<std::size_t>(g.base)] : addr_reg;
    Cold& c = defer(Cold::What::group_retry, pc, rest);
    c.access = access;
    c.span = span;
    c.stack_first = stack_first;
    c.dst = first;
    const Label fail = c.at, back = c.back;
    if (g.lo != 0) a_.lea(Size::b64, addr_reg, ptr(host[static_cast<std::size_t>(g.base)], g.lo));
    if (stack_first)
      frame_check(first, span, fail);
    else
      region_check(first, access, span, fail);
    a_.bind(back);
  }

  // Jumps to `fail` unless [at, at + span) is inside the first region and allows `kind`.
  void region_check(Reg at, AccessKind kind, std::uint32_t span, Label fail) {
    const std::int32_t region = BPFVM_FIELD(fast) + static_cast<std::int32_t>(sizeof(FastRegion)) * kind;
    a_.alu(Alu::cmp, Size::b64, at, field(region + BPFVM_FIELD_OF(FastRegion, start)));
    a_.jcc(Cond::b, fail);
    if (span <= 8 && (span & (span - 1)) == 0) {
      a_.alu(
          Alu::cmp, Size::b64, at,
          field(region + BPFVM_FIELD_OF(FastRegion, last) + 8 * static_cast<std::int32_t>(log2_bytes(span))));
    } else {
      a_.mov(Size::b64, tmp, field(region + BPFVM_FIELD_OF(FastRegion, end)));
      a_.alu(Alu::sub, Size::b64, tmp, static_cast<std::int32_t>(span));
      a_.alu(Alu::cmp, Size::b64, at, tmp);
    }
    a_.jcc(Cond::a, fail);
  }

  // Jumps to `fail` unless [at, at + span) is inside the current frame [r10 - 512, r10): no
  // memory operands, for bases derived from r10 (a caller's frame takes the longer way).
  void frame_check(Reg at, std::uint32_t span, Label fail) {
    a_.lea(Size::b64, tmp, ptr(rbp, -isa::stack_frame_size));
    a_.alu(Alu::cmp, Size::b64, at, tmp);
    a_.jcc(Cond::b, fail);
    a_.lea(Size::b64, tmp, ptr(rbp, -static_cast<std::int32_t>(span)));
    a_.alu(Alu::cmp, Size::b64, at, tmp);
    a_.jcc(Cond::a, fail);
  }

  // Jumps to `fail` unless [at, at + span) is inside the live stack frames (the deepest starts
  // 512 bytes below r10).
  void stack_check(Reg at, std::uint32_t span, Label fail) {
    a_.lea(Size::b64, tmp, ptr(rbp, -isa::stack_frame_size));
    a_.alu(Alu::cmp, Size::b64, at, tmp);
    a_.jcc(Cond::b, fail);
    a_.mov(Size::b64, tmp, field(BPFVM_FIELD(stack_hi)));
    a_.alu(Alu::sub, Size::b64, tmp, static_cast<std::int32_t>(span));
    a_.alu(Alu::cmp, Size::b64, at, tmp);
    a_.jcc(Cond::a, fail);
  }

  void slow_copy(const lowering::Block& b) {
    for (std::uint32_t pc = b.first; pc < b.end; ++pc) {
      if (an_.insns[pc].second_slot) continue;
      if (valid(slow_[pc])) a_.bind(slow_[pc]);
      if (opt_.budget && (pc == b.first || valid(slow_[pc]) || ends_segment(pc_before(pc))))
        pay_segment(pc, b);
      if (const std::uint32_t more = address_sum(pc)) {
        pc += more;
        continue;
      }
      instruction(pc);
    }
    std::uint32_t last = b.end - 1;
    if (an_.insns[last].second_slot) --last;
    const isa::OpInfo& row = an_.insns[last].info();
    const bool falls_through =
        !(row.kind == Kind::exit || (row.kind == Kind::jump && row.operation == Operation::ja));
    if (falls_through) a_.jmp(at_pc(b.end));
  }

  // A segment runs from `first` to the next instruction that may trap (included) or the next
  // entry from the fast copy (excluded), within the block.
  void pay_segment(std::uint32_t first, const lowering::Block& b) {
    std::uint32_t end = first, count = 0;
    while (end < b.end) {
      if (end != first && valid(slow_[end])) break;
      const bool second = an_.insns[end].second_slot;
      const bool last = !second && ends_segment(end);
      if (!second) ++count;
      ++end;
      if (last) break;
    }
    if (end < b.end && an_.insns[end].second_slot) ++end;
    // Slow copies are emitted in block order: the pcs come in increasing order.
    for (std::uint32_t pc = first, left = count; pc < end; ++pc) {
      if (an_.insns[pc].second_slot) continue;
      if (--left != 0) paid_ahead_->push_back(PaidAhead{pc, left});
    }
    a_.alu(Alu::sub, Size::b64, budget_reg, static_cast<std::int32_t>(count));
    budget_check(first, count);
  }

  static bool in_frame(int base, std::int16_t off, unsigned bytes) {
    return base == isa::frame_pointer && off >= -isa::stack_frame_size && off + static_cast<int>(bytes) <= 0;
  }

  // ---- windows (jit/lowering/patterns.hpp) ----

  // The mov of a conditional move: emitted with its jump.
  bool fused_move(std::uint32_t pc) const {
    return pc > 0 && an_.block_start(pc) && (window_[pc - 1] & conditional_move_window) != 0;
  }

  // rD = rS; rD += rT|imm as one lea, or folded into the proven access after it
  // (lowering::foldable_access). Emits the window and returns how many instructions after pc it
  // covered (0: no window at pc).
  std::uint32_t address_sum(std::uint32_t pc) {
    if ((window_[pc] & scaled_sum_window) != 0) return scaled_sum(pc);
    if ((window_[pc] & address_sum_window) == 0) return rotate(pc);
    const Insn& mov = an_.insns[pc];
    const Insn& add = an_.insns[pc + 1];
    const Reg d = host[mov.dst], s = host[mov.src];
    // Folded into a proven access, or in a loop's unchecked copy into a hoisted one.
    if ((window_[pc] & folded_access_window) != 0 ||
        (hoisted(pc + 2) &&
         lowering::foldable_access(an_, pc + 2, mov.dst, add.info().source == Source::imm ? add.imm : 0,
                                   true))) {
      const Insn& in = an_.insns[pc + 2];
      load_or_store(in, add.info().source == Source::imm
                            ? ptr(s, add.imm + in.off)
                            : ptr(s, add.src == mov.dst ? s : host[add.src], 1, in.off));
      return 2;
    }
    if (add.info().source == Source::imm && !blinding()) {
      a_.lea(Size::b64, d, ptr(s, add.imm));
    } else if (add.info().source == Source::reg) {
      a_.lea(Size::b64, d, ptr(s, add.src == mov.dst ? s : host[add.src], 1));
    } else {
      instruction(pc);  // a blinded constant goes through a register anyway
      instruction(pc + 1);
    }
    return 1;
  }

  // rB = (rB << k) | (rB >> (w - k)) as one `rol` (lowering::Rotate). Returns how many
  // instructions after pc it covered.
  std::uint32_t rotate(std::uint32_t pc) {
    const isa::Op op = an_.insns[pc].op;
    if (op != isa::Op::mov32_reg && op != isa::Op::mov64_reg) return 0;
    const auto r = lowering::rotate(an_, pc);
    if (!r) return 0;
    a_.shift(Shift::rol, r->width == 64 ? Size::b64 : Size::b32, host[r->reg], r->left);
    return 3;
  }

  // Gives back what the fast copy paid for instructions it leaves to the slow copy.
  void refund(std::uint32_t count) {
    if (opt_.budget) a_.alu(Alu::add, Size::b64, budget_reg, static_cast<std::int32_t>(count));
  }

  // rB = rS + (rI << k) + imm (lowering::ScaledSum) as one lea, or folded into the proven access
  // after it; rT computed too when it is live. Returns how many instructions after pc it covered.
  std::uint32_t scaled_sum(std::uint32_t pc) {
    const lowering::ScaledSum w = *lowering::scaled_sum(an_, pc);
    const Reg index = host[w.index], temp = host[w.temp];
    const Mem sum = ptr(host[w.base], index, static_cast<std::uint8_t>(1u << w.shift), w.disp);
    const std::uint32_t at = w.last + 1;
    // Folding would run the access before rT is shifted in place: only when it leaves rT alone.
    const bool touches_temp =
        at < an_.insns.size() && ((an_.reads[at] | an_.writes[at]) & lowering::reg_bit(w.temp)) != 0;
    const bool fold =
        lowering::foldable_access(an_, at, w.dst, w.disp, hoisted(at)) && !(w.temp_live && touches_temp);
    const bool in_place = w.temp == w.index;
    if (w.temp_live && !in_place) {
      a_.mov(Size::b64, temp, index);
      a_.shift(Shift::shl, Size::b64, temp, w.shift);
    }
    if (fold) {
      Mem m = sum;
      m.disp += an_.insns[at].off;
      load_or_store(an_.insns[at], m);
    } else {
      a_.lea(Size::b64, host[w.dst], sum);
    }
    if (w.temp_live && in_place) a_.shift(Shift::shl, Size::b64, temp, w.shift);
    return (fold ? at : w.last) - pc;
  }

  // ---- constants (blinded when asked) ----

  // dst = value, where value is what the instruction's immediate means at 64 bits.
  void load_constant(Reg dst, std::uint64_t value) {
    if (opt_.blinding_key == 0) return a_.mov_imm(dst, value);
    // The code holds value ^ key; the key is in the state, not in the code.
    a_.mov_imm(dst, value ^ opt_.blinding_key);
    a_.alu(Alu::xor_, Size::b64, dst, field(BPFVM_FIELD(blinding_key)));
  }
  bool blinding() const { return opt_.blinding_key != 0; }
  static std::uint64_t sext(std::int32_t imm) {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(imm));
  }

  // ---- instructions ----

  void instruction(std::uint32_t pc) {
    const Insn& in = an_.insns[pc];
    const isa::OpInfo& row = in.info();
    switch (row.kind) {
      case Kind::alu: alu(pc, in, row); break;
      case Kind::load:
      case Kind::store:
      case Kind::atomic: memory(pc, in, row); break;
      case Kind::lddw: load_constant(host[in.dst], in.imm64); break;
      case Kind::legacy: legacy(pc, in, row); break;
      case Kind::jump: jump(pc, in, row); break;
      case Kind::call:
        if (row.operation == Operation::local)
          local_call(pc, in);
        else
          helper_call(pc, in, row);
        break;
      case Kind::exit:
        if (an_.function_of[pc] != 0)
          a_.ret();
        else if (!fast_ || pc + 1 != an_.functions[0].end)  // the exit follows the entry function
          a_.jmp(exit_);
        break;
    }
  }

  void alu(std::uint32_t pc, const Insn& in, const isa::OpInfo& row) {
    const Reg d = host[in.dst], s = host[in.src];
    const Size w = alu_size(row);
    const bool reg = row.source == Source::reg;
    switch (row.operation) {
      case Operation::add:
      case Operation::sub:
      case Operation::bor:
      case Operation::band:
      case Operation::bxor:
        if (reg) {
          a_.alu(alu_of(row.operation), w, d, s);
        } else if (blinding()) {
          load_constant(tmp, sext(in.imm));
          a_.alu(alu_of(row.operation), w, d, tmp);
        } else {
          a_.alu(alu_of(row.operation), w, d, in.imm);
        }
        break;
      case Operation::mov:
        if (reg)
          a_.mov(w, d, s);
        else if (w == Size::b64)
          load_constant(d, sext(in.imm));
        else if (blinding())
          load_constant(d, static_cast<std::uint32_t>(in.imm));
        else
          a_.mov_imm32(d, static_cast<std::uint32_t>(in.imm));
        break;
      case Operation::mul:
        if (reg) {
          a_.imul(w, d, s);
        } else if (blinding()) {
          load_constant(tmp, sext(in.imm));
          a_.imul(w, d, tmp);
        } else {
          a_.imul(w, d, d, in.imm);
        }
        break;
      case Operation::neg: a_.unary(Unary::neg, w, d); break;
      case Operation::lsh:
      case Operation::rsh:
      case Operation::arsh: shift(in, row, w, d, s); break;
      case Operation::div:
      case Operation::mod:
      case Operation::sdiv:
      case Operation::smod: divide(pc, in, row, w); break;
      case Operation::movsx: a_.movsx(w, d, bytes_size(row.ext_width / 8u), s); break;
      case Operation::le:
        if (row.width == 16)
          a_.movzx(Size::b32, d, Size::b16, d);
        else if (row.width == 32)
          a_.mov(Size::b32, d, d);
        break;
      case Operation::be:
      case Operation::bswap:
        if (row.width == 16) {
          a_.shift(Shift::rol, Size::b16, d, 8);
          a_.movzx(Size::b32, d, Size::b16, d);
        } else {
          a_.bswap(row.width == 32 ? Size::b32 : Size::b64, d);
        }
        break;
      default: break;
    }
  }

  void shift(const Insn& in, const isa::OpInfo& row, Size w, Reg d, Reg s) {
    const Shift op = shift_of(row.operation);
    const unsigned mask = row.width == 64 ? 63 : 31;
    if (row.source == Source::imm) {
      const auto count = static_cast<std::uint8_t>(static_cast<unsigned>(in.imm) & mask);
      if (count != 0)
        a_.shift(op, w, d, count);
      else if (w == Size::b32)
        a_.mov(Size::b32, d, d);
      return;
    }
    if (opt_.bmi2) return a_.shift_bmi2(op, w, d, d, s);
    // The count must be in cl, and rcx is BPF r4: park r4 in r11 meanwhile.
    if (s == rcx) {
      a_.shift(op, w, d);
    } else {
      a_.mov(Size::b64, addr_reg, rcx);
      a_.mov(Size::b64, rcx, s);
      a_.shift(op, w, d == rcx ? addr_reg : d);
      a_.mov(Size::b64, rcx, addr_reg);
    }
    if (w == Size::b32) a_.mov(Size::b32, d, d);  // a zero count leaves the upper half otherwise
  }

  // rdx:rax division. Zero and (signed) -1 divisors take out-of-line paths; rax (r0) and rdx
  // (r3) are kept in r10/r11 around the division only when they are live afterwards.
  void divide(std::uint32_t pc, const Insn& in, const isa::OpInfo& row, Size w) {
    const Reg d = host[in.dst];
    const Operation o = row.operation;
    const bool is_signed = o == Operation::sdiv || o == Operation::smod;
    const bool is_mod = o == Operation::mod || o == Operation::smod;
    const bool wide = w == Size::b64;
    if (row.source == Source::imm) {
      const std::uint64_t v = wide ? sext(in.imm) : static_cast<std::uint32_t>(in.imm);
      const bool minus_one = wide ? v == ~0ull : v == 0xffffffffu;
      if (v == 0 || (is_signed && minus_one)) {
        divide_special(d, w, o, v == 0);
        return;
      }
    }
    Reg divisor = row.source == Source::reg ? host[in.src] : addr_reg;
    Label done = a_.new_label();
    if (row.source == Source::reg) {
      a_.test(w, divisor, divisor);
      a_.jcc(Cond::e, divide_stub(Cold::What::div_zero, pc, d, w, o, done));
      if (is_signed) {
        a_.alu(Alu::cmp, w, divisor, -1);
        a_.jcc(Cond::e, divide_stub(Cold::What::div_minus_one, pc, d, w, o, done));
      }
    }
    const bool save_rax = d != rax && (an_.live_after(pc, 0) || divisor == rax);
    const bool save_rdx = d != rdx && (an_.live_after(pc, 3) || divisor == rdx);
    bool budget_spilled = false;
    if (save_rax) a_.mov(Size::b64, tmp, rax);
    if (save_rdx) a_.mov(Size::b64, addr_reg, rdx);
    if (divisor == rax) divisor = d == rax ? rax : tmp;
    if (divisor == rdx) divisor = d == rdx ? rax : addr_reg;  // d == rdx: its value moves to rax
    if (row.source == Source::imm) {
      // The constant needs a register that neither save uses.
      divisor = !save_rax ? tmp : !save_rdx ? addr_reg : budget_reg;
      if (divisor == budget_reg) {
        a_.mov(Size::b64, field(BPFVM_FIELD(budget)), budget_reg);
        budget_spilled = true;
      }
      load_constant(divisor, wide ? sext(in.imm) : static_cast<std::uint32_t>(in.imm));
    }
    if (d != rax) a_.mov(w, rax, d);
    if (is_signed) {
      if (wide)
        a_.cqo();
      else
        a_.cdq();
    } else {
      a_.alu(Alu::xor_, Size::b32, rdx, rdx);
    }
    a_.unary(is_signed ? Unary::idiv : Unary::div, w, divisor);
    const Reg result = is_mod ? rdx : rax;
    if (d != result || !wide) a_.mov(w, d, result);
    if (save_rax) a_.mov(Size::b64, rax, tmp);
    if (save_rdx) a_.mov(Size::b64, rdx, addr_reg);
    if (budget_spilled) a_.mov(Size::b64, budget_reg, field(BPFVM_FIELD(budget)));
    a_.bind(done);
  }

  // The out-of-line half of a division by a register that is 0 or -1; it comes back to `done`.
  Label divide_stub(Cold::What what, std::uint32_t pc, Reg d, Size w, Operation o, Label done) {
    Cold& c = defer(what, pc);
    c.dst = d;
    c.size = w;
    c.op = o;
    c.back = done;
    return c.at;
  }

  // Division by zero (div: 0, mod: dst) or signed by -1 (sdiv: -dst, smod: 0).
  void divide_special(Reg d, Size w, Operation o, bool zero) {
    const bool is_mod = o == Operation::mod || o == Operation::smod;
    if (zero ? !is_mod : is_mod) {
      a_.alu(Alu::xor_, Size::b32, d, d);
    } else if (!zero) {
      a_.unary(Unary::neg, w, d);
    } else if (w == Size::b32) {
      a_.mov(Size::b32, d, d);
    }
  }

  // The operand of a load, store or atomic at [base + off], after the checks it needs.
  Mem access(std::uint32_t pc, int base, std::int16_t off, unsigned bytes, AccessKind kind) {
    // r10 with a constant offset inside the current frame cannot miss (r10 is read-only); in
    // the fast copy the group's check covered the access; the verifier proved proven ones.
    if (in_frame(base, off, bytes) || fast_ || an_.insns[pc].proven)
      return ptr(host[static_cast<std::size_t>(base)], off);
    // In a slow copy the whole check, out of line: the slow copy runs when a group's span was
    // neither in the first region nor on the stack (so a test of the first region in line
    // would mostly fail too), or when the budget runs out in the block (once per run).
    a_.lea(Size::b64, addr_reg, ptr(host[base], off));
    a_.mov_imm(tmp, pack_access(pc, kind, bytes));
    a_.call(check_entry_);
    return ptr(addr_reg, 0);
  }

  void memory(std::uint32_t pc, const Insn& in, const isa::OpInfo& row) {
    const unsigned bytes = row.width / 8u;
    const Size sz = bytes_size(bytes);
    if (row.kind == Kind::load) return load(in, row, access(pc, in.src, in.off, bytes, access_read));
    if (row.kind == Kind::store) return store(in, row, access(pc, in.dst, in.off, bytes, access_write));
    atomic(pc, in, row, sz, bytes);
  }

  // The load or store `in` at `m` (checked already, or proven).
  void load_or_store(const Insn& in, Mem m) {
    if (in.info().kind == Kind::load)
      load(in, in.info(), m);
    else
      store(in, in.info(), m);
  }
  void load(const Insn& in, const isa::OpInfo& row, Mem m) {
    const unsigned bytes = row.width / 8u;
    const Size sz = bytes_size(bytes);
    const Reg d = host[in.dst];
    if (row.operation == Operation::loadsx)
      a_.movsx(Size::b64, d, sz, m);
    else if (bytes >= 4)
      a_.mov(sz, d, m);
    else
      a_.movzx(Size::b32, d, sz, m);
  }
  void store(const Insn& in, const isa::OpInfo& row, Mem m) {
    const Size sz = bytes_size(row.width / 8u);
    if (row.source == Source::reg) return a_.mov(sz, m, host[in.src]);
    if (!blinding()) return a_.mov(sz, m, in.imm);
    load_constant(tmp, sext(in.imm));
    a_.mov(sz, m, tmp);
  }

  void atomic(std::uint32_t pc, const Insn& in, const isa::OpInfo& row, Size sz, unsigned bytes) {
    const Mem m = access(pc, in.dst, in.off, bytes, access_read_write);
    const Reg s = host[in.src];
    switch (row.operation) {
      case Operation::add:
      case Operation::bor:
      case Operation::band:
      case Operation::bxor: a_.lock_alu(alu_of(row.operation), sz, m, s); break;
      case Operation::fetch_add: a_.lock_xadd(sz, m, s); break;
      case Operation::xchg: a_.xchg(sz, m, s); break;
      case Operation::cmpxchg:
        a_.lock_cmpxchg(sz, m, s);
        if (sz == Size::b32) a_.mov(Size::b32, rax, rax);  // an equal compare leaves rax's top half
        break;
      case Operation::fetch_bor:
      case Operation::fetch_band:
      case Operation::fetch_bxor: {
        // A compare-exchange loop through rax; the operand and r0 wait in the spill area.
        Mem mm = m;
        if (!mm.has_base() || mm.base != addr_reg || mm.disp != 0) {
          a_.lea(Size::b64, addr_reg, mm);
          mm = ptr(addr_reg, 0);
        }
        a_.mov(Size::b64, spill(spill_r0), rax);
        a_.mov(Size::b64, spill(spill_id), s);
        a_.mov(sz, rax, mm);
        const Label retry = a_.new_label();
        a_.bind(retry);
        a_.mov(sz, tmp, rax);
        a_.alu(alu_of(row.operation), sz, tmp, spill(spill_id));
        a_.lock_cmpxchg(sz, mm, tmp);
        a_.jcc(Cond::ne, retry);
        a_.mov(sz, tmp, rax);
        a_.mov(Size::b64, rax, spill(spill_r0));
        a_.mov(sz, s, tmp);
        break;
      }
      default: break;
    }
  }

  void legacy(std::uint32_t pc, const Insn& in, const isa::OpInfo& row) {
    a_.mov_imm(addr_reg, sext(in.imm));
    if (row.operation == Operation::ind) {
      a_.mov(Size::b32, tmp, host[in.src]);
      a_.alu(Alu::add, Size::b64, addr_reg, tmp);
    }
    a_.mov_imm(tmp, pack_access(pc, access_read, row.width / 8u));
    a_.call(legacy_thunk_);
    a_.mov(Size::b64, rax, field(BPFVM_FIELD(legacy_value)));
  }

  void jump(std::uint32_t pc, const Insn& in, const isa::OpInfo& row) {
    const std::uint32_t next = pc + 1;
    if (row.operation == Operation::ja) {
      const std::uint32_t index = an_.block_of[pc];
      if (merged_goto_[index]) {
        // A block that is only this goto pays for itself with its target's block, then enters
        // the target after the target's own payment.
        const std::uint32_t target = an_.block_of[in.target];
        const std::uint32_t count = an_.blocks[target].count;
        a_.alu(Alu::sub, Size::b64, budget_reg, static_cast<std::int32_t>(count + 1));
        Cold& c = defer(Cold::What::budget_after_goto, pc, count);
        c.span = in.target;
        a_.jcc(Cond::b, c.at);
        a_.jmp(body_label(target));
        return;
      }
      // A goto to the next instruction is nothing in line; a slow copy must still leave.
      if (in.target != next || !fast_) a_.jmp(pc_label(pc, in.target));
      return;
    }
    if (fast_ && (window_[pc] & goto_paid_early_window) != 0) return goto_paid_early(pc, in, row);
    if (fast_ && (window_[pc] & jump_over_goto_window) != 0) {
      // The goto (out of line) is taken when this jump is not.
      compare(in, row);
      return a_.jcc(invert(condition(row.operation)), pc_label(pc, pc + 1));
    }
    // The mov of a conditional move is the next slot (lowering::ConditionalMove).
    const std::uint32_t move_pc = pc + 1;
    const Insn* move = (window_[pc] & conditional_move_window) != 0 ? &an_.insns[move_pc] : nullptr;
    if (move && !exact_chain_ && (window_[pc] & (chain_first_window | chain_more_window)) != 0)
      return chained_move(pc, in, row, *move);
    // A moved constant goes to r11 before the compare (blinding's xor would clobber the flags).
    if (move && move->info().source == Source::imm) load_constant(addr_reg, sext(move->imm));
    compare(in, row);
    if (!move) return a_.jcc(condition(row.operation), pc_label(pc, in.target));
    const Cond runs = invert(condition(row.operation));
    const Reg moved = move->info().source == Source::reg ? host[move->src] : addr_reg;
    if (!opt_.budget) return a_.cmov(runs, Size::b64, host[move->dst], moved);
    // The mov runs (and pays its one instruction) when the jump is not taken: cmov, and the
    // budget minus setcc's 0 or 1 (mov and setcc leave the flags alone).
    a_.mov_imm32(tmp, 0);
    a_.setcc(runs, tmp);
    a_.cmov(runs, Size::b64, host[move->dst], moved);
    const std::uint32_t after = an_.block_of[move_pc + 1];
    if (prepaid_[after]) {
      // The block after the move is entered only from here: pay for it too (one subtraction
      // on the budget's dependency chain instead of two).
      const std::uint32_t count = an_.blocks[after].count;
      a_.alu(Alu::add, Size::b64, tmp, static_cast<std::int32_t>(count));
      a_.alu(Alu::sub, Size::b64, budget_reg, tmp);
      a_.jcc(Cond::b, defer(Cold::What::budget_after_move, move_pc, count).at);
      return;
    }
    a_.alu(Alu::sub, Size::b64, budget_reg, tmp);
    budget_check(move_pc, 1);
  }

  // ---- chains of conditional moves ----
  //
  // `if c1 goto +1; mov; if c2 goto +1; mov; ...` where the block after each mov is only the next
  // conditional move's jump, entered only from that mov (minmax's clamps): each move counted
  // exactly is a subtraction on the budget's dependency chain (r9). A chain pays its largest
  // count once before its first compare, adds up in r10 the moves that did not run (setcc),
  // and gives them back after its last move: two operations on r9 instead of one per move.
  // When the budget does not cover the largest count, an out-of-line copy of the chain with
  // the exact per-move payments runs instead, so a budget trap comes where the interpreter's
  // does. Not with blinding (constants go through r10 there).
  void plan_move_chains() {
    if (!opt_.budget || blinding()) return;
    for (const lowering::Block& b : an_.blocks) {
      const std::uint32_t jump = last_of(b);
      if ((window_[jump] & conditional_move_window) == 0) continue;
      const std::int64_t next = next_in_chain(jump);
      if (next < 0) continue;
      if ((window_[jump] & chain_more_window) == 0) window_[jump] |= chain_first_window;
      window_[static_cast<std::uint32_t>(next)] |= chain_more_window;
    }
  }
  // The conditional move's jump that follows the one at `jump` in a chain, or -1: the block after
  // its mov is entered only from the mov (prepaid) and is only that jump, whose own next block is
  // prepaid too.
  std::int64_t next_in_chain(std::uint32_t jump) const {
    const std::uint32_t next = an_.block_of[jump + 2];
    const lowering::Block& b = an_.blocks[next];
    if (!prepaid_[next] || b.end - b.first != 1) return -1;
    if ((window_[b.first] & conditional_move_window) == 0 || !prepaid_[an_.block_of[b.first + 2]]) return -1;
    return b.first;
  }
  // What a chain from `first` pays at most: each move and the block after it.
  std::uint32_t chain_count(std::uint32_t first) const {
    std::uint32_t count = 0;
    for (std::int64_t j = first; j >= 0; j = next_in_chain(static_cast<std::uint32_t>(j)))
      count += 1 + an_.blocks[an_.block_of[static_cast<std::uint32_t>(j) + 2]].count;
    return count;
  }

  void chained_move(std::uint32_t pc, const Insn& in, const isa::OpInfo& row, const Insn& move) {
    const bool first = (window_[pc] & chain_first_window) != 0;
    if (first && !fast_) {
      // A slow copy ends its block here: the ordinary copy's exact chain runs the moves.
      const auto it = std::find_if(chain_entries_.begin(), chain_entries_.end(),
                                   [&](const ChainEntry& e) { return e.pc == pc; });
      a_.jmp(it->exact);
      return;
    }
    // r10: the moves that did not run so far; r11: the moved constant, then the next one's bit.
    const Reg bit = first ? tmp : addr_reg;
    if (first) {
      const std::uint32_t count = chain_count(pc);
      a_.alu(Alu::sub, Size::b64, budget_reg, static_cast<std::int32_t>(count));
      Cold& c = defer(Cold::What::move_chain, pc, count);
      c.back = a_.new_label();
      c.exact = a_.new_label();
      chain_back_ = c.back;
      if (!copy_) chain_entries_.push_back(ChainEntry{pc, c.exact});
      a_.jcc(Cond::b, c.at);
    }
    if (move.info().source == Source::imm) load_constant(addr_reg, sext(move.imm));
    compare(in, row);
    const Cond runs = invert(condition(row.operation));
    a_.cmov(runs, Size::b64, host[move.dst], move.info().source == Source::reg ? host[move.src] : addr_reg);
    a_.mov_imm32(bit, 0);
    a_.setcc(condition(row.operation), bit);
    if (!first) a_.alu(Alu::add, Size::b64, tmp, addr_reg);
    if (next_in_chain(pc) < 0) {  // the last move: give back what did not run
      a_.alu(Alu::add, Size::b64, budget_reg, tmp);
      a_.bind(chain_back_);
    }
  }

  // The chain from `first` with each move paid exactly (the ordinary conditional moves), then
  // back to the code after the chain.
  void exact_chain(std::uint32_t first, Label back) {
    exact_chain_ = true;
    for (std::int64_t j = first; j >= 0; j = next_in_chain(static_cast<std::uint32_t>(j)))
      instruction(static_cast<std::uint32_t>(j));
    exact_chain_ = false;
    a_.jmp(back);
  }

  // The flags for the conditional jump `in` (a blinded constant goes through r10).
  void compare(const Insn& in, const isa::OpInfo& row) {
    const Size w = alu_size(row);
    const Reg d = host[in.dst];
    const bool test = row.operation == Operation::jset;
    if (row.source == Source::reg) {
      if (test)
        a_.test(w, d, host[in.src]);
      else
        a_.alu(Alu::cmp, w, d, host[in.src]);
    } else if (blinding()) {
      load_constant(tmp, sext(in.imm));
      if (test)
        a_.test(w, d, tmp);
      else
        a_.alu(Alu::cmp, w, d, tmp);
    } else if (test) {
      a_.test(w, d, in.imm);
    } else {
      a_.alu(Alu::cmp, w, d, in.imm);
    }
  }

  // `if cond goto X` falling through to a merged goto (`goto T`, a loop's back edge): the goto's
  // payment goes before the compare (the subtraction sets the flags too), so the loop closes with
  // one `jcc` to T's body instead of jcc, payment and jmp. Leaving for X gives it back. Without
  // a budget there is no payment, and any such goto closes its loop with the one jcc.
  void goto_paid_early(std::uint32_t pc, const Insn& in, const isa::OpInfo& row) {
    const Insn& go = an_.insns[pc + 1];
    if (!opt_.budget) {  // nothing to pay: the loop closes with one jcc
      compare(in, row);
      a_.jcc(invert(condition(row.operation)), pc_label(pc + 1, go.target));
      return a_.jmp(pc_label(pc, in.target));
    }
    const std::uint32_t target = an_.block_of[go.target];
    const std::uint32_t count = an_.blocks[target].count + 1;
    a_.alu(Alu::sub, Size::b64, budget_reg, static_cast<std::int32_t>(count));
    a_.jcc(Cond::b, defer(Cold::What::goto_paid_early, pc, count).at);
    compare(in, row);
    a_.jcc(invert(condition(row.operation)), body_label(target));
    a_.alu(Alu::add, Size::b64, budget_reg, static_cast<std::int32_t>(count));
    a_.jmp(pc_label(pc, in.target));
  }

  // Loops closed by a conditional jump and a goto (docs/JIT-x64.md): marks the jump at pc when
  // the block after it is only a goto entered by falling through from pc.
  void mark_goto_after_jump(std::uint32_t pc) {
    const Insn& in = an_.insns[pc];
    const isa::OpInfo& row = in.info();
    if (row.kind != Kind::jump || row.operation == Operation::ja || in.second_slot ||
        (window_[pc] & conditional_move_window) != 0)
      return;
    const Insn& go = an_.insns[pc + 1];
    if (!an_.block_start(pc + 1) || go.second_slot || go.info().kind != Kind::jump ||
        go.info().operation != Operation::ja || an_.function_of[pc + 1] != an_.function_of[pc])
      return;
    if (in.target == pc + 2 && go.target != pc + 2 && an_.jumps_to[pc + 1] == 0 &&
        !has_slow_[an_.block_of[pc + 1]]) {
      window_[pc] |= jump_over_goto_window;
      outlined_[pc + 1] = true;
    } else if (in.target != pc + 1 && (!opt_.budget || merged_goto_[an_.block_of[pc + 1]])) {
      window_[pc] |= goto_paid_early_window;
    }
  }

  // Saves / restores the argument registers live after a helper call (helpers may clobber them,
  // the interpreter keeps them).
  void save_args(std::uint32_t pc, bool all) {
    for (int r = 1; r <= 5; ++r)
      if (all || an_.live_after(pc, r)) a_.mov(Size::b64, spill(r - 1), host[r]);
  }
  void restore_args(std::uint32_t pc) {
    for (int r = 1; r <= 5; ++r)
      if (an_.live_after(pc, r)) a_.mov(Size::b64, host[r], spill(r - 1));
  }

  void helper_call(std::uint32_t pc, const Insn& in, const isa::OpInfo& row) {
    const bool callx = row.operation == Operation::callx;
    save_args(pc, callx);
    a_.mov(Size::b64, field(BPFVM_FIELD(budget)), budget_reg);
    if (callx) {
      a_.mov(Size::b64, spill(spill_id), host[in.dst]);
      a_.mov(Size::b64, spill(spill_r0), rax);
      a_.mov(Size::b64, rsi, host[in.dst]);
      a_.mov(Size::b64, rdi, state_reg);
      a_.mov_imm(addr_reg, reinterpret_cast<std::uint64_t>(&find_helper));
      a_.call(addr_reg);
      a_.test(Size::b64, rax, rax);
      a_.jcc(Cond::e, defer(Cold::What::bad_call, pc).at);
      a_.mov(Size::b64, addr_reg, rax);
      for (int r = 1; r <= 5; ++r) a_.mov(Size::b64, host[r], spill(r - 1));
    } else {
      a_.mov_imm(addr_reg, reinterpret_cast<std::uint64_t>(in.helper));
    }
    a_.mov(Size::b64, r9, field(BPFVM_FIELD(ctx)));
    a_.call(addr_reg);
    a_.mov(Size::b64, spill(spill_r0), rax);
    a_.mov(Size::b64, rdi, state_reg);
    a_.mov_imm(addr_reg, reinterpret_cast<std::uint64_t>(&helper_failed));
    a_.call(addr_reg);
    a_.mov(Size::b64, budget_reg, field(BPFVM_FIELD(budget)));
    a_.test(Size::b8, rax, rax);
    a_.jcc(Cond::ne, defer(Cold::What::helper_error, pc).at);
    a_.mov(Size::b64, rax, spill(spill_r0));
    restore_args(pc);
  }

  // bpf-to-bpf: the callee's frame is 512 bytes below (r10 tells the depth, so the limit is one
  // compare with the lowest frame allowed); r6-r9 that the callee writes are kept on the host
  // stack (an odd number of 8-byte slots, so the callee runs 16-byte aligned).
  void local_call(std::uint32_t pc, const Insn& in) {
    a_.lea(Size::b64, tmp, ptr(rbp, -isa::stack_frame_size));
    a_.alu(Alu::cmp, Size::b64, tmp, field(BPFVM_FIELD(lowest_frame)));
    a_.jcc(Cond::b, defer(Cold::What::call_depth, pc).at);
    const lowering::Function& callee = an_.functions[an_.function_of[in.target]];
    std::vector<Reg> saved;
    for (int r = 6; r <= 9; ++r)
      if (callee.written & lowering::reg_bit(r)) saved.push_back(host[r]);
    for (Reg r : saved) a_.push(r);
    const bool pad = saved.size() % 2 == 0;
    if (pad) a_.alu(Alu::sub, Size::b64, rsp, 8);
    a_.mov(Size::b64, rbp, tmp);
    a_.call(at_pc(in.target));
    a_.alu(Alu::add, Size::b64, rbp, isa::stack_frame_size);
    if (pad) a_.alu(Alu::add, Size::b64, rsp, 8);
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) a_.pop(*it);
  }

  // ---- out-of-line code ----

  void emit_cold(const Cold& c) {
    if (c.what == Cold::What::budget)
      a_.patch_here(c.jump);
    else
      a_.bind(c.at);
    switch (c.what) {
      case Cold::What::budget:
        // One call per check (the most common stub): the thunk and run() do the rest.
        a_.call(budget_thunk_);
        budget_sites_->push_back(BudgetSite{static_cast<std::uint32_t>(a_.size()), c.pc, c.value});
        break;
      case Cold::What::budget_after_goto: {
        // Nothing left: the goto itself traps. Else the goto is paid and the target block runs
        // what the budget allows (its slow copy, or a trap at its entry).
        const Label at_goto = a_.new_label();
        a_.alu(Alu::add, Size::b64, budget_reg, static_cast<std::int32_t>(c.value + 1));
        a_.test(Size::b64, budget_reg, budget_reg);
        a_.jcc(Cond::e, at_goto);
        a_.alu(Alu::sub, Size::b64, budget_reg, 1);
        if (has_slow_[an_.block_of[c.span]])
          a_.jmp(slow_[c.span]);
        else
          trap_exit(Exit::budget, c.span);
        a_.bind(at_goto);
        trap_exit(Exit::budget, c.pc);
        break;
      }
      case Cold::What::goto_paid_early: {
        // The budget does not cover the goto and its target: give it back, then jump as the
        // instruction would, to X's own payment or to the goto (which tells which one runs out).
        const Insn& in = an_.insns[c.pc];
        a_.alu(Alu::add, Size::b64, budget_reg, static_cast<std::int32_t>(c.value));
        compare(in, in.info());
        a_.jcc(condition(in.info().operation), at_pc(in.target));
        a_.jmp(at_pc(c.pc + 1));
        break;
      }
      case Cold::What::budget_after_move: {
        // r10 = the move's 0 or 1 + the next block's count. When the move ran it comes first.
        const Label in_next = a_.new_label(), at_move = a_.new_label();
        a_.alu(Alu::add, Size::b64, budget_reg, tmp);
        a_.alu(Alu::cmp, Size::b64, tmp, static_cast<std::int32_t>(c.value));
        a_.jcc(Cond::e, in_next);
        a_.test(Size::b64, budget_reg, budget_reg);
        a_.jcc(Cond::e, at_move);
        a_.alu(Alu::sub, Size::b64, budget_reg, 1);
        a_.bind(in_next);
        trap_exit(Exit::budget, c.pc + 1);
        a_.bind(at_move);
        trap_exit(Exit::budget, c.pc);
        break;
      }
      case Cold::What::to_slow:
        a_.alu(Alu::add, Size::b64, budget_reg, static_cast<std::int32_t>(c.value));
        a_.jmp(slow_[c.pc]);
        break;
      case Cold::What::group_retry: {
        const Label slow = a_.new_label();
        if (c.stack_first)
          region_check(c.dst, c.access, c.span, slow);
        else
          stack_check(c.dst, c.span, slow);
        a_.jmp(c.back);
        a_.bind(slow);
        refund(c.value);
        a_.jmp(slow_[c.pc]);
        break;
      }
      case Cold::What::call_depth: trap_exit(Exit::call_depth, c.pc); break;
      case Cold::What::helper_error:
        a_.mov(Size::b64, rax, spill(spill_r0));
        restore_args(c.pc);
        trap_exit(Exit::helper_error, c.pc);
        break;
      case Cold::What::bad_call:
        a_.mov(Size::b64, budget_reg, field(BPFVM_FIELD(budget)));  // find_helper may clobber r9
        a_.mov(Size::b64, addr_reg, spill(spill_id));
        a_.mov(Size::b64, field(BPFVM_FIELD(trap_address)), addr_reg);
        a_.mov(Size::b64, rax, spill(spill_r0));
        for (int r = 1; r <= 5; ++r) a_.mov(Size::b64, host[r], spill(r - 1));
        trap_exit(Exit::bad_call_target, c.pc);
        break;
      case Cold::What::div_zero:
      case Cold::What::div_minus_one:
        divide_special(c.dst, c.size, c.op, c.what == Cold::What::div_zero);
        a_.jmp(c.back);
        break;
      case Cold::What::move_chain:
        a_.alu(Alu::add, Size::b64, budget_reg, static_cast<std::int32_t>(c.value));
        a_.bind(c.exact);
        exact_chain(c.pc, c.back);
        break;
    }
  }

  // Calls fn(JitState*, r11, r10) with every caller-saved register kept; returns to the caller
  // when fn says true, else leaves through the exit (the trap is recorded by fn).
  void thunk(Label at, std::uint64_t fn) {
    a_.bind(at);
    static constexpr Reg saved[] = {rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11};  // 9: rsp aligned
    for (Reg r : saved) a_.push(r);
    a_.mov(Size::b64, field(BPFVM_FIELD(frame)), rbp);
    a_.mov(Size::b64, rdi, state_reg);
    a_.mov(Size::b64, rsi, addr_reg);
    a_.mov(Size::b64, rdx, tmp);
    a_.mov_imm(rax, fn);
    a_.call(rax);
    a_.movzx(Size::b32, rax, Size::b8, rax);
    a_.mov(Size::b64, spill(spill_ok), rax);
    for (auto it = std::rbegin(saved); it != std::rend(saved); ++it) a_.pop(*it);
    a_.alu(Alu::cmp, Size::b64, spill(spill_ok), 0);
    a_.jcc(Cond::e, exit_);
    a_.ret();
  }

  void thunks() {
    a_.bind(trap_tail_);
    a_.mov(Size::b64, field(BPFVM_FIELD(trap_kind)), addr_reg);
    a_.mov(Size::b64, field(BPFVM_FIELD(trap_pc)), tmp);
    a_.jmp(exit_);
    // A failed budget check: its stub's return address names it (run() refunds and reports).
    a_.bind(budget_thunk_);
    a_.pop(addr_reg);
    a_.mov(Size::b64, field(BPFVM_FIELD(trap_address)), addr_reg);
    a_.mov_imm32(addr_reg, static_cast<std::uint32_t>(Exit::budget_site));
    a_.jmp(trap_tail_);
    // Accesses inside the live stack frames ([r10 - 512, end of frame 0), the size in r10's low
    // bits) return at once; legacy packet loads never look at the stack, as in the interpreter.
    const Label not_stack = a_.new_label();
    a_.bind(check_entry_);
    a_.push(rax);
    a_.mov(Size::b32, rax, tmp);
    a_.alu(Alu::and_, Size::b32, rax, 15);
    a_.alu(Alu::add, Size::b64, rax, addr_reg);
    a_.jcc(Cond::b, not_stack);  // the end wrapped around
    a_.alu(Alu::cmp, Size::b64, rax, field(BPFVM_FIELD(stack_hi)));
    a_.jcc(Cond::a, not_stack);
    a_.lea(Size::b64, rax, ptr(rbp, -isa::stack_frame_size));
    a_.alu(Alu::cmp, Size::b64, addr_reg, rax);
    a_.jcc(Cond::b, not_stack);
    a_.pop(rax);
    a_.ret();
    a_.bind(not_stack);
    a_.pop(rax);
    thunk(check_thunk_, reinterpret_cast<std::uint64_t>(&check_access));
    thunk(legacy_thunk_, reinterpret_cast<std::uint64_t>(&legacy_load));
  }

  const Analysis& an_;
  EmitOptions opt_;
  Assembler& a_;
  std::uint32_t first_pc_label_ = 0;  // labels first_pc_label_ + pc: the fast copy of pc
  std::vector<Label>& slow_;          // per pc: where the slow copy is entered (block starts, group checks)
  std::vector<std::int32_t>& group_at_;  // per pc: the group whose check goes before it, or -1
  // per pc: the windows (jit/lowering/patterns.hpp) starting there, matched once for both copies
  static constexpr std::size_t loop_alignment = 64;
  static constexpr std::uint8_t conditional_move_window = 1, address_sum_window = 2,
                                jump_over_goto_window = 4, goto_paid_early_window = 8,
                                folded_access_window = 16, scaled_sum_window = 32, chain_first_window = 64,
                                chain_more_window = 128;
  std::vector<std::uint8_t>& window_;
  std::vector<Group>& groups_;
  std::vector<bool>& has_slow_;     // per block
  std::vector<bool>& prepaid_;      // per block: paid by the conditional move before it
  std::vector<bool>& merged_goto_;  // per block: only a goto, paid with its target
  std::vector<bool>& outlined_;     // per pc: a goto emitted out of line (jump_over_goto_window)
  std::vector<Label>& body_;        // per block: after its payment (entry from a merged goto)
  std::vector<PaidAhead>* paid_ahead_ = nullptr;
  bool fast_ = true;
  std::vector<Cold>& cold_;
  std::vector<std::uint32_t>& insn_offset_;
  std::vector<lowering::HoistedLoop>& loops_;  // in program order
  std::vector<LoopLabels>& loop_labels_;       // per loop
  std::vector<std::int32_t>& entry_of_;  // per block, when there are loops: the loop entered there, or -1
  const lowering::HoistedLoop* copy_ = nullptr;  // the loop whose unchecked copy is being emitted
  bool exact_chain_ = false;                     // emitting a chain of conditional moves with exact payments
  Label chain_back_;                             // after the chain being emitted
  struct ChainEntry {
    std::uint32_t pc;
    Label exact;
  };
  std::vector<ChainEntry> chain_entries_;  // the ordinary copy's exact chains, for slow copies
  const LoopLabels* copy_labels_ = nullptr;
  Label exit_, legacy_thunk_, trap_tail_, budget_thunk_;
  std::vector<BudgetSite>* budget_sites_ = nullptr;
  Label check_entry_;  // the stack, then check_thunk_
  Label check_thunk_;
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

}  // namespace

void release_workspace() { workspace() = Workspace{}; }

Result<Emitted> emit(const lowering::Analysis& analysis, const EmitOptions& options) {
  return Emitter(analysis, options, workspace()).run();
}

}  // namespace bpfvm::jit::x64
