// The x86-64 JIT on hand-written programs: traps (every kind, with pc, address, size, region and
// executed count), the budget, call depth, helpers and callx, constant blinding, tracing. The
// interpreter is the oracle; values worked out by hand are checked too.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"
#include "jit/x64/backend.hpp"

using namespace bpfvm;

namespace {

isa::Program assemble(std::string_view text) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  return std::move(program).value();
}

std::uint64_t add_all(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, std::uint64_t e,
                      vm::RunContext* ctx) {
  return a + 10 * b + 100 * c + 1000 * d + 10000 * e + (ctx->user() != nullptr ? 100000 : 0);
}
std::uint64_t clobber(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                      vm::RunContext*) {
  return 7;
}
std::uint64_t refuse(std::uint64_t a, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                     vm::RunContext* ctx) {
  ctx->fail("refused " + std::to_string(a));
  return 99;
}

struct Both {
  vm::RunResult interp, jit;
};

// Runs `text` on both engines with `memory` as the input region (and an optional read-only
// region behind it), one context so that addresses agree.
Both run_both(std::string_view text, std::vector<std::uint8_t> memory, RunOptions options = {},
              const vm::CompileOptions& copts = {}) {
  Vm vm;
  REQUIRE(vm.load(assemble(text)).ok());
  REQUIRE(vm.add_helper(1, "add_all", add_all).ok());
  REQUIRE(vm.add_helper(2, "clobber", clobber).ok());
  REQUIRE(vm.add_helper(3, "refuse", refuse).ok());
  auto interp = vm.compile(Engine::interpreter, copts);
  auto jit = vm.compile(Engine::jit_x64, copts);
  INFO((jit ? std::string() : jit.error().to_string()));
  REQUIRE(interp.ok());
  REQUIRE(jit.ok());
  static std::array<std::uint8_t, 16> read_only{};
  // One buffer and one context for both engines, so that trap addresses agree.
  std::vector<std::uint8_t> mem = memory;
  vm::RunContext ctx;
  const auto address = reinterpret_cast<std::uint64_t>(mem.data());
  ctx.add_region({address, mem.size(), vm::Access::read_write, "input"});
  ctx.add_region(
      {reinterpret_cast<std::uint64_t>(read_only.data()), read_only.size(), vm::Access::read, "ro"});
  ctx.set_args({address, mem.size(), reinterpret_cast<std::uint64_t>(read_only.data()), 0, 0});
  ctx.set_budget(options.budget);
  ctx.set_max_call_depth(options.max_call_depth);
  ctx.set_user(options.user);
  Both out;
  for (int engine = 0; engine < 2; ++engine) {
    std::copy(memory.begin(), memory.end(), mem.begin());
    auto stack = ctx.prepare_run();
    std::fill(stack.begin(), stack.end(), std::uint8_t{0});
    (engine == 0 ? out.interp : out.jit) = (engine == 0 ? **interp : **jit).run(ctx);
  }
  return out;
}

void same_trap(const Both& b) {
  INFO("interp: " << (b.interp.trap ? b.interp.trap->message() : "exit")
                  << "\njit:    " << (b.jit.trap ? b.jit.trap->message() : "exit"));
  REQUIRE(b.interp.trap.has_value());
  REQUIRE(b.jit.trap.has_value());
  CHECK(b.interp.trap->kind == b.jit.trap->kind);
  CHECK(b.interp.trap->pc == b.jit.trap->pc);
  CHECK(b.interp.trap->address == b.jit.trap->address);
  CHECK(b.interp.trap->size == b.jit.trap->size);
  CHECK(b.interp.trap->region == b.jit.trap->region);
  CHECK(b.interp.trap->detail == b.jit.trap->detail);
  CHECK(b.interp.executed == b.jit.executed);
}

// `text` on `memory` with every budget below `budgets`, plain and blinded: the JIT stops where
// the interpreter does, with the same r0, trap and executed count.
void same_at_every_budget(std::string_view text, const std::vector<std::uint8_t>& memory,
                          std::uint64_t budgets) {
  for (bool blind : {false, true}) {
    vm::CompileOptions copts;
    copts.blind_constants = blind;
    for (std::uint64_t budget = 0; budget < budgets; ++budget) {
      RunOptions options;
      options.budget = budget;
      const Both b = run_both(text, memory, options, copts);
      INFO(text << "\nbudget " << budget << (blind ? ", blinded" : ""));
      CHECK(b.interp.executed == b.jit.executed);
      CHECK(b.interp.r0 == b.jit.r0);
      REQUIRE(b.interp.trap.has_value() == b.jit.trap.has_value());
      if (b.interp.trap) same_trap(b);
    }
  }
}
bool contains(const std::vector<std::uint8_t>& code, std::uint64_t value, std::size_t bytes) {
  std::vector<std::uint8_t> needle(bytes);
  std::memcpy(needle.data(), &value, bytes);
  return std::search(code.begin(), code.end(), needle.begin(), needle.end()) != code.end();
}

}  // namespace

TEST_CASE("jit-x64: memory traps match the interpreter's") {
  std::vector<std::uint8_t> mem(32, 0);
  SECTION("a load past the input") {
    // pc 2: 4 bytes at input + 30 (32 bytes long): out of bounds near "input".
    const Both b = run_both("r0 = 0\nr3 = 1\nr0 = *(u32 *)(r1 + 30)\nexit\n", mem);
    same_trap(b);
    CHECK(b.jit.trap->kind == vm::TrapKind::out_of_bounds);
    CHECK(b.jit.trap->pc == 2);
    CHECK(b.jit.trap->size == 4);
    CHECK(b.jit.trap->region == "input");
    CHECK(b.jit.executed == 3);
  }
  SECTION("a store into the read-only region") {
    const Both b = run_both("r0 = 0\n*(u8 *)(r3 + 2) = 1\nexit\n", mem);
    same_trap(b);
    CHECK(b.jit.trap->kind == vm::TrapKind::permission);
    CHECK(b.jit.trap->region == "ro");
  }
  SECTION("a load from the read-only region is allowed") {
    const Both b = run_both("r0 = *(u64 *)(r3 + 8)\nexit\n", mem);
    CHECK_FALSE(b.jit.trap.has_value());
    CHECK(b.jit.r0 == 0);
  }
  SECTION("below the stack frame, and an address that is no pointer") {
    same_trap(run_both("r0 = *(u64 *)(r10 - 520)\nexit\n", mem));
    same_trap(run_both("r2 = 16\nr0 = *(u8 *)(r2 + 0)\nexit\n", mem));
  }
  SECTION("after stores in the same block: the stores happened") {
    const Both b = run_both("*(u8 *)(r1 + 0) = 5\n*(u8 *)(r1 + 1) = 6\nr0 = *(u8 *)(r1 + 40)\nexit\n", mem);
    same_trap(b);
    CHECK(b.jit.trap->pc == 2);
  }
  SECTION("legacy packet loads outside the first region") {
    same_trap(run_both("r0 = *(u32 *)skb[30]\nexit\n", mem));
  }
}

TEST_CASE("jit-x64: a program larger than the buffers a thread keeps compiles again and after") {
  // 70,000 additions and a store: past the size whose compile buffers are kept per thread
  // (jit/x64/backend.cpp), so every compile here starts from given-back buffers.
  std::string big = "r0 = 0\n";
  for (int i = 0; i < 70000; ++i) big += "r0 += 1\n";
  big += "*(u64 *)(r1 + 0) = r0\nexit\n";
  for (int round = 0; round < 2; ++round) {
    const Both b = run_both(big, std::vector<std::uint8_t>(8));
    CHECK(b.interp.r0 == 70000);
    CHECK(b.jit.r0 == 70000);
  }
  RunOptions few;
  few.budget = 100;
  const Both t = run_both(big, std::vector<std::uint8_t>(8), few);
  same_trap(t);
  CHECK(t.jit.trap->pc == 100);
  const Both small = run_both("r0 = 7\nexit\n", std::vector<std::uint8_t>(8));
  CHECK(small.jit.r0 == 7);
}

TEST_CASE("jit-x64: the budget traps at the same instruction with the same count") {
  // A loop of 3 instructions after 2 set-up ones; a store in the loop body.
  const char* loop = R"(
    r0 = 0
    r2 = 0
  top:
    *(u8 *)(r1 + 0) = r2
    r2 += 1
    if r2 < 1000 goto top
    exit
  )";
  for (std::uint64_t budget : {0, 1, 2, 3, 4, 5, 6, 7, 100, 2999, 3001, 3002, 3003}) {
    RunOptions options;
    options.budget = budget;
    const Both b = run_both(loop, std::vector<std::uint8_t>(8, 0), options);
    INFO("budget " << budget);
    CHECK(b.interp.executed == b.jit.executed);
    REQUIRE(b.interp.trap.has_value() == b.jit.trap.has_value());
    if (b.interp.trap) same_trap(b);
  }
  // 2 + 3 * 1000 + 1 instructions run to the end.
  RunOptions options;
  options.budget = 3003;
  const Both b = run_both(loop, std::vector<std::uint8_t>(8, 0), options);
  CHECK_FALSE(b.jit.trap.has_value());
  CHECK(b.jit.executed == 3003);
}

TEST_CASE("jit-x64: loops closed by a jump and a goto trap at every budget as the interpreter does") {
  // `if done goto out; goto top` (the goto paid before the compare) and `if more goto next;
  // goto out; next:` (the goto out of line), with a load that may trap in the body, so the
  // blocks have slow copies too.
  const char* shapes[] = {R"(
    r0 = 0
    r2 = 0
    goto top
  out:
    r0 += 100
    exit
  top:
    r3 = *(u8 *)(r1 + 0)
    r0 += r3
    r2 += 1
    if r2 == 5 goto out
    goto top
  )",
                          R"(
    r0 = 0
    r2 = 0
  top:
    r3 = *(u8 *)(r1 + 0)
    r0 += r3
    r2 += 1
    if r2 < 5 goto next
    goto out
  next:
    r0 += 1
    goto top
  out:
    exit
  )"};
  for (const char* text : shapes) same_at_every_budget(text, std::vector<std::uint8_t>(8, 2), 40);
  // The first shape closes its loop with one conditional jump back into the body after the
  // compare of `if r2 == 5` (pc 8), then gives the payment back (add r9, imm8: 49 83 c1).
  auto first = jit::x64::listing(assemble(shapes[0]), nullptr, {});
  REQUIRE(first.ok());
  const std::vector<std::uint8_t> close(first->code.begin() + first->insn_offset[8],
                                        first->code.begin() + first->insn_offset[9]);
  const std::array<std::uint8_t, 3> give_back{0x49, 0x83, 0xc1};
  CHECK(std::search(close.begin(), close.end(), give_back.begin(), give_back.end()) != close.end());
  // The second one's `goto out` (pc 6) has no code in line: it is out of line.
  auto second = jit::x64::listing(assemble(shapes[1]), nullptr, {});
  REQUIRE(second.ok());
  CHECK(second->insn_offset[6] == second->insn_offset[7]);
}

TEST_CASE("jit-x64: loops checked once per entry trap at every budget as the interpreter does") {
  // Loops of the shapes jit/lowering/loops.hpp takes (their accesses checked once when the loop
  // is entered, then a copy without those checks), run at every budget from 0 to past the end,
  // plain and blinded (no such copy then). 64 bytes of input: the first two stay inside it; the
  // third walks past its end and traps after some iterations, from the ordinary copy (its entry
  // check fails); the fourth runs in a called function over that function's stack.
  const char* texts[] = {R"(
    r0 = 0
    r2 = 0
  top:
    r4 = r1
    r4 += r2
    r5 = *(u16 *)(r4 + 0)
    r0 += r5
    *(u8 *)(r4 + 1) = r2
    r2 += 2
    if r2 != 40 goto top
    exit
  )",
                         R"(
    r0 = 0
    r6 = 5
    r7 = 0
    goto test
  body:
    r2 = r6
    r2 <<= 2
    r4 = r1
    r4 += r2
    r5 = *(u32 *)(r4 + 0)
    r0 += r5
    w6 += 3
    w6 &= 15
    r7 += 1
  test:
    if r7 < 12 goto body
    exit
  )",
                         R"(
    r0 = 0
    r2 = 8
  top:
    r5 = *(u64 *)(r1 + 0)
    r0 ^= r5
    r1 += 8
    r2 += 1
    if r2 < 20 goto top
    exit
  )",
                         R"(
    r1 = 6
    call fill
    exit
  fill:
    r2 = r10
    r2 += -64
    r3 = 0
  store:
    *(u64 *)(r2 + 0) = r3
    r2 += 8
    r3 += 1
    if r3 < 8 goto store
    r0 = 0
    r2 = r10
    r2 += -64
    r3 = 0
    goto check
  add:
    r4 = *(u64 *)(r2 + 0)
    r0 += r4
    if r0 > r1 goto out
    r2 += 8
    r3 += 1
  check:
    if r3 < 8 goto add
  out:
    exit
  )"};
  std::vector<std::uint8_t> memory(64);
  for (std::size_t i = 0; i < memory.size(); ++i) memory[i] = static_cast<std::uint8_t>(i * 7 + 1);
  for (const char* text : texts) same_at_every_budget(text, memory, 130);
  // And with enough budget: the first two end, the third traps at its load (pc 2).
  const Both walk = run_both(texts[0], memory);
  CHECK_FALSE(walk.jit.trap.has_value());
  CHECK(walk.jit.r0 == walk.interp.r0);
  const Both past = run_both(texts[2], memory);
  same_trap(past);
  CHECK(past.jit.trap->pc == 2);
}

TEST_CASE("jit-x64: chains of conditional moves trap at every budget as the interpreter does") {
  // Conditional moves one after another (minmax's clamps) pay the chain's largest count once
  // and give back the moves that did not run; with less budget than that, an exact copy runs.
  // Every budget from 0 to past the end, plain and blinded (no chains then). The third reads
  // the read-only region (r3), not the first one: its block's slow copy runs, and enters the
  // chain's exact copy.
  const char* texts[] = {R"(
    r0 = 0x7fffffff
    r6 = -0x80000000
    r7 = 0
    r2 = 0
  top:
    r5 = *(s8 *)(r1 + 0)
    r1 += 1
    if r0 s< r5 goto +1
    r0 = r5
    if r6 s> r5 goto +1
    r6 = r5
    if r5 s< 40 goto +1
    r5 = 40
    r7 += r5
    r2 += 1
    if r2 < 12 goto top
    r0 <<= 8
    r0 ^= r6
    r0 ^= r7
    exit
  )",
                         R"(
    r0 = *(u8 *)(r1 + 3)
    r4 = *(u8 *)(r1 + 5)
    if r0 > r4 goto +1
    r0 = r4
    if r0 < 100 goto +1
    r0 = 100
    exit
  )",
                         R"(
    r0 = 0
    r2 = 0
  top:
    r5 = *(u8 *)(r3 + 0)
    r3 += 1
    if r0 > r5 goto +1
    r0 = r5
    if r0 < 9 goto +1
    r0 = 9
    r2 += 1
    if r2 < 10 goto top
    exit
  )"};
  std::vector<std::uint8_t> memory(64);
  for (std::size_t i = 0; i < memory.size(); ++i) memory[i] = static_cast<std::uint8_t>(i * 37 + 11);
  for (const char* text : texts) same_at_every_budget(text, memory, 170);
}

TEST_CASE("jit-x64: rotates folded into one instruction give what the interpreter gives") {
  // Every rotate amount at both widths, both orders of the shifts, on a value with every byte
  // different; the copy dead after (a rotate) and read after (no rotate: the shifts as they are).
  const std::vector<std::uint8_t> memory = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
  for (int width : {32, 64}) {
    const std::string r = width == 32 ? "w" : "r";
    for (int k = 1; k < width; ++k) {
      for (bool left_first : {false, true}) {
        const std::string first =
            left_first ? "<<= " + std::to_string(k) : ">>= " + std::to_string(width - k);
        const std::string second =
            left_first ? ">>= " + std::to_string(width - k) : "<<= " + std::to_string(k);
        for (bool copy_read : {false, true}) {
          const std::string text = "r4 = *(u64 *)(r1 + 0)\n " + r + "5 = " + r + "4\n " + r + "5 " + first +
                                   "\n " + r + "4 " + second + "\n " + r + "4 |= " + r + "5\n r0 = r4\n" +
                                   (copy_read ? " r0 ^= r5\n" : "") + " exit\n";
          INFO(text);
          const Both b = run_both(text, memory);
          CHECK_FALSE(b.jit.trap.has_value());
          CHECK(b.jit.r0 == b.interp.r0);
          CHECK(b.jit.executed == b.interp.executed);
        }
      }
    }
  }
}

TEST_CASE("jit-x64: branches around blocks with loads trap at every budget as the interpreter does") {
  // If-else shapes inside a loop whose branches depend on loaded bytes: each way, every budget
  // from 0 to past the end. In the second, the fall-through has two ways in.
  const char* texts[] = {R"(
    r0 = 0
    r2 = 0
  top:
    r3 = *(u8 *)(r1 + 0)
    if r3 > 1 goto big
    r0 += 1
    r0 += 1
    goto join
  big:
    r0 += 2
    r0 *= 3
  join:
    r4 = *(u8 *)(r1 + 1)
    if r4 == 7 goto skip
    r0 += r4
  skip:
    r2 += 1
    if r2 < 4 goto top
    exit
  )",
                         R"(
    r0 = 0
    r2 = 0
  top:
    r3 = *(u8 *)(r1 + 0)
    if r3 > 1 goto big
  mid:
    r0 += 1
    goto join
  big:
    r0 += 2
    r0 *= 3
    if r0 > 1000 goto mid
  join:
    r4 = *(u8 *)(r1 + 1)
    r0 += r4
    r2 += 1
    if r2 < 4 goto top
    exit
  )"};
  for (const char* text : texts)
    for (std::uint8_t first : {0, 2})
      for (std::uint8_t second : {7, 3}) {
        INFO("memory " << int(first) << " " << int(second));
        same_at_every_budget(text, {first, second, 0, 0, 0, 0, 0, 0}, 50);
      }
}

TEST_CASE("jit-x64: bpf-to-bpf calls, r6-r9 kept, the depth limit") {
  const char* calls = R"(
    r6 = 11
    r1 = 5
    call twice
    r0 += r6
    exit
  twice:
    r6 = r1
    r6 += r1
    r0 = r6
    exit
  )";
  const Both b = run_both(calls, {0});
  REQUIRE_FALSE(b.jit.trap.has_value());
  CHECK(b.jit.r0 == 21);  // 5 + 5, plus the caller's r6 (11) restored after the call
  CHECK(b.interp.r0 == 21);
  const char* forever = "call self\nexit\nself:\nr0 = *(u64 *)(r10 - 8)\ncall self\nexit\n";
  for (int depth : {1, 2, 5, 8}) {
    RunOptions options;
    options.max_call_depth = depth;
    const Both d = run_both(forever, {0}, options);
    INFO("depth " << depth);
    same_trap(d);
    CHECK(d.jit.trap->kind == vm::TrapKind::call_depth);
  }
}

TEST_CASE("jit-x64: helpers get r1-r5 and the context; r1-r5 survive the call") {
  int user = 0;
  RunOptions options;
  options.user = &user;
  // add_all(1, 2, 3, 4, 5) with a user pointer = 1 + 20 + 300 + 4000 + 50000 + 100000.
  const Both b = run_both("r1 = 1\nr2 = 2\nr3 = 3\nr4 = 4\nr5 = 5\ncall 1\nexit\n", {0}, options);
  CHECK(b.jit.r0 == 154321);
  CHECK(b.interp.r0 == 154321);
  // clobber() may destroy the host's argument registers; the program still reads its own.
  const Both c = run_both(
      "r1 = 1\nr2 = 2\nr3 = 3\nr4 = 4\nr5 = 5\ncall 2\nr0 += r1\nr0 += r2\nr0 += r3\n"
      "r0 += r4\nr0 += r5\nexit\n",
      {0});
  CHECK(c.jit.r0 == 7 + 15);
  CHECK(c.interp.r0 == 7 + 15);
  SECTION("callx by id, and to an id that names no helper") {
    const Both x = run_both("r1 = 40\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0\nr6 = 1\ncallx r6\nexit\n", {0});
    CHECK(x.jit.r0 == 40);
    same_trap(run_both("r6 = 1000\ncallx r6\nexit\n", {0}));
  }
  SECTION("a helper that fails") {
    const Both f = run_both("r0 = 0\nr1 = 8\ncall 3\nr0 = 1\nexit\n", {0});
    same_trap(f);
    CHECK(f.jit.trap->kind == vm::TrapKind::helper_error);
    CHECK(f.jit.trap->detail == "refused 8");
  }
  SECTION("an unknown helper is refused at compile time as by the interpreter") {
    auto program = assemble("call 77\nexit\n");
    auto jit = jit::x64::compile(program, nullptr, {});
    REQUIRE_FALSE(jit.ok());
    CHECK(jit.error().insn == 0u);
    CHECK(jit.error().message == "call to unknown helper 77");
  }
  SECTION("a compile refused half way leaves nothing behind for the next one on the thread") {
    // The refusal comes after the per-thread analysis was partly refilled (a long program
    // first, so the next one is shorter than what the buffers hold).
    std::string text;
    for (int i = 0; i < 300; ++i) text += "r1 = 1\nif r1 > 2 goto +1\nr0 += r1\n";
    REQUIRE_FALSE(jit::x64::compile(assemble(text + "call 77\nexit\n"), nullptr, {}).ok());
    const Both b = run_both("r0 = 5\nr1 = r0\nr1 += 3\nif r1 == 8 goto +1\nr0 = 0\nexit\n", {0});
    CHECK(b.interp.r0 == 5);
    CHECK(b.jit.r0 == 5);
  }
}

TEST_CASE("jit-x64: division, modulo and shifts at the edges") {
  // Each line's expected value is written by hand from RFC 9669's rules.
  struct Case {
    const char* text;
    std::uint64_t r0;
  };
  const Case cases[] = {
      {"r0 = 7\nr1 = 0\nr0 /= r1\nexit", 0},
      {"r0 = 7\nr1 = 0\nr0 %= r1\nexit", 7},
      {"r0 = -1 ll\nw1 = 0\nw0 %= w1\nexit", 0xffffffff},
      {"r0 = -0x8000000000000000 ll\nr1 = -1\nr0 s/= r1\nexit", 0x8000000000000000},
      {"r0 = -0x8000000000000000 ll\nr1 = -1\nr0 s%= r1\nexit", 0},
      {"r0 = -7\nr0 s/= 2\nexit", static_cast<std::uint64_t>(-3)},
      {"r0 = -7\nr0 s%= 2\nexit", static_cast<std::uint64_t>(-1)},
      {"r3 = 100\nr0 = 9\nr0 /= r3\nr0 += r3\nexit", 100},  // rdx (r3) kept across the divide
      {"r3 = 10\nr0 = 7\nr3 /= r0\nr0 += r3\nexit", 8},     // dst r3, divisor r0
      {"r0 = 1\nr4 = 65\nr0 <<= r4\nexit", 2},              // the count is masked to 63
      {"r0 = -1 ll\nw4 = 0\nw0 <<= w4\nexit", 0xffffffff},  // a 32-bit shift by 0 still zero-extends
      {"r0 = 0x12345678\nr0 = be16 r0\nexit", 0x7856},
      {"r0 = 0x12345678\nr0 = bswap32 r0\nexit", 0x78563412},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const Both b = run_both(c.text, {0});
    REQUIRE_FALSE(b.jit.trap.has_value());
    CHECK(b.interp.r0 == c.r0);
    CHECK(b.jit.r0 == c.r0);
  }
}

TEST_CASE("jit-x64: constant blinding keeps immediates out of the code") {
  const char* text = R"(
    r0 = 0x12345678
    r0 += 0x2468ace
    r1 = 0x1122334455667788 ll
    r0 ^= r1
    if r0 == 0x7654321 goto +1
    r0 *= 0x3579bdf
    exit
  )";
  const isa::Program program = assemble(text);
  vm::CompileOptions plain, blinded;
  blinded.blind_constants = true;
  auto a = jit::x64::listing(program, nullptr, plain);
  auto b = jit::x64::listing(program, nullptr, blinded);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  for (std::uint64_t imm : {0x12345678ull, 0x2468aceull, 0x7654321ull, 0x3579bdfull}) {
    CHECK(contains(a->code, imm, 4));
    CHECK_FALSE(contains(b->code, imm, 4));
  }
  CHECK(contains(a->code, 0x1122334455667788ull, 8));
  CHECK_FALSE(contains(b->code, 0x1122334455667788ull, 8));
  CHECK_FALSE(contains(b->code, 0x55667788ull, 4));
  // Same result either way: ((0x12345678 + 0x2468ace) ^ 0x1122334455667788) * 0x3579bdf.
  const std::uint64_t expected = ((0x12345678ull + 0x2468aceull) ^ 0x1122334455667788ull) * 0x3579bdfull;
  CHECK(run_both(text, {0}, {}, plain).jit.r0 == expected);
  CHECK(run_both(text, {0}, {}, blinded).jit.r0 == expected);
}

TEST_CASE("jit-x64: a trace runs on the interpreter and sees every step") {
  Vm vm;
  REQUIRE(vm.load(assemble("r0 = 1\nr0 += 2\nexit\n")).ok());
  auto jit = vm.compile(Engine::jit_x64);
  REQUIRE(jit.ok());
  std::vector<std::size_t> pcs;
  RunOptions options;
  options.trace = [&](std::size_t pc, const vm::Registers&) { pcs.push_back(pc); };
  const vm::RunResult r = run(**jit, {}, options);
  CHECK(r.r0 == 3);
  CHECK(pcs == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("jit-x64: the listing places every instruction") {
  const isa::Program program = assemble("r0 = 1\nr1 = 2 ll\nr0 += r1\nexit\n");
  auto l = jit::x64::listing(program, nullptr, {});
  REQUIRE(l.ok());
  REQUIRE(l->insn_offset.size() == 5);
  for (std::size_t pc = 1; pc < 5; ++pc) CHECK(l->insn_offset[pc] >= l->insn_offset[pc - 1]);
  CHECK(l->insn_offset[2] == l->insn_offset[3]);  // the lddw's second slot has no code
  CHECK(l->body_end > l->insn_offset[4]);
  CHECK(l->code.size() > l->body_end);
}
