#include "jit/lowering/analysis.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "isa/validate.hpp"

namespace bpfvm::jit::lowering {
namespace {

using isa::Kind;
using isa::Operation;
using isa::Source;

// The registers a form reads or writes: fixed ones, and the ones its dst and src fields name
// (masks: all ones where the field counts).
struct RegUse {
  RegSet fixed = 0;
  RegSet dst = 0;
  RegSet src = 0;
};
constexpr RegSet field = 0xffff;

constexpr RegUse reads_of(const isa::OpInfo& row, bool in_entry) {
  const RegSet src = row.source == Source::reg ? field : RegSet{0};
  switch (row.kind) {
    case Kind::alu:
      if (row.operation == Operation::mov || row.operation == Operation::movsx) return {0, 0, src};
      return {0, field, src};
    case Kind::load: return {0, 0, field};
    case Kind::store: return {0, field, src};
    case Kind::atomic: return {row.operation == Operation::cmpxchg ? reg_bit(0) : RegSet{0}, field, src};
    case Kind::lddw: return {};
    case Kind::legacy: return {0, 0, row.operation == Operation::ind ? field : RegSet{0}};
    case Kind::jump: return row.operation == Operation::ja ? RegUse{} : RegUse{0, field, src};
    case Kind::call:
      if (row.operation == Operation::local) return {all_regs, 0, 0};
      if (row.operation == Operation::callx) return {args_regs, field, 0};
      return {args_regs, 0, 0};
    case Kind::exit: return {in_entry ? reg_bit(0) : caller_regs, 0, 0};
  }
  return {all_regs, 0, 0};
}

constexpr RegUse writes_of(const isa::OpInfo& row) {
  switch (row.kind) {
    case Kind::alu:
    case Kind::load:
    case Kind::lddw: return {0, field, 0};
    case Kind::legacy: return {reg_bit(0), 0, 0};
    case Kind::atomic:
      switch (row.operation) {
        case Operation::cmpxchg: return {reg_bit(0), 0, 0};
        case Operation::fetch_add:
        case Operation::fetch_bor:
        case Operation::fetch_band:
        case Operation::fetch_bxor:
        case Operation::xchg: return {0, 0, field};
        default: return {};
      }
    case Kind::call: return row.operation == Operation::local ? RegUse{} : RegUse{reg_bit(0), 0, 0};
    case Kind::store:
    case Kind::jump:
    case Kind::exit: return {};
  }
  return {};
}

// Per form, built once from the ISA table: [in_entry][op] and [op].
struct RegUseTables {
  std::array<std::array<RegUse, isa::op_count>, 2> reads{};
  std::array<RegUse, isa::op_count> writes{};
};
constexpr RegUseTables build_reg_use() {
  RegUseTables t;
  for (std::size_t i = 0; i < isa::op_count; ++i) {
    t.reads[0][i] = reads_of(isa::op_table[i], false);
    t.reads[1][i] = reads_of(isa::op_table[i], true);
    t.writes[i] = writes_of(isa::op_table[i]);
  }
  return t;
}
constexpr RegUseTables reg_use = build_reg_use();

// `dst` and `src`: reg_bit() of the slot's fields.
RegSet registers(const RegUse& use, RegSet dst, RegSet src) {
  return static_cast<RegSet>(use.fixed | (dst & use.dst) | (src & use.src));
}
RegSet reads(isa::Op op, bool in_entry, RegSet dst, RegSet src) {
  return registers(reg_use.reads[in_entry][static_cast<std::size_t>(op)], dst, src);
}
RegSet writes(isa::Op op, RegSet dst, RegSet src) {
  return registers(reg_use.writes[static_cast<std::size_t>(op)], dst, src);
}

Error at(std::size_t pc, std::string message) {
  Error e(std::move(message));
  e.insn = pc;
  return e;
}

// Decodes every slot (the forms validate() found) and resolves what the interpreter resolves at
// compile time; per slot also what it reads and writes, and where blocks start.
Status decode_all(const isa::Program& program, const vm::HelperRegistry& helpers,
                  const vm::CompileOptions& options, Analysis& a) {
  const std::size_t n = program.insns.size();
  a.insns.resize(n);
  a.reads.resize(n);
  a.writes.resize(n);
  a.jumps_to.assign(n, 0);
  a.leader.assign(n + 1, 0);
  a.calls.clear();
  // Plain pointers: the compiler cannot tell that byte stores leave the vectors' own alone.
  const isa::Insn* const insns = program.insns.data();
  const isa::Op* const ops = a.layout.ops.data();
  const std::uint32_t* const function_of = a.function_of.data();
  Insn* const out = a.insns.data();
  RegSet* const reads_out = a.reads.data();
  RegSet* const writes_out = a.writes.data();
  std::uint8_t* const jumps_to = a.jumps_to.data();
  std::uint8_t* const leader = a.leader.data();
  const bool any_proven = !options.proven_accesses.empty();
  for (std::size_t pc = 0; pc < n; ++pc) {
    const isa::Insn& in = insns[pc];
    const isa::Op op = ops[pc];
    const isa::OpInfo& row = isa::info(op);
    Insn d;
    d.op = op;
    d.dst = static_cast<std::uint8_t>(in.dst());
    d.src = static_cast<std::uint8_t>(in.src());
    d.off = in.off;
    d.imm = in.imm;
    d.imm64 = static_cast<std::uint64_t>(static_cast<std::int64_t>(in.imm));
    d.proven = any_proven && options.proven(pc);
    const RegSet dst = reg_bit(in.dst()), src = reg_bit(in.src());
    reads_out[pc] = reads(op, function_of[pc] == 0, dst, src);
    writes_out[pc] = writes(op, dst, src);
    switch (row.kind) {
      case Kind::jump:
        d.target = static_cast<std::uint32_t>(isa::branch_target(in, op, pc));
        leader[d.target] = 1;
        if (jumps_to[d.target] < 255) ++jumps_to[d.target];
        leader[pc + 1] = 1;
        break;
      case Kind::lddw: {
        auto value = vm::lddw_operand(in, insns[pc + 1], op, options);
        if (!value) return at(pc, value.error().message);
        d.imm64 = *value;
        out[pc] = d;
        ++pc;  // the second slot: the same, marked
        d.second_slot = true;
        reads_out[pc] = writes_out[pc] = 0;
        break;
      }
      case Kind::call:
        leader[pc + 1] = 1;
        a.calls.push_back(static_cast<std::uint32_t>(pc));
        if (row.operation == Operation::local) {
          d.target = static_cast<std::uint32_t>(isa::branch_target(in, op, pc));
        } else if (row.operation == Operation::helper) {
          const vm::Helper* h = helpers.find(static_cast<std::uint32_t>(in.imm));
          if (h == nullptr) return at(pc, "call to unknown helper " + std::to_string(in.imm));
          d.helper = h->fn;
        } else if (row.operation == Operation::kfunc) {
          return at(pc, "kfunc calls are not supported");
        }
        break;
      case Kind::exit: leader[pc + 1] = 1; break;
      default: break;
    }
    out[pc] = d;
  }
  return {};
}

// Which function each pc belongs to (the last in start order when given functions overlap, as
// validate() has it).
void assign_functions(std::size_t n, const std::vector<isa::Function>& functions, Analysis& a) {
  a.function_of.resize(n);  // validate() left no pc outside every function
  for (std::size_t i = 0; i < functions.size(); ++i)
    std::fill(a.function_of.begin() + functions[i].start, a.function_of.begin() + functions[i].end,
              static_cast<std::uint32_t>(i));
}

// What each function writes and calls (after decode_all).
void build_functions(const std::vector<isa::Function>& functions, Analysis& a) {
  for (const isa::Function& f : functions) {
    Function fn{f.start, f.end, 0, false, false};
    for (std::uint32_t pc = f.start; pc < f.end; ++pc) fn.written |= a.writes[pc];
    for (auto call = std::lower_bound(a.calls.begin(), a.calls.end(), f.start);
         call != a.calls.end() && *call < f.end; ++call) {
      if (a.insns[*call].info().operation == Operation::local)
        fn.local_calls = true;
      else
        fn.helper_calls = true;
    }
    a.functions.push_back(fn);
  }
}

// Successor pcs of the instruction at pc (at most two).
int successors(const std::vector<Insn>& insns, std::uint32_t pc, std::uint32_t out[2]) {
  const Insn& insn = insns[pc];
  const isa::OpInfo& row = insn.info();
  const auto next = pc + static_cast<std::uint32_t>(isa::slot_count(insn.op));
  if (row.kind == Kind::exit) return 0;
  if (row.kind == Kind::jump) {
    out[0] = insn.target;
    if (row.operation == Operation::ja) return 1;
    out[1] = next;
    return 2;
  }
  out[0] = next;
  return 1;
}

// Blocks, and per block its edges and what it reads before writing and writes (for liveness).
void build_blocks(Analysis& a) {
  const auto n = static_cast<std::uint32_t>(a.insns.size());
  for (const Function& f : a.functions) a.leader[f.start] = 1;
  const auto blocks = static_cast<std::size_t>(std::count(a.leader.begin(), a.leader.begin() + n, 1));
  a.blocks.resize(blocks);
  a.flow.resize(blocks);
  a.block_of.resize(n);
  a.left_after.resize(n);
  const Insn* const insns = a.insns.data();
  const RegSet* const reads = a.reads.data();
  const RegSet* const writes = a.writes.data();
  const std::uint8_t* const leader = a.leader.data();
  std::uint32_t* const block_of = a.block_of.data();
  std::uint32_t* const left_after = a.left_after.data();
  // left_after holds, until its block is closed, how many of the block's instructions run up to
  // and including pc.
  auto close = [&](const Block& b) {
    for (std::uint32_t pc = b.first; pc < b.end; ++pc) left_after[pc] = b.count - left_after[pc];
  };
  std::uint32_t block = 0;  // the open one, kept in b and flow until closed
  Block b;
  detail::BlockFlow flow;
  for (std::uint32_t pc = 0; pc < n; ++pc) {
    if (leader[pc] && pc > 0) {
      close(b);
      a.blocks[block] = b;
      a.flow[block] = flow;
      ++block;
      b = Block{pc, pc, 0, false};
      flow = detail::BlockFlow{};
    }
    b.end = pc + 1;
    const Insn& insn = insns[pc];
    block_of[pc] = block;
    // An lddw's second slot reads and writes nothing.
    flow.gen |= static_cast<RegSet>(reads[pc] & ~flow.kill);
    flow.kill |= writes[pc];
    flow.last = insn.second_slot ? pc - 1 : pc;
    b.count += insn.second_slot ? 0 : 1;
    // A backward jump's target is in a block made already (or this one).
    if (insn.info().kind == Kind::jump && insn.target <= pc) {
      if (insn.target >= b.first)
        b.loop_head = true;
      else
        a.blocks[block_of[insn.target]].loop_head = true;
    }
    left_after[pc] = b.count;
  }
  close(b);
  a.blocks[block] = b;
  a.flow[block] = flow;
  std::uint32_t succ[2];
  for (detail::BlockFlow& f : a.flow) {
    const int ns = successors(a.insns, f.last, succ);
    for (int s = 0; s < ns; ++s)
      if (succ[s] < n) f.to[f.successors++] = block_of[succ[s]];
  }
}

// Backward liveness: a fixpoint over blocks, then per pc.
void build_liveness(Analysis& a) {
  const std::size_t nb = a.blocks.size();
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = nb; i-- > 0;) {
      detail::BlockFlow& f = a.flow[i];
      RegSet out = 0;
      for (std::uint32_t s = 0; s < f.successors; ++s) out |= a.flow[f.to[s]].live_in;
      const auto in = static_cast<RegSet>(f.gen | (out & ~f.kill));
      if (out != f.live_out || in != f.live_in) {
        f.live_out = out;
        f.live_in = in;
        changed = true;
      }
    }
  }
  a.live_out.resize(a.insns.size());
  for (std::size_t i = 0; i < nb; ++i) {
    const Block& b = a.blocks[i];
    RegSet live = a.flow[i].live_out;
    for (std::uint32_t pc = b.end; pc-- > b.first;) {  // an lddw's second slot reads and writes nothing
      a.live_out[pc] = live;
      live = static_cast<RegSet>((live & ~a.writes[pc]) | a.reads[pc]);
    }
  }
}

// Forward "derived from r10" over each function: r10 itself, copies of such registers and
// such registers plus or minus a constant or a register that is not itself derived (and frame
// slots holding such a value, see detail::FrameFacts).
using detail::FrameFacts;

// The frame slot an r10-relative access of 8 aligned bytes at `off` is, or -1.
int frame_slot(int base, std::int16_t off, unsigned width) {
  if (base != isa::frame_pointer || width != 64 || off >= 0 || off < -isa::stack_frame_size || off % 8 != 0)
    return -1;
  return -off / 8 - 1;
}

FrameFacts frame_transfer(const Insn& in, RegSet d, FrameFacts facts) {
  const isa::OpInfo& row = in.info();
  if (row.kind == Kind::store || row.kind == Kind::atomic) {
    if (in.dst != isa::frame_pointer) return facts;
    const int slot = frame_slot(in.dst, in.off, row.width);
    const bool spill = slot >= 0 && row.kind == Kind::store && row.source == Source::reg &&
                       (facts.regs & reg_bit(in.src)) != 0;
    // Any write to the frame at a known offset ends what the slots it touches held.
    const int first = in.off, end = in.off + static_cast<int>(row.width / 8);
    for (int at : {first, end - 1})
      if (at < 0 && at >= -isa::stack_frame_size) facts.slots &= ~(std::uint64_t{1} << ((-at - 1) / 8));
    if (spill) facts.slots |= std::uint64_t{1} << slot;
  }
  if (d == 0) return facts;
  const RegSet in_set = facts.regs;
  RegSet out = static_cast<RegSet>(in_set & ~d);
  if (row.kind == Kind::load) {
    const int slot = frame_slot(in.src, in.off, row.width);
    if (slot >= 0 && (facts.slots >> slot & 1) != 0) out |= reg_bit(in.dst);
  }
  if (row.kind == Kind::alu && row.width == 64) {
    const bool src_derived = row.source == Source::reg && (in_set & reg_bit(in.src)) != 0;
    const bool dst_derived = (in_set & reg_bit(in.dst)) != 0;
    bool derived = false;
    switch (row.operation) {
      case Operation::mov: derived = src_derived; break;
      case Operation::add:
        derived = row.source == Source::imm ? dst_derived : dst_derived != src_derived;
        break;
      case Operation::sub: derived = dst_derived && !src_derived; break;
      default: break;
    }
    if (derived) out |= reg_bit(in.dst);
  }
  facts.regs = out;
  return facts;
}

// The fixpoint's walks record frame_derived for each pc they pass; a block's last walk starts
// from what finally enters it, and a block no walk reaches keeps 0 (nothing is derived there).
void build_frame_derived(Analysis& a) {
  const std::size_t nb = a.blocks.size();
  constexpr FrameFacts unknown{0xffff, ~std::uint64_t{0}};  // not reached yet: the identity of the meet
  a.frame.assign(nb, detail::BlockFrame{unknown, unknown, {}});
  a.frame_derived.assign(a.insns.size(), 0);
  for (const Function& f : a.functions)
    a.frame[a.block_of[f.start]].in = FrameFacts{reg_bit(isa::frame_pointer), 0};
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < nb; ++i) {
      detail::BlockFrame& bf = a.frame[i];
      if (bf.in == unknown) continue;
      const detail::BlockFlow& flow = a.flow[i];
      if (bf.in != bf.walked_in) {
        const Block& b = a.blocks[i];
        FrameFacts cur = bf.in;
        for (std::uint32_t pc = b.first; pc < b.end; ++pc) {
          a.frame_derived[pc] = cur.regs;
          if (a.insns[pc].second_slot) continue;
          if (pc != flow.last || a.insns[pc].info().kind != Kind::call)
            cur = frame_transfer(a.insns[pc], a.writes[pc], cur);
        }
        // After a bpf-to-bpf call r0-r5 are the callee's; r6-r10 are restored.
        if (a.insns[flow.last].info().kind == Kind::call)
          cur.regs = static_cast<RegSet>(cur.regs & ~caller_regs);
        bf.walked_in = bf.in;
        bf.out = cur;
      }
      for (std::uint32_t s = 0; s < flow.successors; ++s) {
        FrameFacts& in = a.frame[flow.to[s]].in;
        const FrameFacts met = in & bf.out;
        if (met != in) {
          in = met;
          changed = true;
        }
      }
    }
  }
}

}  // namespace

RegSet uses(const Insn& insn, bool in_entry) {
  return reads(insn.op, in_entry, reg_bit(insn.dst), reg_bit(insn.src));
}
RegSet defs(const Insn& insn) { return writes(insn.op, reg_bit(insn.dst), reg_bit(insn.src)); }

Status analyze(const isa::Program& program, const vm::HelperRegistry& helpers,
               const vm::CompileOptions& options, Analysis& a) {
  isa::ValidateOptions vopts;
  vopts.cpu_version = options.cpu_version;
  if (Status s = isa::validate(program, vopts, a.layout); !s) return s.error();
  a.blocks.clear();
  a.functions.clear();
  assign_functions(program.insns.size(), a.layout.functions, a);
  if (Status s = decode_all(program, helpers, options, a); !s) return s.error();
  build_functions(a.layout.functions, a);
  build_blocks(a);
  build_liveness(a);
  build_frame_derived(a);
  return {};
}

Result<Analysis> analyze(const isa::Program& program, const vm::HelperRegistry& helpers,
                         const vm::CompileOptions& options) {
  Analysis a;
  if (Status s = analyze(program, helpers, options, a); !s) return s.error();
  return a;
}

}  // namespace bpfvm::jit::lowering
