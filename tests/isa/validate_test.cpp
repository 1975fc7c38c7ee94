#include <catch2/catch.hpp>

#include "isa/validate.hpp"

using namespace bpfvm;
using namespace bpfvm::isa;

namespace {

Insn make(std::uint8_t opcode, int dst = 0, int src = 0, std::int16_t off = 0, std::int32_t imm = 0) {
  Insn i;
  i.opcode = opcode;
  i.set_dst(dst);
  i.set_src(src);
  i.off = off;
  i.imm = imm;
  return i;
}

const Insn exit_insn = make(0x95);
const Insn mov_r0_0 = make(0xb7, 0, 0, 0, 0);

// Validates `insns` and returns the error (or an empty message when accepted).
Error check(std::vector<Insn> insns, ValidateOptions options = {}) {
  Program p;
  p.name = "test";
  p.insns = std::move(insns);
  auto s = validate(p, options);
  return s.ok() ? Error{} : s.error();
}

}  // namespace

TEST_CASE("a minimal program is accepted") {
  auto e = check({mov_r0_0, exit_insn});
  CHECK(e.message.empty());
}

TEST_CASE("structural errors name the instruction and the reason") {
  struct Case {
    const char* what;
    std::vector<Insn> insns;
    std::size_t insn;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"unknown opcode", {mov_r0_0, make(0xff), exit_insn}, 1, "unknown opcode 0xff"},
      {"bad offset on add", {make(0x0f, 0, 1, 3), exit_insn}, 0, "opcode 0x0f does not take offset 3"},
      {"bad atomic op", {make(0xdb, 1, 2, 0, 2), exit_insn}, 0, "opcode 0xdb does not take immediate 2"},
      {"register 11", {make(0xb7, 11), exit_insn}, 0, "invalid destination register r11"},
      {"source register 12", {make(0xbf, 0, 12), exit_insn}, 0, "invalid source register r12"},
      {"write to r10", {make(0xb7, 10), exit_insn}, 0, "r10 is read-only"},
      {"load into r10", {make(0x79, 10, 1), exit_insn}, 0, "r10 is read-only"},
      {"fetch into r10", {make(0xdb, 1, 10, 0, 1), exit_insn}, 0, "r10 is read-only"},
      {"imm with src set", {make(0xb7, 0, 3, 0, 1), exit_insn}, 0, "reserved source field is 3"},
      {"reg with imm set", {make(0xbf, 0, 1, 0, 5), exit_insn}, 0, "reserved immediate field is 5"},
      {"exit with fields", {mov_r0_0, make(0x95, 1)}, 1, "reserved destination field"},
      {"jump past the end", {make(0x05, 0, 0, 5), exit_insn}, 0, "jump target 6 is outside the program"},
      {"jump before the start", {make(0x05, 0, 0, -3), exit_insn}, 0, "jump target -2 is outside the program"},
      {"jump into lddw", {make(0x05, 0, 0, 1), make(0x18, 0), make(0), exit_insn}, 0,
       "jump target 2 is the second slot of an lddw"},
      {"truncated lddw", {mov_r0_0, make(0x18, 0)}, 1, "lddw is truncated"},
      {"lddw bad second slot", {make(0x18, 0), make(0x07), exit_insn}, 1, "lddw second slot must have zero"},
      {"falls off the end", {mov_r0_0}, 0, "can fall off its end"},
      {"call local out of range", {make(0x85, 0, 1, 0, 7), exit_insn}, 0, "call local target 8 is outside"},
      {"callx r10", {make(0x8d, 10), exit_insn}, 0, "callx through r10"},
  };
  for (auto& c : cases) {
    INFO(c.what);
    auto e = check(c.insns);
    CHECK_THAT(e.message, Catch::Contains(c.message));
    REQUIRE(e.insn);
    CHECK(*e.insn == c.insn);
  }
}

TEST_CASE("empty and oversized programs") {
  CHECK(check({}).message == "program is empty");
  ValidateOptions small;
  small.max_insns = 2;
  CHECK_THAT(check({mov_r0_0, mov_r0_0, exit_insn}, small).message, Catch::Contains("more than the limit of 2"));
}

TEST_CASE("CPU version limits") {
  ValidateOptions v3;
  v3.cpu_version = 3;
  auto e = check({make(0xd7, 1, 0, 0, 16), mov_r0_0, exit_insn}, v3);
  CHECK_THAT(e.message, Catch::Contains("bswap16 needs CPU v4"));
}

TEST_CASE("functions are discovered from call-local targets") {
  Program p;
  p.name = "entry";
  // 0: call +2 (to 3); 1: r0 = 0; 2: exit; 3: r0 = 1; 4: exit
  p.insns = {make(0x85, 0, 1, 0, 2), mov_r0_0, exit_insn, make(0xb7, 0, 0, 0, 1), exit_insn};
  REQUIRE(validate(p).ok());
  REQUIRE(p.functions.size() == 2);
  CHECK(p.functions[0].name == "entry");
  CHECK(p.functions[0].start == 0);
  CHECK(p.functions[0].end == 3);
  CHECK(p.functions[1].start == 3);
  CHECK(p.functions[1].end == 5);
}

TEST_CASE("jumps stay inside their function") {
  // 0: call +2; 1: goto +1 (into the callee at 3); 2: exit; 3: r0 = 1; 4: exit
  auto e = check({make(0x85, 0, 1, 0, 2), make(0x05, 0, 0, 1), exit_insn, make(0xb7, 0, 0, 0, 1), exit_insn});
  CHECK_THAT(e.message, Catch::Contains("jump target 3 is in another function"));
}

TEST_CASE("a call local must land on a function start when functions are given") {
  Program p;
  p.name = "entry";
  p.insns = {make(0x85, 0, 1, 0, 2), exit_insn, mov_r0_0, make(0xb7, 0, 0, 0, 1), exit_insn};
  p.functions = {{"entry", 0, 2}, {"f", 2, 5}};
  auto s = validate(p);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message, Catch::Contains("call local target 3 is not the start of a function"));
}

TEST_CASE("a call local into a gap between given functions is refused") {
  // 0: call +2 (to 3, which no function holds); 1: exit; 2: exit (a gap: 2-3); 4: r0 = 1; 5: exit
  Program p;
  p.name = "entry";
  p.insns = {make(0x85, 0, 1, 0, 2), exit_insn, exit_insn, mov_r0_0, make(0xb7, 0, 0, 0, 1), exit_insn};
  p.functions = {{"entry", 0, 2}, {"f", 4, 6}};
  auto s = validate(p);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().insn == 0);
  CHECK_THAT(s.error().message, Catch::Contains("call local target 3 is not the start of a function"));
}
