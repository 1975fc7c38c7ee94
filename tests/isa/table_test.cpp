// The ISA table against RFC 9669's opcode list, written out here independently of the table.
#include <catch2/catch.hpp>

#include <set>

#include "isa/isa.hpp"

using namespace bpfvm::isa;

namespace {

// RFC 9669 Appendix A (plus callx 0x8d, gotol 0x06, bswap 0xd7 and the ABS/IND legacy loads):
// every opcode byte the standard defines.
const std::set<int> rfc_opcodes = {
    // ALU64 K / X
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f, 0x87,
    0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd7,
    // ALU K / X
    0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84,
    0x94, 0x9c, 0xa4, 0xac, 0xb4, 0xbc, 0xc4, 0xcc, 0xd4, 0xdc,
    // loads and stores
    0x18, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72,
    0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb,
    // JMP
    0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0x85, 0x8d,
    0x95, 0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd,
    // JMP32
    0x06, 0x16, 0x1e, 0x26, 0x2e, 0x36, 0x3e, 0x46, 0x4e, 0x56, 0x5e, 0x66, 0x6e, 0x76, 0x7e, 0xa6, 0xae,
    0xb6, 0xbe, 0xc6, 0xce, 0xd6, 0xde,
};

Insn make(std::uint8_t opcode, int dst, int src, std::int16_t off, std::int32_t imm) {
  Insn i;
  i.opcode = opcode;
  i.set_dst(dst);
  i.set_src(src);
  i.off = off;
  i.imm = imm;
  return i;
}

// An instruction word that selects `row`: its discriminating field set, the rest zero.
Insn encode(const OpInfo& row) {
  Insn i = make(row.opcode, 1, 2, 0, 0);
  switch (row.disc) {
    case Disc::off: i.off = static_cast<std::int16_t>(row.disc_value); break;
    case Disc::imm: i.imm = row.disc_value; break;
    case Disc::src: i.set_src(row.disc_value); break;
    case Disc::none: break;
  }
  return i;
}

}  // namespace

TEST_CASE("the table's opcode bytes are exactly RFC 9669's") {
  std::set<int> table;
  for (auto& row : op_table) table.insert(row.opcode);
  CHECK(table == rfc_opcodes);
  for (int b = 0; b < 256; ++b) CHECK(opcode_known(static_cast<std::uint8_t>(b)) == (rfc_opcodes.count(b) == 1));
}

TEST_CASE("every row decodes back to itself") {
  for (auto& row : op_table) {
    INFO(row.name);
    auto op = decode(encode(row));
    REQUIRE(op);
    CHECK(*op == row.id);
  }
}

TEST_CASE("bytes the table does not define are rejected") {
  for (int b = 0; b < 256; ++b) {
    if (rfc_opcodes.count(b)) continue;
    CHECK_FALSE(decode(make(static_cast<std::uint8_t>(b), 0, 0, 0, 0)));
  }
}

TEST_CASE("undefined discriminator values are rejected") {
  CHECK_FALSE(decode(make(0x3f, 1, 2, 2, 0)));     // div with offset 2
  CHECK_FALSE(decode(make(0x0f, 1, 2, 1, 0)));     // add with offset 1
  CHECK_FALSE(decode(make(0xbc, 1, 2, 32, 0)));    // 32-bit movsx from 32 bits
  CHECK_FALSE(decode(make(0xd4, 1, 0, 0, 8)));     // le8
  CHECK_FALSE(decode(make(0xdb, 1, 2, 0, 0x02)));  // atomic op 2
  CHECK_FALSE(decode(make(0xc3, 1, 2, 0, 0xe0)));  // xchg without fetch
  CHECK_FALSE(decode(make(0x18, 1, 7, 0, 0)));     // lddw source kind 7
  CHECK_FALSE(decode(make(0x85, 0, 3, 0, 0)));     // call kind 3
}

TEST_CASE("rows carry RFC 9669's facts") {
  CHECK(info(Op::sdiv64_reg).opcode == 0x3f);
  CHECK(info(Op::sdiv64_reg).disc_value == 1);
  CHECK(info(Op::atomic64_cmpxchg).disc_value == 0xf1);
  CHECK(info(Op::atomic32_fetch_bxor).disc_value == 0xa1);
  CHECK(info(Op::movsx64_32).ext_width == 32);
  CHECK(info(Op::be16).source == Source::reg);
  CHECK(info(Op::jlt64_imm).min_cpu == 2);
  CHECK(info(Op::jeq32_reg).min_cpu == 3);
  CHECK(info(Op::bswap64).min_cpu == 4);
  CHECK(info(Op::callx).group == Group::callx);
  CHECK(info(Op::mul32_imm).group == Group::divmul32);
  CHECK(slot_count(Op::lddw_imm64) == 2);
  CHECK(slot_count(Op::exit) == 1);
}
