// Differential testing: random programs (random_program.hpp) on a JIT against the interpreter.
// Each seed is one program run several times (budgets from tiny to ample, so budget traps are
// compared too): same r0, same memory afterwards, same trap kind and pc, same executed count.
//
// BPFVM_DIFFERENTIAL_PROGRAMS (environment) sets how many programs run (default: a few
// seconds' worth in CI); BPFVM_DIFFERENTIAL_SEED the first seed. The long run is
//   BPFVM_DIFFERENTIAL_PROGRAMS=200000 build/release/tests/jit/test_jit_differential
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "api/bpfvm.hpp"
#include "tests/jit/random_program.hpp"

using namespace bpfvm;

namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

}  // namespace

TEST_CASE("random programs are valid and run on the interpreter") {
  const std::uint64_t first = env_or("BPFVM_DIFFERENTIAL_SEED", 1);
  int exits = 0, traps = 0;
  for (std::uint64_t seed = first; seed < first + 300; ++seed) {
    test::RandomProgramOptions options;
    options.helpers = {5};
    auto rp = test::random_program(seed, options);
    Vm vm;
    REQUIRE(vm.load(rp.program).ok());
    REQUIRE(vm.helpers().add_conformance_helpers().ok());
    auto exe = vm.compile(Engine::interpreter);
    INFO("seed " << seed << ": " << (exe ? std::string() : exe.error().to_string()));
    REQUIRE(exe.ok());
    auto result = run(**exe, rp.memory);
    (result.trap ? traps : exits) += 1;
  }
  // Both outcomes occur often enough to be compared.
  CHECK(exits > 50);
  CHECK(traps > 20);
}
