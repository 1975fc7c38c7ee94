// The AArch64 code generator on any host (it only produces bytes): it accepts every random
// program the interpreter accepts, plain and blinded, with either kind of atomics; it refuses
// what the interpreter refuses with the same message; it switches to far branches when a
// program outgrows b.cond's reach. Running the code is a64_backend_test's job (AArch64
// targets); this one gives the generator the x86-64 presets' sanitizers.
#include <catch2/catch.hpp>

#include <string>

#include "isa/asm.hpp"
#include "jit/a64/codegen.hpp"
#include "tests/jit/random_program.hpp"
#include "vm/interpreter.hpp"

using namespace bpfvm;

namespace {
isa::Program assemble(std::string_view text) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  return std::move(program).value();
}
}  // namespace

TEST_CASE("a64 codegen: random programs generate, plain and blinded, LL/SC and LSE", "[a64][codegen]") {
  const vm::HelperRegistry helpers = vm::HelperRegistry::conformance();
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    test::RandomProgramOptions options;
    options.helpers = {5};
    const auto rp = test::random_program(seed, options);
    vm::CompileOptions copts;
    copts.blind_constants = seed % 2 == 0;
    jit::a64::Target target;
    target.lse = seed % 3 == 0;
    auto code = jit::a64::generate(rp.program, helpers, copts, jit::a64::RuntimeCalls::host(), target);
    INFO("seed " << seed << ": " << (code ? std::string() : code.error().to_string()));
    REQUIRE(code.ok());
    CHECK(code->code.size() % 4 == 0);
    CHECK(code->body_bytes >= 4 * code->insn_count);  // an exit alone takes two instructions
    CHECK((code->blinding_key != 0) == copts.blind_constants);
  }
}

TEST_CASE("a64 codegen: refusals match the interpreter's", "[a64][codegen]") {
  for (const char* text : {"r0 = 0\ncall 9999\nexit", "r0 = 0\ncall 5\nexit"}) {
    const isa::Program program = assemble(text);
    auto interp = vm::make_interpreter(program, std::make_shared<const vm::HelperRegistry>(), {});
    auto code = jit::a64::generate(program, {}, {}, {});
    REQUIRE(interp.ok() == code.ok());
    if (!interp.ok()) CHECK(interp.error().to_string() == code.error().to_string());
  }
  isa::Program maps = assemble("r1 = 0 ll\nr0 = 0\nexit");
  maps.insns[0].set_src(5);  // lddw map_idx 0, no maps configured
  auto code = jit::a64::generate(maps, {}, {}, {});
  REQUIRE_FALSE(code.ok());
  CHECK(code.error().insn == 0);
  CHECK(code.error().message.find("no maps") != std::string::npos);
}

TEST_CASE("a64 codegen: far branches past b.cond's 1 MiB", "[a64][codegen]") {
  std::string text = "r0 = 0\nr2 = 1\nif r0 > 1 goto skip\n";
  for (int i = 0; i < 30000; ++i) text += "lock *(u64 *)(r1 + 0) += r2\n";
  text += "skip:\nexit";
  auto code = jit::a64::generate(assemble(text), {}, {}, {});
  REQUIRE(code.ok());
  CHECK(code->code.size() > (std::size_t{1} << 20));
}
