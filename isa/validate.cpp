#include "isa/validate.hpp"

#include <algorithm>
#include <set>
#include <string>

#include <fmt/format.h>

namespace bpfvm::isa {
namespace {

Error at(std::size_t pc, std::string message) {
  Error e{std::move(message)};
  e.insn = pc;
  return e;
}

// Which fields an instruction form leaves unused; they must be zero.
struct Unused {
  bool dst = false, src = false, off = false, imm = false;
};

Unused unused_fields(const OpInfo& row) {
  Unused u;
  auto reg_source = row.source == Source::reg;
  switch (row.kind) {
    case Kind::alu:
      if (row.operation == Operation::neg || row.operation == Operation::le ||
          row.operation == Operation::be || row.operation == Operation::bswap) {
        u.src = true;
        if (row.operation == Operation::neg) u.imm = true;
      } else if (reg_source) {
        u.imm = true;
      } else {
        u.src = true;
      }
      break;
    case Kind::load: u.imm = true; break;
    case Kind::store:
      if (reg_source) u.imm = true; else u.src = true;
      break;
    case Kind::atomic: break;
    case Kind::lddw: u.off = true; break;
    case Kind::legacy:
      u.dst = u.off = true;
      if (row.operation == Operation::abs) u.src = true;
      break;
    case Kind::jump:
      if (row.operation == Operation::ja) {
        u.dst = u.src = true;
        if (row.width == 32) u.off = true; else u.imm = true;
      } else if (reg_source) {
        u.imm = true;
      } else {
        u.src = true;
      }
      break;
    case Kind::call:
      u.off = true;
      if (row.operation == Operation::callx) u.src = u.imm = true; else u.dst = true;
      break;
    case Kind::exit: u.dst = u.src = u.off = u.imm = true; break;
  }
  // The discriminating field is checked by decode(); don't report it twice.
  if (row.disc == Disc::off) u.off = false;
  if (row.disc == Disc::imm) u.imm = false;
  if (row.disc == Disc::src) u.src = false;
  return u;
}

// The register an instruction writes, or -1.
int written_register(const OpInfo& row, const Insn& insn) {
  switch (row.kind) {
    case Kind::alu:
    case Kind::load:
    case Kind::lddw: return insn.dst();
    case Kind::atomic:
      if (row.operation == Operation::cmpxchg) return 0;
      if (row.operation == Operation::xchg || row.operation == Operation::fetch_add ||
          row.operation == Operation::fetch_bor || row.operation == Operation::fetch_band ||
          row.operation == Operation::fetch_bxor)
        return insn.src();
      return -1;
    case Kind::legacy: return 0;
    default: return -1;
  }
}

std::string describe_unknown(const Insn& insn) {
  if (!opcode_known(insn.opcode)) return fmt::format("unknown opcode 0x{:02x}", insn.opcode);
  switch (discriminator_of(insn.opcode)) {
    case Disc::off: return fmt::format("opcode 0x{:02x} does not take offset {}", insn.opcode, insn.off);
    case Disc::imm: return fmt::format("opcode 0x{:02x} does not take immediate {}", insn.opcode, insn.imm);
    case Disc::src: return fmt::format("opcode 0x{:02x} does not take source field {}", insn.opcode, insn.src());
    case Disc::none: break;
  }
  return fmt::format("unknown instruction form of opcode 0x{:02x}", insn.opcode);
}

}  // namespace

std::ptrdiff_t branch_target(const Insn& insn, Op op, std::size_t pc) {
  auto& row = info(op);
  auto pc1 = static_cast<std::ptrdiff_t>(pc) + 1;
  if (row.kind == Kind::call) return pc1 + insn.imm;
  if (row.kind == Kind::jump && row.operation == Operation::ja && row.width == 32) return pc1 + insn.imm;
  return pc1 + insn.off;
}

Status validate(Program& program, const ValidateOptions& options) {
  auto& insns = program.insns;
  auto n = insns.size();
  if (n == 0) return Error{"program is empty"};
  if (n > options.max_insns)
    return Error{fmt::format("program has {} instructions, more than the limit of {}", n, options.max_insns)};

  // Pass 1: each instruction on its own; note lddw second slots and call-local targets.
  std::vector<bool> second_slot(n, false);
  std::vector<Op> ops(n);
  std::set<std::size_t> call_targets;
  for (std::size_t pc = 0; pc < n; ++pc) {
    auto& insn = insns[pc];
    auto op = decode(insn);
    if (!op) return at(pc, describe_unknown(insn));
    ops[pc] = *op;
    auto& row = info(*op);
    if (row.min_cpu > options.cpu_version)
      return at(pc, fmt::format("{} needs CPU v{}, the program is limited to v{}", row.name, row.min_cpu,
                                options.cpu_version));
    if (insn.dst() >= register_count) return at(pc, fmt::format("invalid destination register r{}", insn.dst()));
    if (insn.src() >= register_count && row.disc != Disc::src)
      return at(pc, fmt::format("invalid source register r{}", insn.src()));
    auto unused = unused_fields(row);
    if (unused.dst && insn.dst() != 0) return at(pc, fmt::format("{}: reserved destination field is {}, not 0", row.name, insn.dst()));
    if (unused.src && insn.src() != 0) return at(pc, fmt::format("{}: reserved source field is {}, not 0", row.name, insn.src()));
    if (unused.off && insn.off != 0) return at(pc, fmt::format("{}: reserved offset field is {}, not 0", row.name, insn.off));
    if (unused.imm && insn.imm != 0) return at(pc, fmt::format("{}: reserved immediate field is {}, not 0", row.name, insn.imm));
    if (row.operation == Operation::callx && insn.dst() >= frame_pointer)
      return at(pc, fmt::format("callx through r{}", insn.dst()));
    if (written_register(row, insn) == frame_pointer) return at(pc, "r10 is read-only");
    if (row.kind == Kind::lddw) {
      if (pc + 1 >= n) return at(pc, "lddw is truncated: its second slot is missing");
      // A function reference (callbacks, callx targets) names a function start like call local.
      if (row.operation == Operation::func) {
        auto t = static_cast<std::ptrdiff_t>(pc) + 1 + insn.imm;
        if (t < 0 || static_cast<std::size_t>(t) >= n)
          return at(pc, fmt::format("function reference target {} is outside the program (0..{})", t, n - 1));
        call_targets.insert(static_cast<std::size_t>(t));
      }
      auto& next = insns[pc + 1];
      if (next.opcode != 0 || next.regs != 0 || next.off != 0)
        return at(pc + 1, "lddw second slot must have zero opcode, registers and offset");
      second_slot[pc + 1] = true;
      ops[pc + 1] = *op;
      ++pc;
    }
    if (row.kind == Kind::call && row.operation == Operation::local) {
      auto t = branch_target(insn, *op, pc);
      if (t < 0 || static_cast<std::size_t>(t) >= n)
        return at(pc, fmt::format("call local target {} is outside the program (0..{})", t, n - 1));
      call_targets.insert(static_cast<std::size_t>(t));
    }
  }

  // Functions: given by the loader, or discovered from call targets.
  if (program.functions.empty()) {
    std::vector<std::size_t> starts{0};
    for (auto t : call_targets)
      if (t != 0) starts.push_back(t);
    for (std::size_t i = 0; i < starts.size(); ++i) {
      auto end = i + 1 < starts.size() ? starts[i + 1] : n;
      program.functions.push_back({i == 0 ? program.name : fmt::format("func_{}", starts[i]),
                                   static_cast<std::uint32_t>(starts[i]), static_cast<std::uint32_t>(end)});
    }
  } else {
    std::sort(program.functions.begin(), program.functions.end(),
              [](auto& a, auto& b) { return a.start < b.start; });
    for (auto& f : program.functions)
      if (f.start >= f.end || f.end > n)
        return Error{fmt::format("function {} spans [{}, {}) outside the program", f.name, f.start, f.end)};
  }
  std::vector<int> func_of(n, -1);
  for (std::size_t i = 0; i < program.functions.size(); ++i)
    for (auto pc = program.functions[i].start; pc < program.functions[i].end; ++pc) func_of[pc] = static_cast<int>(i);

  // Pass 2: control flow.
  for (std::size_t pc = 0; pc < n; ++pc) {
    if (second_slot[pc]) continue;
    auto& row = info(ops[pc]);
    if (func_of[pc] < 0) return at(pc, "instruction belongs to no function");
    if (row.kind == Kind::jump) {
      auto t = branch_target(insns[pc], ops[pc], pc);
      if (t < 0 || static_cast<std::size_t>(t) >= n)
        return at(pc, fmt::format("jump target {} is outside the program (0..{})", t, n - 1));
      if (second_slot[static_cast<std::size_t>(t)])
        return at(pc, fmt::format("jump target {} is the second slot of an lddw", t));
      if (func_of[static_cast<std::size_t>(t)] != func_of[pc])
        return at(pc, fmt::format("jump target {} is in another function", t));
    }
    if (row.kind == Kind::call && row.operation == Operation::local) {
      auto t = static_cast<std::size_t>(branch_target(insns[pc], ops[pc], pc));
      auto& callee = program.functions[static_cast<std::size_t>(func_of[t])];
      if (callee.start != t) return at(pc, fmt::format("call local target {} is not the start of a function", t));
    }
  }
  for (auto& f : program.functions) {
    auto last = f.end - 1;
    if (second_slot[last]) --last;
    auto& row = info(ops[last]);
    bool ends = row.kind == Kind::exit || (row.kind == Kind::jump && row.operation == Operation::ja);
    if (!ends) return at(last, fmt::format("function {} can fall off its end: its last instruction is not exit or goto", f.name));
  }
  return {};
}

}  // namespace bpfvm::isa
