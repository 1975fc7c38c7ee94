#include "jit/lowering/loops.hpp"

#include <algorithm>
#include <bit>
#include <optional>
#include <span>
#include <utility>

namespace bpfvm::jit::lowering {
namespace {

using isa::Kind;
using isa::Operation;
using isa::Source;

// Loops longer than this are left alone: it bounds the work per loop head.
constexpr std::uint32_t max_loop = 256;
constexpr std::size_t max_ranges = 4;
constexpr std::int64_t max_step = std::int64_t{1} << 30;

// A register's value at some point of an iteration: the sum of some registers' values at the
// iteration's start, each shifted left by its log2_scale, plus disp.
struct Expr {
  std::array<std::uint8_t, 3> regs{};
  std::array<std::uint8_t, 3> log2_scale{};
  std::uint8_t count = 0;
  bool known = false;
  std::int64_t disp = 0;
};

bool fits32(std::int64_t v) { return v == static_cast<std::int32_t>(v); }

// `a op b` as `b swapped(op) a`.
Operation swapped(Operation o) {
  switch (o) {
    case Operation::jlt: return Operation::jgt;
    case Operation::jle: return Operation::jge;
    case Operation::jgt: return Operation::jlt;
    case Operation::jge: return Operation::jle;
    case Operation::jslt: return Operation::jsgt;
    case Operation::jsle: return Operation::jsge;
    case Operation::jsgt: return Operation::jslt;
    case Operation::jsge: return Operation::jsle;
    default: return o;  // jeq, jne
  }
}

Operation negated(Operation o) {
  switch (o) {
    case Operation::jeq: return Operation::jne;
    case Operation::jne: return Operation::jeq;
    case Operation::jlt: return Operation::jge;
    case Operation::jge: return Operation::jlt;
    case Operation::jle: return Operation::jgt;
    case Operation::jgt: return Operation::jle;
    case Operation::jslt: return Operation::jsge;
    case Operation::jsge: return Operation::jslt;
    case Operation::jsle: return Operation::jsgt;
    case Operation::jsgt: return Operation::jsle;
    default: return o;
  }
}

class LoopScan {
 public:
  LoopScan(const Analysis& a, std::uint32_t head_block)
      : a_(a), hb_(head_block), head_(a.blocks[head_block].first) {}

  // `latches`: the pcs of the back edges to the head within max_loop, in increasing order.
  std::optional<HoistedLoop> run(std::span<const std::uint32_t> latches) {
    if (!find_end(latches)) return std::nullopt;
    find_spine();
    find_inductions();
    find_bounds();
    HoistedLoop loop;
    loop.head = head_;
    loop.end = end_;
    loop.entry = entry_;
    if (!find_trip(loop.trip)) return std::nullopt;
    find_accesses(loop);
    if (loop.accesses.empty()) return std::nullopt;
    return loop;
  }

 private:
  bool inside(std::uint32_t pc) const { return pc >= head_ && pc < end_; }
  // Where pc comes in an iteration, which starts at the entry: [entry, end) then [head, entry).
  std::uint32_t pos(std::uint32_t pc) const {
    return pc >= entry_ ? pc - entry_ : pc - head_ + (end_ - entry_);
  }
  // The loop's blocks in iteration order, or in reverse.
  template <typename F>
  void for_each_block(F f) const {
    const std::uint32_t entry_block = a_.block_of[entry_], last = a_.block_of[end_ - 1];
    for (std::uint32_t b = entry_block; b <= last; ++b) f(a_.blocks[b]);
    for (std::uint32_t b = hb_; b < entry_block; ++b) f(a_.blocks[b]);
  }
  template <typename F>
  void for_each_block_reversed(F f) const {
    const std::uint32_t entry_block = a_.block_of[entry_], last = a_.block_of[end_ - 1];
    for (std::uint32_t b = entry_block; b-- > hb_;) f(a_.blocks[b]);
    for (std::uint32_t b = last + 1; b-- > entry_block;) f(a_.blocks[b]);
  }
  // Counts what the instruction at pc writes; write_pc_ keeps the last write in iteration order,
  // first_write_ the position of the first.
  void count_writes(std::uint32_t pc) {
    for (RegSet w = a_.writes[pc] & all_regs; w != 0; w &= static_cast<RegSet>(w - 1)) {
      const auto r = static_cast<std::size_t>(std::countr_zero(w));
      if (writes_[r]++ == 0 || pos(pc) > pos(write_pc_[r])) write_pc_[r] = pc;
      if (writes_[r] == 1 || pos(pc) < first_write_[r]) first_write_[r] = pos(pc);
    }
  }

  // The loop ends after a back edge to the head: the last one (of the last four) for which the
  // loop qualifies. A back edge after the end is an entry like any other (a nest whose outer
  // loop also closes at this head keeps its inner loop).
  bool find_end(std::span<const std::uint32_t> latches) {
    for (std::size_t tried = 0; tried < 4 && tried < latches.size(); ++tried) {
      end_ = latches[latches.size() - 1 - tried] + 1;
      if (single_entry_innermost()) return true;
    }
    return false;
  }

  // No calls, exits or legacy loads; entered from outside at one place, the entry: the head,
  // or (a rotated loop, which clang makes of `while` loops) one pc inside when nothing from
  // outside reaches the head; no backward jump in iteration order but to the entry. Other
  // jumps from outside may only enter exit paths.
  bool single_entry_innermost() {
    // Block by block first (jumps, calls and exits end blocks): a nest's outer loop fails here
    // at its inner loop's back edge, before any per-instruction work.
    std::array<std::uint8_t, max_loop> jumps_in;  // saturating: jumps_to does too
    std::fill_n(jumps_in.begin(), end_ - head_, std::uint8_t{0});
    for (std::uint32_t b = hb_; b < a_.blocks.size() && a_.blocks[b].first < end_; ++b) {
      const Insn& in = a_.insns[last_of(a_.blocks[b])];
      const Kind kind = in.info().kind;
      if (kind == Kind::call || kind == Kind::exit) return false;
      if (kind != Kind::jump || !inside(in.target)) continue;
      if (in.target != head_ && in.target < a_.blocks[b].end) return false;  // an inner loop
      if (jumps_in[in.target - head_] < 255) ++jumps_in[in.target - head_];
    }
    for (std::uint32_t pc = head_; pc < end_; ++pc)
      if (a_.insns[pc].info().kind == Kind::legacy) return false;
    // The pcs inside that code outside jumps to: at most one may be in the body (the entry);
    // the others start exit paths laid out inside, which never come back.
    std::array<std::uint32_t, 4> outside_in{};
    std::size_t count = 0;
    for (std::uint32_t pc = head_ + 1; pc < end_; ++pc) {
      if (a_.jumps_to[pc] == 255) return false;
      if (a_.jumps_to[pc] == jumps_in[pc - head_]) continue;
      if (count == outside_in.size()) return false;
      outside_in[count++] = pc;
    }
    // The entry: the head, or (when nothing from outside reaches the head) one of those pcs.
    const bool rotatable = count > 0 && head_unreachable_from_outside(jumps_in[0]);
    for (std::size_t candidate = 0; candidate <= count; ++candidate) {
      if (candidate > 0 && !rotatable) break;
      entry_ = candidate == 0 ? head_ : outside_in[candidate - 1];
      if (!forward_in_iteration_order()) continue;
      find_body();
      if (std::all_of(outside_in.begin(), outside_in.begin() + count,
                      [&](std::uint32_t pc) { return pc == entry_ || !body_[pc - head_]; }))
        return true;
    }
    return false;
  }
  // No jump inside goes back in iteration order, but to the entry.
  bool forward_in_iteration_order() const {
    for (std::uint32_t b = hb_; b < a_.blocks.size() && a_.blocks[b].first < end_; ++b) {
      const std::uint32_t last = last_of(a_.blocks[b]);
      const Insn& in = a_.insns[last];
      if (in.info().kind == Kind::jump && inside(in.target) && in.target != entry_ &&
          pos(in.target) <= pos(last))
        return false;
    }
    return true;
  }
  std::uint32_t last_of(const Block& b) const {
    return a_.insns[b.end - 1].second_slot ? b.end - 2 : b.end - 1;
  }

  // The blocks from which the entry can be reached again; the others only leave the loop, so
  // what they write does not matter to the next iteration (a loop's exit path laid out inside
  // it). Then what the body writes.
  void find_body() {
    auto reaches_entry = [&](std::uint32_t to) { return to == entry_ || (inside(to) && body_[to - head_]); };
    for_each_block_reversed([&](const Block& block) {
      const std::uint32_t last = last_of(block);
      const isa::OpInfo& row = a_.insns[last].info();
      bool body = false;
      if (row.kind == Kind::jump) body = reaches_entry(a_.insns[last].target);
      if (!(row.kind == Kind::jump && row.operation == Operation::ja))
        body = body || reaches_entry(block.end);
      std::fill(body_.begin() + (block.first - head_), body_.begin() + (block.end - head_), body);
    });
    writes_ = {};
    for (std::uint32_t pc = head_; pc < end_; ++pc)
      if (body_[pc - head_]) count_writes(pc);
  }
  // No jump from outside, no fall-through into it, not a function's start.
  bool head_unreachable_from_outside(std::uint32_t jumps_from_inside) const {
    if (a_.jumps_to[head_] != jumps_from_inside || a_.functions[a_.function_of[head_]].start == head_)
      return false;
    std::uint32_t before = head_ - 1;
    if (a_.insns[before].second_slot) --before;
    const isa::OpInfo& row = a_.insns[before].info();
    return row.kind == Kind::exit || (row.kind == Kind::jump && row.operation == Operation::ja);
  }

  // A body block every iteration runs: no jump within the body passes over it, and no back edge
  // to the entry comes before it (in iteration order the loop's blocks form a forward graph).
  void find_spine() {
    std::uint32_t reach = 0;
    bool back_edge_before = false;
    for_each_block([&](const Block& block) {
      const bool spine = body_[block.first - head_] && reach <= pos(block.first) && !back_edge_before;
      std::fill(spine_.begin() + (block.first - head_), spine_.begin() + (block.end - head_), spine);
      const Insn& in = a_.insns[last_of(block)];
      if (in.info().kind != Kind::jump || !inside(in.target)) return;
      if (in.target == entry_)
        back_edge_before = true;
      else if (body_[in.target - head_])
        reach = std::max(reach, pos(in.target));
    });
  }

  void find_inductions() {
    for (int r = 0; r < 10; ++r) {
      if (writes_[static_cast<std::size_t>(r)] != 1) continue;
      const std::uint32_t pc = write_pc_[r];
      const Insn& in = a_.insns[pc];
      const isa::OpInfo& row = in.info();
      if (row.kind != Kind::alu || row.width != 64 || row.source != Source::imm || in.dst != r ||
          !spine_[pc - head_] || in.imm == 0)
        continue;
      if (row.operation == Operation::add)
        step_[r] = in.imm;
      else if (row.operation == Operation::sub)
        step_[r] = -std::int64_t{in.imm};
    }
  }
  // A register whose last write in every iteration is `&= m` (m >= 0, 64- or 32-bit) on the
  // spine: at each iteration's start it is at most m, given that it is at the entry (checked
  // there at run time).
  void find_bounds() {
    for (int r = 0; r < 10; ++r) {
      bound_[static_cast<std::size_t>(r)] = -1;
      if (writes_[static_cast<std::size_t>(r)] == 0 || step_[static_cast<std::size_t>(r)] != 0) continue;
      const std::uint32_t pc = write_pc_[static_cast<std::size_t>(r)];
      const Insn& in = a_.insns[pc];
      const isa::OpInfo& row = in.info();
      if (row.kind == Kind::alu && row.operation == Operation::band && row.source == Source::imm &&
          in.dst == r && in.imm >= 0 && spine_[pc - head_])
        bound_[static_cast<std::size_t>(r)] = in.imm;
    }
  }
  bool invariant(int r) const { return r == 10 || writes_[static_cast<std::size_t>(r)] == 0; }
  bool counter(int r) const {
    const std::int64_t s = step_[static_cast<std::size_t>(r)];
    return r < 10 && s > 0 && s <= max_step && std::has_single_bit(static_cast<std::uint64_t>(s));
  }

  // The first conditional jump on the spine that leaves the loop unless a counter is below,
  // at most or not equal to a bound.
  bool find_trip(Trip& trip) {
    for (std::uint32_t pc = head_; pc < end_; ++pc) {
      const Insn& in = a_.insns[pc];
      if (in.second_slot || !spine_[pc - head_]) continue;
      const isa::OpInfo& row = in.info();
      if (row.kind != Kind::jump || row.width != 64 || row.operation == Operation::ja ||
          row.operation == Operation::jset)
        continue;
      auto stays = [&](std::uint32_t to) { return inside(to) && body_[to - head_]; };
      const bool taken_stays = stays(in.target), next_stays = stays(pc + 1);
      if (taken_stays == next_stays) continue;
      Operation stay = taken_stays ? row.operation : negated(row.operation);
      int c = in.dst;
      bool bound_reg = row.source == Source::reg;
      int b = in.src;
      if (!counter(c) || (bound_reg && !invariant(b))) {
        if (!bound_reg || !counter(in.src) || !invariant(in.dst)) continue;
        c = in.src;
        b = in.dst;
        stay = swapped(stay);
      }
      switch (stay) {
        case Operation::jlt:
        case Operation::jslt: trip.cont = Trip::Continue::below; break;
        case Operation::jle:
        case Operation::jsle: trip.cont = Trip::Continue::at_most; break;
        case Operation::jne: trip.cont = Trip::Continue::not_equal; break;
        default: continue;
      }
      if (!bound_reg && in.imm < 0) continue;  // a bound of 2^63 or more
      trip.counter = static_cast<std::uint8_t>(c);
      trip.log2_step = static_cast<std::uint8_t>(std::countr_zero(static_cast<std::uint64_t>(step_[c])));
      trip.counted_first = pos(write_pc_[c]) < pos(pc);
      trip.bound_is_reg = bound_reg;
      trip.bound_reg = static_cast<std::uint8_t>(b);
      trip.bound = bound_reg ? 0 : static_cast<std::uint64_t>(in.imm);
      return true;
    }
    return false;
  }

  // Follows each block's registers as sums of head values and records every access that needs
  // a check and whose base is such a sum.
  void find_accesses(HoistedLoop& loop) {
    for_each_block([&](const Block& block) {
      if (!body_[block.first - head_]) return;  // an exit path: its accesses keep their checks
      std::array<Expr, 11> e{};
      for (int r = 0; r <= 10; ++r) {
        const auto i = static_cast<std::size_t>(r);
        const bool induction = r < 10 && step_[i] != 0;
        // A bounded register is its start value until its first write in the iteration.
        const bool bounded = r < 10 && bound_[i] >= 0 && first_write_[i] >= pos(block.first);
        if (!invariant(r) && !induction && !bounded) continue;
        Expr& x = e[i];
        x.known = true;
        x.count = 1;
        x.regs[0] = static_cast<std::uint8_t>(r);
        if (induction && pos(write_pc_[i]) < pos(block.first)) x.disp = step_[i];
      }
      for (std::uint32_t pc = block.first; pc < block.end; ++pc) {
        const Insn& in = a_.insns[pc];
        if (in.second_slot) continue;
        const isa::OpInfo& row = in.info();
        if ((row.kind == Kind::load || row.kind == Kind::store || row.kind == Kind::atomic) &&
            needs_check(in)) {
          const int base = row.kind == Kind::load ? in.src : in.dst;
          const unsigned kind = row.kind == Kind::load ? 1u : row.kind == Kind::store ? 2u : 3u;
          const bool stack = (a_.frame_derived[pc] & reg_bit(base)) != 0;
          if (record(loop, e[static_cast<std::size_t>(base)], in.off, row.width / 8u, kind, stack))
            loop.accesses.push_back(pc);
        }
        step_expressions(in, row, pc, e);
      }
    });
    std::sort(loop.accesses.begin(), loop.accesses.end());
  }

  void step_expressions(const Insn& in, const isa::OpInfo& row, std::uint32_t pc,
                        std::array<Expr, 11>& e) const {
    if (a_.writes[pc] == 0) return;
    Expr& d = e[in.dst];
    if (row.kind == Kind::alu && row.width == 64) {
      const Expr& s = e[in.src];
      switch (row.operation) {
        case Operation::mov:
          if (row.source == Source::reg) {
            d = s;
          } else {
            d = Expr{};
            d.known = true;
            d.disp = in.imm;
          }
          return;
        case Operation::add:
        case Operation::sub:
          if (!d.known) return;
          if (row.source == Source::imm) {
            d.disp += row.operation == Operation::add ? std::int64_t{in.imm} : -std::int64_t{in.imm};
          } else if (row.operation == Operation::add && s.known && d.count + s.count <= 3) {
            const Expr src = s;  // s may be d
            for (std::uint8_t i = 0; i < src.count; ++i, ++d.count) {
              d.regs[d.count] = src.regs[i];
              d.log2_scale[d.count] = src.log2_scale[i];
            }
            d.disp += src.disp;
          } else {
            d.known = false;
          }
          return;
        case Operation::lsh:  // an array index: (sum) << k as a sum of scaled terms
          if (!d.known || row.source != Source::imm || in.imm < 1 || in.imm > 3 || d.disp < -(1ll << 40) ||
              d.disp > (1ll << 40))
            break;
          for (std::uint8_t i = 0; i < d.count; ++i) {
            d.log2_scale[i] = static_cast<std::uint8_t>(d.log2_scale[i] + in.imm);
            if (d.log2_scale[i] > 3) d.known = false;
          }
          d.disp *= std::int64_t{1} << in.imm;
          return;
        default: break;
      }
    }
    for (int r = 0; r < 10; ++r)
      if ((a_.writes[pc] & reg_bit(r)) != 0) e[static_cast<std::size_t>(r)].known = false;
  }

  // Adds [x + off, x + off + size) to the loop's ranges; false when it cannot be hoisted. A
  // bounded register's term is left out of the range's start and adds its bound, scaled, to the
  // range's end; an induction's adds its step, scaled, to the range's step.
  bool record(HoistedLoop& loop, const Expr& x, std::int16_t off, unsigned size, unsigned kind,
              bool stack) const {
    if (!x.known) return false;
    Range range;
    range.stack = stack;
    range.kinds = kind;
    std::int64_t step = 0, bounded = 0;
    std::array<std::uint8_t, 3> bounded_regs{};
    std::size_t bounded_count = 0;
    for (std::uint8_t i = 0; i < x.count; ++i) {
      const std::uint8_t r = x.regs[i];
      if (r < 10 && bound_[r] >= 0) {
        bounded += bound_[r] << x.log2_scale[i];
        bounded_regs[bounded_count++] = r;
        continue;
      }
      if (r < 10) step += step_[r] << x.log2_scale[i];
      range.regs[range.count] = r;
      range.log2_scale[range.count++] = x.log2_scale[i];
    }
    const std::int64_t lo = x.disp + off, hi = lo + size;
    constexpr std::int64_t limit = std::int64_t{1} << 31;
    if (step < 0 || step >= limit || !fits32(lo) || !fits32(hi) || hi - lo + bounded >= limit) return false;
    // One order for the terms, so that equal sums make one range.
    std::array<std::uint16_t, 3> terms{};
    for (std::uint8_t i = 0; i < range.count; ++i)
      terms[i] = static_cast<std::uint16_t>(range.regs[i] << 8 | range.log2_scale[i]);
    for (std::uint8_t i = 1; i < range.count; ++i)  // insertion sort: at most three
      for (std::uint8_t j = i; j > 0 && terms[j - 1] > terms[j]; --j) std::swap(terms[j - 1], terms[j]);
    for (std::uint8_t i = 0; i < range.count; ++i) {
      range.regs[i] = static_cast<std::uint8_t>(terms[i] >> 8);
      range.log2_scale[i] = static_cast<std::uint8_t>(terms[i] & 0xff);
    }
    range.step = static_cast<std::uint32_t>(step);
    Range* same = nullptr;
    for (Range& r : loop.ranges)
      if (r.count == range.count && r.regs == range.regs && r.log2_scale == range.log2_scale &&
          r.step == range.step && r.stack == stack)
        same = &r;
    if (!same && loop.ranges.size() == max_ranges) return false;
    if (!same) {
      range.lo = static_cast<std::int32_t>(lo);
      range.hi = static_cast<std::int32_t>(hi);
      same = &loop.ranges.emplace_back(range);
    }
    const std::int32_t new_lo = std::min(same->lo, static_cast<std::int32_t>(lo));
    const std::int32_t new_hi = std::max(same->hi, static_cast<std::int32_t>(hi));
    const std::int64_t new_bounded = std::max<std::int64_t>(same->bounded, bounded);
    if (std::int64_t{new_hi} - new_lo + new_bounded >= limit) return false;
    same->lo = new_lo;
    same->hi = new_hi;
    same->bounded = static_cast<std::uint32_t>(new_bounded);
    same->kinds |= kind;
    for (std::size_t i = 0; i < bounded_count; ++i) {
      const std::uint8_t r = bounded_regs[i];
      if (std::none_of(loop.bounds.begin(), loop.bounds.end(), [&](const Bound& b) { return b.reg == r; }))
        loop.bounds.push_back(Bound{r, static_cast<std::uint32_t>(bound_[r])});
    }
    return true;
  }

  const Analysis& a_;
  const std::uint32_t hb_, head_;
  std::uint32_t end_ = 0, entry_ = 0;
  std::array<std::uint16_t, 10> writes_{};
  std::array<std::uint32_t, 10> write_pc_{};
  std::array<std::int64_t, 10> step_{};          // inductions: the step; else 0
  std::array<std::int64_t, 10> bound_{};         // bounded registers: the bound; else -1
  std::array<std::uint32_t, 10> first_write_{};  // the position of each register's first write
  // Per pc - head within [head, end); written before they are read.
  std::array<bool, max_loop> spine_;
  std::array<bool, max_loop> body_;
};

}  // namespace

bool needs_check(const Insn& access) {
  if (access.proven) return false;
  const isa::OpInfo& row = access.info();
  const int base = row.kind == Kind::load ? access.src : access.dst;
  const int bytes = row.width / 8;
  return !(base == isa::frame_pointer && access.off >= -isa::stack_frame_size && access.off + bytes <= 0);
}

void hoisted_loops(const Analysis& a, std::vector<HoistedLoop>& out) {
  out.clear();
  // The back edges (head, latch) no longer than max_loop, from one pass over the blocks' last
  // slots (jumps end blocks).
  std::vector<std::pair<std::uint32_t, std::uint32_t>> back_edges;
  for (const Block& b : a.blocks) {
    const std::uint32_t last = a.insns[b.end - 1].second_slot ? b.end - 2 : b.end - 1;
    const Insn& in = a.insns[last];
    if (in.info().kind == Kind::jump && in.target <= last && last - in.target < max_loop)
      back_edges.emplace_back(in.target, last);
  }
  std::sort(back_edges.begin(), back_edges.end());
  std::array<std::uint32_t, max_loop> latches{};
  for (std::size_t i = 0; i < back_edges.size();) {
    const std::uint32_t head = back_edges[i].first;
    std::size_t count = 0;
    for (; i < back_edges.size() && back_edges[i].first == head; ++i) latches[count++] = back_edges[i].second;
    if (auto loop = LoopScan(a, a.block_of[head]).run({latches.data(), count}))
      out.push_back(std::move(*loop));
  }
}

}  // namespace bpfvm::jit::lowering
