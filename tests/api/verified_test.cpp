// Verified execution: Vm::verify then Vm::compile(engine, verified). The accesses the verifier
// proved run without checks on every engine; each run first checks that its entry matches what
// the verifier assumed (api/entry_contract.hpp), and a mismatch is an entry_mismatch trap before
// any instruction runs. Random programs the verifier accepts must give the same results checked
// and verified, and never hit a memory trap when checked (the real interpreter as the oracle of
// the verifier's soundness).
//
// BPFVM_VERIFIED_PROGRAMS (environment) sets how many random programs are generated (default
// 20000, about a second; 2000 under sanitizers), and a twentieth of that of random long loops.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"
#include "tests/jit/random_program.hpp"

using namespace bpfvm;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t default_programs = 2000;
#else
constexpr std::uint64_t default_programs = 20000;
#endif

std::vector<Engine> engines() {
  std::vector<Engine> out;
  for (auto e : {Engine::interpreter, Engine::jit_x64, Engine::jit_a64})
    if (engine_available(e)) out.push_back(e);
  return out;
}

isa::Program assemble(std::string_view text) {
  auto p = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((p ? std::string() : p.error().to_string()));
  REQUIRE(p.ok());
  return std::move(p).value();
}

// Loads `text`, verifies it for `env` and compiles the verified form for `engine`.
std::shared_ptr<const vm::Executable> verified(Vm& vmx, std::string_view text,
                                               const verifier::Environment& env, Engine engine) {
  REQUIRE(vmx.load(assemble(text)).ok());
  auto verdict = vmx.verify(env);
  INFO((verdict.diagnostic ? verdict.diagnostic->to_string() : std::string()));
  REQUIRE(verdict.accepted());
  auto exe = vmx.compile(engine, *verdict.program);
  INFO((exe ? std::string() : exe.error().to_string()));
  REQUIRE(exe.ok());
  return exe.value();
}

void require_mismatch(const vm::RunResult& r, std::string_view words) {
  REQUIRE(r.trap.has_value());
  CHECK(r.trap->kind == vm::TrapKind::entry_mismatch);
  CHECK(r.executed == 0);
  INFO(r.trap->message());
  CHECK(r.trap->message().find(words) != std::string::npos);
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

}  // namespace

TEST_CASE("verified: a compile with proofs the verifier did not make is refused", "[verified]") {
  Vm vmx;
  REQUIRE(vmx.load(assemble("r0 = *(u64 *)(r1 + 0)\nexit")).ok());
  vm::CompileOptions options;
  options.proven_accesses = {true, false};
  auto exe = vmx.compile(Engine::interpreter, options);
  REQUIRE_FALSE(exe.ok());
  CHECK(exe.error().message.find("verifier") != std::string::npos);
}

TEST_CASE("verified: only a verified program runs without a budget, and then it counts nothing",
          "[verified]") {
  // 1 + 4 * 1000 + 1 instructions: more than the budget of 100.
  const char* text =
      "r0 = 0\n"
      "r2 = 0\n"
      "top:\n"
      "r0 += r2\n"
      "r2 += 1\n"
      "if r2 < 1000 goto top\n"
      "exit";
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    REQUIRE(vmx.load(assemble(text)).ok());
    vm::CompileOptions unbounded;
    unbounded.enforce_budget = false;
    auto refused = vmx.compile(engine, unbounded);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("without a budget") != std::string::npos);

    auto verdict = vmx.verify(verifier::raw_environment(0));
    REQUIRE(verdict.accepted());
    auto counted = vmx.compile(engine, *verdict.program);
    auto uncounted = vmx.compile(engine, *verdict.program, unbounded);
    REQUIRE(counted.ok());
    REQUIRE(uncounted.ok());
    RunOptions options;
    options.budget = 100;
    const vm::RunResult stopped = run(**counted, {}, options);
    REQUIRE(stopped.trap.has_value());
    CHECK(stopped.trap->kind == vm::TrapKind::budget_exhausted);
    const vm::RunResult ran = run(**uncounted, {}, options);
    INFO((ran.trap ? ran.trap->message() : std::string()));
    REQUIRE_FALSE(ran.trap.has_value());
    CHECK(ran.r0 == 999 * 1000 / 2);
    CHECK(ran.executed == 0);
  }
}

TEST_CASE("verified: address sums used only as the address of a proven access", "[verified]") {
  // r3 = r1 + r2 addresses the last byte, r4 = r1 + 4 the word at 8; neither is used after.
  const char* text =
      "r3 = r1\n"
      "r3 += r2\n"
      "r0 = *(u8 *)(r3 - 1)\n"
      "r4 = r1\n"
      "r4 += 4\n"
      "*(u32 *)(r4 + 4) = 7\n"
      "exit";
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto exe = verified(vmx, text, verifier::raw_environment(16), engine);
    std::vector<std::uint8_t> mem(16);
    for (std::size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<std::uint8_t>(i + 1);
    const vm::RunResult r = run(*exe, mem);
    REQUIRE_FALSE(r.trap.has_value());
    CHECK(r.r0 == 16);
    CHECK(mem[8] == 7);
    CHECK(mem[9] == 0);
    CHECK(r.executed == 7);
  }
}

TEST_CASE("verified: array element addresses (rS + (rI << k) + imm), checked and verified", "[verified]") {
  // Every shape of the scaled-index window (jit/lowering ScaledSum): the shifted copy or the
  // index shifted in place, k 1-3, with and without a displacement, the shifted value used
  // after or not, a load or a store through the sum, the sum written over the index.
  // Memory byte i holds i + 1; the element is at (2 << k) + disp + 1.
  for (int k = 1; k <= 3; ++k)
    for (bool in_place : {false, true})
      for (bool disp : {false, true})
        for (bool temp_used : {false, true})
          for (bool store : {false, true})
            for (bool over_index : {false, true}) {
              if (in_place && over_index) continue;  // the sum cannot overwrite a shifted-in-place index
              const std::string rt = in_place ? "r6" : "r7", rb = over_index ? "r6" : "r8";
              std::string text = "r0 = 0\nr6 = 2\n";
              text += in_place ? "r6 <<= " + std::to_string(k) + "\n"
                               : "r7 = r6\nr7 <<= " + std::to_string(k) + "\n";
              text += rb + " = r1\n";
              if (disp) text += rb + " += 4\n";
              text += rb + " += " + rt + "\n";
              text += store ? "*(u8 *)(" + rb + " + 1) = 0x77\n" : "r0 = *(u8 *)(" + rb + " + 1)\n";
              if (temp_used) text += "r0 += " + rt + "\n";
              text += "exit";
              const std::size_t at = (std::size_t{2} << k) + (disp ? 4 : 0) + 1;
              const std::uint64_t want = (store ? 0 : at + 1) + (temp_used ? std::uint64_t{2} << k : 0);
              INFO(text);
              for (Engine engine : engines()) {
                INFO(to_string(engine));
                for (bool verify : {false, true}) {
                  Vm vmx;
                  std::shared_ptr<const vm::Executable> exe;
                  if (verify) {
                    exe = verified(vmx, text, verifier::raw_environment(64), engine);
                  } else {
                    REQUIRE(vmx.load(assemble(text)).ok());
                    auto checked = vmx.compile(engine);
                    REQUIRE(checked.ok());
                    exe = *checked;
                  }
                  std::vector<std::uint8_t> mem(64);
                  for (std::size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<std::uint8_t>(i + 1);
                  const vm::RunResult r = run(*exe, mem);
                  INFO((r.trap ? r.trap->message() : std::string()));
                  REQUIRE_FALSE(r.trap.has_value());
                  CHECK(r.r0 == want);
                  CHECK(mem[at] == (store ? 0x77 : at + 1));
                }
              }
            }
}

TEST_CASE("verified: raw memory of the verified size runs, any other entry is refused", "[verified]") {
  const char* text =
      "r0 = *(u64 *)(r1 + 8)\n"
      "*(u32 *)(r1 + 0) = 7\n"
      "exit";
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto exe = verified(vmx, text, verifier::raw_environment(16), engine);
    std::vector<std::uint8_t> mem(16, 0);
    mem[8] = 0x2a;
    const vm::RunResult ok = run(*exe, mem);
    REQUIRE_FALSE(ok.trap.has_value());
    CHECK(ok.r0 == 0x2a);
    CHECK(mem[0] == 7);
    CHECK(ok.executed == 3);

    std::vector<std::uint8_t> small(8), large(32);
    require_mismatch(run(*exe, small), "verified for 16 bytes of input memory, run with 8");
    require_mismatch(run(*exe, large), "verified for 16 bytes of input memory, run with 32");
    // The right size, but r1 is not inside the run's regions, or they are read-only.
    vm::RunContext ctx;
    ctx.set_args({reinterpret_cast<std::uint64_t>(mem.data()), 16, 0, 0, 0});
    require_mismatch(exe->run(ctx), "readable and writable bytes");
    ctx.add_region({reinterpret_cast<std::uint64_t>(mem.data()), 16, vm::Access::read, "input"});
    require_mismatch(exe->run(ctx), "readable and writable bytes");
  }
}

TEST_CASE("verified: a program verified with no input memory runs only without memory", "[verified]") {
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto exe = verified(vmx, "r0 = r2\nr0 += 5\nexit", verifier::raw_environment(0), engine);
    const vm::RunResult ok = run(*exe, {});
    REQUIRE_FALSE(ok.trap.has_value());
    CHECK(ok.r0 == 5);
    std::vector<std::uint8_t> mem(8);
    require_mismatch(run(*exe, mem), "verified with no input memory (r1 = 0, r2 = 0)");
  }
}

TEST_CASE("verified: a checked compile after a verified one checks every access", "[verified]") {
  // The JITs reuse per-thread compile buffers: nothing proven may leak into the next program.
  const char* text = "r0 = *(u64 *)(r1 + 8)\nexit";
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto fast = verified(vmx, text, verifier::raw_environment(16), engine);
    auto checked = vmx.compile(engine);
    REQUIRE(checked.ok());
    std::vector<std::uint8_t> small(8);
    const vm::RunResult r = run(**checked, small);
    REQUIRE(r.trap.has_value());
    CHECK(r.trap->kind == vm::TrapKind::out_of_bounds);
    CHECK(r.trap->pc == 0);
  }
}

TEST_CASE("verified: raw memory of unknown size is bounded by r2", "[verified]") {
  const char* text =
      "r0 = 0\n"
      "if r2 < 8 goto +1\n"
      "r0 = *(u64 *)(r1 + 0)\n"
      "exit";
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto exe = verified(vmx, text, verifier::raw_environment(std::nullopt), engine);
    std::vector<std::uint8_t> mem(8, 1), small(4, 1);
    CHECK(run(*exe, mem).r0 == 0x0101010101010101);
    CHECK(run(*exe, small).r0 == 0);
    // r2 claims more bytes than the region holds.
    vm::RunContext ctx;
    ctx.add_region(
        {reinterpret_cast<std::uint64_t>(mem.data()), mem.size(), vm::Access::read_write, "input"});
    ctx.set_args({reinterpret_cast<std::uint64_t>(mem.data()), 64, 0, 0, 0});
    require_mismatch(exe->run(ctx), "r2 = 64");
  }
}

TEST_CASE("verified: an xdp program runs only on an xdp packet context", "[verified]") {
  // Returns the first byte of the packet when there is one, else 0.
  const char* text =
      "r2 = *(u32 *)(r1 + 0)\n"
      "r3 = *(u32 *)(r1 + 4)\n"
      "r0 = 0\n"
      "r4 = r2\n"
      "r4 += 1\n"
      "if r4 > r3 goto +1\n"
      "r0 = *(u8 *)(r2 + 0)\n"
      "exit";
  const std::vector<std::uint8_t> frame(60, 0x5a);
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto exe = verified(vmx, text, verifier::xdp_environment(), engine);
    auto xdp = vm::PacketContext::create(vm::ContextKind::xdp);
    REQUIRE(xdp.ok());
    REQUIRE((*xdp)->set_packet(frame).ok());
    const vm::RunResult ok = run_packet(*exe, **xdp);
    REQUIRE_FALSE(ok.trap.has_value());
    CHECK(ok.r0 == 0x5a);
    // Any 24 bytes are not a context whose data fields point at a packet.
    std::vector<std::uint8_t> fake(24, 0xff);
    require_mismatch(run_with_context(*exe, fake.data(), fake.size()), "xdp packets");
    auto tc = vm::PacketContext::create(vm::ContextKind::sched_cls);
    REQUIRE(tc.ok());
    REQUIRE((*tc)->set_packet(frame).ok());
    require_mismatch(run_packet(*exe, **tc), "xdp packets");
  }
}

TEST_CASE("verified: an embedder's context field must point to the region it declares", "[verified]") {
  verifier::Environment env;
  env.name = "buffers";
  env.ctx_size = 16;
  env.fields = {{"buf", 0, 8, verifier::FieldKind::region, false, 0},
                {"n", 8, 8, verifier::FieldKind::scalar, true, 0}};
  env.regions = {{"buf", 32, true}};
  const char* text =
      "r2 = *(u64 *)(r1 + 0)\n"
      "r0 = *(u64 *)(r2 + 24)\n"
      "*(u64 *)(r1 + 8) = r0\n"
      "exit";
  for (Engine engine : engines()) {
    INFO(to_string(engine));
    Vm vmx;
    auto exe = verified(vmx, text, env, engine);
    std::vector<std::uint64_t> buf(4, 0), short_buf(2, 0);
    buf[3] = 99;
    std::uint64_t ctx_words[2] = {reinterpret_cast<std::uint64_t>(buf.data()), 0};
    RunOptions options;
    options.regions = {
        {reinterpret_cast<std::uint64_t>(buf.data()), 32, vm::Access::read_write, "buf"},
        {reinterpret_cast<std::uint64_t>(short_buf.data()), 16, vm::Access::read_write, "short"}};
    const vm::RunResult ok =
        run_with_context(*exe, ctx_words, sizeof ctx_words, vm::Access::read_write, options);
    REQUIRE_FALSE(ok.trap.has_value());
    CHECK(ok.r0 == 99);
    CHECK(ctx_words[1] == 99);
    ctx_words[0] = reinterpret_cast<std::uint64_t>(short_buf.data());
    require_mismatch(run_with_context(*exe, ctx_words, sizeof ctx_words, vm::Access::read_write, options),
                     "does not point to 32 readable and writable bytes");
    // The program writes field n: a read-only context is not what was verified.
    ctx_words[0] = reinterpret_cast<std::uint64_t>(buf.data());
    require_mismatch(run_with_context(*exe, ctx_words, sizeof ctx_words, vm::Access::read, options),
                     "readable and writable context");
  }
}

TEST_CASE("verified: packet fields outside the built-in layouts cannot be compiled unchecked", "[verified]") {
  verifier::Environment env = verifier::xdp_environment();
  env.name = "my_xdp";
  Vm vmx;
  REQUIRE(vmx.load(assemble("r0 = 0\nexit")).ok());
  auto verdict = vmx.verify(env);
  REQUIRE(verdict.accepted());
  auto exe = vmx.compile(Engine::interpreter, *verdict.program);
  REQUIRE_FALSE(exe.ok());
  CHECK(exe.error().message.find("packet field 'data'") != std::string::npos);
}

TEST_CASE("verified: random programs the verifier accepts run the same checked and verified", "[verified]") {
  const std::uint64_t count = env_or("BPFVM_VERIFIED_PROGRAMS", default_programs);
  std::uint64_t accepted = 0, runs = 0, proven = 0;
  for (std::uint64_t seed = 1; seed <= count; ++seed) {
    test::RandomProgramOptions options;
    options.functions = static_cast<int>(seed % 3);
    options.body_length = 12 + static_cast<int>(seed % 40);
    options.outside_per_mille = 0;
    const auto rp = test::random_program(seed, options);
    Vm vmx;
    REQUIRE(vmx.load(rp.program).ok());
    auto verdict = vmx.verify(verifier::raw_environment(rp.memory.size()));
    if (!verdict.accepted()) continue;
    ++accepted;
    for (const auto& f : verdict.program->facts()) proven += f.regions != 0;
    INFO("seed " << seed);
    for (Engine engine : engines()) {
      INFO(to_string(engine));
      auto checked = vmx.compile(engine);
      auto unchecked = vmx.compile(engine, *verdict.program);
      vm::CompileOptions unbounded;
      unbounded.enforce_budget = false;
      auto uncounted = vmx.compile(engine, *verdict.program, unbounded);
      REQUIRE(checked.ok());
      REQUIRE(unchecked.ok());
      REQUIRE(uncounted.ok());
      std::vector<std::uint8_t> mem_a = rp.memory, mem_b = rp.memory;
      const vm::RunResult a = run(**checked, mem_a);
      const vm::RunResult b = run(**unchecked, mem_b);
      if (a.trap) {
        // The verifier proved every access: the checked run may run out of budget only.
        INFO(a.trap->message());
        REQUIRE(a.trap->kind == vm::TrapKind::budget_exhausted);
        REQUIRE(b.trap.has_value());
        CHECK(b.trap->kind == a.trap->kind);
        CHECK(b.trap->pc == a.trap->pc);
      } else {
        INFO((b.trap ? b.trap->message() : std::string()));
        REQUIRE_FALSE(b.trap.has_value());
        CHECK(a.r0 == b.r0);
        // Without the budget: the same run, nothing counted (only where the budget sufficed:
        // the others may run long).
        std::vector<std::uint8_t> mem_c = rp.memory;
        const vm::RunResult c = run(**uncounted, mem_c);
        INFO((c.trap ? c.trap->message() : std::string()));
        REQUIRE_FALSE(c.trap.has_value());
        CHECK(c.r0 == a.r0);
        CHECK(c.executed == 0);
        CHECK(mem_c == mem_a);
      }
      CHECK(a.executed == b.executed);
      CHECK(mem_a == mem_b);
      ++runs;
    }
  }
  WARN(accepted << " of " << count << " random programs accepted, " << proven << " accesses proven, " << runs
                << " runs compared");
  CHECK(accepted >= count / 20);
  CHECK(proven >= accepted);
}

namespace {

// A loop over the input longer than the verifier follows one iteration at a time: a counter
// and a pointer (each starting at a constant or somewhere in a small range) move by random steps (the pointer
// sometimes by an extra step on a data-dependent path), and the loop ends on a random compare of the counter
// with a bound near where the pointer reaches the end of the memory, on either side of it. The bound is
// a constant, or a register: the counter's start plus a constant, or a small input value plus one.
std::string random_walk(std::mt19937_64& rng, std::uint64_t mem_size) {
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  const unsigned width = 1u << pick(4);  // bytes per load
  const std::int64_t sy = static_cast<std::int64_t>(1 + pick(16));
  const std::int64_t sx = static_cast<std::int64_t>(1 + pick(4));
  const std::int64_t x0 = static_cast<std::int64_t>(pick(8));
  const std::int64_t off = static_cast<std::int64_t>(pick(3) * width);
  const std::int64_t iterations = (static_cast<std::int64_t>(mem_size) - off - width) / sy + 1;
  const std::int64_t bound = x0 + (iterations + static_cast<std::int64_t>(pick(5)) - 2) * sx;
  const char* cond = pick(3) == 0 ? "jle" : pick(2) ? "jlt" : "jne";
  const char* size = width == 1 ? "b" : width == 2 ? "h" : width == 4 ? "w" : "dw";
  std::string text = "  mov %r0, 0\n  mov %r3, " + std::to_string(x0) + "\n";
  // Sometimes the counter and the pointer start from input bytes: ranges, not constants.
  if (pick(3) == 0) text += "  ldxb %r5, [%r1+0]\n  and %r5, 7\n  add %r3, %r5\n";
  std::string bound_operand = std::to_string(bound);
  switch (pick(4)) {
    case 0:
      text += "  mov %r2, %r3\n  add %r2, " + std::to_string(bound - x0) + "\n";
      bound_operand = "%r2";
      break;
    case 1:
      text += "  ldxb %r2, [%r1+2]\n  and %r2, 3\n  add %r2, " + std::to_string(bound) + "\n";
      bound_operand = "%r2";
      break;
    default: break;
  }
  if (pick(3) == 0) text += "  ldxb %r5, [%r1+1]\n  and %r5, 15\n  add %r1, %r5\n";
  text += "top:\n";
  text += std::string("  ldx") + size + " %r4, [%r1+" + std::to_string(off) + "]\n  add %r0, %r4\n";
  if (pick(4) == 0)
    text +=
        "  jeq %r4, " + std::to_string(pick(4)) + ", skip\n  add %r1, " + std::to_string(sy) + "\nskip:\n";
  text += "  add %r1, " + std::to_string(sy) + "\n  add %r3, " + std::to_string(sx) + "\n";
  text += std::string("  ") + cond + " %r3, " + bound_operand + ", top\n  exit\n";
  return text;
}

}  // namespace

TEST_CASE("verified: long loops the verifier accepts never leave the memory", "[verified]") {
  const std::uint64_t count = env_or("BPFVM_VERIFIED_PROGRAMS", default_programs) / 20;
  std::mt19937_64 rng(7);
  std::uint64_t accepted = 0, rejected = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t mem_size = std::uint64_t{1} << (11 + rng() % 4);
    const std::string text = random_walk(rng, mem_size);
    INFO(text);
    Vm vmx;
    auto program = isa::assemble(text, isa::Syntax::conformance, "<walk>");
    REQUIRE(program.ok());
    REQUIRE(vmx.load(*program).ok());
    auto verdict = vmx.verify(verifier::raw_environment(mem_size));
    if (!verdict.accepted()) {
      ++rejected;
      continue;
    }
    ++accepted;
    auto checked = vmx.compile(Engine::interpreter);
    REQUIRE(checked.ok());
    std::vector<std::uint8_t> mem(mem_size);
    for (auto& b : mem) b = static_cast<std::uint8_t>(rng() % 4);
    const vm::RunResult r = run(**checked, mem);
    INFO((r.trap ? r.trap->message() : std::string()));
    REQUIRE_FALSE(r.trap.has_value());
  }
  WARN(accepted << " of " << count << " long loops accepted, " << rejected << " rejected");
  // Both verdicts are common (about 1 in 4 accepted over 10,000 loops).
  CHECK(accepted >= count / 8);
  CHECK(rejected >= count / 8);
}
