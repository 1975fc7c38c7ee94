// Patterns over short windows of instructions that a backend may emit as one unit. Each
// matcher only looks at the Analysis; the backend decides whether its target has a better
// sequence for it. They keep the budget exact: a window never spans an instruction that other
// jumps enter, and the backend pays each instruction of the window as the blocks would.
#pragma once

#include <cstdint>
#include <optional>

#include "jit/lowering/analysis.hpp"

namespace bpfvm::jit::lowering {

// `if (cond) goto +1; rD = rS` or `rD = imm` (64-bit mov) where only the jump enters the mov:
// rD keeps its value when cond holds, else takes the mov's value (a conditional move). The
// mov is one block of its own, paid only when it runs (when cond does not hold).
struct ConditionalMove {
  std::uint32_t jump = 0;  // pc of the conditional jump
  std::uint32_t move = 0;  // pc of the mov (jump + 1); the jump's target is move + 1
};
std::optional<ConditionalMove> conditional_move(const Analysis& a, std::uint32_t pc);

// `rD = rS; rD += rT` or `rD = rS; rD += imm` (64-bit, the add not a jump target): one address
// computation (rD = rS + rT / rS + imm).
struct AddressSum {
  std::uint32_t mov = 0;
  std::uint32_t add = 0;  // mov + 1
};
std::optional<AddressSum> address_sum(const Analysis& a, std::uint32_t pc);

// `rT = rI; rT <<= k` (k 1-3; without the mov when rT is rI itself), `rB = rS`, optionally
// `rB += imm`, then `rB += rT` (64-bit, one block, none of it entered by a jump): an array
// element's address rB = rS + (rI << k) + imm, one scaled-index address computation. rT's
// value is still needed when `temp_live`. Registers: rT is neither rS nor rB, rB is not rS.
struct ScaledSum {
  std::uint32_t first = 0, last = 0;                    // the window's first and last pc
  std::uint8_t base = 0, index = 0, dst = 0, temp = 0;  // rS, rI, rB, rT
  std::uint8_t shift = 0;                               // k
  std::int32_t disp = 0;                                // imm (0 without the add)
  bool has_disp = false;
  bool temp_live = false;
};
std::optional<ScaledSum> scaled_sum(const Analysis& a, std::uint32_t pc);

// `rA = rB; rA >>= w - k; rB <<= k; rB |= rA` (or the shifts the other way round), all at one
// width w (32: `w` registers, 64), with rA dead after: rB rotated left by k (clang's form of
// `(x << k) | (x >> (w - k))`).
struct Rotate {
  std::uint8_t reg = 0;    // rB
  std::uint8_t width = 0;  // 32 or 64
  std::uint8_t left = 0;   // k, 1 to width - 1
};
std::optional<Rotate> rotate(const Analysis& a, std::uint32_t pc);

// Whether the load or store at `at` through rD (d), which the window before it (an address or
// scaled sum) computed as some address + disp, can take that address as its operand, so that
// rD is never computed: no check needs rD (the verifier proved the access, or `checked_before`:
// the backend checked it some other way, as for a hoisted loop's accesses), no jump enters it,
// it is in the window's block, rD is dead after it (or is the loaded register), and disp + off
// is a 32-bit displacement.
bool foldable_access(const Analysis& a, std::uint32_t at, std::uint8_t d, std::int64_t disp,
                     bool checked_before = false);

}  // namespace bpfvm::jit::lowering
