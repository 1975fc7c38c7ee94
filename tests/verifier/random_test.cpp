// Random programs drawn from the instruction table: the verifier must answer every one (accept or
// one diagnostic), never crash, hang or throw, and say the same thing twice.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "isa/isa.hpp"
#include "verifier/verifier.hpp"

using namespace bpfvm;

namespace {

isa::Program random_program(std::mt19937_64& rng, std::size_t n) {
  std::vector<isa::Insn> insns;
  // Every register but r1 (the input) starts with a small number, so programs get past the
  // first read and reach the memory, pointer and branch checks.
  for (int r : {0, 2, 3, 4, 5, 6, 7, 8, 9}) {
    isa::Insn mov;
    mov.opcode = isa::info(isa::Op::mov64_imm).opcode;
    mov.set_dst(r);
    mov.imm = static_cast<std::int32_t>(rng() % 16);
    insns.push_back(mov);
  }
  n += insns.size();
  while (insns.size() + 2 < n) {
    const auto& row = isa::op_table[rng() % isa::op_table.size()];
    isa::Insn x;
    x.opcode = row.opcode;
    x.set_dst(static_cast<int>(rng() % 10));
    x.set_src(static_cast<int>(rng() % 11));
    // Small offsets and immediates hit the interesting cases (stack slots, short jumps).
    x.off = static_cast<std::int16_t>(static_cast<int>(rng() % 40) - 24);
    x.imm = rng() % 4 ? static_cast<std::int32_t>(static_cast<int>(rng() % 64) - 16)
                      : static_cast<std::int32_t>(rng());
    // Memory goes through the input (r1) or the stack (r10) most of the time.
    int base = rng() % 4 ? (rng() % 2 ? 10 : 1) : static_cast<int>(rng() % 10);
    if (row.kind == isa::Kind::load) x.set_src(base);
    if (row.kind == isa::Kind::store || row.kind == isa::Kind::atomic) x.set_dst(base);
    if (row.kind == isa::Kind::load || row.kind == isa::Kind::store || row.kind == isa::Kind::atomic)
      x.off = static_cast<std::int16_t>(base == 10 ? -8 * static_cast<int>(1 + rng() % 8)
                                                   : 8 * static_cast<int>(rng() % 9));
    if (row.kind == isa::Kind::atomic && x.src() == 10) x.set_src(static_cast<int>(rng() % 10));
    if (row.kind == isa::Kind::jump) x.off = static_cast<std::int16_t>(static_cast<int>(rng() % 9) - 3);
    if (row.kind == isa::Kind::call && row.operation == isa::Operation::helper)
      x.imm = static_cast<std::int32_t>(rng() % 8);
    // Fields the form does not use must be zero (isa::validate).
    if (row.source == isa::Source::imm) x.set_src(0);
    if (row.source == isa::Source::reg && row.kind != isa::Kind::lddw) x.imm = 0;
    if (row.operation == isa::Operation::neg || row.operation == isa::Operation::le ||
        row.operation == isa::Operation::be || row.operation == isa::Operation::bswap ||
        row.kind == isa::Kind::exit)
      x.set_src(0), x.imm = 0;
    if (row.kind == isa::Kind::exit || row.kind == isa::Kind::legacy) x.set_dst(0), x.off = 0;
    if (row.kind == isa::Kind::lddw) x.off = 0;
    if (row.id == isa::Op::ja || row.id == isa::Op::ja32) x.set_dst(0), x.set_src(0);
    if (row.id == isa::Op::ja) x.imm = 0;
    if (row.id == isa::Op::ja32) x.imm = x.off, x.off = 0;
    if (row.kind == isa::Kind::alu && row.disc == isa::Disc::off) x.off = 0;
    if (row.kind == isa::Kind::call) x.set_dst(0), x.off = 0;
    switch (row.disc) {
      case isa::Disc::off: x.off = static_cast<std::int16_t>(row.disc_value); break;
      case isa::Disc::imm: x.imm = row.disc_value; break;
      case isa::Disc::src: x.set_src(row.disc_value); break;
      case isa::Disc::none: break;
    }
    if (row.kind == isa::Kind::call && row.operation != isa::Operation::helper) continue;
    insns.push_back(x);
    if (row.kind == isa::Kind::lddw) insns.push_back(isa::Insn{});
  }
  isa::Insn mov0;
  mov0.opcode = isa::info(isa::Op::mov64_imm).opcode;
  isa::Insn exit;
  exit.opcode = isa::info(isa::Op::exit).opcode;
  insns.push_back(mov0);
  insns.push_back(exit);
  isa::Program p;
  p.name = "random";
  p.insns = std::move(insns);
  return p;
}

}  // namespace

TEST_CASE("random programs get an answer", "[verifier][random]") {
  std::mt19937_64 rng(2024);
  verifier::Options o;
  o.max_visits = 200'000;
  std::size_t accepted = 0, rejected = 0;
  const verifier::Environment envs[] = {verifier::raw_environment(64),
                                        verifier::raw_environment(std::nullopt), verifier::xdp_environment(),
                                        verifier::sched_cls_environment()};
  for (int i = 0; i < 3000; ++i) {
    auto p = random_program(rng, 4 + rng() % 40);
    const auto& env = envs[i % 4];
    auto r1 = verifier::verify(p, env, o);
    auto r2 = verifier::verify(p, env, o);
    REQUIRE(r1.accepted() != r1.diagnostic.has_value());
    REQUIRE(r1.accepted() == r2.accepted());
    if (r1.accepted()) {
      ++accepted;
      // Every reached memory instruction names the regions it may touch.
      for (std::size_t pc = 0; pc < p.insns.size(); ++pc) {
        auto op = isa::decode(p.insns[pc]);
        if (!op || !r1.program->facts()[pc].reached) continue;
        auto kind = isa::info(*op).kind;
        if (kind == isa::Kind::load || kind == isa::Kind::store || kind == isa::Kind::atomic)
          CHECK(r1.program->facts()[pc].regions != 0);
      }
    } else {
      ++rejected;
      CHECK(r1.diagnostic->insn == r2.diagnostic->insn);
      CHECK(r1.diagnostic->message == r2.diagnostic->message);
    }
  }
  WARN("random programs: " << accepted << " accepted, " << rejected << " rejected");
  CHECK(accepted > 0);
}
