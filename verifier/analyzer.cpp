// The analysis: control-flow graphs, the fixpoint over abstract states, transfer functions and
// the safety checks.
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "isa/validate.hpp"
#include "verifier/state_ops.hpp"
#include "verifier/verifier.hpp"

#include "isa/disasm.hpp"

namespace bpfvm::verifier {
using namespace detail;
using isa::Kind;
using isa::Operation;

namespace {

constexpr std::int64_t pointer_offset_limit = std::int64_t{1} << 40;
constexpr std::uint64_t max_helper_size = std::uint64_t{1} << 29;

struct Reject {
  Diagnostic diagnostic;
};

// A check that failed while a loop invariant was being guessed (Analyzer::speculative_): the
// guess may be too wide there, so the failure is not the program's yet.
struct Speculation {};

struct Loop {
  std::uint32_t head = 0;
  int parent = -1;
  std::vector<std::uint32_t> body;     // pcs in reverse postorder, head first
  std::vector<std::uint32_t> latches;  // sources of the back edges to the head
};

struct Cfg {
  std::uint32_t start = 0, end = 0;
  std::vector<std::uint32_t> rpo;
  std::vector<std::int32_t> rpo_index;  // by pc - start; -1 when unreachable
  std::vector<std::int32_t> loop_of;    // innermost loop by pc - start; -1 when none
  std::vector<std::int32_t> idom;       // immediate dominator by rpo index (the entry's is itself)
  std::vector<Loop> loops;

  // True when every path from the function's entry to `pc` passes through `dom`.
  bool dominates(std::uint32_t dom, std::uint32_t pc) const {
    std::int32_t d = rpo_index[dom - start], x = rpo_index[pc - start];
    while (x > d) x = idom[x];
    return x == d;
  }
};

}  // namespace

std::string describe_insn(const isa::Program& p, std::size_t pc) {
  return isa::format_insn(p.insns, pc, isa::Syntax::llvm);
}

namespace {

Scalar meet(const Scalar& a, const Scalar& b, bool& ok) {
  Scalar r;
  r.smin = std::max(a.smin, b.smin);
  r.smax = std::min(a.smax, b.smax);
  r.umin = std::max(a.umin, b.umin);
  r.umax = std::min(a.umax, b.umax);
  r.s32min = std::max(a.s32min, b.s32min);
  r.s32max = std::min(a.s32max, b.s32max);
  r.u32min = std::max(a.u32min, b.u32min);
  r.u32max = std::min(a.u32max, b.u32max);
  auto t = a.bits.meet(b.bits);
  ok = t.has_value();
  if (!ok) return r;
  r.bits = *t;
  ok = r.normalize();
  return r;
}

enum class Rel { eq, ne, ugt, uge, ult, ule, sgt, sge, slt, sle, set, nset };

Rel relation(Operation op, bool taken) {
  switch (op) {
    case Operation::jeq: return taken ? Rel::eq : Rel::ne;
    case Operation::jne: return taken ? Rel::ne : Rel::eq;
    case Operation::jgt: return taken ? Rel::ugt : Rel::ule;
    case Operation::jge: return taken ? Rel::uge : Rel::ult;
    case Operation::jlt: return taken ? Rel::ult : Rel::uge;
    case Operation::jle: return taken ? Rel::ule : Rel::ugt;
    case Operation::jsgt: return taken ? Rel::sgt : Rel::sle;
    case Operation::jsge: return taken ? Rel::sge : Rel::slt;
    case Operation::jslt: return taken ? Rel::slt : Rel::sge;
    case Operation::jsle: return taken ? Rel::sle : Rel::sgt;
    case Operation::jset: return taken ? Rel::set : Rel::nset;
    default: return Rel::eq;
  }
}

Rel swapped(Rel r) {
  switch (r) {
    case Rel::ugt: return Rel::ult;
    case Rel::uge: return Rel::ule;
    case Rel::ult: return Rel::ugt;
    case Rel::ule: return Rel::uge;
    case Rel::sgt: return Rel::slt;
    case Rel::sge: return Rel::sle;
    case Rel::slt: return Rel::sgt;
    case Rel::sle: return Rel::sge;
    default: return r;
  }
}

// Narrows a and b to the values for which `a rel b` holds; false when none do.
bool refine(Scalar& a, Scalar& b, Rel rel) {
  using u64 = std::uint64_t;
  using s64 = std::int64_t;
  switch (rel) {
    case Rel::eq: {
      bool ok;
      Scalar m = meet(a, b, ok);
      if (!ok) return false;
      a = b = m;
      return true;
    }
    case Rel::ne: {
      if (a.is_const() && b.is_const()) return a.value() != b.value();
      auto trim = [](Scalar& x, u64 c) {
        if (x.umin == c && x.umin != UINT64_MAX) ++x.umin;
        if (x.umax == c && x.umax != 0) --x.umax;
        if (x.smin == static_cast<s64>(c) && x.smin != INT64_MAX) ++x.smin;
        if (x.smax == static_cast<s64>(c) && x.smax != INT64_MIN) --x.smax;
        return x.normalize();
      };
      if (b.is_const()) return trim(a, b.value());
      if (a.is_const()) return trim(b, a.value());
      return true;
    }
    case Rel::ult:
      if (b.umax == 0 || a.umin == UINT64_MAX) return false;
      a.umax = std::min(a.umax, b.umax - 1);
      b.umin = std::max(b.umin, a.umin + 1);
      break;
    case Rel::ule:
      a.umax = std::min(a.umax, b.umax);
      b.umin = std::max(b.umin, a.umin);
      break;
    case Rel::slt:
      if (b.smax == INT64_MIN || a.smin == INT64_MAX) return false;
      a.smax = std::min(a.smax, b.smax - 1);
      b.smin = std::max(b.smin, a.smin + 1);
      break;
    case Rel::sle:
      a.smax = std::min(a.smax, b.smax);
      b.smin = std::max(b.smin, a.smin);
      break;
    case Rel::ugt:
    case Rel::uge:
    case Rel::sgt:
    case Rel::sge: return refine(b, a, swapped(rel));
    case Rel::set:
      if (b.is_const()) {
        if ((a.bits.max() & b.value()) == 0) return false;
      } else if (a.is_const() && (b.bits.max() & a.value()) == 0) {
        return false;
      }
      return true;
    case Rel::nset:
      if (b.is_const()) {
        if (a.bits.value & b.value()) return false;
        auto t = a.bits.meet(Tnum{0, ~b.value()});
        if (!t) return false;
        a.bits = *t;
      } else if (a.is_const()) {
        if (b.bits.value & a.value()) return false;
        auto t = b.bits.meet(Tnum{0, ~a.value()});
        if (!t) return false;
        b.bits = *t;
      }
      break;
  }
  return a.normalize() && b.normalize();
}

// Two pointers into the same object, whose difference is the difference of their offsets. Map
// values (one per key) and allocated blocks may each be a different object.
bool same_base(const Reg& a, const Reg& b) {
  if (a.kind != b.kind || a.region != b.region || a.nullable || b.nullable) return false;
  switch (a.kind) {
    case RegKind::stack:
    case RegKind::ctx:
    case RegKind::packet:
    case RegKind::packet_meta: return true;
    case RegKind::mem: return !a.allocated && !b.allocated;
    default: return false;
  }
}

Rel as_signed(Rel r) {
  switch (r) {
    case Rel::ugt: return Rel::sgt;
    case Rel::uge: return Rel::sge;
    case Rel::ult: return Rel::slt;
    case Rel::ule: return Rel::sle;
    default: return r;
  }
}

bool is_signed_rel(Rel r) { return r == Rel::sgt || r == Rel::sge || r == Rel::slt || r == Rel::sle; }

// Writes what a 32-bit comparison learned about the low halves (x32 = the refined view) into x.
bool merge_low32(Scalar& x, const Scalar& x32) {
  x.u32min = std::max(x.u32min, x32.u32min);
  x.u32max = std::min(x.u32max, x32.u32max);
  x.s32min = std::max(x.s32min, x32.s32min);
  x.s32max = std::min(x.s32max, x32.s32max);
  Tnum low = x32.bits.low32();
  auto t = x.bits.meet(Tnum{low.value, low.mask | 0xffffffff00000000ull});
  if (!t) return false;
  x.bits = *t;
  return x.normalize();
}

std::uint64_t bswap_value(std::uint64_t v, int width) {
  std::uint64_t r = 0;
  for (int i = 0; i < width / 8; ++i) r = (r << 8) | ((v >> (8 * i)) & 0xff);
  return r;
}

}  // namespace

class Analyzer {
 public:
  Analyzer(isa::Program& program, const Environment& env, const Options& options)
      : p_(program), env_(env), opt_(options) {}

  VerifyResult run();

 private:
  struct Run {
    const Cfg* cfg = nullptr;
    std::vector<std::optional<State>> in;
    std::vector<std::optional<State>> back;
    std::optional<State> exit;
  };

  // CFG
  void successors(std::uint32_t pc, std::vector<std::uint32_t>& out) const;
  void build_cfg(std::size_t f);
  int function_index_at(std::uint32_t start) const;

  // Fixpoint
  std::optional<State> analyze_function(std::uint32_t f, State entry);
  void run_nodes(const std::vector<std::uint32_t>& order, int loop);
  void run_loop(int loop);
  // Runs the body once from `head` (loop progress started when `tag` is set); the back-edge state.
  std::optional<State> iterate(int loop, const State& head, std::uint32_t tag);
  void widen_loop(int loop, State head, std::size_t unrolled, bool repeated);
  void step_node(std::uint32_t pc);
  void deposit(std::uint32_t from, std::uint32_t to, State&& s);
  void join_into(std::optional<State>& slot, State&& s);

  // Transfer
  void step(std::uint32_t pc, State& s, std::vector<std::pair<std::uint32_t, State>>& out);
  void alu(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void jump(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn,
            std::vector<std::pair<std::uint32_t, State>>& out);
  void load(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void store(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void atomic(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void lddw(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void legacy(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void call(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn);
  void call_helper(std::uint32_t pc, State& s, std::uint32_t id);
  void call_local(std::uint32_t pc, State& s, std::uint32_t f);
  void call_callback(std::uint32_t pc, State& s, std::uint32_t f, const Reg& ctx_arg);
  State enter_frame(const State& s, std::uint32_t f, bool callback);
  void leave_frame(State& s, std::uint32_t call_pc);
  void exit_insn(std::uint32_t pc, State& s);

  // Checks
  enum class Access { read, write, atomic };
  // Checks an access of `size` bytes at reg+off. Reads return the value loaded.
  Reg access(std::uint32_t pc, State& s, int regno, std::int64_t off, int size, Access acc, const Reg* value,
             bool sign_extend, int value_reg = -1);
  Reg stack_access(std::uint32_t pc, State& s, int regno, std::int64_t off, int size, Access acc,
                   const Reg* value, bool sign_extend);
  Reg ctx_access(std::uint32_t pc, State& s, int regno, std::int64_t off, int size, Access acc,
                 const Reg* value);
  void check_range(std::uint32_t pc, State& s, int regno, const Scalar& size, bool write, bool zero_ok,
                   int size_regno);
  const Reg& use(std::uint32_t pc, const State& s, int regno);
  void leak(std::uint32_t pc, const State& s, std::string what, std::vector<int> regs);
  void invalidate(State& s, const std::function<bool(const Reg&)>& dead, Reg dead_value);
  void note_stack(const State& s, std::uint32_t frame, std::int64_t lowest);
  void propagate_scalar(State& s, const Reg& refined);

  [[noreturn]] void fail(std::uint32_t pc, const State& s, std::string check, std::string message,
                         std::vector<int> regs = {});
  std::string reg_str(const Reg& r, const State& s) const { return reg_text(r, s, names_); }

  isa::Program& p_;
  const Environment& env_;
  const Options& opt_;
  RegNames names_;
  std::vector<isa::Op> ops_;
  std::vector<Cfg> cfgs_;
  std::vector<InsnFacts> facts_;
  // Per conditional jump: the bounds of the values it compared (numbers, or offsets into the
  // same region), the widening thresholds of the loops around it.
  std::unordered_map<std::uint32_t, std::vector<std::uint64_t>> branch_bounds_;
  void note_bound(std::uint32_t pc, const Scalar& v);
  // Equality tests (`jeq`/`jne`, 64-bit, two numbers) met while a widened loop's iteration is
  // followed with progress tags: the two values compared, with their progress, and how many
  // times the test ran. exit_tests() reads them.
  struct EqualityTest {
    Reg a, b;
    int visits = 0;
  };
  std::unordered_map<std::uint32_t, EqualityTest> equality_tests_;
  // A test that ends a loop when its counter x reaches a bound: at most `iterations`
  // iterations, and x at the head within [x_lo, x_hi].
  struct ExitTest {
    std::uint32_t pc = 0;
    int x = 0;
    std::int64_t offset = 0;  // the test compares x's head value plus this
    std::int64_t step = 0;    // x's step per iteration
    std::uint64_t iterations = UINT64_MAX;
    std::uint64_t x_lo = 0, x_hi = UINT64_MAX;
    // True when this test, found again, proves at least `applied`'s range for x.
    bool confirms(const ExitTest& applied) const {
      return pc == applied.pc && x == applied.x && offset == applied.offset && step == applied.step &&
             x_lo >= applied.x_lo && x_hi <= applied.x_hi;
    }
  };
  std::vector<ExitTest> exit_tests(int loop, const State& entry, const State& back, std::uint32_t tag) const;
  // While a widened loop's invariant is being found, failed checks throw Speculation: the
  // instruction's effect is then over-approximated (havoc) so the search goes on, and the
  // invariant found is checked for real by one more iteration.
  bool speculative_ = false;
  void havoc(std::uint32_t pc, State before, std::vector<std::pair<std::uint32_t, State>>& out);
  std::vector<std::uint32_t> depth_;                                 // per function
  std::vector<std::pair<std::uint32_t, std::uint32_t>> call_edges_;  // (call pc, callee function)
  std::vector<std::optional<State>> invariants_;
  std::vector<std::uint32_t> chain_;  // functions on the current call chain
  Run* run_ = nullptr;
  std::size_t visits_ = 0;
  std::uint32_t loop_tags_ = 0;
  std::unordered_set<std::uint32_t> widened_loops_;  // heads of loops that needed widening
  std::vector<std::uint32_t> active_tags_;           // widened loops being analysed
};

// ---------------------------------------------------------------------------------------------
// Control flow

void Analyzer::successors(std::uint32_t pc, std::vector<std::uint32_t>& out) const {
  out.clear();
  const auto& info = isa::info(ops_[pc]);
  switch (info.kind) {
    case Kind::exit: return;
    case Kind::jump: {
      auto t = static_cast<std::uint32_t>(isa::branch_target(p_.insns[pc], ops_[pc], pc));
      if (info.operation != Operation::ja) out.push_back(pc + 1);
      out.push_back(t);
      return;
    }
    case Kind::lddw: out.push_back(pc + 2); return;
    default: out.push_back(pc + 1); return;
  }
}

int Analyzer::function_index_at(std::uint32_t start) const {
  for (std::size_t i = 0; i < p_.functions.size(); ++i)
    if (p_.functions[i].start == start) return static_cast<int>(i);
  return -1;
}

void Analyzer::build_cfg(std::size_t f) {
  Cfg& g = cfgs_[f];
  g.start = p_.functions[f].start;
  g.end = p_.functions[f].end;
  std::size_t n = g.end - g.start;
  g.rpo_index.assign(n, -1);
  g.loop_of.assign(n, -1);
  // Depth-first order, iteratively.
  std::vector<std::uint32_t> post;
  std::vector<char> seen(n, 0);
  std::vector<std::pair<std::uint32_t, std::vector<std::uint32_t>>> stack;
  std::vector<std::uint32_t> succ;
  auto push = [&](std::uint32_t pc) {
    seen[pc - g.start] = 1;
    successors(pc, succ);
    std::reverse(succ.begin(), succ.end());
    stack.emplace_back(pc, succ);
  };
  push(g.start);
  while (!stack.empty()) {
    auto& [pc, rest] = stack.back();
    if (rest.empty()) {
      post.push_back(pc);
      stack.pop_back();
      continue;
    }
    std::uint32_t next = rest.back();
    rest.pop_back();
    if (!seen[next - g.start]) push(next);
  }
  g.rpo.assign(post.rbegin(), post.rend());
  for (std::size_t i = 0; i < g.rpo.size(); ++i)
    g.rpo_index[g.rpo[i] - g.start] = static_cast<std::int32_t>(i);

  // Predecessors and immediate dominators (Cooper, Harvey, Kennedy) over RPO indices.
  std::size_t m = g.rpo.size();
  std::vector<std::vector<std::uint32_t>> preds(m);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> back_edges;
  for (std::size_t i = 0; i < m; ++i) {
    successors(g.rpo[i], succ);
    for (auto t : succ) {
      auto j = static_cast<std::uint32_t>(g.rpo_index[t - g.start]);
      preds[j].push_back(static_cast<std::uint32_t>(i));
      if (j <= i) back_edges.emplace_back(static_cast<std::uint32_t>(i), j);
    }
  }
  std::vector<std::int32_t> idom(m, -1);
  idom[0] = 0;
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 1; i < m; ++i) {
      std::int32_t d = -1;
      for (auto q : preds[i]) {
        if (idom[q] < 0) continue;
        if (d < 0) {
          d = static_cast<std::int32_t>(q);
          continue;
        }
        auto x = static_cast<std::int32_t>(q);
        while (x != d) {
          while (x > d) x = idom[x];
          while (d > x) d = idom[d];
        }
      }
      if (d != idom[i]) idom[i] = d, changed = true;
    }
  }
  // Loops: natural loops of back edges whose target dominates the source.
  std::map<std::uint32_t, std::vector<std::uint32_t>> bodies;   // head rpo index -> body rpo indices
  std::map<std::uint32_t, std::vector<std::uint32_t>> latches;  // head rpo index -> back-edge source pcs
  for (auto [src, head] : back_edges) {
    latches[head].push_back(g.rpo[src]);
    std::int32_t x = static_cast<std::int32_t>(src);
    while (x != static_cast<std::int32_t>(head) && x != 0) x = idom[x];
    if (x != static_cast<std::int32_t>(head)) {
      State empty;
      fail(g.rpo[src], empty, "cfg",
           fmt::format(
               "irreducible control flow: the jump to instruction {} enters a loop other than at its head",
               g.rpo[head]));
    }
    auto& body = bodies[head];
    std::vector<char> in(m, 0);
    for (auto b : body) in[b] = 1;
    if (!in[head]) in[head] = 1, body.push_back(head);
    std::vector<std::uint32_t> work{src};
    while (!work.empty()) {
      auto v = work.back();
      work.pop_back();
      if (in[v]) continue;
      in[v] = 1;
      body.push_back(v);
      for (auto q : preds[v]) work.push_back(q);
    }
  }
  std::vector<std::pair<std::uint32_t, std::vector<std::uint32_t>>> sorted(bodies.begin(), bodies.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second.size() > b.second.size(); });
  for (auto& [head, body] : sorted) {
    Loop loop;
    loop.head = g.rpo[head];
    loop.parent = g.loop_of[loop.head - g.start];
    loop.latches = latches[head];
    std::sort(body.begin(), body.end());
    for (auto b : body) loop.body.push_back(g.rpo[b]);
    int id = static_cast<int>(g.loops.size());
    for (auto pc : loop.body) g.loop_of[pc - g.start] = id;
    g.loops.push_back(std::move(loop));
  }
  g.idom = std::move(idom);
}

// ---------------------------------------------------------------------------------------------
// Fixpoint

void Analyzer::join_into(std::optional<State>& slot, State&& s) {
  if (!slot)
    slot = std::move(s);
  else
    slot = join(*slot, s, env_.allow_pointer_leaks);
}

void Analyzer::deposit(std::uint32_t from, std::uint32_t to, State&& s) {
  const Cfg& g = *run_->cfg;
  auto ti = g.rpo_index[to - g.start];
  if (ti <= g.rpo_index[from - g.start]) {
    join_into(run_->back[g.loop_of[to - g.start]], std::move(s));
    return;
  }
  join_into(run_->in[to - g.start], std::move(s));
}

void Analyzer::step_node(std::uint32_t pc) {
  const Cfg& g = *run_->cfg;
  auto& slot = run_->in[pc - g.start];
  if (!slot) return;
  State s = std::move(*slot);
  slot.reset();
  if (++visits_ > opt_.max_visits) {
    speculative_ = false;  // a real failure, whatever the loop around is doing
    fail(pc, s, "complexity",
         fmt::format(
             "program too complex: more than {} instruction visits (loops with large bounds are unrolled)",
             opt_.max_visits));
  }
  facts_[pc].reached = true;
  if (opt_.record_invariants) {
    auto& inv = invariants_[pc];
    if (!inv)
      inv = s;
    else if (inv->frames.size() == s.frames.size())
      inv = join(*inv, s, env_.allow_pointer_leaks);
  }
  std::vector<std::pair<std::uint32_t, State>> out;
  if (!speculative_) {
    step(pc, s, out);
  } else {
    State before = s;
    try {
      step(pc, s, out);
    } catch (const Speculation&) {
      out.clear();
      havoc(pc, std::move(before), out);
    }
  }
  for (auto& [to, st] : out) deposit(pc, to, std::move(st));
}

void Analyzer::havoc(std::uint32_t pc, State before, std::vector<std::pair<std::uint32_t, State>>& out) {
  const isa::Insn& insn = p_.insns[pc];
  const auto& info = isa::info(ops_[pc]);
  const Reg& base = before.regs[insn.dst()];
  switch (info.kind) {
    case Kind::alu:
    case Kind::load: before.regs[insn.dst()] = Reg::scalar(Scalar::unknown()); break;
    case Kind::atomic:
    case Kind::store:
      // Memory the state tracks (the stack) might change: give up guessing.
      if (base.kind == RegKind::stack || base.kind == RegKind::uninit) throw;
      if (info.kind == Kind::atomic) {
        before.regs[0] = Reg::scalar(Scalar::unknown());
        before.regs[insn.src()] = Reg::scalar(Scalar::unknown());
      }
      break;
    case Kind::jump:
      out.emplace_back(static_cast<std::uint32_t>(isa::branch_target(insn, ops_[pc], pc)), before);
      if (info.operation == Operation::ja) return;
      break;
    default: throw;  // calls, exit, lddw, legacy loads: no cheap over-approximation
  }
  out.emplace_back(pc + 1, std::move(before));
}

void Analyzer::run_nodes(const std::vector<std::uint32_t>& order, int loop) {
  const Cfg& g = *run_->cfg;
  for (auto pc : order) {
    int l = g.loop_of[pc - g.start];
    if (l == loop) {
      step_node(pc);
      continue;
    }
    // Inside a nested loop: run it from its head, skip its other nodes.
    while (g.loops[l].parent != loop) l = g.loops[l].parent;
    if (g.loops[l].head == pc) run_loop(l);
  }
}

void Analyzer::run_loop(int loop) {
  const Cfg& g = *run_->cfg;
  const Loop& L = g.loops[loop];
  auto& head_slot = run_->in[L.head - g.start];
  if (!head_slot) return;
  State s = std::move(*head_slot);
  head_slot.reset();
  canonicalize(s);
  // Follow iterations one by one until no path comes back: the loop then provably ends. When
  // that takes too long, or the head state repeats, widening takes over. A loop that needed
  // widening once is widened after its first iteration when it is entered again (each iteration
  // of an outer loop, each round of an outer loop's widening): following it again would repeat
  // work that gave up before, and nested inside loops that work multiplies.
  std::unordered_set<std::uint64_t> seen{state_hash(s)};
  std::size_t unroll = std::min(opt_.unroll_iterations, opt_.max_loop_iterations);
  if (widened_loops_.contains(L.head)) unroll = 1;
  std::size_t start_visits = visits_;
  for (std::size_t it = 1;; ++it) {
    auto next = iterate(loop, s, 0);
    if (!next) return;
    bool repeated = *next == s || !seen.insert(state_hash(*next)).second;
    if (repeated || it >= unroll || visits_ - start_visits > opt_.unroll_visits) {
      widened_loops_.insert(L.head);
      widen_loop(loop, std::move(*next), it, repeated);
      return;
    }
    s = std::move(*next);
  }
}

std::optional<State> Analyzer::iterate(int loop, const State& head, std::uint32_t tag) {
  const Cfg& g = *run_->cfg;
  const Loop& L = g.loops[loop];
  State h = head;
  if (tag) set_progress(h, tag, active_tags_);
  run_->in[L.head - g.start] = std::move(h);
  run_nodes(L.body, loop);
  auto& back = run_->back[loop];
  if (!back) return std::nullopt;
  State next = std::move(*back);
  back.reset();
  canonicalize(next);
  return next;
}

namespace {

// Two registers moving by fixed steps from the loop's head state: after k iterations
// x = x0 + k * sx and y = y0 + k * sy (x0 and y0 within their ranges at the head), so x's range
// at a later head bounds k and with it y.
struct Lockstep {
  int x = 0, y = 0;
  RegKind y_kind = RegKind::scalar;
  std::int64_t x0_lo = 0, x0_hi = 0, y0_lo = 0, y0_hi = 0, sx = 0, sy = 0;
};

// The fixed 64-bit step register r took in one iteration tagged `tag`, or 0.
std::int64_t fixed_step(const Reg& head, const Reg& back, int r, std::uint32_t tag) {
  if (head.kind != back.kind || !tracks_progress(back.kind) || back.tag != tag || back.origin != r ||
      back.step_width != 64 || back.step_lo != back.step_hi)
    return 0;
  return back.step_lo;
}

std::vector<Lockstep> lockstep_links(const State& head, const State& back, std::uint32_t tag) {
  std::vector<Lockstep> links;
  for (int x = 0; x < isa::frame_pointer; ++x) {
    const Reg& hx = head.regs[x];
    const std::int64_t sx = fixed_step(hx, back.regs[x], x, tag);
    if (hx.kind != RegKind::scalar || sx == 0) continue;
    for (int y = 0; y < isa::frame_pointer; ++y) {
      const Reg& hy = head.regs[y];
      const std::int64_t sy = fixed_step(hy, back.regs[y], y, tag);
      if (y == x || sy == 0) continue;
      links.push_back({x, y, hy.kind, hx.val.smin, hx.val.smax, hy.val.smin, hy.val.smax, sx, sy});
    }
  }
  return links;
}

// True when the iteration from the invariant moved both registers by exactly the link's steps.
bool lockstep_holds(const Lockstep& l, const State& back, std::uint32_t tag) {
  auto moved = [&](int r, std::int64_t step) {
    const Reg& b = back.regs[r];
    return b.tag == tag && b.origin == r && b.step_width == 64 && b.step_lo == step && b.step_hi == step;
  };
  return moved(l.x, l.sx) && moved(l.y, l.sy) && back.regs[l.x].kind == RegKind::scalar &&
         back.regs[l.y].kind == l.y_kind;
}

// Narrows y at the head to what x's range allows. x's signed range must leave room for one more
// step, so that no value of the progression wrapped (then k = (x - x0) / sx exactly).
void apply_lockstep(const Lockstep& l, State& s) {
  const Reg& x = s.regs[l.x];
  Reg& y = s.regs[l.y];
  if (x.kind != RegKind::scalar || y.kind != l.y_kind) return;
  using i128 = __int128;
  const i128 lo_x = x.val.smin, hi_x = x.val.smax;
  if (hi_x + l.sx > INT64_MAX || lo_x + l.sx < INT64_MIN) return;
  i128 kmin = l.sx > 0 ? (lo_x - l.x0_hi) / l.sx : (l.x0_lo - hi_x) / -i128{l.sx};
  i128 kmax = l.sx > 0 ? (hi_x - l.x0_lo) / l.sx : (l.x0_hi - lo_x) / -i128{l.sx};
  kmin = std::max<i128>(kmin, 0);
  if (kmax < kmin) return;
  i128 lo = (l.sy > 0 ? l.y0_lo + kmin * l.sy : l.y0_lo + kmax * l.sy);
  i128 hi = (l.sy > 0 ? l.y0_hi + kmax * l.sy : l.y0_hi + kmin * l.sy);
  if (lo < INT64_MIN || hi > INT64_MAX) return;
  Scalar v = y.val;
  v.smin = std::max(v.smin, static_cast<std::int64_t>(lo));
  v.smax = std::min(v.smax, static_cast<std::int64_t>(hi));
  if (v.smin <= v.smax && v.normalize()) y.val = v;
}

}  // namespace

void Analyzer::widen_loop(int loop, State head, std::size_t unrolled, bool repeated) {
  const Cfg& g = *run_->cfg;
  const Loop& L = g.loops[loop];
  std::uint32_t tag = ++loop_tags_;
  active_tags_.push_back(tag);
  struct Pop {
    std::vector<std::uint32_t>& v;
    ~Pop() { v.pop_back(); }
  } pop{active_tags_};
  auto strip = [&](State st) {
    clear_progress(st, tag);
    canonicalize(st);
    return st;
  };
  // An invariant for the head: join what comes back, widening after a few rounds to the bounds
  // the loop's own branches compare against, or else to the type limits.
  Thresholds bounds;
  for (std::uint32_t pc : L.body)
    if (auto it = branch_bounds_.find(pc); it != branch_bounds_.end())
      for (std::uint64_t c : it->second) bounds.add_bound(c);
  bounds.sort();
  // Registers that move in lockstep (an index and the pointer walking an array with it) keep
  // their relation at the head: lockstep_links() finds them by one iteration that follows
  // progress, and the invariant is solved with them; when the final iteration shows a link does
  // not hold, the invariant is solved again without links.
  //
  // The invariant is guessed speculatively (a check that fails on a guess that is still too wide
  // is not the program's failure: widening overshoots before the loop's own exit test narrows it
  // back), then checked for real by one more iteration from it. A guess that cannot go on (a
  // failed call, a store that may hit the stack) is made again with every check real.
  const bool outer_speculative = speculative_;
  struct Restore {
    bool& flag;
    bool value;
    ~Restore() { flag = value; }
  } restore{speculative_, outer_speculative};
  std::vector<Lockstep> links;
  // Exit tests bound their counters at the head the same way, checked the same way.
  std::vector<ExitTest> exit_bounds, found_exit_tests;
  bool guess_speculatively = true;
  State inv;
  std::optional<State> back;
  auto clear_body = [&] {
    for (std::uint32_t pc : L.body) run_->in[pc - g.start].reset();
    for (std::size_t l = 0; l < g.loops.size(); ++l)
      if (std::find(L.body.begin(), L.body.end(), g.loops[l].head) != L.body.end()) run_->back[l].reset();
  };
  auto forget_exit_tests = [&] {
    for (std::uint32_t pc : L.body) equality_tests_.erase(pc);
  };
  auto guess = [&] {
    // Exit tests first: the counters they bound then bound the registers linked to them.
    auto reduced = [&](State st) {
      for (const ExitTest& e : exit_bounds) {
        Reg& x = st.regs[e.x];
        if (x.kind != RegKind::scalar) continue;
        if (auto v = x.val.meet(Scalar::urange(e.x_lo, e.x_hi))) x.val = *v;
      }
      for (const Lockstep& l : links) apply_lockstep(l, st);
      return st;
    };
    inv = head;
    for (int round = 0;; ++round) {
      back = iterate(loop, inv, 0);
      if (!back) break;
      State joined = reduced(join(inv, strip(std::move(*back)), env_.allow_pointer_leaks));
      if (joined == inv) break;
      if (round > 40) fail(L.head, inv, "loop", "the loop's invariant does not converge under widening");
      // The loop's bounds first; after 20 rounds only the type limits, which end quickly.
      inv = round >= 2 ? reduced(widen(inv, joined, round < 20 ? &bounds : nullptr)) : std::move(joined);
      canonicalize(inv);
    }
    // Narrow once.
    if (!back) return;
    back = iterate(loop, inv, tag);
    if (!back) return;
    State narrow = reduced(join(head, strip(*back), env_.allow_pointer_leaks));
    if (auto back2 = iterate(loop, narrow, tag);
        back2 && reduced(join(narrow, strip(*back2), env_.allow_pointer_leaks)) == narrow)
      inv = std::move(narrow);
  };
  speculative_ = true;
  try {
    forget_exit_tests();
    if (auto probe = iterate(loop, head, tag)) {
      links = lockstep_links(head, *probe, tag);
      exit_bounds = exit_tests(loop, head, *probe, tag);
    }
  } catch (const Speculation&) {
    if (outer_speculative) throw;
    clear_body();
  }
  for (;;) {
    speculative_ = guess_speculatively || outer_speculative;
    try {
      guess();
    } catch (const Speculation&) {
      if (outer_speculative || !guess_speculatively) throw;
      clear_body();
      guess_speculatively = false;
      continue;
    }
    // The check: the loop from the invariant, every check real (unless an outer loop is still
    // guessing its own invariant). It runs without this loop's progress tags, so that loops
    // inside it can follow the registers this loop moves with progress of their own.
    speculative_ = outer_speculative;
    back = iterate(loop, inv, 0);
    if (!back) break;  // no path comes back: the loop ends
    // The same iteration again, following progress, for the steps (links, termination). Its
    // checks were made by the check above; here a failure only over-approximates.
    speculative_ = true;
    try {
      forget_exit_tests();
      back = iterate(loop, inv, tag);
    } catch (const Speculation&) {
      if (outer_speculative) throw;
      clear_body();
      speculative_ = false;
      forget_exit_tests();
      back = iterate(loop, inv, tag);
    }
    speculative_ = outer_speculative;
    bool links_hold = true;
    for (const Lockstep& l : links) links_hold = links_hold && back && lockstep_holds(l, *back, tag);
    found_exit_tests = back ? exit_tests(loop, head, *back, tag) : std::vector<ExitTest>{};
    const bool exit_bounds_hold = std::all_of(exit_bounds.begin(), exit_bounds.end(), [&](const ExitTest& e) {
      return std::any_of(found_exit_tests.begin(), found_exit_tests.end(),
                         [&](const ExitTest& t) { return t.confirms(e); });
    });
    if (links_hold && exit_bounds_hold) break;
    if (!links_hold) links.clear();
    if (!exit_bounds_hold) exit_bounds.clear();
  }
  if (!back) return;  // no path comes back: the loop ends
  // Termination: look for a register that moves toward a bound by a fixed step.
  std::uint64_t best = UINT64_MAX;
  for (int r = 0; r < isa::frame_pointer; ++r) {
    const Reg& h = inv.regs[r];
    const Reg& b = back->regs[r];
    if (h.kind != b.kind || !tracks_progress(h.kind) || b.tag != tag || b.origin != r) continue;
    if (b.step_lo < 1 && b.step_hi > -1) continue;
    bool up = b.step_lo >= 1;
    auto step_min = static_cast<std::uint64_t>(up ? b.step_lo : -b.step_hi);
    auto step_max = static_cast<std::uint64_t>(up ? b.step_hi : -b.step_lo);
    // The measure's range at the head, unsigned and signed, in the width the steps use; each
    // gives a bound when the step cannot wrap it.
    auto consider = [&](std::uint64_t lo, std::uint64_t hi, std::uint64_t top) {
      if (up ? hi > top - step_max : lo < step_max) return;
      best = std::min(best, (hi - lo) / step_min + 1);
    };
    if (b.step_width == 32) {
      consider(h.val.u32min, h.val.u32max, 0xffffffffu);
      consider(static_cast<std::uint64_t>(std::int64_t{h.val.s32min} + 0x80000000ll),
               static_cast<std::uint64_t>(std::int64_t{h.val.s32max} + 0x80000000ll), 0xffffffffu);
    } else {
      consider(h.val.umin, h.val.umax, UINT64_MAX);
      consider(static_cast<std::uint64_t>(h.val.smin) ^ (std::uint64_t{1} << 63),
               static_cast<std::uint64_t>(h.val.smax) ^ (std::uint64_t{1} << 63), UINT64_MAX);
    }
  }
  for (const ExitTest& e : found_exit_tests) best = std::min(best, e.iterations);
  if (best <= opt_.max_loop_iterations) return;
  if (repeated)
    fail(L.head, inv, "loop",
         fmt::format(
             "infinite loop: after {} iterations the state at the loop head repeats, and no register moves "
             "toward a bound every iteration",
             unrolled));
  fail(L.head, inv, "loop",
       fmt::format(
           "loop not proven to terminate within {} iterations: no register moves by a fixed step toward a "
           "bound every iteration",
           opt_.max_loop_iterations));
}

// Exit tests: a loop that leaves when a counter equals a bound. Some test `v != B` (or
// `v == B` leaving) runs once in every iteration that comes back: it is in the loop itself, not
// a nested one, and dominates every back edge; its equal side leaves the loop. B is a constant or
// a value the loop never changes (a register's head value that the iteration leaves as it was,
// or a fixed value of an outer loop's progress); v is the head value of a register x plus a
// constant c, and x moves by the same step s every iteration. Then v runs through v0, v0 + s, ...
// (64-bit, wrapping) and the loop ends at the latest when v reaches B: after (B - v0) / s
// iterations when s divides that distance. The distance is exact when x and B are related
// scalars at the loop's entry (one id); otherwise a unit step and v0 on the near side of B bound
// it by the ranges. `entry` is the head state the widened iterations start from, `back` what
// comes back from the invariant with progress `tag`.
std::vector<Analyzer::ExitTest> Analyzer::exit_tests(int loop, const State& entry, const State& back,
                                                     std::uint32_t tag) const {
  const Cfg& g = *run_->cfg;
  const Loop& L = g.loops[loop];
  using i128 = __int128;
  std::vector<ExitTest> found;
  // c when r is the head value of register `origin` plus the constant c (64-bit), in activation `t`.
  auto head_plus = [](const Reg& r, std::uint32_t t, int& origin) -> std::optional<std::int64_t> {
    if (r.kind != RegKind::scalar || !t || r.tag != t || r.origin < 0 || r.step_lo != r.step_hi ||
        (r.step_width != 0 && r.step_width != 64))
      return std::nullopt;
    origin = r.origin;
    return r.step_lo;
  };
  auto fits = [](i128 v) { return v >= 0 && v <= i128{UINT64_MAX}; };
  for (std::uint32_t pc : L.body) {
    auto it = equality_tests_.find(pc);
    if (it == equality_tests_.end() || it->second.visits != 1 || g.loop_of[pc - g.start] != loop) continue;
    const auto operation = isa::info(ops_[pc]).operation;
    const auto target = static_cast<std::uint32_t>(isa::branch_target(p_.insns[pc], ops_[pc], pc));
    const std::uint32_t equal_side = operation == Operation::jeq ? target : pc + 1;
    if (std::find(L.body.begin(), L.body.end(), equal_side) != L.body.end()) continue;
    if (!std::all_of(L.latches.begin(), L.latches.end(), [&](std::uint32_t l) { return g.dominates(pc, l); }))
      continue;
    for (bool swap : {false, true}) {
      const Reg& v = swap ? it->second.b : it->second.a;
      const Reg& bound = swap ? it->second.a : it->second.b;
      int x = -1;
      auto c = head_plus(v, tag, x);
      if (!c) continue;
      const Reg& x0 = entry.regs[x];
      const Reg& bx = back.regs[x];
      if (x0.kind != RegKind::scalar || bx.kind != RegKind::scalar || bx.tag != tag || bx.origin != x ||
          bx.step_width != 64 || bx.step_lo != bx.step_hi || bx.step_lo == 0)
        continue;
      ExitTest test{pc, x, *c, bx.step_lo};
      // B, and its range.
      int rb = -1;
      Scalar b_range;
      if (bound.kind == RegKind::scalar && bound.tag == 0 && bound.val.is_const()) {
        b_range = bound.val;
      } else if (auto b_plus = head_plus(bound, bound.tag, rb);
                 b_plus && bound.tag != tag &&
                 std::find(active_tags_.begin(), active_tags_.end(), bound.tag) != active_tags_.end()) {
        // Fixed while the outer loop's iteration runs; an entry register with the same progress
        // holds the same value.
        b_range = bound.val;
        rb = -1;
        for (int r = 0; r < isa::frame_pointer; ++r) {
          int origin = -1;
          if (head_plus(entry.regs[r], bound.tag, origin) == b_plus && origin == bound.origin) rb = r;
        }
      } else {
        const Reg& bb = rb >= 0 ? back.regs[rb] : bound;
        if (!b_plus || *b_plus != 0 || bb.kind != RegKind::scalar || bb.tag != tag || bb.origin != rb ||
            bb.step_lo != 0 || bb.step_hi != 0 || (bb.step_width != 0 && bb.step_width != 64) ||
            entry.regs[rb].kind != RegKind::scalar)
          continue;
        b_range = entry.regs[rb].val;
      }
      const auto magnitude = static_cast<std::uint64_t>(test.step > 0 ? i128{test.step} : -i128{test.step});
      // The distance is exact when x0 and B are one id apart, or both known.
      std::optional<std::uint64_t> distance;
      const std::uint64_t v0_const = x0.val.value() + static_cast<std::uint64_t>(*c);
      if (rb >= 0 && x0.id != 0 && entry.regs[rb].id == x0.id) {
        // x0 = var + dx, B = var + db.
        const std::uint64_t v0_minus_var =
            static_cast<std::uint64_t>(x0.delta) + static_cast<std::uint64_t>(*c);
        const auto b_minus_var = static_cast<std::uint64_t>(entry.regs[rb].delta);
        distance = test.step > 0 ? b_minus_var - v0_minus_var : v0_minus_var - b_minus_var;
      } else if (x0.val.is_const() && b_range.is_const()) {
        distance = test.step > 0 ? b_range.value() - v0_const : v0_const - b_range.value();
      }
      if (distance) {
        if (*distance % magnitude != 0) continue;
        test.iterations = *distance / magnitude + 1;
        const i128 lo = test.step > 0 ? i128{x0.val.umin} : i128{x0.val.umin} - *distance;
        const i128 hi = test.step > 0 ? i128{x0.val.umax} + *distance : i128{x0.val.umax};
        if (fits(lo) && fits(hi))
          test.x_lo = static_cast<std::uint64_t>(lo), test.x_hi = static_cast<std::uint64_t>(hi);
        found.push_back(test);
        continue;
      }
      // Otherwise by the ranges: the step must divide every possible distance (a power of two
      // whose bits the known low bits of B - v0 leave zero)...
      if (magnitude != 1) {
        const Tnum gap =
            tnum_sub(b_range.bits, tnum_add(x0.val.bits, Tnum::constant(static_cast<std::uint64_t>(*c))));
        if ((magnitude & (magnitude - 1)) != 0 || ((gap.value | gap.mask) & (magnitude - 1)) != 0) continue;
      }
      // ... and v0 = x0 + c (without wrapping) must lie on the side of B the step moves toward;
      // v then stays between v0 and B.
      const i128 v0_lo = i128{x0.val.umin} + *c, v0_hi = i128{x0.val.umax} + *c;
      if (!fits(v0_lo) || !fits(v0_hi)) continue;
      i128 v_lo = 0, v_hi = 0;
      if (test.step > 0 && v0_hi <= i128{b_range.umin}) {
        v_lo = v0_lo, v_hi = b_range.umax;
      } else if (test.step < 0 && v0_lo >= i128{b_range.umax}) {
        v_lo = b_range.umin, v_hi = v0_hi;
      } else {
        continue;
      }
      if (v_hi - v_lo >= i128{UINT64_MAX}) continue;
      test.iterations = static_cast<std::uint64_t>(v_hi - v_lo) / magnitude + 1;
      if (fits(v_lo - *c) && fits(v_hi - *c))
        test.x_lo = static_cast<std::uint64_t>(v_lo - *c), test.x_hi = static_cast<std::uint64_t>(v_hi - *c);
      found.push_back(test);
    }
  }
  return found;
}

std::optional<State> Analyzer::analyze_function(std::uint32_t f, State entry) {
  const Cfg& g = cfgs_[f];
  Run run;
  run.cfg = &g;
  run.in.resize(g.end - g.start);
  run.back.resize(g.loops.size());
  run.in[0] = std::move(entry);
  // Restored on every way out (a Speculation may unwind through here).
  struct Enter {
    Analyzer& a;
    Run* saved;
    ~Enter() {
      a.chain_.pop_back();
      a.run_ = saved;
    }
  } enter{*this, run_};
  run_ = &run;
  chain_.push_back(f);
  run_nodes(g.rpo, -1);
  return std::move(run.exit);
}

// ---------------------------------------------------------------------------------------------
// Diagnostics

void Analyzer::fail(std::uint32_t pc, const State& s, std::string check, std::string message,
                    std::vector<int> regs) {
  if (speculative_) throw Speculation{};
  Diagnostic d;
  d.insn = pc;
  d.insn_text = pc < p_.insns.size() ? describe_insn(p_, pc) : "";
  d.check = std::move(check);
  d.message = std::move(message);
  std::sort(regs.begin(), regs.end());
  regs.erase(std::unique(regs.begin(), regs.end()), regs.end());
  for (int r : regs) d.registers.push_back(fmt::format("r{} = {}", r, reg_str(s.regs[r], s)));
  if (const auto* fn = p_.function_at(pc)) d.function = fn->name;
  if (const auto* li = p_.line_at(pc)) d.line = *li;
  throw Reject{std::move(d)};
}

const Reg& Analyzer::use(std::uint32_t pc, const State& s, int regno) {
  const Reg& r = s.regs[regno];
  if (r.kind != RegKind::uninit) return r;
  std::string why;
  switch (r.why) {
    case Why::never_written: why = "it is never written on some path to here"; break;
    case Why::call_clobbered: why = fmt::format("the call at instruction {} clobbered it", r.why_pc); break;
    case Why::packet_moved:
      why = fmt::format(
          "the helper call at instruction {} may move the packet, so packet pointers are stale "
          "(load them again from the context)",
          r.why_pc);
      break;
    case Why::released:
      why = fmt::format("the memory it pointed to was released at instruction {}", r.why_pc);
      break;
    case Why::frame_ended: why = "it pointed into the stack frame of a function that returned"; break;
    case Why::merged: why = "paths that meet here give it values of different kinds"; break;
  }
  fail(pc, s, "uninit_register",
       r.why == Why::never_written ? fmt::format("r{} is read before it is written: {}", regno, why)
                                   : fmt::format("r{} cannot be used: {}", regno, why),
       {regno});
}

void Analyzer::leak(std::uint32_t pc, const State& s, std::string what, std::vector<int> regs) {
  if (env_.allow_pointer_leaks) return;
  fail(pc, s, "pointer_leak",
       fmt::format("{}: the {} program type does not let pointers become numbers", what, env_.name),
       std::move(regs));
}

void Analyzer::invalidate(State& s, const std::function<bool(const Reg&)>& dead, Reg dead_value) {
  for (auto& r : s.regs)
    if (dead(r)) r = dead_value;
  for (auto& fr : s.frames) {
    for (auto& r : fr.saved)
      if (dead(r)) r = dead_value;
    std::erase_if(fr.spills, [&](auto& e) {
      if (!dead(e.second)) return false;
      for (int k = 0; k < 8; ++k) fr.bytes[e.first * 8 + k] = byte_uninit;
      return true;
    });
  }
}

void Analyzer::note_stack(const State& s, std::uint32_t frame, std::int64_t lowest) {
  auto f = s.frames[frame].function;
  depth_[f] = std::max<std::uint32_t>(depth_[f], static_cast<std::uint32_t>(-lowest));
}

void Analyzer::propagate_scalar(State& s, const Reg& refined) {
  if (refined.kind != RegKind::scalar || refined.id == 0) return;
  auto upd = [&](Reg& r) {
    if (r.kind != RegKind::scalar || r.id != refined.id) return;
    // r = refined + (r.delta - refined.delta), wrapping.
    const auto diff = static_cast<std::uint64_t>(r.delta) - static_cast<std::uint64_t>(refined.delta);
    if (auto v = scalar_add(refined.val, Scalar::constant(diff)).meet(r.val)) r.val = *v;
  };
  for (auto& r : s.regs) upd(r);
  for (auto& fr : s.frames) {
    for (auto& r : fr.saved) upd(r);
    for (auto& [slot, r] : fr.spills) upd(r);
  }
}

// ---------------------------------------------------------------------------------------------
// Transfer

void Analyzer::step(std::uint32_t pc, State& s, std::vector<std::pair<std::uint32_t, State>>& out) {
  isa::Op op = ops_[pc];
  const auto& insn = p_.insns[pc];
  switch (isa::info(op).kind) {
    case Kind::alu: alu(pc, s, op, insn); break;
    case Kind::load: load(pc, s, op, insn); break;
    case Kind::store: store(pc, s, op, insn); break;
    case Kind::atomic: atomic(pc, s, op, insn); break;
    case Kind::lddw:
      lddw(pc, s, op, insn);
      out.emplace_back(pc + 2, std::move(s));
      return;
    case Kind::legacy: legacy(pc, s, op, insn); break;
    case Kind::jump: jump(pc, s, op, insn, out); return;
    case Kind::call: call(pc, s, op, insn); break;
    case Kind::exit: exit_insn(pc, s); return;
  }
  out.emplace_back(pc + 1, std::move(s));
}

void Analyzer::alu(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  int d = insn.dst();
  bool is64 = info.width == 64 || info.operation == Operation::le || info.operation == Operation::be ||
              info.operation == Operation::bswap;
  Operation o = info.operation;

  // Byte order and negation act on dst alone.
  if (o == Operation::le || o == Operation::be || o == Operation::bswap || o == Operation::neg) {
    Reg r = use(pc, s, d);
    if (r.kind != RegKind::scalar) {
      leak(pc, s, fmt::format("{} of a pointer", isa::to_string(o)), {d});
      s.regs[d] =
          Reg::scalar(o == Operation::neg && info.width == 32 ? Scalar::of_width(32) : Scalar::unknown());
      return;
    }
    Scalar v = r.val;
    if (o == Operation::neg) {
      v = info.width == 32 ? scalar_sub(Scalar::constant(0), v.zext32()).zext32()
                           : scalar_sub(Scalar::constant(0), v);
    } else if (o == Operation::le) {
      v = info.width == 64 ? v : scalar_and(v, Scalar::constant((std::uint64_t{1} << info.width) - 1));
    } else {
      v = v.is_const() ? Scalar::constant(bswap_value(v.value(), info.width)) : Scalar::of_width(info.width);
    }
    s.regs[d] = Reg::scalar(v);
    return;
  }

  // The second operand.
  Reg src;
  int sr = -1;
  if (info.source == isa::Source::imm) {
    auto imm = static_cast<std::int64_t>(insn.imm);
    src = Reg::scalar(Scalar::constant(info.width == 32 ? static_cast<std::uint32_t>(insn.imm)
                                                        : static_cast<std::uint64_t>(imm)));
  } else {
    sr = insn.src();
    src = use(pc, s, sr);
  }
  std::vector<int> involved = {d};
  if (sr >= 0) involved.push_back(sr);

  if (o == Operation::mov || o == Operation::movsx) {
    if (o == Operation::mov && info.width == 64) {
      if (src.kind == RegKind::scalar && sr >= 0 && !src.is_len) {
        // The two registers now hold one value: a check on either bounds both.
        if (src.id == 0) src.id = fresh_id(s), s.regs[sr].id = src.id;
      }
      s.regs[d] = src;
      return;
    }
    if (src.kind != RegKind::scalar) {
      leak(pc, s, "32-bit or sign-extending move of a pointer", involved);
      s.regs[d] = Reg::scalar(info.width == 32 ? Scalar::of_width(32) : Scalar::unknown());
      return;
    }
    Scalar v = src.val;
    if (o == Operation::movsx) v = v.sext(info.ext_width);
    s.regs[d] = Reg::scalar(info.width == 32 ? v.zext32() : v);
    return;
  }

  Reg dst = use(pc, s, d);

  // Pointer arithmetic: pointer +- scalar, scalar + pointer, pointer - pointer.
  if (dst.is_pointer() || src.is_pointer()) {
    bool ptr_plus = (o == Operation::add || o == Operation::sub) && info.width == 64 && dst.is_pointer() &&
                    src.kind == RegKind::scalar;
    bool scalar_plus_ptr =
        o == Operation::add && info.width == 64 && dst.kind == RegKind::scalar && src.is_pointer();
    if (ptr_plus || scalar_plus_ptr) {
      Reg ptr = ptr_plus ? dst : src;
      const Reg& num = ptr_plus ? src : dst;
      if (ptr.kind == RegKind::packet_end || ptr.kind == RegKind::map_ptr || ptr.kind == RegKind::func ||
          ptr.nullable) {
        if (env_.allow_pointer_leaks && !ptr.nullable) {
          s.regs[d] = Reg::scalar(Scalar::unknown());
          return;
        }
        fail(pc, s, "pointer_arithmetic",
             ptr.nullable
                 ? fmt::format("arithmetic on a pointer that may be null ({}): compare it with 0 first",
                               reg_str(ptr, s))
                 : fmt::format("arithmetic on {} is not allowed", reg_str(ptr, s)),
             involved);
      }
      // The raw input's start plus its length is its end.
      if (o == Operation::add && ptr.kind == RegKind::packet && ptr.id == packet_base_id && ptr.delta == 0 &&
          num.is_len) {
        Reg end;
        end.kind = RegKind::packet_end;
        s.regs[d] = end;
        return;
      }
      Scalar nv = o == Operation::add ? scalar_add(ptr.val, num.val) : scalar_sub(ptr.val, num.val);
      if (ptr.kind == RegKind::packet || ptr.kind == RegKind::packet_meta) {
        if (num.val.is_const()) {
          auto c = static_cast<std::int64_t>(num.val.value());
          if (c > pointer_offset_limit || c < -pointer_offset_limit) {
            ptr.id = fresh_id(s);
            ptr.delta = 0;
          } else {
            ptr.delta += o == Operation::add ? c : -c;
          }
        } else {
          ptr.id = fresh_id(s);
          ptr.delta = 0;
        }
      }
      ptr.val = nv;
      // Loop progress: a pointer moved by a constant keeps its link to the loop head.
      if (ptr_plus && ptr.tag && num.val.is_const() && ptr.step_width != 32) {
        auto c = static_cast<std::int64_t>(num.val.value());
        if (c >= -(std::int64_t{1} << 31) && c <= (std::int64_t{1} << 31)) {
          if (o == Operation::sub) c = -c;
          ptr.step_width = 64;
          ptr.step_lo += c;
          ptr.step_hi += c;
        } else {
          clear_step(ptr);
        }
      } else {
        clear_step(ptr);
      }
      s.regs[d] = ptr;
      return;
    }
    bool both_end = dst.kind == RegKind::packet_end && src.kind == RegKind::packet_end;
    if (o == Operation::sub && info.width == 64 && (same_base(dst, src) || both_end)) {
      s.regs[d] =
          Reg::scalar(dst.kind == RegKind::packet_end ? Scalar::constant(0) : scalar_sub(dst.val, src.val));
      return;
    }
    if (dst.kind == RegKind::packet_end && src.kind == RegKind::packet && o == Operation::sub &&
        info.width == 64) {
      // end - pkt: the bytes left after pkt, at least its proven range.
      std::int64_t r = range_of(s, src.id);
      Scalar left = Scalar::unknown();
      if (r != no_range && src.id == packet_base_id)
        left = Scalar::srange(std::max<std::int64_t>(r - src.delta, INT64_MIN / 2), INT64_MAX);
      s.regs[d] = Reg::scalar(left);
      return;
    }
    leak(pc, s, fmt::format("{} on a pointer", isa::to_string(o)), involved);
    s.regs[d] = Reg::scalar(info.width == 32 ? Scalar::of_width(32) : Scalar::unknown());
    return;
  }

  // Scalar arithmetic.
  bool signed_op = o == Operation::sdiv || o == Operation::smod || o == Operation::arsh;
  Scalar a = dst.val, b = src.val;
  if (info.width == 32) {
    a = signed_op ? a.sext32() : a.zext32();
    b = signed_op ? b.sext32() : b.zext32();
  }
  int w = info.width;
  Scalar count = scalar_and(b, Scalar::constant(static_cast<std::uint64_t>(w - 1)));
  Scalar v;
  switch (o) {
    case Operation::add: v = scalar_add(a, b); break;
    case Operation::sub: v = scalar_sub(a, b); break;
    case Operation::mul: v = scalar_mul(a, b); break;
    case Operation::div: v = scalar_udiv(a, b); break;
    case Operation::mod: v = scalar_umod(a, b); break;
    case Operation::sdiv: v = scalar_sdiv(a, b); break;
    case Operation::smod: v = scalar_smod(a, b); break;
    case Operation::bor: v = scalar_or(a, b); break;
    case Operation::band: v = scalar_and(a, b); break;
    case Operation::bxor: v = scalar_xor(a, b); break;
    case Operation::lsh: v = scalar_lsh(a, count, w); break;
    case Operation::rsh: v = scalar_rsh(a, count, w); break;
    case Operation::arsh: v = scalar_arsh(a, count, w); break;
    default: v = Scalar::unknown(); break;
  }
  if (info.width == 32) v = v.zext32();
  Reg result = Reg::scalar(v);
  // A copy moved by a constant stays related to the others: var(id) + delta. An `or` of bits
  // known to be 0 in dst is the same addition (`(r8 | 2) <= len` with r8 a multiple of 4).
  const bool or_as_add = o == Operation::bor && src.kind == RegKind::scalar && src.val.is_const() &&
                         (src.val.value() & (dst.val.bits.value | dst.val.bits.mask)) == 0;
  if ((o == Operation::add || o == Operation::sub || or_as_add) && info.width == 64 && dst.id &&
      !dst.is_len && src.kind == RegKind::scalar && src.val.is_const()) {
    result.id = dst.id;
    result.delta = static_cast<std::int64_t>(o != Operation::sub
                                                 ? static_cast<std::uint64_t>(dst.delta) + src.val.value()
                                                 : static_cast<std::uint64_t>(dst.delta) - src.val.value());
  }
  // Loop progress: adding a small constant keeps the link to the value at the loop head.
  if ((o == Operation::add || o == Operation::sub) && dst.tag && src.kind == RegKind::scalar &&
      src.val.is_const() && (dst.step_width == 0 || dst.step_width == info.width)) {
    auto c = static_cast<std::int64_t>(info.width == 32 ? static_cast<std::int32_t>(src.val.value())
                                                        : src.val.value());
    if (c >= -(std::int64_t{1} << 31) && c <= (std::int64_t{1} << 31)) {
      if (o == Operation::sub) c = -c;
      result.tag = dst.tag;
      result.origin = dst.origin;
      result.step_width = static_cast<std::uint8_t>(info.width);
      result.step_lo = dst.step_lo + c;
      result.step_hi = dst.step_hi + c;
    }
  }
  s.regs[d] = result;
  (void)is64;
}

void Analyzer::note_bound(std::uint32_t pc, const Scalar& v) {
  // A range's ends bound too (a loop whose bound an outer loop changes).
  auto& bounds = branch_bounds_[pc];
  for (std::uint64_t c : {v.umin, v.umax}) {
    if (c == UINT64_MAX || bounds.size() >= 8 || std::find(bounds.begin(), bounds.end(), c) != bounds.end())
      continue;
    bounds.push_back(c);
  }
}

void Analyzer::jump(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn,
                    std::vector<std::pair<std::uint32_t, State>>& out) {
  const auto& info = isa::info(op);
  auto target = static_cast<std::uint32_t>(isa::branch_target(insn, op, pc));
  if (info.operation == Operation::ja) {
    out.emplace_back(target, std::move(s));
    return;
  }
  int d = insn.dst();
  Reg a = use(pc, s, d);
  Reg b;
  int sr = -1;
  if (info.source == isa::Source::imm) {
    b = Reg::scalar(Scalar::constant(info.width == 32 ? static_cast<std::uint32_t>(insn.imm)
                                                      : static_cast<std::uint64_t>(std::int64_t{insn.imm})));
  } else {
    sr = insn.src();
    b = use(pc, s, sr);
  }
  std::vector<int> involved = {d};
  if (sr >= 0) involved.push_back(sr);

  auto emit = [&](bool taken, State st) { out.emplace_back(taken ? target : pc + 1, std::move(st)); };
  auto both = [&] {
    emit(false, s);
    emit(true, std::move(s));
  };

  bool a_ptr = a.is_pointer(), b_ptr = b.is_pointer();
  if (!a_ptr && !b_ptr) {
    note_bound(pc, a.val);
    note_bound(pc, b.val);
    if ((info.operation == Operation::jeq || info.operation == Operation::jne) && info.width == 64 &&
        (a.tag || b.tag)) {
      EqualityTest& test = equality_tests_[pc];
      test.a = a;
      test.b = b;
      ++test.visits;
    }
    for (bool taken : {false, true}) {
      State st = s;
      Rel rel = relation(info.operation, taken);
      Scalar x = a.val, y = b.val;
      if (info.width == 32) {
        Scalar x32 = is_signed_rel(rel) ? x.sext32() : x.zext32();
        Scalar y32 = is_signed_rel(rel) ? y.sext32() : y.zext32();
        if (!refine(x32, y32, rel) || !merge_low32(x, x32) || !merge_low32(y, y32)) continue;
      } else if (!refine(x, y, rel)) {
        continue;
      }
      st.regs[d].val = x;
      propagate_scalar(st, st.regs[d]);
      if (sr >= 0) {
        st.regs[sr].val = y;
        propagate_scalar(st, st.regs[sr]);
      }
      for (const Reg* r : {&st.regs[d], sr >= 0 ? &st.regs[sr] : nullptr})
        if (r && r->is_len)
          raise_range(st, packet_base_id,
                      static_cast<std::int64_t>(std::min<std::uint64_t>(r->val.umin, pointer_offset_limit)));
      emit(taken, std::move(st));
    }
    return;
  }

  bool eq_ne = info.operation == Operation::jeq || info.operation == Operation::jne;
  // Null checks: a pointer against the number 0.
  const Reg& ptr = a_ptr ? a : b;
  const Reg& other = a_ptr ? b : a;
  if (eq_ne && info.width == 64 && (a_ptr != b_ptr) && other.val.is_const() && other.val.value() == 0) {
    bool eq_taken = info.operation == Operation::jeq;
    if (!ptr.nullable) {
      // A valid pointer is never 0.
      emit(!eq_taken, std::move(s));
      return;
    }
    State null_state = s, live_state = std::move(s);
    std::uint32_t id = ptr.id;
    auto is_ptr = [&](const Reg& r) { return r.nullable && r.id == id && r.is_pointer(); };
    auto on_null = [&](Reg& r) {
      if (is_ptr(r)) r = Reg::scalar(Scalar::constant(0));
    };
    auto on_live = [&](Reg& r) {
      if (!is_ptr(r)) return;
      r.nullable = false;
      if (!r.allocated) r.id = 0;
    };
    std::erase(null_state.refs, id);  // nothing was allocated
    for (auto& r : null_state.regs) on_null(r);
    for (auto& fr : null_state.frames) {
      for (auto& r : fr.saved) on_null(r);
      for (auto& [sl, r] : fr.spills) on_null(r);
    }
    for (auto& r : live_state.regs) on_live(r);
    for (auto& fr : live_state.frames) {
      for (auto& r : fr.saved) on_live(r);
      for (auto& [sl, r] : fr.spills) on_live(r);
    }
    emit(eq_taken, std::move(null_state));
    emit(!eq_taken, std::move(live_state));
    return;
  }
  if (info.width == 32 || a_ptr != b_ptr) {
    leak(pc, s, info.width == 32 ? "32-bit comparison of a pointer" : "comparison of a pointer with a number",
         involved);
    both();
    return;
  }
  // Two pointers. Packet bounds: a packet pointer against the end (or meta against data).
  auto limit_of = [](const Reg& p, const Reg& q) {
    if (p.kind == RegKind::packet && q.kind == RegKind::packet_end) return true;
    return p.kind == RegKind::packet_meta && q.kind == RegKind::packet && q.id == packet_base_id &&
           q.delta == 0;
  };
  bool a_is_ptr_side = limit_of(a, b);
  if (a_is_ptr_side || limit_of(b, a)) {
    const Reg& p = a_is_ptr_side ? a : b;
    bool trustworthy = p.val.smin >= -pointer_offset_limit && p.val.smax <= pointer_offset_limit;
    for (bool taken : {false, true}) {
      Rel rel = relation(info.operation, taken);
      if (!a_is_ptr_side) rel = swapped(rel);
      // rel now reads "p rel limit".
      State st = s;
      if (trustworthy) {
        std::int64_t beyond = -1;  // p + beyond <= limit is now known
        if (rel == Rel::ule || rel == Rel::sle || rel == Rel::eq) beyond = 0;
        if (rel == Rel::ult || rel == Rel::slt) beyond = 1;
        if (beyond >= 0) {
          raise_range(st, p.id, p.delta + beyond);
          // The base pointer is at most p's smallest offset away: its range grows too.
          std::uint32_t base = p.kind == RegKind::packet ? packet_base_id : meta_base_id;
          if (p.val.smin >= 0) raise_range(st, base, p.val.smin + beyond);
        }
      }
      emit(taken, std::move(st));
    }
    return;
  }
  if (same_base(a, b) && a.kind != RegKind::packet && a.kind != RegKind::packet_meta &&
      info.operation != Operation::jset) {
    // Same region: addresses compare like their offsets taken as signed numbers (stack offsets
    // are negative; no region wraps around the address space).
    note_bound(pc, a.val);
    note_bound(pc, b.val);
    for (bool taken : {false, true}) {
      State st = s;
      Scalar x = a.val, y = b.val;
      if (!refine(x, y, as_signed(relation(info.operation, taken)))) continue;
      st.regs[d].val = x;
      if (sr >= 0) st.regs[sr].val = y;
      emit(taken, std::move(st));
    }
    return;
  }
  if (a.kind == b.kind && (a.kind == RegKind::packet || a.kind == RegKind::packet_meta)) {
    both();
    return;
  }
  leak(pc, s, "comparison of pointers into different regions", involved);
  both();
}

Reg Analyzer::access(std::uint32_t pc, State& s, int regno, std::int64_t off, int size, Access acc,
                     const Reg* value, bool sign_extend, int value_reg) {
  const Reg& base = use(pc, s, regno);
  std::vector<int> involved = {regno};
  const char* verb = acc == Access::read ? "read" : acc == Access::write ? "write" : "atomic update";
  if (value && value->is_pointer() && base.kind != RegKind::stack)
    leak(pc, s, "a pointer stored to memory", {regno, value_reg >= 0 ? value_reg : regno});
  auto loaded = [&] {
    Scalar v = Scalar::of_width(size * 8);
    if (sign_extend) v = v.sext(size * 8);
    return Reg::scalar(v);
  };
  auto bounds_fail = [&](std::string what) { fail(pc, s, "mem_bounds", std::move(what), involved); };
  switch (base.kind) {
    case RegKind::scalar:
      fail(pc, s, "deref_scalar",
           fmt::format("{} through r{}, which holds a number, not a pointer", verb, regno), involved);
    case RegKind::stack:
      facts_[pc].regions |= static_cast<std::uint8_t>(AccessRegion::stack);
      return stack_access(pc, s, regno, off, size, acc, value, sign_extend);
    case RegKind::ctx:
      facts_[pc].regions |= static_cast<std::uint8_t>(AccessRegion::ctx);
      return ctx_access(pc, s, regno, off, size, acc, value);
    case RegKind::packet:
    case RegKind::packet_meta: {
      facts_[pc].regions |= static_cast<std::uint8_t>(AccessRegion::packet);
      if (acc == Access::atomic) fail(pc, s, "mem_permission", "atomic update of packet data", involved);
      if (acc == Access::write && !env_.packet_writable)
        fail(pc, s, "mem_permission", fmt::format("the {} program type cannot write packet data", env_.name),
             involved);
      std::int64_t lo = base.val.smin;
      if (base.val.smax > pointer_offset_limit)
        bounds_fail(fmt::format("{} of {} bytes at offset {}{:+}: the offset into the packet is not bounded",
                                verb, size, offset_text(base.val), off));
      if (lo < -pointer_offset_limit || lo + off < 0)
        bounds_fail(fmt::format("{} of {} bytes at offset {}{:+} may fall before the start of the packet",
                                verb, size, offset_text(base.val), off));
      std::int64_t range = range_of(s, base.id);
      if (range == no_range || base.delta + off + size > range)
        bounds_fail(fmt::format(
            "{} of {} bytes at offset {}{:+} may pass the end of the packet: only {} bytes after r{} are "
            "proven "
            "(compare a pointer with data_end first)",
            verb, size, offset_text(base.val), off,
            range == no_range ? std::int64_t{0} : std::max<std::int64_t>(0, range - base.delta), regno));
      return loaded();
    }
    case RegKind::map_value:
    case RegKind::mem: {
      facts_[pc].regions |= static_cast<std::uint8_t>(
          base.kind == RegKind::map_value ? AccessRegion::map_value : AccessRegion::memory);
      if (base.nullable)
        fail(pc, s, "null_check",
             fmt::format("{} through r{}, which may be null: compare it with 0 first", verb, regno),
             involved);
      if (acc != Access::read && !base.writable)
        fail(pc, s, "mem_permission", fmt::format("{} of read-only memory", verb), involved);
      if (base.val.smin + off < 0 || base.val.smin < -pointer_offset_limit ||
          base.val.smax > static_cast<std::int64_t>(base.size) ||
          base.val.smax + off + size > static_cast<std::int64_t>(base.size))
        bounds_fail(fmt::format("{} of {} bytes at offset {}{:+} is outside the {}-byte {}", verb, size,
                                offset_text(base.val), off, base.size,
                                base.kind == RegKind::map_value ? "map value" : "memory"));
      return loaded();
    }
    case RegKind::packet_end:
    case RegKind::map_ptr:
    case RegKind::func:
      fail(pc, s, "deref_pointer",
           fmt::format("{} through r{} = {}, which cannot be dereferenced", verb, regno, reg_str(base, s)),
           involved);
    case RegKind::uninit: break;
  }
  return Reg{};
}

Reg Analyzer::stack_access(std::uint32_t pc, State& s, int regno, std::int64_t off, int size, Access acc,
                           const Reg* value, bool sign_extend) {
  const Reg base = s.regs[regno];
  Frame& fr = s.frames[base.region];
  std::vector<int> involved = {regno};
  const char* verb = acc == Access::read ? "read" : acc == Access::write ? "write" : "atomic update";
  std::int64_t lo = base.val.smin + off, hi = base.val.smax + off + size;
  if (base.val.smin < -pointer_offset_limit || base.val.smax > pointer_offset_limit ||
      lo < -isa::stack_frame_size || hi > 0)
    fail(pc, s, "stack_bounds",
         fmt::format("stack {} of {} bytes at fp{}{:+} is outside the 512-byte frame", verb, size,
                     offset_text(base.val), off),
         involved);
  note_stack(s, base.region, lo);
  int b0 = static_cast<int>(lo + isa::stack_frame_size), b1 = static_cast<int>(hi + isa::stack_frame_size);
  bool fixed = base.val.is_const();
  auto spill_at = [&](int slot) -> Reg* {
    for (auto& [sl, r] : fr.spills)
      if (sl == slot) return &r;
    return nullptr;
  };
  auto drop_spill = [&](int slot, bool keep_init) {
    Reg* r = spill_at(slot);
    if (!r) return;
    bool poison = r->is_pointer() && !env_.allow_pointer_leaks;
    for (int k = 0; k < 8; ++k)
      if (fr.bytes[slot * 8 + k] == byte_spill)
        fr.bytes[slot * 8 + k] = (keep_init && !poison) ? byte_misc : byte_uninit;
    std::erase_if(fr.spills, [&](auto& e) { return e.first == slot; });
  };
  // A spill covers the bytes of its slot marked byte_spill: all 8, or the 1, 2 or 4 of a narrow
  // scalar store. [first, end) as frame byte indices; {0, 0} when the slot holds no spill.
  auto spill_bytes = [&](int slot) -> std::pair<int, int> {
    int first = -1, end = 0;
    for (int k = slot * 8; k < slot * 8 + 8; ++k)
      if (fr.bytes[k] == byte_spill) {
        if (first < 0) first = k;
        end = k + 1;
      }
    return first < 0 ? std::pair{0, 0} : std::pair{first, end};
  };
  auto check_init = [&] {
    for (int i = b0; i < b1; ++i) {
      if (fr.bytes[i] == byte_uninit)
        fail(pc, s, "uninit_stack",
             fmt::format("stack {} of {} bytes at fp{}{:+} reads fp{}, which is not initialized", verb, size,
                         offset_text(base.val), off, i - isa::stack_frame_size),
             involved);
      if (fr.bytes[i] == byte_spill) {
        Reg* r = spill_at(i / 8);
        if (r && r->is_pointer() && !(fixed && size == 8 && b0 % 8 == 0) && !env_.allow_pointer_leaks)
          fail(pc, s, "pointer_leak",
               fmt::format("stack {} of {} bytes at fp{}{:+} reads part of a spilled pointer ({})", verb,
                           size, offset_text(base.val), off, reg_str(*r, s)),
               involved);
      }
    }
  };
  if (acc == Access::read) {
    check_init();
    if (fixed && b0 % 8 == 0 && size == 8 && fr.bytes[b0] == byte_spill) {
      if (Reg* r = spill_at(b0 / 8)) return *r;
    }
    if (fixed && b0 / 8 == (b1 - 1) / 8) {
      auto [first, end] = spill_bytes(b0 / 8);
      Reg* r = first <= b0 && b1 <= end ? spill_at(b0 / 8) : nullptr;
      // A narrow scalar spill read back whole: the value stored, zero-extended (Linux keeps
      // these too: loop counters of 32 bits live in 4-byte stack slots).
      if (r && r->kind == RegKind::scalar && first == b0 && end == b1 && !sign_extend) return *r;
      if (r && r->kind == RegKind::scalar && r->val.is_const()) {
        std::uint64_t v = r->val.value() >> (8 * (b0 - first));
        if (size < 8) v &= (std::uint64_t{1} << (8 * size)) - 1;
        Scalar sv = Scalar::constant(v);
        return Reg::scalar(sign_extend ? sv.sext(size * 8) : sv);
      }
    }
    Scalar v = Scalar::of_width(size * 8);
    return Reg::scalar(sign_extend ? v.sext(size * 8) : v);
  }
  if (acc == Access::atomic) {
    check_init();
    for (int slot = b0 / 8; slot <= (b1 - 1) / 8; ++slot)
      if (Reg* r = spill_at(slot); r && r->is_pointer())
        fail(pc, s, "pointer_leak", "atomic update of a spilled pointer", involved);
    for (int slot = b0 / 8; slot <= (b1 - 1) / 8; ++slot) drop_spill(slot, true);
    return Reg::scalar(Scalar::of_width(size * 8));
  }
  // Write.
  if (!fixed) {
    if (value && value->is_pointer())
      fail(pc, s, "stack_var_offset", "a pointer stored at a variable stack offset cannot be tracked",
           involved);
    // Bytes in range may or may not be written: initialised ones stay initialised.
    for (int slot = b0 / 8; slot <= (b1 - 1) / 8; ++slot) drop_spill(slot, true);
    return Reg{};
  }
  for (int slot = b0 / 8; slot <= (b1 - 1) / 8; ++slot) drop_spill(slot, true);
  // store() has cut a narrow scalar to its width, so the spill is exactly the bytes written.
  const bool narrow_scalar = value && value->kind == RegKind::scalar && size < 8 && b0 / 8 == (b1 - 1) / 8;
  if ((size == 8 && b0 % 8 == 0 && value) || narrow_scalar) {
    for (int i = b0; i < b1; ++i) fr.bytes[i] = byte_spill;
    auto it = std::lower_bound(fr.spills.begin(), fr.spills.end(), static_cast<std::uint16_t>(b0 / 8),
                               [](auto& e, std::uint16_t v) { return e.first < v; });
    fr.spills.insert(it, {static_cast<std::uint16_t>(b0 / 8), *value});
    return Reg{};
  }
  if (value && value->is_pointer() && !env_.allow_pointer_leaks)
    fail(pc, s, "pointer_leak", "a pointer stored to the stack with less than 8 aligned bytes", involved);
  for (int i = b0; i < b1; ++i) fr.bytes[i] = byte_misc;
  return Reg{};
}

Reg Analyzer::ctx_access(std::uint32_t pc, State& s, int regno, std::int64_t off, int size, Access acc,
                         const Reg* value) {
  const Reg& base = s.regs[regno];
  std::vector<int> involved = {regno};
  if (!base.val.is_const()) fail(pc, s, "ctx_access", "context access at a variable offset", involved);
  std::int64_t o = static_cast<std::int64_t>(base.val.value()) + off;
  if (env_.raw_memory || o < 0 || o + size > env_.ctx_size)
    fail(pc, s, "ctx_access",
         fmt::format("context access of {} bytes at offset {} is outside the {}-byte context", size, o,
                     env_.ctx_size),
         involved);
  const CtxField* f = env_.field_at(static_cast<std::uint32_t>(o), static_cast<std::uint32_t>(size));
  if (!f)
    fail(pc, s, "ctx_access",
         fmt::format("the {} context has no field at offset {} of {} bytes", env_.name, o, size), involved);
  if (acc == Access::atomic) fail(pc, s, "ctx_access", "atomic update of the context", involved);
  if (acc == Access::write) {
    if (!f->writable || f->kind != FieldKind::scalar)
      fail(pc, s, "ctx_access", fmt::format("context field '{}' is read-only", f->name), involved);
    if (static_cast<std::uint32_t>(size) != f->size || static_cast<std::uint32_t>(o) != f->offset)
      fail(pc, s, "ctx_access",
           fmt::format("context field '{}' must be written whole ({} bytes)", f->name, f->size), involved);
    if (value && value->is_pointer())
      fail(pc, s, "pointer_leak", fmt::format("a pointer stored to context field '{}'", f->name), involved);
    return Reg{};
  }
  if (f->kind == FieldKind::scalar) {
    if (o % size != 0)
      fail(pc, s, "ctx_access", fmt::format("misaligned read of context field '{}'", f->name), involved);
    return Reg::scalar(Scalar::of_width(size * 8));
  }
  if (static_cast<std::uint32_t>(size) != f->size || static_cast<std::uint32_t>(o) != f->offset)
    fail(pc, s, "ctx_access",
         fmt::format("pointer field '{}' must be read whole ({} bytes)", f->name, f->size), involved);
  Reg r;
  r.val = Scalar::constant(0);
  switch (f->kind) {
    case FieldKind::packet: r.kind = RegKind::packet, r.id = packet_base_id; break;
    case FieldKind::packet_end: r.kind = RegKind::packet_end; break;
    case FieldKind::packet_meta: r.kind = RegKind::packet_meta, r.id = meta_base_id; break;
    case FieldKind::region:
      r.kind = RegKind::mem;
      r.region = f->region;
      r.size = env_.regions[f->region].size;
      r.writable = env_.regions[f->region].writable;
      break;
    case FieldKind::scalar: break;
  }
  return r;
}

void Analyzer::load(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  Reg v = access(pc, s, insn.src(), insn.off, info.width / 8, Access::read, nullptr,
                 info.operation == Operation::loadsx);
  if (v.kind == RegKind::scalar) v.id = 0, v.delta = 0;
  s.regs[insn.dst()] = v;
}

void Analyzer::store(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  Reg value;
  if (info.source == isa::Source::imm) {
    value = Reg::scalar(Scalar::constant(static_cast<std::uint64_t>(std::int64_t{insn.imm})));
  } else {
    value = use(pc, s, insn.src());
  }
  if (value.kind == RegKind::scalar && info.width < 64) {
    value.val = scalar_and(value.val, Scalar::constant((std::uint64_t{1} << info.width) - 1));
    value.id = 0;
    value.delta = 0;
  }
  access(pc, s, insn.dst(), insn.off, info.width / 8, Access::write, &value, false,
         info.source == isa::Source::reg ? insn.src() : -1);
}

void Analyzer::atomic(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  int sr = insn.src();
  Reg value = use(pc, s, sr);
  if (value.is_pointer()) leak(pc, s, "a pointer used as an atomic operand", {sr});
  if (info.operation == Operation::cmpxchg) {
    const Reg& r0 = use(pc, s, 0);
    if (r0.is_pointer()) leak(pc, s, "a pointer used as an atomic operand", {0});
  }
  Reg old = access(pc, s, insn.dst(), insn.off, info.width / 8, Access::atomic, &value, false, sr);
  old = Reg::scalar(Scalar::of_width(info.width));
  switch (info.operation) {
    case Operation::fetch_add:
    case Operation::fetch_bor:
    case Operation::fetch_band:
    case Operation::fetch_bxor:
    case Operation::xchg: s.regs[sr] = old; break;
    case Operation::cmpxchg: s.regs[0] = old; break;
    default: break;
  }
}

void Analyzer::lddw(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  const auto& second = p_.insns[pc + 1];
  int d = insn.dst();
  Reg r;
  switch (info.operation) {
    case Operation::imm64: r = Reg::scalar(Scalar::constant(isa::lddw_value(insn, second))); break;
    case Operation::map_idx:
    case Operation::map_idx_value: {
      auto idx = static_cast<std::uint32_t>(insn.imm);
      if (idx >= p_.maps.size())
        fail(pc, s, "map_reference",
             fmt::format("lddw refers to map {} but the program has {} maps", idx, p_.maps.size()));
      const auto& m = p_.maps[idx];
      r.region = idx;
      if (info.operation == Operation::map_idx) {
        r.kind = RegKind::map_ptr;
      } else {
        r.kind = RegKind::map_value;
        r.size = m.value_size;
        r.writable = !m.read_only;
        r.val = Scalar::constant(static_cast<std::uint64_t>(static_cast<std::uint32_t>(second.imm)));
      }
      break;
    }
    case Operation::func: {
      auto target = static_cast<std::int64_t>(pc) + insn.imm + 1;
      int f = target >= 0 ? function_index_at(static_cast<std::uint32_t>(target)) : -1;
      if (f < 0)
        fail(pc, s, "func_reference",
             fmt::format("lddw of a function: instruction {} starts no function", target));
      r.kind = RegKind::func;
      r.region = static_cast<std::uint32_t>(f);
      break;
    }
    default:
      fail(pc, s, "map_reference",
           fmt::format(
               "lddw with source {} ({}) is not resolved; load the program through a loader that binds maps",
               insn.src(), isa::to_string(info.operation)));
  }
  s.regs[d] = r;
}

void Analyzer::legacy(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  if (!env_.legacy_packet_loads)
    fail(pc, s, "legacy_packet",
         fmt::format("legacy packet loads need a socket program type, not {}", env_.name));
  const Reg& ctx = use(pc, s, 6);
  if (ctx.kind != RegKind::ctx || !ctx.val.is_const() || ctx.val.value() != 0)
    fail(pc, s, "legacy_packet", "legacy packet loads need the context in r6", {6});
  if (info.operation == Operation::ind) {
    const Reg& idx = use(pc, s, insn.src());
    if (idx.kind != RegKind::scalar)
      fail(pc, s, "legacy_packet", "the index of a legacy packet load must be a number", {insn.src()});
  }
  for (int r = 1; r <= 5; ++r) s.regs[r] = Reg::unusable(Why::call_clobbered, pc);
  s.regs[0] = Reg::scalar(Scalar::of_width(info.width));
}

// ---------------------------------------------------------------------------------------------
// Calls

void Analyzer::call(std::uint32_t pc, State& s, isa::Op op, const isa::Insn& insn) {
  const auto& info = isa::info(op);
  switch (info.operation) {
    case Operation::helper: call_helper(pc, s, static_cast<std::uint32_t>(insn.imm)); return;
    case Operation::local: {
      auto target = static_cast<std::uint32_t>(isa::branch_target(insn, op, pc));
      int f = function_index_at(target);
      if (f < 0) fail(pc, s, "call", fmt::format("call to instruction {}, which starts no function", target));
      call_local(pc, s, static_cast<std::uint32_t>(f));
      return;
    }
    case Operation::callx: {
      int d = insn.dst();
      const Reg& t = use(pc, s, d);
      if (t.kind == RegKind::func) {
        call_local(pc, s, t.region);
        return;
      }
      if (t.kind == RegKind::scalar && t.val.is_const() && env_.callx_helper_ids) {
        call_helper(pc, s, static_cast<std::uint32_t>(t.val.value()));
        return;
      }
      fail(pc, s, "call",
           fmt::format("callx through r{}, which holds neither a function nor a known helper id", d), {d});
    }
    default: fail(pc, s, "call", "calls to kernel functions (kfuncs) are not supported");
  }
}

void Analyzer::check_range(std::uint32_t pc, State& s, int regno, const Scalar& size, bool write,
                           bool zero_ok, int size_regno) {
  const Reg& base = s.regs[regno];
  std::vector<int> involved = {regno, size_regno};
  if (size.smin < 0)
    fail(pc, s, "helper_arg", fmt::format("size argument r{} may be negative", size_regno), involved);
  if (size.umax > max_helper_size)
    fail(pc, s, "helper_arg",
         fmt::format("size argument r{} is not bounded (up to {:#x})", size_regno, size.umax), involved);
  if (size.umin == 0 && !zero_ok)
    fail(pc, s, "helper_arg", fmt::format("size argument r{} may be zero", size_regno), involved);
  if (size.umax == 0) return;
  auto n = static_cast<int>(size.umax);
  if (base.kind == RegKind::stack) {
    // The helper reads or writes [off, off + size) of the frame.
    const Frame& fr = s.frames[base.region];
    std::int64_t lo = base.val.smin, hi = base.val.smax + n;
    if (base.val.smin < -pointer_offset_limit || lo < -isa::stack_frame_size || hi > 0)
      fail(pc, s, "stack_bounds",
           fmt::format("helper memory argument r{} of up to {} bytes at fp{} is outside the frame", regno, n,
                       offset_text(base.val)),
           involved);
    note_stack(s, base.region, lo);
    int b0 = static_cast<int>(lo + isa::stack_frame_size), b1 = static_cast<int>(hi + isa::stack_frame_size);
    if (!write) {
      for (int i = b0; i < b1; ++i)
        if (fr.bytes[i] == byte_uninit)
          fail(pc, s, "uninit_stack",
               fmt::format("helper reads {} bytes at fp{} (r{}), but fp{} is not initialized", n,
                           offset_text(base.val), regno, i - isa::stack_frame_size),
               involved);
      return;
    }
    // Bytes surely written become initialised scalars; spills in the range are gone.
    Frame& w = s.frames[base.region];
    int sure_end =
        base.val.is_const()
            ? static_cast<int>(base.val.smin + static_cast<std::int64_t>(size.umin) + isa::stack_frame_size)
            : b0;
    for (int slot = b0 / 8; slot <= (b1 - 1) / 8; ++slot) {
      bool had = false;
      std::erase_if(w.spills, [&](auto& e) { return e.first == slot && (had = true); });
      if (had)
        for (int k = 0; k < 8; ++k)
          if (w.bytes[slot * 8 + k] == byte_spill) w.bytes[slot * 8 + k] = byte_misc;
    }
    for (int i = b0; i < sure_end; ++i) w.bytes[i] = byte_misc;
    return;
  }
  if (base.kind == RegKind::ctx)
    fail(pc, s, "helper_arg",
         fmt::format(
             "helper memory argument r{} points to the context; helpers take stack, packet, map or memory "
             "buffers",
             regno),
         involved);
  access(pc, s, regno, 0, 1, write ? Access::write : Access::read, nullptr, false);  // kind and permission
  // The whole range: check its last byte too.
  Reg probe = base;
  probe.val = scalar_add(base.val, Scalar::constant(static_cast<std::uint64_t>(n - 1)));
  if (probe.kind == RegKind::packet || probe.kind == RegKind::packet_meta) probe.delta += n - 1;
  Reg saved = s.regs[regno];
  s.regs[regno] = probe;
  access(pc, s, regno, 0, 1, write ? Access::write : Access::read, nullptr, false);
  s.regs[regno] = saved;
}

void Analyzer::call_helper(std::uint32_t pc, State& s, std::uint32_t id) {
  const isa::HelperPrototype* h = env_.helpers.find(id);
  if (!h)
    fail(pc, s, "helper", fmt::format("helper {} does not exist in the {} program type", id, env_.name));
  int map = -1;
  std::optional<std::uint64_t> alloc_size;
  std::optional<std::pair<std::uint32_t, Reg>> callback;
  std::optional<std::uint32_t> release_id;
  for (int i = 0; i < h->arg_count(); ++i) {
    int r = i + 1;
    isa::ArgKind k = h->args[i];
    if (k == isa::ArgKind::none) continue;
    const Reg& a = use(pc, s, r);
    auto bad = [&](std::string what) {
      fail(pc, s, "helper_arg",
           fmt::format("helper {} ({}): argument r{} must be {}, but it is {}", h->name, id, r, what,
                       reg_str(a, s)),
           {r});
    };
    switch (k) {
      case isa::ArgKind::none:
      case isa::ArgKind::anything: break;
      case isa::ArgKind::scalar:
        if (a.kind != RegKind::scalar) bad("a number");
        break;
      case isa::ArgKind::const_map_ptr:
        if (a.kind != RegKind::map_ptr) bad("a map");
        map = static_cast<int>(a.region);
        break;
      case isa::ArgKind::map_key:
      case isa::ArgKind::map_value:
      case isa::ArgKind::uninit_map_value: {
        if (map < 0) bad("a map key or value after a map");
        const auto& m = p_.maps[static_cast<std::size_t>(map)];
        if (a.kind == RegKind::scalar) bad("a pointer to memory");
        auto n = k == isa::ArgKind::map_key ? m.key_size : m.value_size;
        check_range(pc, s, r, Scalar::constant(n), k == isa::ArgKind::uninit_map_value, true, r);
        break;
      }
      case isa::ArgKind::mem:
      case isa::ArgKind::mem_or_null:
      case isa::ArgKind::uninit_mem: {
        bool null_ok = k == isa::ArgKind::mem_or_null && a.kind == RegKind::scalar && a.val.is_const() &&
                       a.val.value() == 0;
        if (!null_ok && !a.is_pointer()) bad("a pointer to memory");
        break;
      }
      case isa::ArgKind::const_size:
      case isa::ArgKind::const_size_or_zero: {
        if (a.kind != RegKind::scalar) bad("a size (a number)");
        const Reg& mem = s.regs[r - 1];
        if (mem.kind == RegKind::scalar) {
          if (a.val.umax != 0 && h->args[i - 1] == isa::ArgKind::mem_or_null)
            fail(pc, s, "helper_arg",
                 fmt::format("null memory argument r{} with a size that may be non-zero", r - 1), {r - 1, r});
          break;
        }
        check_range(pc, s, r - 1, a.val, h->args[i - 1] == isa::ArgKind::uninit_mem,
                    k == isa::ArgKind::const_size_or_zero, r);
        break;
      }
      case isa::ArgKind::const_alloc_size_or_zero:
        if (a.kind != RegKind::scalar || !a.val.is_const()) bad("a known size");
        if (a.val.value() > max_helper_size) bad("a size below 2^29");
        alloc_size = a.val.value();
        break;
      case isa::ArgKind::ctx:
        if (a.kind != RegKind::ctx || !a.val.is_const() || a.val.value() != 0) bad("the context pointer");
        break;
      case isa::ArgKind::stack_or_null:
        if (!(a.kind == RegKind::stack ||
              (a.kind == RegKind::scalar && a.val.is_const() && a.val.value() == 0)))
          bad("a stack pointer or 0");
        break;
      case isa::ArgKind::func:
        if (a.kind != RegKind::func) bad("a function");
        callback = std::make_pair(a.region, Reg{});
        break;
      case isa::ArgKind::alloc_mem:
        if (a.kind != RegKind::mem || !a.allocated || a.nullable || !a.val.is_const() || a.val.value() != 0)
          bad("memory from ringbuf_reserve, null-checked and unmodified");
        release_id = a.id;
        break;
    }
  }
  if (callback) call_callback(pc, s, callback->first, s.regs[3]);
  if (release_id) {
    std::uint32_t rid = *release_id;
    std::erase(s.refs, rid);
    invalidate(
        s, [&](const Reg& r) { return r.kind == RegKind::mem && r.allocated && r.id == rid; },
        Reg::unusable(Why::released, pc));
  }
  if (h->changes_packet) {
    invalidate(
        s,
        [](const Reg& r) {
          return r.kind == RegKind::packet || r.kind == RegKind::packet_end || r.kind == RegKind::packet_meta;
        },
        Reg::unusable(Why::packet_moved, pc));
    // Whatever was proven about the old packet says nothing about the new one.
    s.ranges.clear();
  }
  for (int r = 1; r <= 5; ++r) s.regs[r] = Reg::unusable(Why::call_clobbered, pc);
  Reg r0 = Reg::unusable(Why::call_clobbered, pc);
  switch (h->ret) {
    case isa::ReturnKind::integer: r0 = Reg::scalar(Scalar::unknown()); break;
    case isa::ReturnKind::none: break;
    case isa::ReturnKind::map_value_or_null: {
      const auto& m = p_.maps[static_cast<std::size_t>(map)];
      r0.kind = RegKind::map_value;
      r0.region = static_cast<std::uint32_t>(map);
      r0.size = m.value_size;
      r0.writable = !m.read_only;
      r0.nullable = true;
      r0.val = Scalar::constant(0);
      r0.id = fresh_id(s);
      break;
    }
    case isa::ReturnKind::alloc_mem_or_null:
      r0.kind = RegKind::mem;
      r0.size = alloc_size.value_or(0);
      r0.writable = true;
      r0.allocated = true;
      r0.nullable = true;
      r0.val = Scalar::constant(0);
      r0.id = fresh_id(s);
      s.refs.insert(std::upper_bound(s.refs.begin(), s.refs.end(), r0.id), r0.id);
      break;
  }
  s.regs[0] = r0;
}

State Analyzer::enter_frame(const State& s, std::uint32_t f, bool callback) {
  State c = s;
  Frame fr;
  fr.function = f;
  fr.callback = callback;
  for (int i = 0; i < 4; ++i) fr.saved[i] = s.regs[6 + i];
  c.frames.push_back(std::move(fr));
  c.regs[0] = Reg{};
  for (int i = 6; i <= 9; ++i) c.regs[i] = Reg{};
  Reg fp;
  fp.kind = RegKind::stack;
  fp.region = static_cast<std::uint32_t>(c.frames.size() - 1);
  fp.val = Scalar::constant(0);
  c.regs[isa::frame_pointer] = fp;
  return c;
}

void Analyzer::leave_frame(State& s, std::uint32_t call_pc) {
  auto top = static_cast<std::uint32_t>(s.frames.size() - 1);
  Frame fr = std::move(s.frames.back());
  s.frames.pop_back();
  invalidate(
      s, [&](const Reg& r) { return r.kind == RegKind::stack && r.region == top; },
      Reg::unusable(Why::frame_ended, 0));
  for (int i = 0; i < 4; ++i) s.regs[6 + i] = fr.saved[i];
  for (int r = 1; r <= 5; ++r) s.regs[r] = Reg::unusable(Why::call_clobbered, call_pc);
  Reg fp;
  fp.kind = RegKind::stack;
  fp.region = top - 1;
  fp.val = Scalar::constant(0);
  s.regs[isa::frame_pointer] = fp;
}

void Analyzer::call_local(std::uint32_t pc, State& s, std::uint32_t f) {
  if (std::find(chain_.begin(), chain_.end(), f) != chain_.end())
    fail(pc, s, "call", fmt::format("recursive call to {}", p_.functions[f].name));
  if (static_cast<int>(s.frames.size()) >= opt_.max_call_depth)
    fail(pc, s, "call", fmt::format("call depth exceeds {} frames", opt_.max_call_depth));
  call_edges_.emplace_back(pc, f);
  auto result = analyze_function(f, enter_frame(s, f, false));
  if (!result) {
    // No path returns: nothing follows the call.
    fail(pc, s, "call", fmt::format("{} never returns", p_.functions[f].name));
  }
  leave_frame(*result, pc);
  s = std::move(*result);
}

void Analyzer::call_callback(std::uint32_t pc, State& s, std::uint32_t f, const Reg& ctx_arg) {
  if (std::find(chain_.begin(), chain_.end(), f) != chain_.end())
    fail(pc, s, "call", fmt::format("recursive callback {}", p_.functions[f].name));
  if (static_cast<int>(s.frames.size()) >= opt_.max_call_depth)
    fail(pc, s, "call", fmt::format("call depth exceeds {} frames", opt_.max_call_depth));
  call_edges_.emplace_back(pc, f);
  // The callback runs any number of times: iterate its effect on the caller's state to a fixpoint.
  State acc = s;
  canonicalize(acc);
  for (int round = 0;; ++round) {
    State entry = enter_frame(acc, f, true);
    for (int r = 1; r <= 5; ++r) entry.regs[r] = Reg{};
    entry.regs[1] = Reg::scalar(Scalar::of_width(32));
    entry.regs[2] = ctx_arg;
    auto result = analyze_function(f, std::move(entry));
    if (!result) break;
    leave_frame(*result, pc);
    State joined = join(acc, *result, env_.allow_pointer_leaks);
    if (joined == acc) break;
    if (round > 64) fail(pc, s, "loop", "the callback's effect on the caller does not converge");
    acc = round >= 3 ? widen(acc, joined) : std::move(joined);
    canonicalize(acc);
  }
  s = std::move(acc);
}

void Analyzer::exit_insn(std::uint32_t pc, State& s) {
  const Reg& r0 = use(pc, s, 0);
  if (s.frames.size() > 1) {
    if (r0.kind == RegKind::stack && r0.region == s.frames.size() - 1)
      fail(pc, s, "stack_escape", "a function returns a pointer to its own stack frame", {0});
    if (s.frames.back().callback && r0.kind != RegKind::scalar)
      fail(pc, s, "return_value", "a callback must return a number", {0});
    join_into(run_->exit, std::move(s));
    return;
  }
  if (r0.is_pointer() && env_.scalar_return)
    fail(pc, s, "return_value", "the program returns a pointer; its result must be a number", {0});
  if (r0.is_pointer()) leak(pc, s, "the program returns a pointer", {0});
  if (!s.refs.empty())
    fail(pc, s, "unreleased_reference",
         "memory from ringbuf_reserve is neither submitted nor discarded on some path to this exit");
}

// ---------------------------------------------------------------------------------------------

VerifyResult Analyzer::run() {
  VerifyResult result;
  auto status = isa::validate(p_, isa::ValidateOptions{1'000'000, opt_.cpu_version});
  if (!status) {
    Diagnostic d;
    d.insn = status.error().insn.value_or(0);
    d.check = "structure";
    d.message = status.error().message;
    result.diagnostic = std::move(d);
    return result;
  }
  if (auto st = check_environment(env_); !st) {
    Diagnostic d;
    d.check = "environment";
    d.message = st.error().message;
    result.diagnostic = std::move(d);
    return result;
  }
  names_.map = [this](std::uint32_t i) {
    return i < p_.maps.size() && !p_.maps[i].name.empty() ? p_.maps[i].name : fmt::format("map#{}", i);
  };
  names_.function = [this](std::uint32_t i) {
    return i < p_.functions.size() ? p_.functions[i].name : fmt::format("fn#{}", i);
  };
  std::size_t n = p_.insns.size();
  ops_.assign(n, isa::Op::exit);
  for (std::size_t pc = 0; pc < n;) {
    auto op = isa::decode(p_.insns[pc]);
    ops_[pc] = *op;
    pc += static_cast<std::size_t>(isa::slot_count(*op));
  }
  facts_.assign(n, InsnFacts{});
  auto dump_invariants = [&] {
    if (!opt_.record_invariants) return;
    result.invariants.resize(n);
    for (std::size_t pc = 0; pc < n; ++pc)
      if (invariants_[pc]) result.invariants[pc] = state_text(*invariants_[pc], names_);
  };
  depth_.assign(p_.functions.size(), 0);
  if (opt_.record_invariants) invariants_.assign(n, std::nullopt);
  try {
    cfgs_.resize(p_.functions.size());
    for (std::size_t f = 0; f < p_.functions.size(); ++f) build_cfg(f);

    State entry;
    Frame fr;
    fr.function = 0;
    entry.frames.push_back(fr);
    Reg fp;
    fp.kind = RegKind::stack;
    fp.val = Scalar::constant(0);
    entry.regs[isa::frame_pointer] = fp;
    if (env_.raw_memory) {
      if (env_.raw_memory_size && *env_.raw_memory_size == 0) {
        entry.regs[1] = Reg::scalar(Scalar::constant(0));
        entry.regs[2] = Reg::scalar(Scalar::constant(0));
      } else if (env_.raw_memory_size) {
        Reg m;
        m.kind = RegKind::mem;
        m.size = *env_.raw_memory_size;
        m.writable = true;
        m.val = Scalar::constant(0);
        entry.regs[1] = m;
        entry.regs[2] = Reg::scalar(Scalar::constant(*env_.raw_memory_size));
      } else {
        Reg m;
        m.kind = RegKind::packet;
        m.id = packet_base_id;
        m.val = Scalar::constant(0);
        entry.regs[1] = m;
        entry.regs[2] = Reg::scalar(Scalar::unknown());
        entry.regs[2].is_len = true;
      }
    } else {
      Reg c;
      c.kind = RegKind::ctx;
      c.val = Scalar::constant(0);
      entry.regs[1] = c;
    }
    chain_.clear();
    analyze_function(0, std::move(entry));

    // Stack over call chains (the call graph has no cycles: recursion was rejected).
    std::vector<std::uint32_t> total(p_.functions.size(), 0);
    std::vector<char> done(p_.functions.size(), 0);
    std::function<std::uint32_t(std::uint32_t)> chain_depth = [&](std::uint32_t f) -> std::uint32_t {
      if (done[f]) return total[f];
      std::uint32_t deepest = 0;
      for (auto [pc, callee] : call_edges_) {
        if (p_.function_at(pc) != &p_.functions[f]) continue;
        std::uint32_t d = chain_depth(callee);
        deepest = std::max(deepest, d);
        if (((depth_[f] + 7) & ~7u) + d > opt_.max_total_stack) {
          State empty;
          fail(pc, empty, "stack_depth",
               fmt::format("the call chain through this call uses {} bytes of stack, more than {}",
                           ((depth_[f] + 7) & ~7u) + d, opt_.max_total_stack));
        }
      }
      done[f] = 1;
      return total[f] = ((depth_[f] + 7) & ~7u) + deepest;
    };
    std::uint32_t max_total = chain_depth(0);

    dump_invariants();
    VerifiedProgram vp(std::move(p_), env_);
    vp.facts_ = std::move(facts_);
    vp.stack_depth_ = depth_;
    vp.max_stack_total_ = max_total;
    result.program = std::move(vp);
  } catch (Reject& r) {
    result.diagnostic = std::move(r.diagnostic);
    dump_invariants();
  }
  result.visits = visits_;
  return result;
}

std::vector<bool> VerifiedProgram::proven_accesses() const {
  std::vector<bool> proven(program_.insns.size(), false);
  for (std::size_t pc = 0; pc < proven.size() && pc < facts_.size(); ++pc) {
    const auto op = isa::decode(program_.insns[pc]);
    if (!op || !facts_[pc].reached) continue;
    const isa::Kind kind = isa::info(*op).kind;
    proven[pc] = kind == isa::Kind::load || kind == isa::Kind::store || kind == isa::Kind::atomic;
  }
  return proven;
}

VerifyResult verify(isa::Program program, const Environment& env, const Options& options) {
  Analyzer a(program, env, options);
  return a.run();
}

}  // namespace bpfvm::verifier
