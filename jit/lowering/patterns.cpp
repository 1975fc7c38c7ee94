#include "jit/lowering/patterns.hpp"

namespace bpfvm::jit::lowering {

using isa::Kind;
using isa::Operation;
using isa::Source;

std::optional<ConditionalMove> conditional_move(const Analysis& a, std::uint32_t pc) {
  if (pc + 2 >= a.insns.size()) return std::nullopt;
  const Insn& jump = a.insns[pc];
  const isa::OpInfo& jrow = jump.info();
  if (jump.second_slot || jrow.kind != Kind::jump || jrow.operation == Operation::ja) return std::nullopt;
  if (jump.target != pc + 2 || a.jumps_to[pc + 1] != 0) return std::nullopt;
  const Insn& mov = a.insns[pc + 1];
  const isa::OpInfo& mrow = mov.info();
  // A 32-bit mov zero-extends even when the move does not happen on x86 and AArch64 alike.
  if (mrow.kind != Kind::alu || mrow.operation != Operation::mov || mrow.width != 64) return std::nullopt;
  if (a.function_of[pc] != a.function_of[pc + 2]) return std::nullopt;
  return ConditionalMove{pc, pc + 1};
}

std::optional<AddressSum> address_sum(const Analysis& a, std::uint32_t pc) {
  if (pc + 1 >= a.insns.size()) return std::nullopt;
  const Insn& mov = a.insns[pc];
  const Insn& add = a.insns[pc + 1];
  if (mov.second_slot || add.second_slot || a.jumps_to[pc + 1] != 0 || a.block_start(pc + 1))
    return std::nullopt;
  const isa::OpInfo& mrow = mov.info();
  const isa::OpInfo& arow = add.info();
  if (mrow.kind != Kind::alu || mrow.operation != Operation::mov || mrow.width != 64 ||
      mrow.source != Source::reg)
    return std::nullopt;
  if (arow.kind != Kind::alu || arow.operation != Operation::add || arow.width != 64) return std::nullopt;
  if (add.dst != mov.dst || mov.src == mov.dst) return std::nullopt;
  return AddressSum{pc, pc + 1};
}

std::optional<ScaledSum> scaled_sum(const Analysis& a, std::uint32_t pc) {
  const auto n = static_cast<std::uint32_t>(a.insns.size());
  // Every slot after the first: no lddw half, no jump target, the same block.
  auto inside = [&](std::uint32_t at) {
    return at < n && !a.insns[at].second_slot && a.jumps_to[at] == 0 && !a.block_start(at);
  };
  ScaledSum s;
  s.first = pc;
  std::uint32_t at = pc;
  const Insn& first = a.insns[pc];
  if (first.second_slot) return std::nullopt;
  if (first.op == isa::Op::mov64_reg) {
    if (first.src == first.dst || !inside(pc + 1)) return std::nullopt;
    s.index = first.src;
    s.temp = first.dst;
    at = pc + 1;
  }
  const Insn& shift = a.insns[at];
  if (shift.op != isa::Op::lsh64_imm || shift.imm < 1 || shift.imm > 3) return std::nullopt;
  if (at == pc) s.index = s.temp = shift.dst;
  if (shift.dst != s.temp) return std::nullopt;
  s.shift = static_cast<std::uint8_t>(shift.imm);
  if (!inside(at + 1)) return std::nullopt;
  const Insn& mov = a.insns[++at];
  if (mov.op != isa::Op::mov64_reg || mov.src == mov.dst || mov.dst == s.temp || mov.src == s.temp)
    return std::nullopt;
  s.base = mov.src;
  s.dst = mov.dst;
  if (!inside(at + 1)) return std::nullopt;
  if (const Insn& add = a.insns[at + 1]; add.op == isa::Op::add64_imm && add.dst == s.dst) {
    s.disp = add.imm;
    s.has_disp = true;
    if (!inside(++at + 1)) return std::nullopt;
  }
  const Insn& sum = a.insns[++at];
  if (sum.op != isa::Op::add64_reg || sum.dst != s.dst || sum.src != s.temp) return std::nullopt;
  s.last = at;
  s.temp_live = a.live_after(at, s.temp);
  return s;
}

std::optional<Rotate> rotate(const Analysis& a, std::uint32_t pc) {
  if (pc + 3 >= a.insns.size()) return std::nullopt;
  const Insn& mov = a.insns[pc];
  const isa::OpInfo& mrow = mov.info();
  if (mov.second_slot || mrow.kind != Kind::alu || mrow.operation != Operation::mov ||
      mrow.source != Source::reg || mov.dst == mov.src)
    return std::nullopt;
  for (std::uint32_t at = pc + 1; at <= pc + 3; ++at)
    if (a.insns[at].second_slot || a.jumps_to[at] != 0 || a.block_start(at)) return std::nullopt;
  const std::uint8_t w = mrow.width, ra = mov.dst, rb = mov.src;
  const Insn& first = a.insns[pc + 1];
  const Insn& second = a.insns[pc + 2];
  const Insn& join = a.insns[pc + 3];
  auto shift_imm = [&](const Insn& in, std::uint8_t reg) {
    const isa::OpInfo& row = in.info();
    return row.kind == Kind::alu && row.source == Source::imm && row.width == w && in.dst == reg &&
           (row.operation == Operation::lsh || row.operation == Operation::rsh) && in.imm > 0 && in.imm < w;
  };
  if (!shift_imm(first, ra) || !shift_imm(second, rb) || first.info().operation == second.info().operation ||
      first.imm + second.imm != w)
    return std::nullopt;
  const isa::OpInfo& jrow = join.info();
  if (jrow.kind != Kind::alu || jrow.operation != Operation::bor || jrow.source != Source::reg ||
      jrow.width != w || join.dst != rb || join.src != ra || a.live_after(pc + 3, ra))
    return std::nullopt;
  const auto left =
      static_cast<std::uint8_t>(second.info().operation == Operation::lsh ? second.imm : first.imm);
  return Rotate{rb, w, left};
}

bool foldable_access(const Analysis& a, std::uint32_t at, std::uint8_t d, std::int64_t disp,
                     bool checked_before) {
  if (at >= a.insns.size()) return false;
  const Insn& access = a.insns[at];
  if (access.second_slot || !(access.proven || checked_before) || a.jumps_to[at] != 0 || a.block_start(at))
    return false;
  const isa::OpInfo& row = access.info();
  if (row.kind == Kind::load) {
    if (access.src != d || (access.dst != d && a.live_after(at, d))) return false;
  } else if (row.kind == Kind::store) {
    const bool stores_sum = row.source == Source::reg && access.src == d;
    if (access.dst != d || stores_sum || a.live_after(at, d)) return false;
  } else {
    return false;
  }
  // disp + off must stay a 32-bit displacement.
  const std::int64_t total = disp + access.off;
  return total == static_cast<std::int32_t>(total);
}

}  // namespace bpfvm::jit::lowering
