// Loops whose memory accesses can be checked once per entry instead of once per iteration, for
// programs the verifier has not proven (docs/JIT-x64.md, "Loops checked once per entry").
//
// A loop qualifies when it is an innermost natural loop laid out as consecutive blocks
// [head, end), entered only at its head or only at one pc inside (its entry: a rotated loop,
// whose iterations run [entry, end) then [head, entry)), with no calls, exits or legacy loads.
// Blocks that cannot reach the entry again are exit paths laid out inside: their writes do not
// count, and code outside may jump into them. It needs a counter c that decides how many
// iterations run (a loop without one leaves on data, mostly after a few iterations, where the
// entry check costs more than it saves: hash_lookup's probes ran 2.3x native checked every time
// and 2.9x to 3.5x checked at entry):
// - c is written once per iteration, by `c += s` (64-bit, s a power of two up to 2^30), in a
//   block every iteration runs (every path from the entry back to it passes it);
// - a 64-bit conditional jump in such a block leaves the loop unless `c < B`, `c <= B` or
//   `c != B` (signed forms too), where B is a constant or a register the loop never writes.
// Registers the loop never writes are invariant; those written once per iteration by `r += s`
// in such a block are inductions (step s, may be negative); those whose last write in an
// iteration is `&= m` in such a block are bounded (at most m at each iteration's start, when
// they are at the entry). An access is hoisted when its base register holds, at the access, a
// sum of at most three such registers' values at the iteration's start, each shifted left by 0
// to 3, plus a constant: in iteration k its address is then A + off + k * S (S the inductions'
// scaled steps) plus at most M (the bounded registers' scaled bounds).
//
// At the entry, with the registers' values there, a backend works out K, the last iteration that
// can start (Trip), tests each bounded register against its bound and checks each Range once
// for k = 0..K; if every range is inside the memory the accesses may use, a copy of the loop
// without those checks runs. The checks need c <= B < 2^62 at the entry (so c stays below
// B + s < 2^63: it never wraps, and signed and unsigned compares agree), and for `!=` that
// B - c is a multiple of s; otherwise the ordinary copy runs.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "jit/lowering/analysis.hpp"

namespace bpfvm::jit::lowering {

// How many iterations can start: with D = B - c (at the entry) and the test seeing c + s when c
// is counted before the test in an iteration (`counted_first`), else c:
//   below (c < B):     K = ceil(D / s) - 1 when counted first (0 when D = 0), else ceil(D / s)
//   at_most (c <= B):  the same with D + 1
//   not_equal:         K = D / s - 1 when counted first (D = 0 never ends), else D / s
// Iterations 0..K run (the last one may stop at the test or earlier).
struct Trip {
  enum class Continue : std::uint8_t { below, at_most, not_equal };
  Continue cont = Continue::below;
  std::uint8_t counter = 0;
  std::uint8_t log2_step = 0;
  bool counted_first = false;
  bool bound_is_reg = false;
  std::uint8_t bound_reg = 0;
  std::uint64_t bound = 0;  // when !bound_is_reg: below 2^31
};

// Accesses at sum(regs[i] << log2_scale[i], values at the entry) + [lo, hi + bounded) + k * step
// for k = 0..K. `bounded` is what bounded registers (HoistedLoop::
// bounds) add at most. `stack`: the bases were derived from r10 (checked against the current
// frame, else against the first region).
struct Range {
  std::array<std::uint8_t, 3> regs{};
  std::array<std::uint8_t, 3> log2_scale{};
  std::uint8_t count = 0;  // how many of regs
  std::int32_t lo = 0, hi = 0;
  std::uint32_t step = 0;  // hi - lo + bounded and step are below 2^31
  std::uint32_t bounded = 0;
  unsigned kinds = 0;  // 1 read, 2 write, 3 both
  bool stack = false;
};

// A register whose last write in every iteration is `&= max`: at most max at each iteration's
// start when it is at the entry (which the entry check tests).
struct Bound {
  std::uint8_t reg = 0;
  std::uint32_t max = 0;
};

struct HoistedLoop {
  std::uint32_t head = 0, end = 0;  // the loop's pcs [head, end)
  std::uint32_t entry = 0;          // where it is entered from outside: head, or inside it
  Trip trip;
  std::vector<Bound> bounds;
  std::vector<Range> ranges;
  std::vector<std::uint32_t> accesses;  // the pcs of the hoisted accesses, increasing
};

// An access needs a check unless the verifier proved it or it is r10 plus a constant inside the
// current frame (what both backends leave unchecked).
bool needs_check(const Insn& access);

// The loops of `a` that qualify and hoist at least one access that needs a check, in program
// order. `out` keeps its capacity between calls.
void hoisted_loops(const Analysis& a, std::vector<HoistedLoop>& out);

}  // namespace bpfvm::jit::lowering
