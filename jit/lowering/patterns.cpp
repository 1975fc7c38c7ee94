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

std::optional<FoldedAccess> folded_access(const Analysis& a, std::uint32_t pc) {
  const auto sum = address_sum(a, pc);
  if (!sum || pc + 2 >= a.insns.size()) return std::nullopt;
  const std::uint32_t at = pc + 2;
  const Insn& access = a.insns[at];
  if (access.second_slot || !access.proven || a.jumps_to[at] != 0 || a.block_start(at)) return std::nullopt;
  const Insn& mov = a.insns[pc];
  const Insn& add = a.insns[pc + 1];
  const isa::OpInfo& row = access.info();
  if (row.kind == Kind::load) {
    if (access.src != mov.dst || (access.dst != mov.dst && a.live_after(at, mov.dst))) return std::nullopt;
  } else if (row.kind == Kind::store) {
    const bool stores_sum = row.source == Source::reg && access.src == mov.dst;
    if (access.dst != mov.dst || stores_sum || a.live_after(at, mov.dst)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  // imm + off must stay a 32-bit displacement.
  if (add.info().source == Source::imm) {
    const std::int64_t disp = std::int64_t{add.imm} + access.off;
    if (disp != static_cast<std::int32_t>(disp)) return std::nullopt;
  }
  return FoldedAccess{*sum, at};
}

}  // namespace bpfvm::jit::lowering
