// The AArch64 JIT against the interpreter, its semantic oracle (built and run on AArch64 targets:
// under qemu-aarch64 in the aarch64 preset). Every run here happens twice, once per engine, on
// the same memory buffer and the same RunContext (so the same stack addresses), and the results
// must agree entirely: r0, every register, executed count, memory, and the trap's kind, pc,
// address, size, region and detail. A few cases also check values worked out by hand.
//
// Random programs (tests/jit/random_program.hpp): BPFVM_A64_DIFFERENTIAL_PROGRAMS sets how many
// (default: a few seconds under qemu), BPFVM_A64_DIFFERENTIAL_SEED the first seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"
#include "jit/a64/backend.hpp"
#include "jit/a64/codegen.hpp"
#include "tests/jit/random_program.hpp"
#include "tests/jit/same_result.hpp"

using namespace bpfvm;

namespace {

std::uint64_t addr(const void* p) { return reinterpret_cast<std::uint64_t>(p); }

isa::Program assemble(std::string_view text) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  return std::move(program).value();
}

// How a run is set up: memory (region "input", r1 = its address, r2 = its size) and limits.
struct Setup {
  std::vector<std::uint8_t> memory;
  vm::Access access = vm::Access::read_write;
  std::uint64_t budget = vm::default_budget;
  int max_call_depth = vm::default_max_call_depth;
  std::vector<vm::Region> extra_regions;
  std::array<std::uint64_t, 5> args{};  // r1..r5 when memory is empty
  void* user = nullptr;
  vm::TraceFn trace;
  std::optional<jit::a64::Target> target;  // the JIT's features, when not the host's
};

struct Both {
  vm::RunResult interp, jit;
  std::vector<std::uint8_t> interp_memory, jit_memory;
};

// The shared comparison, and more than it: r0 and every register even at a trap, and memory.
void require_same(const Both& b) {
  const vm::RunResult& i = b.interp;
  const vm::RunResult& j = b.jit;
  test::check_same_result(i, j);
  CHECK(i.r0 == j.r0);
  for (std::size_t r = 0; r < i.regs.size(); ++r) {
    INFO("r" << r);
    CHECK(i.regs[r] == j.regs[r]);
  }
  CHECK(b.interp_memory == b.jit_memory);
}

// Compiles `program` on both engines and runs each on the same buffer and context.
Both run_both(const isa::Program& program, const Setup& setup, const vm::HelperRegistry& helpers,
              const vm::CompileOptions& options = {}) {
  std::shared_ptr<const vm::Executable> exes[2];
  const Engine engines[2] = {Engine::interpreter, Engine::jit_a64};
  for (int e = 0; e < 2; ++e) {
    Vm vm;
    REQUIRE(vm.load(program).ok());
    vm.helpers() = helpers;
    if (e == 1 && setup.target) {
      auto exe = jit::a64::compile_for(program, std::make_shared<const vm::HelperRegistry>(helpers), options,
                                       *setup.target);
      INFO((exe ? std::string() : exe.error().to_string()));
      REQUIRE(exe.ok());
      exes[e] = std::move(exe).value();
      continue;
    }
    auto exe = vm.compile(engines[e], options);
    INFO(to_string(engines[e]) << ": " << (exe ? std::string() : exe.error().to_string()));
    REQUIRE(exe.ok());
    exes[e] = exe.value();
  }
  std::vector<std::uint8_t> memory = setup.memory;
  vm::RunContext ctx;
  if (!memory.empty()) {
    ctx.add_region({addr(memory.data()), memory.size(), setup.access, "input"});
    ctx.set_args({addr(memory.data()), memory.size(), 0, 0, 0});
  } else {
    ctx.set_args(setup.args);
  }
  for (const vm::Region& r : setup.extra_regions) ctx.add_region(r);
  ctx.set_budget(setup.budget);
  ctx.set_max_call_depth(setup.max_call_depth);
  ctx.set_user(setup.user);
  if (setup.trace) ctx.set_trace(setup.trace);

  Both out;
  const std::size_t region_count = ctx.regions().size();
  for (int e = 0; e < 2; ++e) {
    memory = setup.memory;
    // Regions a helper lent in the first run are withdrawn; the stack starts zeroed again.
    ctx.clear_regions();
    if (!memory.empty()) ctx.add_region({addr(memory.data()), memory.size(), setup.access, "input"});
    for (const vm::Region& r : setup.extra_regions) ctx.add_region(r);
    REQUIRE(ctx.regions().size() == region_count);
    const auto stack = ctx.prepare_run();
    std::memset(stack.data(), 0, stack.size());
    (e == 0 ? out.interp : out.jit) = exes[e]->run(ctx);
    (e == 0 ? out.interp_memory : out.jit_memory) = memory;
  }
  return out;
}

vm::RunResult same(std::string_view text, const Setup& setup = {},
                   const vm::HelperRegistry& helpers = vm::HelperRegistry::conformance(),
                   const vm::CompileOptions& options = {}) {
  const Both b = run_both(assemble(text), setup, helpers, options);
  require_same(b);
  return b.jit;
}

std::uint64_t failing_helper(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                             std::uint64_t r5, vm::RunContext* ctx) {
  if (r1 == 0) ctx->fail("r1 must not be 0");
  return r1 * 1000 + r2 * 100 + r3 * 10 + r4 + r5 * 10000;
}
std::uint64_t user_helper(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          vm::RunContext* ctx) {
  return *static_cast<std::uint64_t*>(ctx->user());
}
std::array<std::uint64_t, 2> lent_buffer{0x1111, 0x2222};
std::uint64_t lend_buffer(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          vm::RunContext* ctx) {
  ctx->add_region({addr(lent_buffer.data()), sizeof lent_buffer, vm::Access::read, "lent"});
  return addr(lent_buffer.data());
}

vm::HelperRegistry test_helpers() {
  vm::HelperRegistry h = vm::HelperRegistry::conformance();
  REQUIRE(h.add(100, "sum_args", failing_helper).ok());
  REQUIRE(h.add(101, "user", user_helper).ok());
  REQUIRE(h.add(200, "lend", lend_buffer).ok());
  return h;
}

}  // namespace

TEST_CASE("a64: the engine is registered", "[a64]") { REQUIRE(engine_available(Engine::jit_a64)); }

TEST_CASE("a64: memory traps report pc, address, size and region", "[a64][trap]") {
  Setup s;
  s.memory.assign(8, 0x5a);
  const vm::RunResult past = same("r0 = 0\nr0 = *(u32 *)(r1 + 6)\nexit", s);
  REQUIRE(past.trap.has_value());
  CHECK(past.trap->kind == vm::TrapKind::out_of_bounds);
  CHECK(past.trap->pc == 1);
  CHECK(past.trap->size == 4);
  CHECK(past.trap->region == "input");
  CHECK(past.executed == 2);

  // Every width and kind, inside and one byte past the end, through loads, stores and atomics.
  for (const char* text :
       {"r0 = *(u8 *)(r1 + 7)\nexit", "r0 = *(u8 *)(r1 + 8)\nexit", "r0 = *(u16 *)(r1 + 6)\nexit",
        "r0 = *(u16 *)(r1 + 7)\nexit", "r0 = *(s32 *)(r1 + 4)\nexit", "r0 = *(u64 *)(r1 + 1)\nexit",
        "*(u64 *)(r1 + 0) = r1\nr0 = 1\nexit", "*(u32 *)(r1 + 5) = 7\nexit",
        "r2 = 1\nlock *(u64 *)(r1 + 0) += r2\nr0 = *(u64 *)(r1 + 0)\nexit",
        "r2 = 1\nlock *(u32 *)(r1 + 6) += r2\nexit", "r1 = 0\nr0 = *(u64 *)(r1 + 0)\nexit",
        "r0 = *(u64 *)(r10 - 520)\nexit", "*(u8 *)(r10 + 0) = 1\nexit",
        "r2 = r10\nr0 = *(u64 *)(r2 - 8)\nr0 = *(u64 *)(r2 + 0)\nexit"}) {
    INFO(text);
    same(text, s);
  }
}

TEST_CASE("a64: a store into a read-only region is a permission trap", "[a64][trap]") {
  Setup s;
  s.memory = {1, 2, 3, 4, 5, 6, 7, 8};
  s.access = vm::Access::read;
  const vm::RunResult r = same("r0 = *(u8 *)(r1 + 7)\n*(u8 *)(r1 + 7) = 0\nexit", s);
  REQUIRE(r.trap.has_value());
  CHECK(r.trap->kind == vm::TrapKind::permission);
  CHECK(r.trap->pc == 1);
  CHECK(r.regs[0] == 8);
  // Atomics need read and write.
  same("r2 = 1\nlock *(u32 *)(r1 + 0) += r2\nexit", s);
  s.access = vm::Access::write;
  same("*(u32 *)(r1 + 0) = 9\nr0 = *(u32 *)(r1 + 0)\nexit", s);
}

TEST_CASE("a64: overlapping regions: the first one holding the access decides", "[a64][trap]") {
  // A read-only window over the start of the input: stores there are refused even though the
  // input itself is writable (the cache must not hide that).
  static std::array<std::uint8_t, 32> big{};
  Setup s;
  s.extra_regions.push_back({addr(big.data()), 8, vm::Access::read, "window"});
  s.extra_regions.push_back({addr(big.data()), big.size(), vm::Access::read_write, "big"});
  s.args = {addr(big.data()), 0, 0, 0, 0};
  same("*(u8 *)(r1 + 16) = 1\n*(u8 *)(r1 + 17) = 1\n*(u8 *)(r1 + 4) = 1\nexit", s);
  same("r0 = *(u8 *)(r1 + 16)\n*(u8 *)(r1 + 16) = 1\nr0 = *(u8 *)(r1 + 4)\nexit", s);
}

TEST_CASE("a64: the budget traps at the same instruction with the same registers", "[a64][budget]") {
  const char* loop = "r0 = 0\nr1 = 0\nloop:\nr0 += 1\nr1 += 2\nr2 = r1\nr2 *= 3\ngoto loop\nexit";
  for (std::uint64_t budget : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 1001}) {
    Setup s;
    s.budget = budget;
    INFO("budget " << budget);
    const vm::RunResult r = same(loop, s);
    REQUIRE(r.trap.has_value());
    CHECK(r.trap->kind == vm::TrapKind::budget_exhausted);
    CHECK(r.executed == budget);
  }
  // Exactly enough, and one short, with memory accesses inside the block.
  const char* text = "r0 = 1\n*(u64 *)(r10 - 8) = r0\nr0 = *(u64 *)(r10 - 8)\nr0 += 1\nexit";
  for (std::uint64_t budget : {4, 5}) {
    Setup s;
    s.budget = budget;
    same(text, s);
  }
}

TEST_CASE("a64: conditional moves and address sums, at every budget", "[a64][patterns]") {
  const char* texts[] = {
      "r0 = 5\nr2 = 9\nif r1 > 3 goto +1\nr0 = r2\nr3 = r0\nr3 += r1\nr4 = r1\nr4 += 100\n"
      "r5 = r1\nr5 += r5\nr0 += r3\nr0 += r4\nr0 += r5\nexit",
      "r0 = 1\nif r1 s< -2 goto +1\nr0 = -7\nif w1 == 4 goto +1\nr0 = 0x12345678\n"
      "if r1 & 6 goto +1\nr0 = r1\nr2 = r10\nr2 += -8\n*(u64 *)(r2 + 0) = r0\nr0 = *(u64 *)(r10 - 8)\nexit",
      "r0 = 3\nr6 = 8\nif r1 == r6 goto +1\nr6 = r1\nr0 += r6\nexit",
  };
  for (const char* text : texts) {
    for (std::uint64_t r1 : {0ull, 3ull, 4ull, 8ull, 100ull, ~0ull - 4}) {
      for (std::uint64_t budget : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 100}) {
        Setup s;
        s.args = {r1, 0, 0, 0, 0};
        s.budget = budget;
        INFO(text << "\nr1 = " << r1 << ", budget " << budget);
        same(text, s);
        vm::CompileOptions blinded;
        blinded.blind_constants = true;
        same(text, s, vm::HelperRegistry::conformance(), blinded);
      }
    }
  }
}

TEST_CASE("a64: call depth, r6-r9 and r10 across bpf-to-bpf calls", "[a64][call]") {
  const char* text = R"(
r6 = 11
r9 = 99
call f
r0 += r6
r0 += r9
exit
f:
if r1 == 0 goto done
r1 -= 1
r6 = 5
*(u64 *)(r10 - 8) = r1
call f
r7 = *(u64 *)(r10 - 8)
r0 += r7
done:
r0 += 7
exit
)";
  for (int depth : {1, 2, 8, 9, 100}) {
    for (std::uint64_t nested : {0, 1, 6, 7, 50}) {
      Setup s;
      s.max_call_depth = depth;
      s.args = {nested, 0, 0, 0, 0};
      INFO("depth " << depth << ", nested " << nested);
      const vm::RunResult r = same(text, s);
      if (static_cast<int>(nested) + 2 <= depth) CHECK_FALSE(r.trap.has_value());
    }
  }
  // The callee reads its caller's frame through a pointer, and writes below its own frame.
  same("r1 = r10\ncall f\nexit\nf:\nr0 = *(u64 *)(r1 - 8)\n*(u64 *)(r10 - 520) = r0\nexit");
  // Callees writing only r8-r9, only r6-r7, or nothing of r6-r9, nested.
  const vm::RunResult kept = same(
      "r6 = 3\nr7 = 4\nr8 = 1\nr9 = 2\ncall g\nr0 += r6\nr0 += r7\nr0 += r8\nr0 += r9\nexit\n"
      "g:\nr9 = 50\ncall h\ncall k\nr0 = r9\nr0 += r6\nexit\nh:\nr6 = 9\nexit\nk:\nr0 = 1\nexit");
  CHECK(kept.r0 == 50 + 3 + 3 + 4 + 1 + 2);
  // A pointer into a frame that is gone after the return: no longer live stack.
  const vm::RunResult dead =
      same("call f\nr0 = *(u64 *)(r0 - 8)\nexit\nf:\nr0 = r10\n*(u64 *)(r0 - 8) = r0\nexit");
  REQUIRE(dead.trap.has_value());
  CHECK(dead.trap->kind == vm::TrapKind::out_of_bounds);
  CHECK(dead.trap->region == "stack");
  // Through pointers, at depth: the caller's frame is live, below the callee's frame is not.
  same(
      "r2 = r10\ncall f\nexit\nf:\nr3 = r10\nr0 = *(u64 *)(r2 - 8)\n*(u64 *)(r3 - 512) = r0\nr0 = *(u64 "
      "*)(r3 - 513)\nexit");
}

TEST_CASE("a64: helpers get r1-r5 and the context, keep r1-r5, and can fail", "[a64][helpers]") {
  const vm::HelperRegistry helpers = test_helpers();
  std::uint64_t user_value = 1000;
  Setup s;
  s.user = &user_value;
  s.args = {1, 2, 3, 4, 5};
  const vm::RunResult ok =
      same("call 100\nr6 = r0\ncall 101\nr0 += r6\nr0 += r1\nr0 += r5\nexit", s, helpers);
  REQUIRE_FALSE(ok.trap.has_value());
  CHECK(ok.r0 == 51234 + 1000 + 1 + 5);

  s.args = {0, 2, 3, 4, 5};
  const vm::RunResult failed = same("r0 = 3\ncall 100\nr0 = 1\nexit", s, helpers);
  REQUIRE(failed.trap.has_value());
  CHECK(failed.trap->kind == vm::TrapKind::helper_error);
  CHECK(failed.trap->pc == 1);
  CHECK(failed.trap->detail == "r1 must not be 0");

  // callx: by id in a register; an id that names no helper.
  s.args = {7, 0, 0, 0, 0};
  CHECK(same("r3 = 100\ncallx r3\nexit", s, helpers).r0 == 7000 + 100 * 10);  // r3 is an argument too
  const vm::RunResult bad = same("r0 = 42\nr2 = 12345\ncallx r2\nexit", s, helpers);
  REQUIRE(bad.trap.has_value());
  CHECK(bad.trap->kind == vm::TrapKind::bad_call_target);
  CHECK(bad.trap->address == 12345);
  CHECK(bad.regs[0] == 42);
  same("r2 = -1\ncallx r2\nexit", s, helpers);

  // A helper lends a read-only region during the run: readable, not writable.
  same("call 200\nr1 = *(u64 *)(r0 + 8)\n*(u64 *)(r0 + 0) = r1\nexit", {}, helpers);
}

namespace {
// LL/SC always; LSE too when the processor (or qemu's) has it.
std::vector<jit::a64::Target> atomics_targets() {
  std::vector<jit::a64::Target> targets{jit::a64::Target{false}};
  if (jit::a64::host_target().lse) targets.push_back(jit::a64::Target{true});
  return targets;
}
}  // namespace

TEST_CASE("a64: the host's LSE is found", "[a64][atomic]") {
  // qemu-aarch64's default CPU has LSE; a core without it runs only the LL/SC cases below.
  if (!jit::a64::host_target().lse) WARN("no LSE on this processor: only LL/SC atomics are tested");
  CHECK(atomics_targets().size() >= 1);
}

TEST_CASE("a64: atomics at every width, aligned and not", "[a64][atomic]") {
  Setup s;
  s.memory.assign(24, 0);
  for (std::size_t i = 0; i < s.memory.size(); ++i) s.memory[i] = static_cast<std::uint8_t>(0x91 * (i + 3));
  const char* ops[] = {"lock *(u{w} *)(r1 + {o}) += r2", "lock *(u{w} *)(r1 + {o}) |= r2",
                       "lock *(u{w} *)(r1 + {o}) &= r2", "lock *(u{w} *)(r1 + {o}) ^= r2"};
  for (int width : {32, 64}) {
    for (int offset : {0, 3, 8}) {
      auto fill = [&](std::string t) {
        for (auto [key, value] : {std::pair<std::string, std::string>{"{w}", std::to_string(width)},
                                  {"{o}", std::to_string(offset)}}) {
          for (std::size_t at; (at = t.find(key)) != std::string::npos;) t.replace(at, key.size(), value);
        }
        return t;
      };
      std::vector<std::string> forms;
      for (const char* op : ops) forms.push_back(fill(op));
      const std::string r = width == 32 ? "w2" : "r2", z = width == 32 ? "w0" : "r0";
      const std::string w = std::to_string(width), o = std::to_string(offset);
      forms.push_back(r + " = atomic_fetch_add((u" + w + " *)(r1 + " + o + "), " + r + ")");
      forms.push_back(r + " = atomic_fetch_or((u" + w + " *)(r1 + " + o + "), " + r + ")");
      forms.push_back(r + " = atomic_fetch_and((u" + w + " *)(r1 + " + o + "), " + r + ")");
      forms.push_back(r + " = atomic_fetch_xor((u" + w + " *)(r1 + " + o + "), " + r + ")");
      forms.push_back(r + " = " + (width == 32 ? "xchg32_32" : "xchg_64") + "(r1 + " + o + ", " + r + ")");
      for (const char* expected : {"0", "-1"}) {
        const std::string cmp = std::string(z) + " = " + (width == 32 ? "cmpxchg32_32" : "cmpxchg_64") +
                                "(r1 + " + o + ", " + z + ", " + r + ")";
        forms.push_back(std::string("r0 = *(u") + w + " *)(r1 + " + o + ")\nr0 += " + expected + "\n" + cmp);
      }
      for (const std::string& form : forms) {
        const std::string text = "r2 = 0x7fffffff0000ffff ll\nr0 = -1\n" + form + "\nexit";
        INFO(text);
        for (const auto& target : atomics_targets()) {
          INFO("LSE " << target.lse);
          s.target = target;
          same(text, s);
        }
      }
    }
  }
}

namespace {
// The program a tail call goes to (each engine's own executable, set before its runs).
std::shared_ptr<const vm::Executable> tail_target;
// Helper 300: a tail call to tail_target with r1 - 1, while r1 > 0 and the chain may grow.
std::uint64_t request_tail_call(std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                vm::RunContext* ctx) {
  if (r1 == 0 || ctx->tail_calls() >= vm::max_tail_calls) return 1;
  auto args = ctx->args();
  args[0] = r1 - 1;
  ctx->set_args(args);
  ctx->request_tail_call(tail_target);
  return 0;
}
}  // namespace

TEST_CASE("a64: a tail call a helper requests ends the program, then the target runs", "[a64][tail]") {
  // The program tail-calls itself with r1 counting down; from a bpf-to-bpf callee too.
  const char* texts[] = {
      "r6 = r1\nr0 = r1\nr0 *= 3\n*(u64 *)(r10 - 8) = r0\ncall 300\nr0 += 1000\nexit",
      "r6 = 7\ncall f\nr0 += r6\nexit\nf:\nr6 = r1\ncall 300\nr0 += 100\nexit",
  };
  vm::HelperRegistry helpers = vm::HelperRegistry::conformance();
  REQUIRE(helpers.add(300, "request_tail_call", request_tail_call).ok());
  for (const char* text : texts) {
    for (std::uint64_t r1 : {0, 1, 5, 40}) {
      for (std::uint64_t budget : {3, 10, 50, 1000}) {
        vm::RunResult results[2];
        const Engine engines[2] = {Engine::interpreter, Engine::jit_a64};
        for (int e = 0; e < 2; ++e) {
          Vm vm;
          REQUIRE(vm.load(assemble(text)).ok());
          vm.helpers() = helpers;
          auto exe = vm.compile(engines[e]);
          REQUIRE(exe.ok());
          tail_target = exe.value();
          vm::RunContext ctx;
          ctx.set_args({r1, 0, 0, 0, 0});
          ctx.set_budget(budget);
          results[e] = (*exe)->run(ctx);
          tail_target.reset();
        }
        INFO(text << "\nr1 = " << r1 << ", budget " << budget);
        const vm::RunResult& i = results[0];
        const vm::RunResult& j = results[1];
        REQUIRE(i.trap.has_value() == j.trap.has_value());
        if (i.trap) {
          CHECK(i.trap->kind == j.trap->kind);
          CHECK(i.trap->pc == j.trap->pc);
        }
        CHECK(i.r0 == j.r0);
        CHECK(i.executed == j.executed);
        for (std::size_t r = 0; r < 10; ++r) CHECK(i.regs[r] == j.regs[r]);  // r10: each its own stack
      }
    }
  }
}

TEST_CASE("a64: traced runs and very deep call limits use the interpreter", "[a64][trace]") {
  std::vector<std::size_t> pcs;
  Setup s;
  s.trace = [&](std::size_t pc, const vm::Registers&) { pcs.push_back(pc); };
  CHECK(same("r0 = 3\nr0 += 4\nexit", s).r0 == 7);
  CHECK(pcs == std::vector<std::size_t>{0, 1, 2, 0, 1, 2});  // once per engine
  Setup deep;
  deep.max_call_depth = 5000;
  deep.args = {4500, 0, 0, 0, 0};
  same("call f\nexit\nf:\nif r1 == 0 goto done\nr1 -= 1\ncall f\ndone:\nr0 = 7\nexit", deep);
}

TEST_CASE("a64: branches beyond b.cond's 1 MiB reach", "[a64][far]") {
  // A conditional jump forward and a loop's back edge over more than 1 MiB of code (atomics
  // take about 70 bytes each), and memory checks whose out-of-line paths sit past all of it.
  constexpr int atomics = 30000;
  std::string text = "r0 = 0\nr3 = 2\nr2 = 1\nloop:\nr0 += 1\nif r0 > 1 goto skip\n";
  for (int i = 0; i < atomics; ++i) text += "lock *(u64 *)(r1 + 0) += r2\n";
  text += "skip:\nr3 -= 1\nif r3 != 0 goto loop\nr0 = *(u64 *)(r1 + 0)\nexit";
  const isa::Program program = assemble(text);
  auto code = jit::a64::generate(program, {}, {}, {});
  REQUIRE(code.ok());
  REQUIRE(code->code.size() > (std::size_t{1} << 20));
  Setup s;
  s.memory.assign(8, 0);
  const Both b = run_both(program, s, {});
  require_same(b);
  REQUIRE_FALSE(b.jit.trap.has_value());
  CHECK(b.jit.r0 == atomics);
}

TEST_CASE("a64: threads share one compiled program", "[a64][threads]") {
  Vm vm;
  REQUIRE(vm.load(assemble(R"(
r0 = 0
r2 = *(u64 *)(r1 + 0)
loop:
r0 += r2
*(u64 *)(r10 - 8) = r0
r0 = *(u64 *)(r10 - 8)
r2 -= 1
if r2 != 0 goto loop
exit
)"))
              .ok());
  auto exe = vm.compile(Engine::jit_a64);
  REQUIRE(exe.ok());
  constexpr int thread_count = 4;
  std::array<std::uint64_t, thread_count> results{};
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::uint64_t n = 1000 + static_cast<std::uint64_t>(t);
        const vm::RunResult r = run(**exe, {reinterpret_cast<std::uint8_t*>(&n), sizeof n});
        results[static_cast<std::size_t>(t)] = r.trap ? 0 : r.r0;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < thread_count; ++t) {
    const std::uint64_t n = 1000 + static_cast<std::uint64_t>(t);
    CHECK(results[static_cast<std::size_t>(t)] == n * (n + 1) / 2);
  }
}

TEST_CASE("a64: compile errors name the instruction, as the interpreter's", "[a64][load]") {
  for (const char* text : {"r0 = 0\ncall 9999\nexit"}) {
    Vm vm;
    REQUIRE(vm.load(assemble(text)).ok());
    auto i = vm.compile(Engine::interpreter);
    auto j = vm.compile(Engine::jit_a64);
    REQUIRE_FALSE(i.ok());
    REQUIRE_FALSE(j.ok());
    CHECK(i.error().to_string() == j.error().to_string());
  }
}

namespace {
// Whether the code builds `value` with move-wide instructions (movz/movk, w or x), one per
// non-zero halfword, as mov_imm does for a constant of that shape.
bool materializes(const std::vector<std::uint8_t>& code, std::uint64_t value) {
  std::vector<std::pair<unsigned, unsigned>> moves;  // (halfword index, imm16)
  for (std::size_t at = 0; at + 4 <= code.size(); at += 4) {
    std::uint32_t w;
    std::memcpy(&w, code.data() + at, 4);
    if ((w & 0x7f800000u) == 0x52800000u || (w & 0x7f800000u) == 0x72800000u)  // movz / movk
      moves.emplace_back((w >> 21) & 3, (w >> 5) & 0xffff);
  }
  for (unsigned hw = 0; hw < 4; ++hw) {
    const unsigned half = static_cast<unsigned>(value >> (16 * hw)) & 0xffff;
    if (half != 0 && std::find(moves.begin(), moves.end(), std::pair{hw, half}) == moves.end()) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("a64: constant blinding keeps immediates out of the code", "[a64][blinding]") {
  const char* text =
      "r0 = 0x123456789abcdef0 ll\nr1 = 0x7edcba98\nr0 += r1\nr0 *= 0x13579bdf\n"
      "if r0 == 0x2468ace0 goto +1\nr0 ^= 0x5a5a5a5a\n*(u32 *)(r10 - 4) = 0x6b6b6b6b\nexit";
  const isa::Program program = assemble(text);
  vm::CompileOptions blinded;
  blinded.blind_constants = true;
  auto plain_code = jit::a64::generate(program, {}, {}, {});
  auto blinded_code = jit::a64::generate(program, {}, blinded, {});
  REQUIRE(plain_code.ok());
  REQUIRE(blinded_code.ok());
  CHECK(blinded_code->blinding_key != 0);
  for (std::uint64_t v :
       {0x123456789abcdef0ull, 0x7edcba98ull, 0x13579bdfull, 0x2468ace0ull, 0x5a5a5a5aull, 0x6b6b6b6bull}) {
    INFO(std::hex << v);
    CHECK(materializes(plain_code->code, v));
    CHECK_FALSE(materializes(blinded_code->code, v));
  }
  same(text, {}, vm::HelperRegistry::conformance(), blinded);
}

TEST_CASE("a64: random programs agree with the interpreter", "[a64][differential]") {
  const std::uint64_t first = test::env_or("BPFVM_A64_DIFFERENTIAL_SEED", 1);
  const std::uint64_t count = test::env_or("BPFVM_A64_DIFFERENTIAL_PROGRAMS", 600);
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    test::RandomProgramOptions options;
    options.helpers = {5};
    const test::RandomProgram rp = test::random_program(seed, options);
    for (std::uint64_t budget :
         {std::uint64_t{3}, std::uint64_t{40}, std::uint64_t{400}, vm::default_budget}) {
      INFO("seed " << seed << ", budget " << budget);
      Setup s;
      s.memory = rp.memory;
      s.budget = budget;
      vm::CompileOptions options;
      options.blind_constants = seed % 3 == 0;
      if (seed % 2 == 0) s.target = jit::a64::Target{false};  // LL/SC atomics even on LSE hosts
      require_same(run_both(rp.program, s, vm::HelperRegistry::conformance(), options));
    }
  }
}
