#include "jit/lowering/analysis.hpp"

#include <string>

#include "isa/validate.hpp"

namespace bpfvm::jit::lowering {
namespace {

using isa::Kind;
using isa::Operation;
using isa::Source;

// The bodies of uses() and defs(), inlined into the passes that call them per slot.
[[gnu::always_inline]] inline RegSet reads_of(const Insn& insn, bool in_entry) {
  const isa::OpInfo& row = insn.info();
  const RegSet dst = reg_bit(insn.dst), src = row.source == Source::reg ? reg_bit(insn.src) : RegSet{0};
  switch (row.kind) {
    case Kind::alu:
      if (row.operation == Operation::mov || row.operation == Operation::movsx) return src;
      return static_cast<RegSet>(dst | src);
    case Kind::load: return reg_bit(insn.src);
    case Kind::store: return static_cast<RegSet>(dst | src);
    case Kind::atomic:
      return static_cast<RegSet>(dst | src | (row.operation == Operation::cmpxchg ? reg_bit(0) : 0));
    case Kind::lddw: return 0;
    case Kind::legacy: return row.operation == Operation::ind ? reg_bit(insn.src) : RegSet{0};
    case Kind::jump: return row.operation == Operation::ja ? RegSet{0} : static_cast<RegSet>(dst | src);
    case Kind::call:
      if (row.operation == Operation::local) return all_regs;
      if (row.operation == Operation::callx) return static_cast<RegSet>(args_regs | dst);
      return args_regs;
    case Kind::exit: return in_entry ? reg_bit(0) : caller_regs;
  }
  return all_regs;
}

[[gnu::always_inline]] inline RegSet writes_of(const Insn& insn) {
  const isa::OpInfo& row = insn.info();
  switch (row.kind) {
    case Kind::alu:
    case Kind::load:
    case Kind::lddw: return reg_bit(insn.dst);
    case Kind::legacy: return reg_bit(0);
    case Kind::atomic:
      switch (row.operation) {
        case Operation::cmpxchg: return reg_bit(0);
        case Operation::fetch_add:
        case Operation::fetch_bor:
        case Operation::fetch_band:
        case Operation::fetch_bxor:
        case Operation::xchg: return reg_bit(insn.src);
        default: return 0;
      }
    case Kind::call: return row.operation == Operation::local ? RegSet{0} : reg_bit(0);
    case Kind::store:
    case Kind::jump:
    case Kind::exit: return 0;
  }
  return 0;
}

Error at(std::size_t pc, std::string message) {
  Error e(std::move(message));
  e.insn = pc;
  return e;
}

// Decodes every slot and resolves what the interpreter resolves at compile time.
// (`ops`: the forms validate() found.)
Status decode_all(const isa::Program& program, const std::vector<isa::Op>& ops,
                  const vm::HelperRegistry& helpers, const vm::CompileOptions& options,
                  std::vector<Insn>& out) {
  const auto& insns = program.insns;
  out.resize(insns.size());
  for (std::size_t pc = 0; pc < insns.size(); ++pc) {
    const isa::Insn& in = insns[pc];
    const isa::Op op = ops[pc];
    const isa::OpInfo& row = isa::info(op);
    Insn& d = out[pc];
    d = Insn{};  // the vector may hold a previous program's slots
    d.op = op;
    d.dst = static_cast<std::uint8_t>(in.dst());
    d.src = static_cast<std::uint8_t>(in.src());
    d.off = in.off;
    d.imm = in.imm;
    d.imm64 = static_cast<std::uint64_t>(static_cast<std::int64_t>(in.imm));
    d.proven = options.proven(pc);
    switch (row.kind) {
      case Kind::jump: d.target = static_cast<std::uint32_t>(isa::branch_target(in, op, pc)); break;
      case Kind::lddw: {
        auto value = vm::lddw_operand(in, insns[pc + 1], op, options);
        if (!value) return at(pc, value.error().message);
        d.imm64 = *value;
        ++pc;
        out[pc] = d;
        out[pc].second_slot = true;
        break;
      }
      case Kind::call:
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
      default: break;
    }
  }
  return {};
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

void build_blocks(Analysis& a) {
  const auto n = static_cast<std::uint32_t>(a.insns.size());
  std::vector<bool> leader(n + 1, false);
  for (const Function& f : a.functions) leader[f.start] = true;
  a.jumps_to.assign(n, 0);
  for (std::uint32_t pc = 0; pc < n; ++pc) {
    const Insn& insn = a.insns[pc];
    if (insn.second_slot) continue;
    const Kind k = insn.info().kind;
    if (k == Kind::jump) {
      leader[insn.target] = true;
      if (a.jumps_to[insn.target] < 255) ++a.jumps_to[insn.target];
    }
    if (k == Kind::jump || k == Kind::call || k == Kind::exit) leader[pc + 1] = true;
  }
  a.block_of.assign(n, 0);
  a.left_after.assign(n, 0);
  for (std::uint32_t pc = 0; pc < n; ++pc) {
    if (leader[pc]) a.blocks.push_back(Block{pc, pc, 0, false});
    Block& b = a.blocks.back();
    b.end = pc + 1;
    const Insn& insn = a.insns[pc];
    a.block_of[pc] = static_cast<std::uint32_t>(a.blocks.size() - 1);
    if (insn.second_slot) continue;
    ++b.count;
    // A backward jump's target is in a block made already.
    if (insn.info().kind == Kind::jump && insn.target <= pc)
      a.blocks[a.block_of[insn.target]].loop_head = true;
  }
  for (const Block& b : a.blocks) {
    std::uint32_t left = 0;
    for (std::uint32_t pc = b.end; pc-- > b.first;) {
      a.left_after[pc] = left;
      if (!a.insns[pc].second_slot) ++left;
    }
  }
}

// Functions, and what each slot reads and writes (computed once: the passes below visit
// slots many times).
void build_functions(const std::vector<isa::Function>& functions, Analysis& a) {
  const std::size_t n = a.insns.size();
  a.function_of.assign(n, 0);
  a.reads.assign(n, 0);
  a.writes.assign(n, 0);
  for (const isa::Function& f : functions) {
    const auto index = static_cast<std::uint32_t>(a.functions.size());
    Function fn{f.start, f.end, 0, false, false};
    for (std::uint32_t pc = f.start; pc < f.end; ++pc) {
      a.function_of[pc] = index;
      const Insn& insn = a.insns[pc];
      if (insn.second_slot) continue;
      a.reads[pc] = reads_of(insn, index == 0);
      a.writes[pc] = writes_of(insn);
      fn.written |= a.writes[pc];
      const isa::OpInfo& row = insn.info();
      if (row.kind == Kind::call) {
        if (row.operation == Operation::local)
          fn.local_calls = true;
        else
          fn.helper_calls = true;
      }
    }
    a.functions.push_back(fn);
  }
}

// The blocks each block continues into (at most two), found once for both fixpoints.
struct Edges {
  std::uint32_t to[2];
  std::uint32_t count;
  std::uint32_t last;  // the block's last instruction (not an lddw's second slot)
};
std::vector<Edges> block_edges(const Analysis& a) {
  std::vector<Edges> edges(a.blocks.size(), Edges{{0, 0}, 0, 0});
  std::uint32_t succ[2];
  for (std::size_t i = 0; i < a.blocks.size(); ++i) {
    const Block& b = a.blocks[i];
    Edges& e = edges[i];
    e.last = b.end - 1;
    if (a.insns[e.last].second_slot) --e.last;
    const int ns = successors(a.insns, e.last, succ);
    for (int s = 0; s < ns; ++s)
      if (succ[s] < a.insns.size()) e.to[e.count++] = a.block_of[succ[s]];
  }
  return edges;
}

// Backward liveness: per block (use before def, def), a fixpoint over blocks, then per pc.
void build_liveness(Analysis& a, const std::vector<Edges>& edges) {
  const std::size_t nb = a.blocks.size();
  std::vector<RegSet> gen(nb, 0), kill(nb, 0), live_in(nb, 0), live_out(nb, 0);
  for (std::size_t i = 0; i < nb; ++i) {
    const Block& b = a.blocks[i];
    RegSet g = 0, k = 0;
    for (std::uint32_t pc = b.end; pc-- > b.first;) {
      if (a.insns[pc].second_slot) continue;
      g = static_cast<RegSet>((g & ~a.writes[pc]) | a.reads[pc]);
      k |= a.writes[pc];
    }
    gen[i] = g;
    kill[i] = k;
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = nb; i-- > 0;) {
      RegSet out = 0;
      for (std::uint32_t s = 0; s < edges[i].count; ++s) out |= live_in[edges[i].to[s]];
      const auto in = static_cast<RegSet>(gen[i] | (out & ~kill[i]));
      if (out != live_out[i] || in != live_in[i]) {
        live_out[i] = out;
        live_in[i] = in;
        changed = true;
      }
    }
  }
  a.live_out.assign(a.insns.size(), 0);
  for (std::size_t i = 0; i < nb; ++i) {
    const Block& b = a.blocks[i];
    RegSet live = live_out[i];
    for (std::uint32_t pc = b.end; pc-- > b.first;) {
      a.live_out[pc] = live;
      if (a.insns[pc].second_slot) continue;
      live = static_cast<RegSet>((live & ~a.writes[pc]) | a.reads[pc]);
    }
  }
}

// Forward "derived from r10" over each function: r10 itself, copies of such registers and
// such registers plus or minus a constant or a register that is not itself derived.
// What build_frame_derived follows: registers holding r10 plus or minus something, and the
// 8-byte slots of the current frame holding such a value (bit i: r10 - 8 * (i + 1)), so that a
// stack pointer spilled and loaded again still counts. Only a hint for the order of checks.
struct FrameFacts {
  RegSet regs = 0;
  std::uint64_t slots = 0;
  friend bool operator==(const FrameFacts&, const FrameFacts&) = default;
  FrameFacts operator&(const FrameFacts& o) const {
    return {static_cast<RegSet>(regs & o.regs), slots & o.slots};
  }
};

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

void build_frame_derived(Analysis& a, const std::vector<Edges>& edges) {
  const std::size_t nb = a.blocks.size();
  constexpr FrameFacts unknown{0xffff, ~std::uint64_t{0}};  // not reached yet: the identity of the meet
  std::vector<FrameFacts> in(nb, unknown);
  // A block's walk is redone only when what enters it changed since the last walk.
  std::vector<FrameFacts> walked_in(nb, unknown), out(nb);
  for (const Function& f : a.functions) in[a.block_of[f.start]] = FrameFacts{reg_bit(isa::frame_pointer), 0};
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < nb; ++i) {
      if (in[i] == unknown) continue;
      if (in[i] != walked_in[i]) {
        const Block& b = a.blocks[i];
        FrameFacts cur = in[i];
        const std::uint32_t last = edges[i].last;
        for (std::uint32_t pc = b.first; pc < b.end; ++pc) {
          if (a.insns[pc].second_slot) continue;
          if (pc != last || a.insns[pc].info().kind != Kind::call)
            cur = frame_transfer(a.insns[pc], a.writes[pc], cur);
        }
        // After a bpf-to-bpf call r0-r5 are the callee's; r6-r10 are restored.
        if (a.insns[last].info().kind == Kind::call) cur.regs = static_cast<RegSet>(cur.regs & ~caller_regs);
        walked_in[i] = in[i];
        out[i] = cur;
      }
      const FrameFacts cur = out[i];
      for (std::uint32_t s = 0; s < edges[i].count; ++s) {
        const std::uint32_t t = edges[i].to[s];
        const FrameFacts met = in[t] & cur;
        if (met != in[t]) {
          in[t] = met;
          changed = true;
        }
      }
    }
  }
  a.frame_derived.assign(a.insns.size(), 0);
  for (std::size_t i = 0; i < nb; ++i) {
    const Block& b = a.blocks[i];
    FrameFacts cur = in[i] == unknown ? FrameFacts{} : in[i];
    for (std::uint32_t pc = b.first; pc < b.end; ++pc) {
      a.frame_derived[pc] = cur.regs;
      if (!a.insns[pc].second_slot) cur = frame_transfer(a.insns[pc], a.writes[pc], cur);
    }
  }
}

}  // namespace

RegSet uses(const Insn& insn, bool in_entry) { return reads_of(insn, in_entry); }
RegSet defs(const Insn& insn) { return writes_of(insn); }

Status analyze(const isa::Program& program, const vm::HelperRegistry& helpers,
               const vm::CompileOptions& options, Analysis& a) {
  isa::ValidateOptions vopts;
  vopts.cpu_version = options.cpu_version;
  if (Status s = isa::validate(program, vopts, a.layout); !s) return s.error();
  a.blocks.clear();
  a.functions.clear();
  if (Status s = decode_all(program, a.layout.ops, helpers, options, a.insns); !s) return s.error();
  build_functions(a.layout.functions, a);
  build_blocks(a);
  const std::vector<Edges> edges = block_edges(a);
  build_liveness(a, edges);
  build_frame_derived(a, edges);
  return {};
}

Result<Analysis> analyze(const isa::Program& program, const vm::HelperRegistry& helpers,
                         const vm::CompileOptions& options) {
  Analysis a;
  if (Status s = analyze(program, helpers, options, a); !s) return s.error();
  return a;
}

}  // namespace bpfvm::jit::lowering
