// Accesses the verifier proved (vm::CompileOptions::proven_accesses) get no check in either
// JIT: the code for a proven load is a bare load, and a program whose accesses are all proven
// has none of the out-of-line check paths. (That the results stay right is
// tests/api/verified_test.cpp's part.)
#include <catch2/catch.hpp>

#include <string>

#include "isa/asm.hpp"
#include "jit/a64/codegen.hpp"
#ifdef BPFVM_JIT_X64
#include "jit/x64/backend.hpp"
#endif

using namespace bpfvm;

namespace {

// Sums 64 words of the input through a pointer that moves: no access can be checked once per
// block in advance.
constexpr const char* sum_words =
    "r0 = 0\n"
    "r3 = 0\n"
    "loop:\n"
    "r4 = *(u64 *)(r1 + 0)\n"
    "r0 += r4\n"
    "*(u64 *)(r1 + 0) = r0\n"
    "r1 += 8\n"
    "r3 += 1\n"
    "if r3 < 64 goto loop\n"
    "exit\n";
constexpr std::size_t load_pc = 2, store_pc = 4;

isa::Program program() {
  auto p = isa::assemble(sum_words, isa::Syntax::llvm, "<test>");
  REQUIRE(p.ok());
  return std::move(p).value();
}

vm::CompileOptions all_proven(const isa::Program& p) {
  vm::CompileOptions o;
  o.proven_accesses.assign(p.insns.size(), true);
  return o;
}

// Bytes of code emitted for instruction pc.
std::size_t bytes_at(const std::vector<std::uint32_t>& offsets, std::size_t pc) {
  return offsets[pc + 1] - offsets[pc];
}

}  // namespace

TEST_CASE("a64: proven accesses are bare loads and stores, with no check stubs", "[jit][proven]") {
  const isa::Program p = program();
  const vm::HelperRegistry helpers;
  auto checked = jit::a64::generate(p, helpers, {}, jit::a64::RuntimeCalls::host(), {});
  auto proven = jit::a64::generate(p, helpers, all_proven(p), jit::a64::RuntimeCalls::host(), {});
  REQUIRE(checked.ok());
  REQUIRE(proven.ok());
  // The store (inside the block) is one 4-byte instruction; checked, the address compare comes
  // first. The load starts the block, after the budget.
  CHECK(bytes_at(proven->insn_offset, store_pc) == 4);
  CHECK(bytes_at(checked->insn_offset, store_pc) > 4);
  CHECK(bytes_at(proven->insn_offset, load_pc) < bytes_at(checked->insn_offset, load_pc));
  CHECK(proven->code.size() < checked->code.size());
}

#ifdef BPFVM_JIT_X64
TEST_CASE("x64: proven accesses are bare loads and stores, with no slow copy", "[jit][proven]") {
  const isa::Program p = program();
  auto helpers = std::make_shared<const vm::HelperRegistry>();
  auto checked = jit::x64::listing(p, helpers, {});
  auto proven = jit::x64::listing(p, helpers, all_proven(p));
  REQUIRE(checked.ok());
  REQUIRE(proven.ok());
  // The store is a bare mov (at most REX, opcode, ModRM and a SIB for rsp/r12 bases; checked,
  // the block's group check before the load covers it). The load starts the block: after the
  // budget, checked, comes the group's range check.
  CHECK(bytes_at(proven->insn_offset, store_pc) <= 4);
  CHECK(bytes_at(proven->insn_offset, load_pc) < bytes_at(checked->insn_offset, load_pc));
  CHECK(proven->code.size() < checked->code.size());
  // Checked, the out-of-line part holds the block's slow copy; proven, only what every program
  // has.
  CHECK(proven->code.size() - proven->body_end < checked->code.size() - checked->body_end);
}
#endif

#ifdef BPFVM_JIT_X64
TEST_CASE("x64: an address sum folds into the proven access after it", "[jit][proven]") {
  // r3 = r1 + r2 is only the address of the load, which overwrites r0: one movzx from
  // [rdi + rsi - 1] (5 bytes: opcode 0f b6, ModRM, SIB, disp8), no lea. Checked, the sum is
  // computed for the check.
  auto p = isa::assemble(
      "r3 = r1\n"
      "r3 += r2\n"
      "r0 = *(u8 *)(r3 - 1)\n"
      "exit\n",
      isa::Syntax::llvm, "<test>");
  REQUIRE(p.ok());
  auto helpers = std::make_shared<const vm::HelperRegistry>();
  auto proven = jit::x64::listing(*p, helpers, all_proven(*p));
  auto checked = jit::x64::listing(*p, helpers, {});
  REQUIRE(proven.ok());
  REQUIRE(checked.ok());
  // The window's code is all at pc 0 (after the block's budget): it ends with the movzx.
  CHECK(proven->insn_offset[1] == proven->insn_offset[3]);
  const std::vector<std::uint8_t> tail(proven->code.begin() + proven->insn_offset[3] - 5,
                                       proven->code.begin() + proven->insn_offset[3]);
  const std::vector<std::uint8_t> movzx{0x0f, 0xb6, 0x44, 0x37, 0xff};
  CHECK(tail == movzx);
  CHECK(checked->insn_offset[3] - checked->insn_offset[0] > proven->insn_offset[3] - proven->insn_offset[0]);
}
#endif
