// Loops checked once per entry (jit/lowering/loops.hpp): what the analysis finds in small loops
// worked out by hand, and random loops of the shapes it looks for, with counters, bounds,
// steps and pointers at the edges (wrapping, 2^63, a step that skips a `!=` bound, pointers
// that leave the region after some iterations, read-only memory, the stack), run on the host's
// JIT and the interpreter: the same r0, memory, trap and executed count at every budget tried.
//
// BPFVM_LOOP_PROGRAMS (environment) sets how many random loops run (default 3000; 300 under
// sanitizers and on AArch64); BPFVM_LOOP_SEED the first seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"
#include "jit/lowering/analysis.hpp"
#include "jit/lowering/loops.hpp"
#include "tests/jit/same_result.hpp"
#include "vm/runtime.hpp"

using namespace bpfvm;
using namespace bpfvm::jit::lowering;

namespace {

// Fewer under sanitizers, and on AArch64 (qemu here), whose JIT does not hoist checks yet.
#if defined(__SANITIZE_ADDRESS__) || !defined(__x86_64__)
constexpr std::uint64_t default_programs = 300;
#else
constexpr std::uint64_t default_programs = 3000;
#endif

isa::Program assemble(std::string_view text) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO(text << "\n" << (program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  return std::move(program).value();
}

std::vector<HoistedLoop> loops_of(std::string_view text) {
  const isa::Program program = assemble(text);
  const vm::HelperRegistry helpers = vm::HelperRegistry::conformance();
  auto a = analyze(program, helpers, {});
  REQUIRE(a.ok());
  std::vector<HoistedLoop> loops;
  hoisted_loops(*a, loops);
  return loops;
}

// A loop in assembly with named labels: lines "name:" and jumps "goto name" / "if ... goto name"
// become LLVM syntax with relative offsets (an lddw takes two slots).
std::string resolve(const std::vector<std::string>& lines) {
  std::vector<std::pair<std::string, int>> labels;
  int slot = 0;
  for (const std::string& l : lines) {
    if (l.back() == ':')
      labels.emplace_back(l.substr(0, l.size() - 1), slot);
    else
      slot += l.ends_with(" ll") ? 2 : 1;
  }
  std::string out;
  slot = 0;
  for (const std::string& l : lines) {
    if (l.back() == ':') continue;
    std::string text = l;
    if (const auto at = text.find("goto "); at != std::string::npos) {
      const std::string name = text.substr(at + 5);
      const auto it =
          std::find_if(labels.begin(), labels.end(), [&](const auto& p) { return p.first == name; });
      REQUIRE(it != labels.end());
      const int off = it->second - slot - 1;
      text = text.substr(0, at + 5) + (off < 0 ? "-" : "+") + std::to_string(off < 0 ? -off : off);
    }
    out += text + "\n";
    slot += l.ends_with(" ll") ? 2 : 1;
  }
  return out;
}

}  // namespace

TEST_CASE("loops: the analysis finds counters, bounds and ranges as worked out by hand") {
  SECTION("a walk over 16-bit words to a constant, the counter stepped before the test") {
    // pc 0: r5 = 0
    // pc 1: r6 = r1           head (the back edge is pc 6)
    // pc 2: r6 += r5
    // pc 3: r6 = *(u16 *)(r6 + 0)   address r1 + r5 + 0, 2 bytes; r5 moves by 2 an iteration
    // pc 4: r0 += r6
    // pc 5: r5 += 2           the counter, before the test
    // pc 6: if r5 != 100 goto 1
    // pc 7: exit
    const auto loops = loops_of(
        "r5 = 0\n r6 = r1\n r6 += r5\n r6 = *(u16 *)(r6 + 0)\n r0 += r6\n r5 += 2\n if r5 != 100 goto -6\n "
        "exit\n");
    REQUIRE(loops.size() == 1);
    const HoistedLoop& l = loops[0];
    CHECK(l.head == 1);
    CHECK(l.end == 7);
    CHECK(l.trip.cont == Trip::Continue::not_equal);
    CHECK(l.trip.counter == 5);
    CHECK(l.trip.log2_step == 1);
    CHECK(l.trip.counted_first);
    CHECK(!l.trip.bound_is_reg);
    CHECK(l.trip.bound == 100);
    REQUIRE(l.ranges.size() == 1);
    CHECK(l.ranges[0].count == 2);
    CHECK(l.ranges[0].regs[0] == 1);
    CHECK(l.ranges[0].regs[1] == 5);
    CHECK(l.ranges[0].lo == 0);
    CHECK(l.ranges[0].hi == 2);
    CHECK(l.ranges[0].step == 2);
    CHECK(l.ranges[0].kinds == 1);
    CHECK(l.accesses == std::vector<std::uint32_t>{3});
  }
  SECTION("a pointer in lockstep with a counter, the bound in a register, a load and a store") {
    // pc 0: r3 = *(u64 *)(r1 + 16)  before the head: a store after the pointer moved
    // pc 1: r4 = *(u64 *)(r1 + 8)   head
    // pc 2: *(u32 *)(r1 + 4) = r4   r1 not moved yet: offsets 8..16 and 4..8 around r1
    // pc 3: r1 += 8                 the pointer: step 8
    // pc 4: *(u8 *)(r1 - 1) = r3    after the move: r1 + 8 - 1, 1 byte: 7..8
    // pc 5: r7 += 1                 the counter: step 1, before the test
    // pc 6: if r7 < r2 goto 1       bound r2 (never written in the loop)
    // pc 7: exit
    const auto loops = loops_of(
        "r3 = *(u64 *)(r1 + 16)\n r4 = *(u64 *)(r1 + 8)\n *(u32 *)(r1 + 4) = r4\n r1 += 8\n"
        " *(u8 *)(r1 - 1) = r3\n r7 += 1\n if r7 < r2 goto -6\n exit\n");
    REQUIRE(loops.size() == 1);
    const HoistedLoop& l = loops[0];
    CHECK(l.head == 1);
    CHECK(l.trip.cont == Trip::Continue::below);
    CHECK(l.trip.counter == 7);
    CHECK(l.trip.log2_step == 0);
    CHECK(l.trip.counted_first);
    CHECK(l.trip.bound_is_reg);
    CHECK(l.trip.bound_reg == 2);
    REQUIRE(l.ranges.size() == 1);  // all three through r1 alone: one range
    CHECK(l.ranges[0].count == 1);
    CHECK(l.ranges[0].regs[0] == 1);
    CHECK(l.ranges[0].lo == 4);
    CHECK(l.ranges[0].hi == 16);
    CHECK(l.ranges[0].step == 8);
    CHECK(l.ranges[0].kinds == 3);
    CHECK(l.accesses == std::vector<std::uint32_t>{1, 2, 4});
  }
  SECTION("a rotated loop: entered at its test, not at its head") {
    // pc 0: goto 3             the only way in from outside: pc 3 is the entry
    // pc 1: r1 += 4            head (the back edge at pc 4 comes here)
    // pc 2: r7 += 1            falls through into the entry: the iteration's back edge
    // pc 3: r4 = *(u32 *)(r1 + 0)
    // pc 4: if r7 < r2 goto 1
    // pc 5: exit
    // An iteration runs 3, 4, 1, 2: the load comes before r1 moves (offset 0), and the test
    // before r7 moves (not counted first).
    const auto loops =
        loops_of("goto +2\n r1 += 4\n r7 += 1\n r4 = *(u32 *)(r1 + 0)\n if r7 < r2 goto -4\n exit\n");
    REQUIRE(loops.size() == 1);
    const HoistedLoop& l = loops[0];
    CHECK(l.head == 1);
    CHECK(l.entry == 3);
    CHECK(l.end == 5);
    CHECK(l.trip.cont == Trip::Continue::below);
    CHECK(l.trip.counter == 7);
    CHECK(!l.trip.counted_first);
    CHECK(l.trip.bound_is_reg);
    CHECK(l.trip.bound_reg == 2);
    REQUIRE(l.ranges.size() == 1);
    CHECK(l.ranges[0].regs[0] == 1);
    CHECK(l.ranges[0].lo == 0);
    CHECK(l.ranges[0].hi == 4);
    CHECK(l.ranges[0].step == 4);
    CHECK(l.accesses == std::vector<std::uint32_t>{3});
  }
  SECTION("an exit path laid out inside a rotated loop does not count as the loop's") {
    // pc 0: goto 6             the entry
    // pc 1: r1 += 8            head
    // pc 2: r7 += 1
    // pc 3: if r7 < r6 goto 6  stays in the loop; else falls into the exit path
    // pc 4: r6 = 0             the exit path writes the bound ...
    // pc 5: goto 9             ... and leaves: r6 stays invariant for the iterations
    // pc 6: r3 = *(u64 *)(r1 + 0)
    // pc 7: if r3 != 0 goto 1
    // pc 8: r0 = 1
    // pc 9: exit
    const auto loops = loops_of(
        "goto +5\n r1 += 8\n r7 += 1\n if r7 < r6 goto +2\n r6 = 0\n goto +3\n"
        " r3 = *(u64 *)(r1 + 0)\n if r3 != 0 goto -7\n r0 = 1\n exit\n");
    REQUIRE(loops.size() == 1);
    const HoistedLoop& l = loops[0];
    CHECK(l.head == 1);
    CHECK(l.entry == 6);
    CHECK(l.end == 8);
    CHECK(l.trip.counter == 7);
    CHECK(l.trip.counted_first);
    CHECK(l.trip.bound_reg == 6);
    REQUIRE(l.ranges.size() == 1);
    CHECK(l.ranges[0].regs[0] == 1);
    CHECK(l.ranges[0].lo == 0);
    CHECK(l.ranges[0].hi == 8);
    CHECK(l.ranges[0].step == 8);
    CHECK(l.accesses == std::vector<std::uint32_t>{6});
  }
  SECTION("code outside may jump into an exit path laid out inside") {
    // pc 0: if r2 == 7 goto 5   into the exit path: not an entry to the loop
    // pc 1: goto 7              the entry
    // pc 2: r1 += 4             head
    // pc 3: r7 += 1
    // pc 4: if r7 < r6 goto 7   stays; else the exit path
    // pc 5: r0 = 1              exit path: reached from pc 0 and pc 4, leaves
    // pc 6: goto 10
    // pc 7: r3 = *(u32 *)(r1 + 0)   entry
    // pc 8: if r3 != 0 goto 2
    // pc 9: r0 = 2
    // pc 10: exit
    const auto loops = loops_of(
        "if r2 == 7 goto +4\n goto +5\n r1 += 4\n r7 += 1\n if r7 < r6 goto +2\n r0 = 1\n goto +3\n"
        " r3 = *(u32 *)(r1 + 0)\n if r3 != 0 goto -7\n r0 = 2\n exit\n");
    REQUIRE(loops.size() == 1);
    CHECK(loops[0].head == 2);
    CHECK(loops[0].entry == 7);
    CHECK(loops[0].end == 9);
    CHECK(loops[0].accesses == std::vector<std::uint32_t>{7});
  }
  SECTION("loops the analysis leaves alone") {
    // The pointer moves, but the counter only on one path (pc 3 is skipped when r4 > 5).
    CHECK(
        loops_of("r4 = *(u8 *)(r1 + 0)\n r1 += 1\n if r4 > 5 goto +1\n r7 += 1\n if r7 < 10 goto -5\n exit\n")
            .empty());
    // Counting down: no bound the analysis knows.
    CHECK(loops_of("r4 = *(u8 *)(r1 + 0)\n r1 += 1\n r7 += -1\n if r7 > 0 goto -4\n exit\n").empty());
    // A step that is not a power of two.
    CHECK(loops_of("r4 = *(u8 *)(r1 + 0)\n r1 += 1\n r7 += 3\n if r7 < 30 goto -4\n exit\n").empty());
    // The bound changes in the loop.
    CHECK(
        loops_of("r4 = *(u8 *)(r1 + 0)\n r1 += 1\n r2 += 1\n r7 += 1\n if r7 < r2 goto -5\n exit\n").empty());
    // An index masked, then stepped: its last write is not the mask, so nothing bounds it.
    CHECK(loops_of("r2 = r9\n r2 <<= 2\n r3 = r1\n r3 += r2\n r4 = *(u32 *)(r3 + 0)\n w9 &= 0x7ff\n"
                   " w9 += 1\n r7 += 1\n if r7 < 100 goto -9\n exit\n")
              .empty());
    // No counter: the loop leaves on data (hash_lookup's probes), mostly after an iteration or
    // two, where an entry check would cost more than it saves.
    CHECK(loops_of("r2 = r9\n r2 <<= 2\n r3 = r1\n r3 += r2\n r4 = *(u32 *)(r3 + 0)\n w9 += 1\n w9 &= 0x7ff\n"
                   " if w4 != 0 goto -8\n exit\n")
              .empty());
    // A call in the loop.
    CHECK(loops_of("r4 = *(u8 *)(r1 + 0)\n call 5\n r7 += 1\n if r7 < 9 goto -4\n exit\n").empty());
    // Entered at two places: pc 0 falls through into the head (pc 1) and jumps to pc 3.
    CHECK(loops_of(
              "if r2 > 5 goto +2\n r1 += 4\n r7 += 1\n r4 = *(u32 *)(r1 + 0)\n if r7 < r2 goto -4\n exit\n")
              .empty());
  }
  SECTION("an index masked every iteration: a ring buffer walked by a counter") {
    // pc 0: r2 = r9            head; r9 is the index
    // pc 1: r2 <<= 2
    // pc 2: r3 = r1
    // pc 3: r3 += r2           r3 = r1 + (r9 << 2)
    // pc 4: r4 = *(u32 *)(r3 + 0)
    // pc 5: w9 += 1
    // pc 6: w9 &= 0x7ff        r9's last write: at most 0x7ff when an iteration starts
    // pc 7: r7 += 1
    // pc 8: if r7 < 100 goto 0
    // pc 9: exit
    // The load reads r1 + [0, 4 + 0x7ff * 4) in every iteration: the range does not move.
    const auto loops = loops_of(
        "r2 = r9\n r2 <<= 2\n r3 = r1\n r3 += r2\n r4 = *(u32 *)(r3 + 0)\n w9 += 1\n w9 &= 0x7ff\n"
        " r7 += 1\n if r7 < 100 goto -9\n exit\n");
    REQUIRE(loops.size() == 1);
    const HoistedLoop& l = loops[0];
    CHECK(l.trip.counter == 7);
    CHECK(l.trip.bound == 100);
    REQUIRE(l.bounds.size() == 1);
    CHECK(l.bounds[0].reg == 9);
    CHECK(l.bounds[0].max == 0x7ff);
    REQUIRE(l.ranges.size() == 1);
    CHECK(l.ranges[0].count == 1);
    CHECK(l.ranges[0].regs[0] == 1);
    CHECK(l.ranges[0].lo == 0);
    CHECK(l.ranges[0].hi == 4);
    CHECK(l.ranges[0].bounded == 0x7ff * 4);
    CHECK(l.ranges[0].step == 0);
    CHECK(l.accesses == std::vector<std::uint32_t>{4});
  }
  SECTION("an access through a register loaded in the loop keeps its check") {
    // pc 0 reads through r1 (never written: step 0, one range [0, 8)); pc 1 through r3, which
    // pc 0 loads: not a sum of head values.
    const auto loops =
        loops_of("r3 = *(u64 *)(r1 + 0)\n r4 = *(u8 *)(r3 + 0)\n r7 += 1\n if r7 < 9 goto -4\n exit\n");
    REQUIRE(loops.size() == 1);
    CHECK(loops[0].accesses == std::vector<std::uint32_t>{0});
    REQUIRE(loops[0].ranges.size() == 1);
    CHECK(loops[0].ranges[0].step == 0);
    CHECK(loops[0].ranges[0].lo == 0);
    CHECK(loops[0].ranges[0].hi == 8);
  }
}

namespace {

// Random loops of the analysed shape (and near misses), with setup values at the edges.
class LoopGenerator {
 public:
  explicit LoopGenerator(std::uint64_t seed) : rng_(seed) {}

  std::string program(std::uint32_t memory_size) {
    size_ = memory_size;
    std::vector<std::string> l;
    l.push_back("r6 = r1");
    l.push_back("r0 = 0");
    l.push_back("r7 = " + value64(counter_values()) + " ll");
    l.push_back("r9 = " + value64(bound_values()) + " ll");
    l.push_back("r3 = " + pick<std::string>(
                              {std::to_string(below(64)), std::to_string(below(64)), "300", "5000", "-1"}));
    const bool stack = below(5) == 0;
    l.push_back(stack ? "r8 = r10" : "r8 = r6");
    l.push_back("r8 += " + std::to_string(stack ? -static_cast<int>(below(600)) : start_offset()));
    // An exit path laid out inside the loop: it changes the counter, the bound and the pointer,
    // then leaves; code before the loop may jump to it too.
    const bool exit_path = below(4) == 0;
    if (exit_path && below(2) == 0) l.push_back("if r3 == 300 goto xpath");
    // A third of the loops are rotated: entered by a jump into their middle.
    const bool rotated = below(3) == 0;
    if (rotated) l.push_back("goto entry");
    l.push_back("head:");
    std::vector<std::vector<std::string>> items;
    const int updates = below(10) == 0 ? 2 : below(12) == 0 ? 0 : 1;
    for (int i = 0; i < updates; ++i)
      items.push_back({"r7 += " + pick<std::string>({"1", "1", "1", "2", "4", "8", "16", "256", "3", "-1",
                                                     "-2", "1073741824", "2147483647"})});
    if (below(5) != 0)
      items.push_back({"r8 += " + pick<std::string>({"1", "2", "4", "8", "-8", "0", "3", "16", "-1"})});
    for (int n = 1 + below(3); n > 0; --n) items.push_back(access());
    // An index kept in bounds by a mask (r3; sometimes the mask comes first: no bound).
    if (below(3) == 0) {
      const std::string mask =
          pick<std::string>({"7", "63", "255", "1023", "0x7ff", std::to_string(below(300))});
      const std::string w = below(2) == 0 ? "w3" : "r3";
      const std::string step = w + " += " + pick<std::string>({"1", "3", "-1", "100"});
      if (below(5) == 0)
        items.push_back({w + " &= " + mask, step});
      else
        items.push_back({step, w + " &= " + mask});
    }
    if (below(4) == 0) items.push_back({"if r0 > " + std::to_string(below(100000)) + " goto out"});
    if (exit_path)
      items.push_back({"if r0 < " + std::to_string(below(100000)) + " goto stay", "xpath:", "r9 = 0",
                       "r7 += 5", "r8 += 64", "goto out", "stay:"});
    // A branch around the next item (which leaves it off the path every iteration takes).
    if (below(4) == 0 && !items.empty()) {
      const std::size_t i = below(static_cast<int>(items.size()));
      items[i].insert(items[i].begin(), "if r0 > " + std::to_string(below(3000)) + " goto skip");
      items[i].push_back("skip:");
    }
    std::shuffle(items.begin(), items.end(), rng_);
    // The exit test, somewhere in the body or as the back edge.
    const bool test_is_back_edge = below(2) == 0;
    const std::string test = "if " + condition(test_is_back_edge);
    if (!test_is_back_edge)
      items.insert(items.begin() + below(static_cast<int>(items.size()) + 1),
                   std::vector<std::string>{test + " goto out"});
    const std::size_t entry =
        rotated ? static_cast<std::size_t>(below(static_cast<int>(items.size()) + 1)) : 0;
    for (std::size_t i = 0; i <= items.size(); ++i) {
      if (rotated && i == entry) l.push_back("entry:");
      if (i < items.size())
        for (const auto& line : items[i]) l.push_back(line);
    }
    if (test_is_back_edge) {
      l.push_back(test + " goto head");
    } else {
      l.push_back("goto head");
    }
    l.push_back("out:");
    l.push_back("exit");
    return resolve(l);
  }

 private:
  int below(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }
  template <typename T>
  T pick(std::initializer_list<T> values) {
    return *(values.begin() + below(static_cast<int>(values.size())));
  }
  static std::string value64(std::uint64_t v) { return "0x" + fmt_hex(v); }
  static std::string fmt_hex(std::uint64_t v) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    do {
      s.insert(s.begin(), digits[v & 15]);
      v >>= 4;
    } while (v != 0);
    return s;
  }
  std::uint64_t counter_values() {
    return pick<std::uint64_t>({0, 0, 0, 0, 0, 1, 2, 5, 7, std::uint64_t{size_ / 8},
                                (std::uint64_t{1} << 63) - 2, (std::uint64_t{1} << 63) - 1,
                                std::uint64_t{1} << 63, ~std::uint64_t{0}, ~std::uint64_t{0} - 3, rng_()});
  }
  std::uint64_t bound_values() {
    return pick<std::uint64_t>({0, 1, 3, static_cast<std::uint64_t>(below(300)),
                                static_cast<std::uint64_t>(below(40)), static_cast<std::uint64_t>(below(40)),
                                static_cast<std::uint64_t>(below(40)), std::uint64_t{size_},
                                std::uint64_t{size_ / 4}, (std::uint64_t{1} << 63) - 1,
                                std::uint64_t{1} << 63, ~std::uint64_t{0}, rng_()});
  }
  int start_offset() {
    const int s = static_cast<int>(size_);
    return pick<int>({0, 0, below(s), s - 1 - below(16), s, -8, -1, below(2 * s) - s / 2});
  }
  // Mostly a condition that keeps the loop going where the analysis expects one.
  std::string condition(bool stays) {
    std::string op = pick<std::string>({"<", "<=", "!=", "==", ">", ">=", "s<", "s<=", "s>", "s>="});
    if (below(3) != 0)
      op = stays ? pick<std::string>({"<", "<=", "!=", "s<", "s<="})
                 : pick<std::string>({">=", ">", "==", "s>=", "s>"});
    std::string bound = below(2) == 0 ? "r9"
                                      : pick<std::string>({"0", "1", "7", "64", std::to_string(below(300)),
                                                           "-1", "2147483647", "-2147483648"});
    if (bound == "r9" && below(3) == 0) return "r9 " + swapped(op) + " r7";  // the counter on the right
    return "r7 " + op + " " + bound;
  }
  static std::string swapped(const std::string& op) {
    static const std::pair<const char*, const char*> pairs[] = {{"<", ">"},   {"<=", ">="},  {">", "<"},
                                                                {">=", "<="}, {"s<", "s>"},  {"s<=", "s>="},
                                                                {"s>", "s<"}, {"s>=", "s<="}};
    for (const auto& [a, b] : pairs)
      if (op == a) return b;
    return op;
  }
  std::vector<std::string> access() {
    const int bytes = pick<int>({1, 2, 4, 8});
    const std::string width = "u" + std::to_string(bytes * 8);
    const int o = pick<int>({0, 0, 1, 2, 4, 8, -8, -1, below(64) - 32, 32767, -32768});
    const std::string off = (o < 0 ? "- " : "+ ") + std::to_string(o < 0 ? -o : o);
    const std::string at = "(r8 " + off + ")";
    switch (below(7)) {
      case 0: return {"r4 = *(" + width + " *)" + at, "r0 += r4"};
      case 1: return {"*(" + width + " *)" + at + " = r7"};
      case 2: return {"*(" + width + " *)" + at + " = " + std::to_string(below(1000))};
      case 3: {  // an address sum: the pointer plus the counter, an invariant or a constant
        const std::string added = pick<std::string>({"r7", "r3", std::to_string(below(64))});
        return {"r5 = r8", "r5 += " + added, "r4 = *(" + width + " *)(r5 " + off + ")", "r0 += r4"};
      }
      case 6: {  // an array element: the memory (or the pointer) plus the index r3 scaled
        const std::string shift = "r2 <<= " + std::to_string(1 + below(3));
        return {"r2 = r3",
                shift,
                below(2) == 0 ? "r5 = r6" : "r5 = r8",
                "r5 += r2",
                "r4 = *(" + width + " *)(r5 " + off + ")",
                "r0 += r4"};
      }
      case 4:
        if (bytes >= 4) return {"lock *(" + width + " *)" + at + " += r7"};
        return {"r4 = *(" + width + " *)" + at, "r0 ^= r4"};
      default: return {"r2 = *(" + width + " *)" + at, "r0 += r2"};  // writes r2: the region size
    }
  }

  std::mt19937_64 rng_;
  std::uint32_t size_ = 256;
};

}  // namespace

TEST_CASE("loops: random loops give the same results checked once per entry and checked every time") {
  if (!engine_available(test::host_jit)) return;
  const std::uint64_t first = test::env_or("BPFVM_LOOP_SEED", 1);
  const std::uint64_t count = test::env_or("BPFVM_LOOP_PROGRAMS", default_programs);
  int hoisted = 0, exits = 0, traps = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    LoopGenerator gen(seed);
    const std::uint32_t size = 64u << (seed % 4);
    const std::string text = gen.program(size);
    INFO("seed " << seed << " (BPFVM_LOOP_SEED=" << seed << " BPFVM_LOOP_PROGRAMS=1)\n" << text);
    if (!loops_of(text).empty()) ++hoisted;
    Vm vm;
    REQUIRE(vm.load(assemble(text)).ok());
    auto reference = vm.compile(Engine::interpreter);
    auto compiled = vm.compile(test::host_jit);
    REQUIRE(reference.ok());
    REQUIRE(compiled.ok());
    std::vector<std::uint8_t> initial(size);
    for (std::size_t i = 0; i < initial.size(); ++i) initial[i] = static_cast<std::uint8_t>(i * 37 + seed);
    for (std::uint64_t budget : {std::uint64_t{4} + seed % 13, 40 + seed % 200, std::uint64_t{20000}}) {
      std::vector<std::uint8_t> mem = initial;
      vm::RunContext ctx;
      const auto address = reinterpret_cast<std::uint64_t>(mem.data());
      // Sometimes the memory is read-only: stores must trap however the loop is checked.
      const vm::Access access = seed % 7 == 0 ? vm::Access::read : vm::Access::read_write;
      ctx.add_region({address, mem.size(), access, "input"});
      ctx.set_args({address, mem.size(), 0, 0, 0});
      ctx.set_budget(budget);
      vm::RunResult results[2];
      std::vector<std::uint8_t> after[2];
      for (int e = 0; e < 2; ++e) {
        mem = initial;
        const auto stack = ctx.prepare_run();
        std::fill(stack.begin(), stack.end(), std::uint8_t{0});
        results[e] = (e == 0 ? **reference : **compiled).run(ctx);
        after[e] = mem;
      }
      INFO("budget " << budget);
      test::check_same_result(results[0], results[1]);
      REQUIRE(after[0] == after[1]);
      (results[0].trap ? traps : exits) += 1;
    }
  }
  // The shapes occur often enough to be compared: loops the analysis takes, runs that end and
  // runs that trap.
  INFO("loops hoisted " << hoisted << ", runs ending " << exits << ", trapping " << traps);
  CHECK(hoisted > static_cast<int>(count / 5));
  CHECK(exits > static_cast<int>(count / 4));
  CHECK(traps > static_cast<int>(count / 4));
}
