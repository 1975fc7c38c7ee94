// Assembler and disassembler: against LLVM 19, RFC 9669 encodings and the conformance suite.
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include "isa/asm.hpp"
#include "isa/disasm.hpp"

using namespace bpfvm::isa;

namespace {

std::vector<std::uint8_t> bytes_of(const std::vector<Insn>& insns) {
  std::vector<std::uint8_t> out(insns.size() * 8);
  if (!out.empty()) std::memcpy(out.data(), insns.data(), out.size());
  return out;
}

bool contains(std::string_view tmpl, std::string_view what) {
  return tmpl.find(what) != std::string_view::npos;
}

// Instances of `row` with varied operands: every placeholder of its LLVM or conformance
// template gets a value, the distinguishing field its row value.
std::vector<std::vector<Insn>> samples(const OpInfo& row) {
  struct Values {
    int dst, src;
    std::int32_t imm, imm_hi;
    std::int16_t off;
  };
  static const Values values[] = {{1, 2, 5, 1, 4},
                                  {0, 10, -1, -1, -4},
                                  {9, 0, INT32_MAX, 0, INT16_MAX},
                                  {10, 5, INT32_MIN, 0x7fffffff, INT16_MIN},
                                  {3, 3, 0, 0, 0}};
  std::string both = std::string(row.llvm_text) + std::string(row.conformance_text);
  std::vector<std::vector<Insn>> out;
  for (const Values& v : values) {
    Insn insn;
    insn.opcode = row.opcode;
    if (contains(both, "{dst}")) insn.set_dst(v.dst);
    if (contains(both, "{src}")) insn.set_src(v.src);
    bool imm_target = row.kind == Kind::call ||
                      (row.kind == Kind::jump && row.operation == Operation::ja && row.width == 32);
    if (contains(both, "{imm}") || contains(both, "{imm64}") || (contains(both, "{tgt}") && imm_target))
      insn.imm = v.imm;
    if (contains(both, "{off}") || (contains(both, "{tgt}") && !imm_target)) insn.off = v.off;
    switch (row.disc) {
      case Disc::off: insn.off = static_cast<std::int16_t>(row.disc_value); break;
      case Disc::imm: insn.imm = row.disc_value; break;
      case Disc::src: insn.set_src(row.disc_value); break;
      case Disc::none: break;
    }
    std::vector<Insn> insns{insn};
    if (row.kind == Kind::lddw) {
      Insn second;
      second.imm = v.imm_hi;
      insns.push_back(second);
    }
    out.push_back(insns);
  }
  return out;
}

std::string strip_hint(std::string s) {
  if (auto hash = s.find(" # "); hash != std::string::npos) s.resize(hash);
  return s;
}

// llvm-mc-19's text for each instruction (one output line each), or nothing without the tool.
std::optional<std::vector<std::string>> llvm_mc(const std::vector<std::vector<Insn>>& list,
                                                const char* attrs) {
  if (std::system("llvm-mc-19 --version > /dev/null 2>&1") != 0) return std::nullopt;
  auto path =
      std::filesystem::temp_directory_path() / ("bpfvm_text_test_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream f(path);
    for (const auto& insns : list) {
      for (std::uint8_t b : bytes_of(insns)) f << fmt::format("0x{:02x} ", b);
      f << "\n";
    }
  }
  std::string cmd =
      fmt::format("llvm-mc-19 --disassemble -triple=bpfel -mcpu=v4 {} {} 2>&1", attrs, path.string());
  FILE* p = popen(cmd.c_str(), "r");
  std::vector<std::string> lines;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), p)) {
    std::string l(buf.data());
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l == "\t.text") continue;
    lines.push_back(l.starts_with("\t") ? l.substr(1) : l);
  }
  pclose(p);
  std::filesystem::remove(path);
  return lines;
}

// Rows whose LLVM text cannot be compared with LLVM 19's, and why.
bool llvm_cannot_print(const OpInfo& row, const Insn& insn, bool alu32) {
  // lddw with a source kind: LLVM prints `ld_pseudo rD, SRC, IMM` and drops the second slot.
  if (row.kind == Kind::lddw && row.operation != Operation::imm64) return true;
  // ldind: LLVM prints `skb[rS]` and drops the immediate (templates print a nonzero one, to
  // round-trip).
  if (row.kind == Kind::legacy && row.operation == Operation::ind && insn.imm != 0) return true;
  // Without alu32 LLVM 19 decodes only the 32-bit atomic add (others: invalid encoding, and
  // fetch_add is printed as the non-fetching add).
  if (!alu32 && row.kind == Kind::atomic && row.width == 32 && row.operation != Operation::add) return true;
  return false;
}

}  // namespace

TEST_CASE("LLVM text of every row equals llvm-mc-19's") {
  for (bool alu32 : {true, false}) {
    std::vector<std::vector<Insn>> list;
    std::vector<std::string> ours;
    for (const OpInfo& row : op_table) {
      for (auto& insns : samples(row)) {
        if (llvm_cannot_print(row, insns[0], alu32)) continue;
        ours.push_back(strip_hint(format_insn(insns, 0, Syntax::llvm, alu32)));
        list.push_back(std::move(insns));
      }
    }
    auto theirs = llvm_mc(list, alu32 ? "--print-imm-hex" : "--print-imm-hex -mattr=-alu32");
    if (!theirs) {
      WARN("llvm-mc-19 not found: LLVM text not compared");
      return;
    }
    INFO("alu32 " << alu32);
    REQUIRE(theirs->size() == ours.size());
    // LLVM's default decimal text: what the assembler must read back besides the hex form.
    auto decimal = llvm_mc(list, alu32 ? "" : "-mattr=-alu32");
    REQUIRE(decimal->size() == ours.size());
    for (std::size_t i = 0; i < ours.size(); ++i) {
      INFO("bytes " << fmt::format("{:02x}", fmt::join(bytes_of(list[i]), " ")));
      CHECK(ours[i] == (*theirs)[i]);
      // LLVM's text re-assembles to the same bytes, except the call kinds it prints alike.
      auto op = decode(list[i][0]);
      if (info(*op).kind == Kind::call && info(*op).operation != Operation::helper) continue;
      for (const std::string& text : {(*theirs)[i], (*decimal)[i]}) {
        INFO(text);
        auto back = assemble(text, Syntax::llvm);
        REQUIRE(back.ok());
        CHECK(bytes_of(back->insns) == bytes_of(list[i]));
      }
    }
  }
}

TEST_CASE("every row round-trips through text in both syntaxes") {
  for (const OpInfo& row : op_table) {
    for (const auto& insns : samples(row)) {
      for (auto [syntax, alu32] : {std::pair{Syntax::llvm, false}, std::pair{Syntax::llvm, true},
                                   std::pair{Syntax::conformance, false}}) {
        std::string text = format_insn(insns, 0, syntax, alu32);
        INFO(row.name << ": " << text);
        auto back = assemble(text, syntax);
        REQUIRE(back.ok());
        CHECK(bytes_of(back->insns) == bytes_of(insns));
      }
    }
  }
}

TEST_CASE("RFC 9669 encodings print and assemble as expected") {
  struct Case {
    std::vector<std::uint8_t> bytes;
    const char* llvm;
    const char* conformance;
  };
  // Bytes from RFC 9669's opcode tables: class | source | code, regs = src << 4 | dst.
  const Case cases[] = {
      {{0x07, 0x01, 0, 0, 5, 0, 0, 0}, "r1 += 0x5", "add64 %r1, 5"},
      {{0xbf, 0x21, 0, 0, 0, 0, 0, 0}, "r1 = r2", "mov64 %r1, %r2"},
      {{0xb4, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff}, "w1 = -0x1", "mov32 %r1, -1"},
      {{0x61, 0x21, 4, 0, 0, 0, 0, 0}, "r1 = *(u32 *)(r2 + 0x4)", "ldxw %r1, [%r2+4]"},
      {{0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0}, "*(u64 *)(r10 - 0x8) = r1", "stxdw [%r10-8], %r1"},
      {{0x15, 0x01, 5, 0, 0, 0, 0, 0}, "if r1 == 0x0 goto +0x5", "jeq %r1, 0, +5"},
      {{0x85, 0, 0, 0, 1, 0, 0, 0}, "call 0x1", "call 1"},
      {{0x95, 0, 0, 0, 0, 0, 0, 0}, "exit", "exit"},
      {{0x18, 0x01, 0, 0, 0x89, 0x67, 0x45, 0x23, 0, 0, 0, 0, 1, 0, 0, 0},
       "r1 = 0x123456789 ll",
       "lddw %r1, 0x123456789"},
      {{0xdc, 0x01, 0, 0, 16, 0, 0, 0}, "r1 = be16 r1", "be16 %r1"},
      {{0xdb, 0x21, 0, 0, 1, 0, 0, 0},
       "r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)",
       "lock fetch add [%r1+0], %r2"},
      {{0xbf, 0x21, 8, 0, 0, 0, 0, 0}, "r1 = (s8)r2", "movsx864 %r1, %r2"},
      {{0x3f, 0x21, 1, 0, 0, 0, 0, 0}, "r1 s/= r2", "sdiv64 %r1, %r2"},
      {{0x8d, 0x02, 0, 0, 0, 0, 0, 0}, "callx r2", "call %r2"},
      {{0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, "gotol -0x1", "ja32 -1"},
      {{0x20, 0, 0, 0, 4, 0, 0, 0}, "r0 = *(u32 *)skb[0x4]", "ldabsw 4"},
  };
  for (const Case& c : cases) {
    auto program = program_from_bytes(c.bytes);
    REQUIRE(program.ok());
    CHECK(format_insn(program->insns, 0, Syntax::llvm) == c.llvm);
    CHECK(format_insn(program->insns, 0, Syntax::conformance) == c.conformance);
    for (auto [syntax, text] :
         {std::pair{Syntax::llvm, c.llvm}, std::pair{Syntax::conformance, c.conformance}}) {
      auto back = assemble(text, syntax);
      INFO(text);
      REQUIRE(back.ok());
      CHECK(bytes_of(back->insns) == c.bytes);
    }
  }
}

TEST_CASE("assembler spellings: aliases, labels, objdump columns") {
  auto conf = assemble("add %r1, 0xffffffff\nswap16 %r2\nlock add32 [%r1], %r2\nja exit\nmov %r0, -2\nexit\n",
                       Syntax::conformance);
  REQUIRE(conf.ok());
  std::vector<std::uint8_t> expect = {0x07, 0x01, 0,    0,    0xff, 0xff, 0xff, 0xff, 0xd7, 0x02, 0, 0,
                                      16,   0,    0,    0,    0xc3, 0x21, 0,    0,    0,    0,    0, 0,
                                      0x05, 0,    1,    0,    0,    0,    0,    0,    0xb7, 0,    0, 0,
                                      0xfe, 0xff, 0xff, 0xff, 0x95, 0,    0,    0,    0,    0,    0, 0};
  CHECK(bytes_of(conf->insns) == expect);

  auto llvm = assemble(
      "0000000000000000 <f>:\n"
      "       0:\tb7 00 00 00 06 00 00 00\tr0 = 6\n"
      "       1:\t18 01 00 00 89 67 45 23 00 00 00 00 01 00 00 00\tr1 = 0x123456789 ll\n"
      "       3:\t6d 01 ff ff 00 00 00 00\tif r1 s> r0 goto -0x1 <f+0x10>\n"
      "loop:\n"
      "  call g\n"
      "  goto loop\n"
      "g:\n"
      "  exit\n",
      Syntax::llvm);
  REQUIRE(llvm.ok());
  std::vector<std::uint8_t> expect2 = {
      0xb7, 0, 0,    0, 6,    0,    0,    0,    0x18, 0x01, 0,    0, 0x89, 0x67, 0x45, 0x23, 0, 0, 0,
      0,    1, 0,    0, 0,    0x6d, 0x01, 0xff, 0xff, 0,    0,    0, 0,    0x85, 0x10, 0,    0, 1, 0,
      0,    0, 0x05, 0, 0xfe, 0xff, 0,    0,    0,    0,    0x95, 0, 0,    0,    0,    0,    0, 0};
  CHECK(bytes_of(llvm->insns) == expect2);

  // llvm-objdump prints every call kind as `call N`; its byte column tells them apart.
  auto local = assemble("       0:\t85 10 00 00 01 00 00 00\tcall 0x1\n", Syntax::llvm);
  REQUIRE(local.ok());
  CHECK(bytes_of(local->insns) == std::vector<std::uint8_t>{0x85, 0x10, 0, 0, 1, 0, 0, 0});
  auto hinted = assemble("call 0x1 # src=2\n", Syntax::llvm);
  REQUIRE(hinted.ok());
  CHECK(bytes_of(hinted->insns) == std::vector<std::uint8_t>{0x85, 0x20, 0, 0, 1, 0, 0, 0});
}

TEST_CASE("assembler errors say what and where") {
  struct Case {
    Syntax syntax;
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {Syntax::llvm, "exit\nhello world\n", "f.s:2: unknown instruction 'hello'"},
      {Syntax::conformance, "exit\n\nfrob %r1, 2\n", "f.s:3: unknown instruction 'frob'"},
      {Syntax::llvm, "r11 = 1\n", "f.s:1: register 'r11' does not exist (registers are r0..r10)"},
      {Syntax::conformance, "mov %r11, 1\n",
       "f.s:1: register '%r11' does not exist (registers are %r0..%r10)"},
      {Syntax::llvm, "r1 += 99999999999\n", "f.s:1: immediate '99999999999' does not fit in 32 bits"},
      {Syntax::conformance, "add %r1, 0x100000000\n",
       "f.s:1: immediate '0x100000000' does not fit in 32 bits"},
      {Syntax::conformance, "lddw %r1, 0x10000000000000000\n",
       "f.s:1: 64-bit immediate '0x10000000000000000' does not fit in 64 bits"},
      {Syntax::llvm, "r0 = *(u32 *)(r1 + 40000)\n",
       "f.s:1: offset '+ 40000' does not fit in 16 bits (-32768..32767)"},
      {Syntax::conformance, "ldxw %r0, [%r1-32769]\n",
       "f.s:1: offset '-32769' does not fit in 16 bits (-32768..32767)"},
      {Syntax::conformance, "ja nowhere\nexit\n", "f.s:1: undefined label 'nowhere'"},
      {Syntax::llvm, "goto nowhere\n", "f.s:1: undefined label 'nowhere'"},
      {Syntax::conformance, "add64 %r1\n", "f.s:1: expected ',' at end of line"},
      {Syntax::llvm, "r1 +=\n", "f.s:1: expected 'r' or immediate at end of line"},
      {Syntax::conformance, "x:\nx:\n", "f.s:2: label 'x' is defined twice (first on line 1)"},
  };
  for (const Case& c : cases) {
    auto r = assemble(c.text, c.syntax, "f.s");
    INFO(c.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().to_string() == c.message);
  }
}

namespace {

struct ConformanceText {
  std::string asm_text;
  std::vector<std::uint8_t> raw;
  bool has_raw = false;
};

// The `-- asm` and `-- raw` sections of a conformance .data file.
ConformanceText read_conformance(const std::filesystem::path& path) {
  std::ifstream f(path);
  ConformanceText out;
  std::string line, section;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string code = line.substr(0, line.find('#'));
    if (code.find("--") != std::string::npos) {
      section = code.find("asm") != std::string::npos   ? "asm"
                : code.find("raw") != std::string::npos ? "raw"
                                                        : "other";
      if (section == "raw") out.has_raw = true;
      continue;
    }
    if (section == "asm") out.asm_text += line + "\n";
    if (section == "raw") {
      std::istringstream words(code);
      std::string w;
      while (words >> w) {
        std::uint64_t v = std::stoull(w, nullptr, w.starts_with("0x") ? 16 : 10);
        for (int i = 0; i < 8; ++i) out.raw.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("all conformance programs assemble and round-trip through both syntaxes") {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BPFVM_CONFORMANCE_DIR)) {
    if (entry.path().extension() != ".data") continue;
    ++count;
    INFO(entry.path().filename().string());
    ConformanceText t = read_conformance(entry.path());
    std::vector<std::uint8_t> bytes;
    if (t.has_raw) {
      bytes = t.raw;
      // The raw words are an independent encoding of the same program.
      auto program = assemble(t.asm_text, Syntax::conformance, entry.path().string());
      REQUIRE(program.ok());
      CHECK(bytes_of(program->insns) == bytes);
    } else {
      auto program = assemble(t.asm_text, Syntax::conformance, entry.path().string());
      INFO((program.ok() ? "" : program.error().to_string()));
      REQUIRE(program.ok());
      bytes = bytes_of(program->insns);
    }
    REQUIRE(!bytes.empty());
    auto program = program_from_bytes(bytes);
    REQUIRE(program.ok());
    for (auto syntax : {Syntax::llvm, Syntax::conformance}) {
      for (bool alu32 : {false, true}) {
        DisasmOptions options;
        options.syntax = syntax;
        options.alu32 = alu32;
        std::string text = disassemble(*program, options);
        auto again = assemble(text, syntax);
        INFO(text);
        INFO((again.ok() ? "" : again.error().to_string()));
        REQUIRE(again.ok());
        CHECK(bytes_of(again->insns) == bytes);
      }
    }
  }
  CHECK(count == 313);
}

TEST_CASE("whole-program disassembly looks like llvm-objdump") {
  Program p;
  p.name = "f";
  p.insns = {Insn{0x07, 0x01, 0, 5}, Insn{0x85, 0x10, 0, 0}, Insn{0x95, 0, 0, 0}, Insn{0xb7, 0, 0, 0},
             Insn{0x95, 0, 0, 0}};
  p.functions = {{"f", 0, 3}, {"g", 3, 5}};
  CHECK(disassemble(p, {}) ==
        "0000000000000000 <f>:\n"
        "       0:\t07 01 00 00 05 00 00 00\tr1 += 0x5\n"
        "       1:\t85 10 00 00 00 00 00 00\tcall 0x0 # src=1\n"
        "       2:\t95 00 00 00 00 00 00 00\texit\n"
        "\n"
        "0000000000000018 <g>:\n"
        "       3:\tb7 00 00 00 00 00 00 00\tr0 = 0x0\n"
        "       4:\t95 00 00 00 00 00 00 00\texit\n");
}

TEST_CASE("every prefix of every instruction text is an instruction or an error with its line") {
  for (const OpInfo& row : op_table) {
    for (const auto& insns : {samples(row)[1]}) {
      for (auto syntax : {Syntax::llvm, Syntax::conformance}) {
        std::string text = format_insn(insns, 0, syntax, true);
        for (std::size_t n = 0; n <= text.size(); ++n) {
          std::string input = "exit\n" + text.substr(0, n) + "\n";
          auto r = assemble(input, syntax, "p.s");
          INFO(input);
          if (!r.ok()) CHECK(r.error().line == std::optional<std::size_t>{2});
        }
      }
    }
  }
}
