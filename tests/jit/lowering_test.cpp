// jit/lowering: blocks, per-block counts, functions and liveness of small programs whose
// answers are worked out by hand in the comments.
#include <catch2/catch.hpp>

#include "isa/asm.hpp"
#include "jit/lowering/analysis.hpp"
#include "jit/lowering/patterns.hpp"

using namespace bpfvm;
using namespace bpfvm::jit::lowering;

namespace {

Analysis analyze_text(std::string_view text) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  vm::HelperRegistry helpers = vm::HelperRegistry::conformance();
  auto a = analyze(*program, helpers, {});
  INFO((a ? std::string() : a.error().to_string()));
  REQUIRE(a.ok());
  return std::move(a).value();
}

}  // namespace

TEST_CASE("lowering: blocks, counts, loop heads and liveness") {
  // pc 0: r0 = 0
  // pc 1: r1 = 1 ll           (slots 1 and 2, one instruction)
  // pc 3: if r1 > 5 goto 6
  // pc 4: r0 += 1
  // pc 5: goto 0              (backward: 0 is a loop head)
  // pc 6: call 5              (a call ends its block)
  // pc 7: r0 += r1
  // pc 8: exit
  // Leaders: 0 (start, goto target), 4 (after jgt), 6 (jgt target, after goto), 7 (after call).
  const Analysis a = analyze_text(R"(
    r0 = 0
    r1 = 1 ll
    if r1 > 5 goto +2
    r0 += 1
    goto -6
    call 5
    r0 += r1
    exit
  )");
  REQUIRE(a.insns.size() == 9);
  CHECK(a.insns[2].second_slot);
  CHECK(a.insns[1].imm64 == 1);
  CHECK(a.insns[3].target == 6);
  CHECK(a.insns[5].target == 0);
  REQUIRE(a.blocks.size() == 4);
  CHECK((a.blocks[0].first == 0 && a.blocks[0].end == 4 && a.blocks[0].count == 3 && a.blocks[0].loop_head));
  CHECK((a.blocks[1].first == 4 && a.blocks[1].end == 6 && a.blocks[1].count == 2 && !a.blocks[1].loop_head));
  CHECK((a.blocks[2].first == 6 && a.blocks[2].end == 7 && a.blocks[2].count == 1));
  CHECK((a.blocks[3].first == 7 && a.blocks[3].end == 9 && a.blocks[3].count == 2));
  CHECK(a.left_after[0] == 2);
  CHECK(a.left_after[1] == 1);
  CHECK(a.left_after[3] == 0);
  CHECK(a.left_after[7] == 1);
  CHECK(a.block_of[5] == 1);
  CHECK(a.block_start(6));
  CHECK_FALSE(a.block_start(5));

  REQUIRE(a.functions.size() == 1);
  CHECK(a.functions[0].written == (reg_bit(0) | reg_bit(1)));
  CHECK(a.functions[0].helper_calls);
  CHECK_FALSE(a.functions[0].local_calls);

  // exit reads r0; r0 += r1 reads r0, r1; the helper call reads r1-r5 and writes r0; around the
  // loop r2-r5 flow from the entry to the call.
  CHECK(a.live_out[7] == reg_bit(0));
  CHECK(a.live_out[6] == (reg_bit(0) | reg_bit(1)));
  CHECK(a.live_out[3] == caller_regs);
  CHECK(a.live_out[0] == (reg_bit(0) | reg_bit(2) | reg_bit(3) | reg_bit(4) | reg_bit(5)));
}

TEST_CASE("lowering: functions, their writes and calls") {
  // pc 0: r6 = 1; pc 1: call 3 (local); pc 2: exit; pc 3: r7 = 2; pc 4: r0 = r7; pc 5: exit
  const Analysis a = analyze_text(R"(
    r6 = 1
    call fn
    exit
  fn:
    r7 = 2
    r0 = r7
    exit
  )");
  REQUIRE(a.functions.size() == 2);
  CHECK((a.functions[1].start == 3 && a.functions[1].end == 6));
  CHECK(a.functions[0].local_calls);
  CHECK(a.functions[0].written == reg_bit(6));
  CHECK(a.functions[1].written == (reg_bit(0) | reg_bit(7)));
  CHECK(a.function_of[4] == 1);
  CHECK(a.insns[1].target == 3);
  // A local call reads everything; exit from a called function reads r0-r5.
  CHECK(a.live_out[0] == all_regs);
  CHECK(a.live_out[4] == caller_regs);
}

TEST_CASE("lowering: refuses what the interpreter refuses, naming the instruction") {
  auto program = isa::assemble("r0 = 0\ncall 77\nexit\n", isa::Syntax::llvm, "<test>");
  REQUIRE(program.ok());
  auto a = analyze(*program, vm::HelperRegistry::conformance(), {});
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().insn == 1u);
  CHECK(a.error().message == "call to unknown helper 77");
}

TEST_CASE("lowering: an Analysis refilled after another program equals a fresh one") {
  // A longer program with lddw, calls, loops and a second function first, then a shorter one:
  // every per-pc and per-block table of the reused Analysis must be the shorter program's own.
  auto longer = isa::assemble(R"(
    r6 = 7 ll
    r1 = 3
  top:
    r1 += -1
    call 5
    if r1 != 0 goto top
    call sub
    r0 = r6
    exit
  sub:
    r2 = r10
    r2 += -8
    *(u64 *)(r2 + 0) = r1
    r0 = 1
    exit
  )",
                              isa::Syntax::llvm, "<longer>");
  auto shorter = isa::assemble("r2 = r10\nr2 += -16\nif r1 > 2 goto +1\nr0 = r2\nexit\n", isa::Syntax::llvm,
                               "<shorter>");
  REQUIRE(longer.ok());
  REQUIRE(shorter.ok());
  const vm::HelperRegistry helpers = vm::HelperRegistry::conformance();
  Analysis reused;
  REQUIRE(analyze(*longer, helpers, {}, reused).ok());
  REQUIRE(analyze(*shorter, helpers, {}, reused).ok());
  auto fresh = analyze(*shorter, helpers, {});
  REQUIRE(fresh.ok());
  REQUIRE(reused.insns.size() == fresh->insns.size());
  for (std::size_t pc = 0; pc < fresh->insns.size(); ++pc) {
    const Insn &x = reused.insns[pc], &y = fresh->insns[pc];
    CHECK((x.op == y.op && x.dst == y.dst && x.src == y.src && x.second_slot == y.second_slot &&
           x.off == y.off && x.imm == y.imm && x.target == y.target && x.imm64 == y.imm64 &&
           x.helper == y.helper));
  }
  REQUIRE(reused.blocks.size() == fresh->blocks.size());
  for (std::size_t b = 0; b < fresh->blocks.size(); ++b) {
    CHECK(reused.blocks[b].first == fresh->blocks[b].first);
    CHECK(reused.blocks[b].end == fresh->blocks[b].end);
    CHECK(reused.blocks[b].count == fresh->blocks[b].count);
    CHECK(reused.blocks[b].loop_head == fresh->blocks[b].loop_head);
  }
  REQUIRE(reused.functions.size() == fresh->functions.size());
  CHECK(reused.functions[0].written == fresh->functions[0].written);
  CHECK(reused.block_of == fresh->block_of);
  CHECK(reused.left_after == fresh->left_after);
  CHECK(reused.function_of == fresh->function_of);
  CHECK(reused.reads == fresh->reads);
  CHECK(reused.writes == fresh->writes);
  CHECK(reused.live_out == fresh->live_out);
  CHECK(reused.frame_derived == fresh->frame_derived);
  CHECK(reused.jumps_to == fresh->jumps_to);
  // And worked out by hand: r2 = r10 - 16 is derived from r10 where the jump reads r1.
  CHECK((fresh->frame_derived[2] & reg_bit(2)) != 0);
  for (std::size_t pc = 0; pc < fresh->insns.size(); ++pc) {
    if (fresh->insns[pc].second_slot) continue;
    CHECK(fresh->reads[pc] == uses(fresh->insns[pc], fresh->function_of[pc] == 0));
    CHECK(fresh->writes[pc] == defs(fresh->insns[pc]));
  }
}

TEST_CASE("lowering: a stack pointer spilled to a frame slot and loaded back stays frame-derived") {
  // pc 0: r2 = r10
  // pc 1: r2 += -64          r2 = r10 - 64
  // pc 2: *(u64 *)(r10 - 8) = r2       slot r10 - 8 holds it
  // pc 3: *(u64 *)(r10 - 16) = r1      slot r10 - 16 holds the input pointer (not derived)
  // pc 4: r3 = *(u64 *)(r10 - 8)       derived again
  // pc 5: r4 = *(u64 *)(r10 - 16)      not derived
  // pc 6: *(u32 *)(r10 - 4) = 0        overwrites half of slot r10 - 8
  // pc 7: r5 = *(u64 *)(r10 - 8)       no longer derived
  // pc 8: r0 = 0
  // pc 9: exit
  const Analysis a = analyze_text(R"(
    r2 = r10
    r2 += -64
    *(u64 *)(r10 - 8) = r2
    *(u64 *)(r10 - 16) = r1
    r3 = *(u64 *)(r10 - 8)
    r4 = *(u64 *)(r10 - 16)
    *(u32 *)(r10 - 4) = 0
    r5 = *(u64 *)(r10 - 8)
    r0 = 0
    exit
  )");
  CHECK((a.frame_derived[5] & reg_bit(3)) != 0);
  CHECK((a.frame_derived[6] & reg_bit(4)) == 0);
  CHECK((a.frame_derived[8] & reg_bit(5)) == 0);
  CHECK((a.frame_derived[8] & reg_bit(3)) != 0);
}

TEST_CASE("lowering: rotates written as a copy, two shifts and an or") {
  // murmur3's `(h << 13) | (h >> 19)` as clang writes it: w5 = w4; w5 >>= 19; w4 <<= 13;
  // w4 |= w5, with w5 dead after (pc 4 writes it before any read): w4 rotated left by 13.
  const Analysis a = analyze_text("w5 = w4\n w5 >>= 19\n w4 <<= 13\n w4 |= w5\n w5 = 0\n r0 = r4\n exit\n");
  const auto r = rotate(a, 0);
  REQUIRE(r.has_value());
  CHECK(r->reg == 4);
  CHECK(r->width == 32);
  CHECK(r->left == 13);
  // 64-bit, the shifts the other way round: r2 = r1 << 8 | r1 >> 56, a rotate left by 8.
  const Analysis b = analyze_text("r2 = r1\n r2 <<= 8\n r1 >>= 56\n r1 |= r2\n r0 = r1\n exit\n");
  const auto r64 = rotate(b, 0);
  REQUIRE(r64.has_value());
  CHECK(r64->reg == 1);
  CHECK(r64->width == 64);
  CHECK(r64->left == 8);
  // Not rotates: the copy is read afterwards; the shifts do not add up to the width; the shifts
  // are 64-bit under a 32-bit copy; the or goes the other way.
  CHECK_FALSE(rotate(analyze_text("w5 = w4\n w5 >>= 19\n w4 <<= 13\n w4 |= w5\n r0 = r5\n exit\n"), 0));
  CHECK_FALSE(rotate(analyze_text("w5 = w4\n w5 >>= 18\n w4 <<= 13\n w4 |= w5\n r0 = r4\n exit\n"), 0));
  CHECK_FALSE(rotate(analyze_text("w5 = w4\n r5 >>= 19\n r4 <<= 13\n w4 |= w5\n r0 = r4\n exit\n"), 0));
  CHECK_FALSE(rotate(analyze_text("w5 = w4\n w5 >>= 19\n w4 <<= 13\n w5 |= w4\n r0 = r5\n exit\n"), 0));
}
