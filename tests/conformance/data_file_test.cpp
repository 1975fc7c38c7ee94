// The .data parser against hand-written snippets; expected values follow the format in
// bpf_conformance/README.md.
#include <catch2/catch.hpp>

#include <filesystem>

#include "conformance/data_file.hpp"

using namespace bpfvm;
using namespace bpfvm::conformance;

TEST_CASE("asm, mem and result sections with comments and CRs") {
  auto d = parse_data(
      "# SPDX header\r\n"
      "-- asm\r\n"
      "mov %r0, 1 # set r0\r\n"
      "\r\n"
      "exit\r\n"
      "-- mem\r\n"
      "00 01 0a\r\n"
      "ff # trailing byte\r\n"
      "-- result\r\n"
      "0x1\r\n",
      "t.data");
  REQUIRE(d.ok());
  CHECK(d->skip.empty());
  CHECK(d->asm_text == "mov %r0, 1 \nexit\n");
  REQUIRE(d->insns.size() == 2);
  CHECK(d->insns[0].opcode == 0xb7);  // mov64 imm (RFC 9669: ALU64 | K | MOV)
  CHECK(d->insns[0].imm == 1);
  CHECK(d->insns[1].opcode == 0x95);  // exit
  CHECK(d->memory == std::vector<std::uint8_t>{0x00, 0x01, 0x0a, 0xff});
  REQUIRE(d->result);
  CHECK(*d->result == 1);
}

TEST_CASE("result: decimal, hex, negative decimal, the last line wins") {
  auto parse_result = [](const char* text) {
    auto d = parse_data(std::string("-- raw\n0x95\n-- result\n") + text, "r.data");
    REQUIRE(d.ok());
    REQUIRE(d->result);
    return *d->result;
  };
  CHECK(parse_result("42\n") == 42);
  CHECK(parse_result("0xffffffffffffffff\n") == ~std::uint64_t{0});
  CHECK(parse_result("-1\n") == ~std::uint64_t{0});
  CHECK(parse_result("1\n2\n") == 2);
}

TEST_CASE("raw wins over asm and is read little-endian") {
  auto d = parse_data(
      "-- asm\nmov %r0, 7\nexit\n"
      "-- raw\n0x0000000100000018 0x0000000200000000\n149\n"
      "-- result\n0x200000001\n",
      "lddw.data");
  REQUIRE(d.ok());
  REQUIRE(d->insns.size() == 3);
  CHECK(d->insns[0].opcode == 0x18);
  CHECK(d->insns[0].imm == 1);
  CHECK(d->insns[1].imm == 2);
  CHECK(d->insns[2].opcode == 0x95);  // 149 decimal
  isa::Insn word;
  auto w = parse_data("-- raw\n0xfedc1234000a52bf\n-- result\n0\n", "w.data");
  REQUIRE(w.ok());
  word = w->insns.at(0);
  CHECK(word.opcode == 0xbf);
  CHECK(word.dst() == 2);
  CHECK(word.src() == 5);
  CHECK(word.off == 0x000a);
  CHECK(static_cast<std::uint32_t>(word.imm) == 0xfedc1234u);
}

TEST_CASE("what the suite skips") {
  auto unknown = parse_data("-- asm\nexit\n-- bogus\n-- result\n0\n", "u.data");
  REQUIRE(unknown.ok());
  CHECK(unknown->skip.find("unknown section header '-- bogus' at line 3") != std::string::npos);

  auto no_result = parse_data("-- asm\nexit\n", "n.data");
  REQUIRE(no_result.ok());
  CHECK(no_result->skip == "no result and no error");

  auto empty = parse_data("-- asm\n# nothing\n-- result\n0\n", "e.data");
  REQUIRE(empty.ok());
  CHECK(empty->skip == "no instructions");
}

TEST_CASE("ignored sections and the error section") {
  auto d = parse_data(
      "-- asm\nexit\n"
      "-- c\nint main() { return 0; }\n"
      "-- no register offset\nwhatever\n"
      "-- error\nfirst\nDivision by zero\n",
      "x.data");
  REQUIRE(d.ok());
  CHECK(d->skip.empty());
  CHECK(d->error == "Division by zero");
  CHECK_FALSE(d->result);
  CHECK(d->insns.size() == 1);
}

TEST_CASE("bad numbers are errors that name the line") {
  auto mem = parse_data("-- raw\n0x95\n-- mem\n00 zz\n-- result\n0\n", "m.data");
  REQUIRE_FALSE(mem.ok());
  CHECK(mem.error().line == 4u);
  CHECK(mem.error().message.find("'zz'") != std::string::npos);

  auto res = parse_data("-- raw\n0x95\n-- result\nabc\n", "r.data");
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().line == 4u);

  auto raw = parse_data("-- raw\n0x95 nope\n-- result\n0\n", "w.data");
  REQUIRE_FALSE(raw.ok());
  CHECK(raw.error().line == 2u);
}

TEST_CASE("an assembly error is an error naming the file") {
  auto d = parse_data("-- asm\nmov %r0, 1\nfrobnicate %r1\nexit\n-- result\n0\n", "bad.data");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().to_string().find("bad.data") != std::string::npos);
}

TEST_CASE("requirements: CPU version and groups from the instruction table") {
  auto req = [](const char* raw) {
    auto d = parse_data(std::string("-- raw\n") + raw + "\n0x95\n-- result\n0\n", "q.data");
    REQUIRE(d.ok());
    return requirements(d->insns);
  };
  // mov64 r0, 1: v1, base64; exit: v1, base32.
  auto base = req("0x00000001000000b7");
  CHECK(base.cpu_version == 1);
  CHECK(base.groups == (group_bit(isa::Group::base64) | group_bit(isa::Group::base32)));
  // sdiv64 r0, 3 (opcode 0x37, off 1): v4, divmul64.
  auto sdiv = req("0x0000000300010037");
  CHECK(sdiv.cpu_version == 4);
  CHECK((sdiv.groups & group_bit(isa::Group::divmul64)) != 0);
  // jlt (0xad) is v2; jmp32 jeq (0x16) is v3.
  CHECK(req("0x00000000000010ad").cpu_version == 2);
  CHECK(req("0x0000000000000016").cpu_version == 3);
  // lock add dw (0xdb, imm 0): atomic64.
  CHECK((req("0x00000000000021db").groups & group_bit(isa::Group::atomic64)) != 0);
  // The second slot of lddw is not decoded as an instruction of its own: here it would read as
  // sdiv64 (v4).
  auto lddw = req("0x0000000100000018 0x0000000200010037");
  CHECK(lddw.cpu_version == 1);
}

namespace {

// Every .data file of the suite, parsed; `by_cpu[v]` counts the files needing CPU version v.
int parse_suite(int (&by_cpu)[5]) {
  auto dir = std::string(BPFVM_CONFORMANCE_DIR);
  if (!std::filesystem::is_directory(dir)) {
    WARN("no conformance data at " << dir);
    return -1;
  }
  int files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".data") continue;
    ++files;
    auto d = read_data_file(entry.path().string());
    INFO(entry.path().string());
    if (!d) FAIL_CHECK(d.error().to_string());
    if (!d) continue;
    CHECK(d->skip.empty());
    CHECK(d->result.has_value());
    ++by_cpu[requirements(d->insns).cpu_version];
  }
  return files;
}

}  // namespace

TEST_CASE("every file of the suite parses and has instructions") {
  int by_cpu[5] = {};
  int files = parse_suite(by_cpu);
  if (files >= 0) CHECK(files == 313);
}

// bpf_conformance/README.md: "By CPU version: v1 163, v2 9, v3 82, v4 59" (the upstream runner's
// table). The ISA table differs from upstream's on a few rows (non-fetch atomic add and call
// local: v1 here, v3 upstream; callx: v4 here, v1 upstream), so this may fail until they agree.
TEST_CASE("CPU versions per file as the upstream runner counts them", "[!mayfail]") {
  int by_cpu[5] = {};
  if (parse_suite(by_cpu) < 0) return;
  CHECK(by_cpu[1] == 163);
  CHECK(by_cpu[2] == 9);
  CHECK(by_cpu[3] == 82);
  CHECK(by_cpu[4] == 59);
}
