// Differential testing: random programs (random_program.hpp) on the host's JIT against the
// interpreter. Each seed is one program, run with budgets from tiny to ample (so budget traps
// are compared too): same r0, same memory afterwards, same trap (kind, pc, address, size,
// region), same number of executed instructions.
//
// BPFVM_DIFFERENTIAL_PROGRAMS (environment) sets how many programs run (default 2000, about a
// second; 200 under sanitizers); BPFVM_DIFFERENTIAL_SEED the first seed (default 1). The long
// run is one command:
//   BPFVM_DIFFERENTIAL_PROGRAMS=200000 build/release/tests/jit/test_jit_differential
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "api/bpfvm.hpp"
#include "tests/jit/random_program.hpp"
#include "tests/jit/same_result.hpp"
#include "vm/runtime.hpp"

using namespace bpfvm;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t default_programs = 200;
#else
constexpr std::uint64_t default_programs = 2000;
#endif

// Helpers the programs call: 5 returns r1 (the conformance helper); 6 mixes all five arguments
// (so argument passing is checked); 7 fails when r1 is odd (helper_error traps).
std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, std::uint64_t e,
                  vm::RunContext*) {
  return a * 3 + (b ^ (c << 1)) - (d >> 2) + e * 7;
}
std::uint64_t fail_if_odd(std::uint64_t a, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          vm::RunContext* ctx) {
  if (a & 1) ctx->fail("odd argument");
  return a / 2;
}

}  // namespace

TEST_CASE("differential: random programs give the same results on the JIT and the interpreter") {
  if (!engine_available(test::host_jit)) return;
  const std::uint64_t first = test::env_or("BPFVM_DIFFERENTIAL_SEED", 1);
  const std::uint64_t count = test::env_or("BPFVM_DIFFERENTIAL_PROGRAMS", default_programs);
  int exits = 0, traps = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    test::RandomProgramOptions options;
    options.helpers = {5, 6, 7};
    const auto rp = test::random_program(seed, options);
    Vm vm;
    REQUIRE(vm.load(rp.program).ok());
    REQUIRE(vm.helpers().add_conformance_helpers().ok());
    REQUIRE(vm.add_helper(6, "mix", mix).ok());
    REQUIRE(vm.add_helper(7, "fail_if_odd", fail_if_odd).ok());
    vm::CompileOptions copts;
    copts.blind_constants = seed % 4 == 0;
    auto reference = vm.compile(Engine::interpreter, copts);
    auto compiled = vm.compile(test::host_jit, copts);
    INFO("seed " << seed << " (BPFVM_DIFFERENTIAL_SEED=" << seed << " BPFVM_DIFFERENTIAL_PROGRAMS=1)");
    REQUIRE(reference.ok());
    INFO((compiled ? std::string() : compiled.error().to_string()));
    REQUIRE(compiled.ok());
    for (std::uint64_t budget : {std::uint64_t{3}, 17 + seed % 50, 200 + seed % 300, vm::default_budget}) {
      // One buffer and one context for both runs: addresses in traps (input and stack) agree.
      std::vector<std::uint8_t> mem = rp.memory;
      vm::RunContext ctx;
      const auto address = reinterpret_cast<std::uint64_t>(mem.data());
      ctx.add_region({address, mem.size(), vm::Access::read_write, "input"});
      ctx.set_args({address, mem.size(), 0, 0, 0});
      ctx.set_budget(budget);
      ctx.set_max_call_depth(3 + static_cast<int>(seed % 6));
      // The stack keeps its bytes between runs of one context: start both from zeros.
      auto clear_stack = [&] {
        const auto stack = ctx.prepare_run();
        std::fill(stack.begin(), stack.end(), std::uint8_t{0});
      };
      clear_stack();
      const vm::RunResult a = (*reference)->run(ctx);
      const std::vector<std::uint8_t> mem_a = mem;
      mem = rp.memory;
      clear_stack();
      const vm::RunResult b = (*compiled)->run(ctx);
      INFO("budget " << budget);
      test::check_same_result(a, b);
      REQUIRE(mem_a == mem);
      (a.trap ? traps : exits) += 1;
    }
  }
  // Both outcomes occur often enough to be compared.
  CHECK(exits > static_cast<int>(count / 4));
  CHECK(traps > static_cast<int>(count / 4));
}
