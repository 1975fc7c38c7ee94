#include "isa/validate.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <string>
#include <utility>

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

constexpr Unused unused_fields(const OpInfo& row) {
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
constexpr int written_register(const OpInfo& row, const Insn& insn) {
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

// The checks of one instruction on its own, in the order they report; `op` is its form.
Status check_fields(const Insn& insn, Op op, std::size_t pc, const ValidateOptions& options) {
  const OpInfo& row = info(op);
  if (row.min_cpu > options.cpu_version)
    return at(pc, fmt::format("{} needs CPU v{}, the program is limited to v{}", row.name, row.min_cpu,
                              options.cpu_version));
  if (insn.dst() >= register_count)
    return at(pc, fmt::format("invalid destination register r{}", insn.dst()));
  if (insn.src() >= register_count && row.disc != Disc::src)
    return at(pc, fmt::format("invalid source register r{}", insn.src()));
  const Unused unused = unused_fields(row);
  if (unused.dst && insn.dst() != 0)
    return at(pc, fmt::format("{}: reserved destination field is {}, not 0", row.name, insn.dst()));
  if (unused.src && insn.src() != 0)
    return at(pc, fmt::format("{}: reserved source field is {}, not 0", row.name, insn.src()));
  if (unused.off && insn.off != 0)
    return at(pc, fmt::format("{}: reserved offset field is {}, not 0", row.name, insn.off));
  if (unused.imm && insn.imm != 0)
    return at(pc, fmt::format("{}: reserved immediate field is {}, not 0", row.name, insn.imm));
  if (row.operation == Operation::callx && insn.dst() >= frame_pointer)
    return at(pc, fmt::format("callx through r{}", insn.dst()));
  if (written_register(row, insn) == frame_pointer) return at(pc, "r10 is read-only");
  return {};
}

// Per form, check_fields() as a few masks over the instruction word, derived from the same
// rules once: pass 1 calls check_fields() only for a slot that fails them (which it then
// reports). Also what pass 1 needs of the table row, so that it reads no row otherwise.
struct Rules {
  std::uint64_t reserved = 0;  // bits of the word that must be zero (the unused fields)
  std::uint16_t dst_ok = 0;    // bit r: the dst field may hold r
  std::uint16_t src_ok = 0;    // bit r: the src field may hold r
  std::uint8_t min_cpu = 0;
  Kind kind = Kind::exit;
  Operation operation = Operation::exit;
  bool branch = false;  // a jump or call local: pass 2 checks its target
};

constexpr Rules rules_for(const OpInfo& row) {
  constexpr std::uint16_t registers = (1u << register_count) - 1;
  constexpr std::uint16_t fp = 1u << frame_pointer;
  const Unused unused = unused_fields(row);
  Insn dst_10, src_10;  // which field, if any, names the register written
  dst_10.set_dst(frame_pointer);
  src_10.set_src(frame_pointer);
  Rules r;
  r.reserved = (unused.dst ? 0x0f00u : 0u) | (unused.src ? 0xf000u : 0u) | (unused.off ? 0xffff0000u : 0u) |
               (unused.imm ? 0xffffffff00000000u : 0u);
  r.dst_ok = registers;
  if (row.operation == Operation::callx || written_register(row, dst_10) == frame_pointer) r.dst_ok &= ~fp;
  r.src_ok = row.disc == Disc::src ? 0xffff : registers;  // decode() checked a distinguishing src
  if (written_register(row, src_10) == frame_pointer) r.src_ok &= ~fp;
  r.min_cpu = row.min_cpu;
  r.kind = row.kind;
  r.operation = row.operation;
  r.branch = row.kind == Kind::jump || (row.kind == Kind::call && row.operation == Operation::local);
  return r;
}

constexpr std::array<Rules, op_count> build_rules() {
  std::array<Rules, op_count> rules{};
  for (std::size_t i = 0; i < op_count; ++i) rules[i] = rules_for(op_table[i]);
  return rules;
}

constexpr std::array<Rules, op_count> rules_of = build_rules();

bool test_bit(const std::vector<std::uint64_t>& bits, std::size_t i) {
  return (bits[i / 64] >> (i % 64) & 1) != 0;
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

Status validate(Program& program, const ValidateOptions& options) {
  Layout layout;
  Status status = validate(std::as_const(program), options, layout);
  // The functions are complete (discovered, or given and sorted) once every instruction passed
  // on its own, whatever comes after.
  if (!layout.functions.empty()) program.functions = std::move(layout.functions);
  return status;
}

Status validate(const Program& program, const ValidateOptions& options, Layout& out) {
  const auto& insns = program.insns;
  const std::size_t n = insns.size();
  out.functions.clear();
  if (n == 0) return Error{"program is empty"};
  if (n > options.max_insns)
    return Error{fmt::format("program has {} instructions, more than the limit of {}", n, options.max_insns)};

  // Pass 1: each instruction on its own; note lddw second slots, branches and call-local targets.
  out.ops.resize(n);
  out.second_slots.assign((n + 63) / 64, 0);
  out.branches.resize(n);  // filled without a branch per slot, cut to size after pass 1
  std::size_t branches = 0;
  out.call_targets.clear();
  Op* const ops = out.ops.data();
  const int cpu_version = options.cpu_version;
  for (std::size_t pc = 0; pc < n; ++pc) {
    const Insn& insn = insns[pc];
    const std::optional<Op> op = decode(insn);
    if (!op) return at(pc, describe_unknown(insn));
    ops[pc] = *op;
    const Rules& rules = rules_of[static_cast<std::size_t>(*op)];
    const std::uint64_t word = std::bit_cast<std::uint64_t>(insn);
    if ((word & rules.reserved) != 0 || (rules.dst_ok >> insn.dst() & 1) == 0 ||
        (rules.src_ok >> insn.src() & 1) == 0 || rules.min_cpu > cpu_version) {
      if (Status s = check_fields(insn, *op, pc, options); !s) return s;
    }
    const Kind kind = rules.kind;
    if (kind == Kind::lddw) {
      if (pc + 1 >= n) return at(pc, "lddw is truncated: its second slot is missing");
      // A function reference (callbacks, callx targets) names a function start like call local.
      if (rules.operation == Operation::func) {
        auto t = static_cast<std::ptrdiff_t>(pc) + 1 + insn.imm;
        if (t < 0 || static_cast<std::size_t>(t) >= n)
          return at(pc, fmt::format("function reference target {} is outside the program (0..{})", t, n - 1));
        out.call_targets.push_back(static_cast<std::uint32_t>(t));
      }
      auto& next = insns[pc + 1];
      if (next.opcode != 0 || next.regs != 0 || next.off != 0)
        return at(pc + 1, "lddw second slot must have zero opcode, registers and offset");
      ++pc;
      out.second_slots[pc / 64] |= std::uint64_t{1} << (pc % 64);
      ops[pc] = *op;
    }
    if (kind == Kind::call && rules.operation == Operation::local) {
      auto t = branch_target(insn, *op, pc);
      if (t < 0 || static_cast<std::size_t>(t) >= n)
        return at(pc, fmt::format("call local target {} is outside the program (0..{})", t, n - 1));
      out.call_targets.push_back(static_cast<std::uint32_t>(t));
    }
    out.branches[branches] = static_cast<std::uint32_t>(pc);
    branches += rules.branch;
  }
  out.branches.resize(branches);

  // Functions: given by the loader, or discovered from call targets.
  auto& functions = out.functions;
  if (program.functions.empty()) {
    auto& starts = out.call_targets;
    starts.push_back(0);
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    for (std::size_t i = 0; i < starts.size(); ++i) {
      auto end = i + 1 < starts.size() ? starts[i + 1] : n;
      functions.push_back({i == 0 ? program.name : fmt::format("func_{}", starts[i]), starts[i],
                           static_cast<std::uint32_t>(end)});
    }
  } else {
    functions = program.functions;
    std::sort(functions.begin(), functions.end(), [](auto& a, auto& b) { return a.start < b.start; });
    for (auto& f : functions)
      if (f.start >= f.end || f.end > n)
        return Error{fmt::format("function {} spans [{}, {}) outside the program", f.name, f.start, f.end)};
  }

  // Whether a jump at pc stays in its function: the one containing it among the sorted functions,
  // found by a walk as the branches come in order; given functions that overlap (a pc belongs to
  // the last in start order that contains it) need a table.
  bool overlap = false;
  for (std::size_t i = 1; i < functions.size(); ++i) overlap |= functions[i - 1].end > functions[i].start;
  if (overlap) {
    out.function_of.assign(n, -1);
    for (std::size_t i = 0; i < functions.size(); ++i)
      std::fill(out.function_of.begin() + functions[i].start, out.function_of.begin() + functions[i].end,
                static_cast<std::int32_t>(i));
  }
  std::size_t current = 0;
  auto same_function = [&](std::size_t pc, std::size_t t) {
    if (overlap) return out.function_of[t] == out.function_of[pc];
    while (functions[current].end <= pc) ++current;
    return functions[current].start <= t && t < functions[current].end;
  };
  // The first instruction (not a second slot) outside every function: the first error of
  // pass 2 unless a branch before it has one.
  std::size_t unowned = n;
  std::size_t covered = 0;
  for (std::size_t i = 0; i <= functions.size() && unowned == n; ++i) {
    const std::size_t start = i < functions.size() ? functions[i].start : n;
    std::size_t pc = covered;
    if (pc < start && test_bit(out.second_slots, pc)) ++pc;
    if (pc < start) unowned = pc;
    if (i < functions.size()) covered = std::max<std::size_t>(covered, functions[i].end);
  }

  // Pass 2: control flow.
  for (const std::uint32_t pc : out.branches) {
    if (pc >= unowned) break;
    const Op op = out.ops[pc];
    const auto t = branch_target(insns[pc], op, pc);
    if (info(op).kind == Kind::jump) {
      if (t < 0 || static_cast<std::size_t>(t) >= n)
        return at(pc, fmt::format("jump target {} is outside the program (0..{})", t, n - 1));
      if (test_bit(out.second_slots, static_cast<std::size_t>(t)))
        return at(pc, fmt::format("jump target {} is the second slot of an lddw", t));
      if (!same_function(pc, static_cast<std::size_t>(t)))
        return at(pc, fmt::format("jump target {} is in another function", t));
    } else if (!std::ranges::binary_search(functions, static_cast<std::size_t>(t), {}, &Function::start)) {
      return at(pc, fmt::format("call local target {} is not the start of a function", t));
    }
  }
  if (unowned < n) return at(unowned, "instruction belongs to no function");
  for (auto& f : functions) {
    auto last = f.end - 1;
    if (test_bit(out.second_slots, last)) --last;
    auto& row = info(out.ops[last]);
    bool ends = row.kind == Kind::exit || (row.kind == Kind::jump && row.operation == Operation::ja);
    if (!ends) return at(last, fmt::format("function {} can fall off its end: its last instruction is not exit or goto", f.name));
  }
  return {};
}

}  // namespace bpfvm::isa
