// The verifier's C++ API on programs built instruction by instruction: embedder environments,
// facts for the engines, diagnostics, invariants, limits and speed.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "isa/isa.hpp"
#include "verifier/verifier.hpp"

using namespace bpfvm;
using isa::Op;

namespace {

isa::Insn ins(Op op, int dst = 0, int src = 0, std::int16_t off = 0, std::int32_t imm = 0) {
  const auto& i = isa::info(op);
  isa::Insn x;
  x.opcode = i.opcode;
  x.set_dst(dst);
  x.set_src(src);
  x.off = off;
  x.imm = imm;
  switch (i.disc) {
    case isa::Disc::off: x.off = static_cast<std::int16_t>(i.disc_value); break;
    case isa::Disc::imm: x.imm = i.disc_value; break;
    case isa::Disc::src: x.set_src(i.disc_value); break;
    case isa::Disc::none: break;
  }
  return x;
}

isa::Program program(std::vector<isa::Insn> insns) {
  isa::Program p;
  p.name = "test";
  p.insns = std::move(insns);
  return p;
}

verifier::Environment embedder_env() {
  verifier::Environment env;
  env.name = "mine";
  env.ctx_size = 16;
  env.regions.push_back(verifier::Region{"buf", 64, false});
  env.fields = {verifier::CtxField{"buf", 0, 8, verifier::FieldKind::region, false, 0},
                verifier::CtxField{"n", 8, 4, verifier::FieldKind::scalar, true, 0}};
  isa::HelperPrototype h;
  h.id = 1000;
  h.name = "checksum";
  h.args = {isa::ArgKind::mem, isa::ArgKind::const_size};
  REQUIRE(env.helpers.add(h).ok());
  return env;
}

}  // namespace

TEST_CASE("embedder environment: regions through context fields", "[verifier][api]") {
  auto env = embedder_env();
  SECTION("in bounds") {
    auto r =
        verifier::verify(program({ins(Op::ldxdw, 2, 1, 0), ins(Op::ldxdw, 0, 2, 56), ins(Op::exit)}), env);
    CHECK(r.accepted());
  }
  SECTION("past the region") {
    auto r =
        verifier::verify(program({ins(Op::ldxdw, 2, 1, 0), ins(Op::ldxdw, 0, 2, 60), ins(Op::exit)}), env);
    REQUIRE(r.diagnostic);
    CHECK(r.diagnostic->insn == 1);
    CHECK(r.diagnostic->check == "mem_bounds");
    CHECK(r.diagnostic->message.find("64-byte memory") != std::string::npos);
  }
  SECTION("read-only region") {
    auto r = verifier::verify(
        program({ins(Op::ldxdw, 2, 1, 0), ins(Op::stb, 2, 0, 0, 1), ins(Op::mov64_imm, 0), ins(Op::exit)}),
        env);
    REQUIRE(r.diagnostic);
    CHECK(r.diagnostic->check == "mem_permission");
  }
  SECTION("writable scalar field") {
    auto r = verifier::verify(program({ins(Op::stw, 1, 0, 8, 5), ins(Op::mov64_imm, 0), ins(Op::exit)}), env);
    CHECK(r.accepted());
  }
  SECTION("the embedder's helper") {
    auto r = verifier::verify(program({ins(Op::ldxdw, 1, 1, 0), ins(Op::mov64_imm, 2, 0, 0, 64),
                                       ins(Op::call_helper, 0, 0, 0, 1000), ins(Op::exit)}),
                              env);
    CHECK(r.accepted());
    auto bad = verifier::verify(program({ins(Op::ldxdw, 1, 1, 0), ins(Op::mov64_imm, 2, 0, 0, 65),
                                         ins(Op::call_helper, 0, 0, 0, 1000), ins(Op::exit)}),
                                env);
    REQUIRE(bad.diagnostic);
    CHECK(bad.diagnostic->insn == 2);
  }
  SECTION("a malformed environment is refused") {
    env.fields.push_back(verifier::CtxField{"x", 14, 4, verifier::FieldKind::scalar, false, 0});
    auto r = verifier::verify(program({ins(Op::mov64_imm, 0), ins(Op::exit)}), env);
    REQUIRE(r.diagnostic);
    CHECK(r.diagnostic->check == "environment");
  }
}

TEST_CASE("facts for the engines", "[verifier][api]") {
  // r0 = 0; if r0 == 0 goto +1; *(u8 *)(r10 - 100) = 1 (dead); *(u64 *)(r10 - 16) = 0; exit
  auto r = verifier::verify(
      program({ins(Op::mov64_imm, 0), ins(Op::jeq64_imm, 0, 0, 1, 0), ins(Op::stb, 10, 0, -100, 1),
               ins(Op::stdw, 10, 0, -16, 0), ins(Op::ldxw, 2, 1, 4), ins(Op::exit)}),
      verifier::raw_environment(8));
  REQUIRE(r.accepted());
  const auto& vp = *r.program;
  REQUIRE(vp.facts().size() == 6);
  CHECK(vp.facts()[0].reached);
  CHECK_FALSE(vp.facts()[2].reached);
  CHECK(vp.facts()[3].regions == static_cast<std::uint8_t>(verifier::AccessRegion::stack));
  CHECK(vp.facts()[4].regions == static_cast<std::uint8_t>(verifier::AccessRegion::memory));
  // Proven: the two reached stores and the load, not the dead store nor the others.
  CHECK(vp.proven_accesses() == std::vector<bool>{false, false, false, true, true, false});
  REQUIRE(vp.stack_depth().size() == 1);
  CHECK(vp.stack_depth()[0] == 16);
  CHECK(vp.max_stack_total() == 16);
  CHECK(vp.program().insns.size() == 6);
  CHECK(vp.environment().name == "raw");
}

TEST_CASE("stack over a call chain", "[verifier][api]") {
  // main: *(u64 *)(r10 - 512) = 0; call f; exit.  f: *(u64 *)(r10 - 256) = 0; r0 = 0; exit
  auto p = program({ins(Op::stdw, 10, 0, -512, 0), ins(Op::call_local, 0, 0, 0, 1), ins(Op::exit),
                    ins(Op::stdw, 10, 0, -256, 0), ins(Op::mov64_imm, 0), ins(Op::exit)});
  auto r = verifier::verify(p, verifier::raw_environment(0));
  REQUIRE(r.accepted());
  CHECK(r.program->stack_depth()[0] == 512);
  CHECK(r.program->stack_depth()[1] == 256);
  CHECK(r.program->max_stack_total() == 768);
  verifier::Options small;
  small.max_total_stack = 512;
  auto rej = verifier::verify(p, verifier::raw_environment(0), small);
  REQUIRE(rej.diagnostic);
  CHECK(rej.diagnostic->check == "stack_depth");
  CHECK(rej.diagnostic->insn == 1);
}

TEST_CASE("diagnostics name the instruction, registers and source line", "[verifier][api]") {
  auto p = program({ins(Op::mov64_imm, 3, 0, 0, 100), ins(Op::ldxb, 0, 1, 8), ins(Op::exit)});
  p.lines.push_back(isa::LineInfo{1, "prog.c", "return buf[8];", 7, 12});
  auto r = verifier::verify(p, verifier::raw_environment(8));
  REQUIRE(r.diagnostic);
  const auto& d = *r.diagnostic;
  CHECK(d.insn == 1);
  CHECK(d.check == "mem_bounds");
  REQUIRE(d.registers.size() == 1);
  CHECK(d.registers[0] == "r1 = mem(off=0, size=8)");
  REQUIRE(d.line);
  CHECK(d.line->line == 7);
  auto text = d.to_string();
  CHECK(text.find("instruction 1") != std::string::npos);
  CHECK(text.find("prog.c:7:12: return buf[8];") != std::string::npos);
  auto e = d.to_error();
  CHECK(e.insn == 1u);
  CHECK(e.message.find("[mem_bounds]") != std::string::npos);
}

TEST_CASE("structural errors come back as diagnostics", "[verifier][api]") {
  auto r = verifier::verify(program({ins(Op::mov64_imm, 0), ins(Op::ja, 0, 0, 5, 0), ins(Op::exit)}),
                            verifier::raw_environment(0));
  REQUIRE(r.diagnostic);
  CHECK(r.diagnostic->check == "structure");
  CHECK(r.diagnostic->insn == 1);
}

TEST_CASE("invariants per instruction", "[verifier][api]") {
  verifier::Options o;
  o.record_invariants = true;
  auto r = verifier::verify(program({ins(Op::mov64_imm, 0, 0, 0, 7), ins(Op::stxdw, 10, 0, -8),
                                     ins(Op::ja, 0, 0, 1, 0), ins(Op::exit), ins(Op::exit)}),
                            verifier::raw_environment(0), o);
  REQUIRE(r.accepted());
  REQUIRE(r.invariants.size() == 5);
  CHECK(r.invariants[0] == "r1=scalar(0x0) r2=scalar(0x0) r10=fp0(off=0)");
  CHECK(r.invariants[2] == "r0=scalar(0x7) r1=scalar(0x0) r2=scalar(0x0) r10=fp0(off=0) [fp-8]=scalar(0x7)");
  CHECK(r.invariants[3].empty());  // unreachable
}

TEST_CASE("loop limits", "[verifier][api]") {
  // r1 = 0; loop: r1 += 1; if r1 < 1000 goto loop; r0 = r1; exit
  auto p = program({ins(Op::mov64_imm, 1), ins(Op::add64_imm, 1, 0, 0, 1), ins(Op::jlt64_imm, 1, 0, -2, 1000),
                    ins(Op::mov64_reg, 0, 1), ins(Op::exit)});
  CHECK(verifier::verify(p, verifier::raw_environment(0)).accepted());
  verifier::Options o;
  o.max_loop_iterations = 100;
  auto r = verifier::verify(p, verifier::raw_environment(0), o);
  REQUIRE(r.diagnostic);
  CHECK(r.diagnostic->check == "loop");
  CHECK(r.diagnostic->message.find("within 100 iterations") != std::string::npos);
  o = {};
  o.max_visits = 500;
  r = verifier::verify(p, verifier::raw_environment(0), o);
  REQUIRE(r.diagnostic);
  CHECK(r.diagnostic->check == "complexity");
}

TEST_CASE("100,000 instructions verify in one visit each", "[verifier]") {
  // Straight-line arithmetic and stack traffic with a forward branch every 8 instructions.
  std::vector<isa::Insn> insns;
  insns.push_back(ins(Op::mov64_imm, 0, 0, 0, 0));
  insns.push_back(ins(Op::stdw, 10, 0, -8, 0));
  while (insns.size() < 100'000 - 2) {
    insns.push_back(ins(Op::ldxdw, 3, 10, -8));
    insns.push_back(ins(Op::add64_imm, 3, 0, 0, 3));
    insns.push_back(ins(Op::jgt64_imm, 3, 0, 2, 1000));
    insns.push_back(ins(Op::band64_imm, 3, 0, 0, 255));
    insns.push_back(ins(Op::stxdw, 10, 3, -8));
    insns.push_back(ins(Op::ldxb, 4, 1, 0));
    insns.push_back(ins(Op::add64_reg, 0, 4));
    insns.push_back(ins(Op::rsh64_imm, 0, 0, 0, 1));
  }
  insns.push_back(ins(Op::mov64_imm, 0, 0, 0, 0));
  insns.push_back(ins(Op::exit));
  auto count = insns.size();
  auto r = verifier::verify(program(std::move(insns)), verifier::raw_environment(16));
  REQUIRE(r.accepted());
  // Linear work: forward branches join at once, so no instruction is analysed twice. (Time is
  // printed by `bpfvm verify` on big programs, not asserted here.)
  CHECK(r.visits <= count + 16);
}
