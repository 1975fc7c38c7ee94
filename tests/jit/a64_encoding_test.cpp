// The AArch64 assembler against LLVM 19's AArch64 MC disassembler: every emitter's words are
// disassembled and compared with text the test builds from the request itself (following the
// ARM ARM's preferred-disassembly aliases, which LLVM prints). On AArch64 targets (qemu) the
// emitted code is also run.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "jit/a64/assembler.hpp"
#include "jit/executable_memory.hpp"

#if BPFVM_HAVE_LLVM
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>
#endif

using namespace bpfvm::jit::a64;
using bpfvm::jit::ExecutableMemory;

namespace {

// ---- values the test computes itself

// Every value a logical instruction can encode: a run of `ones` ones in an element of `size`
// bits, rotated right by r, repeated to fill the register.
std::uint64_t bitmask_value(unsigned size, unsigned ones, unsigned r, unsigned reg_bits) {
  const std::uint64_t mask = size == 64 ? ~0ull : (1ull << size) - 1;
  const std::uint64_t run = (1ull << ones) - 1;
  const std::uint64_t elt = r == 0 ? run : ((run >> r) | (run << (size - r))) & mask;
  std::uint64_t v = 0;
  for (unsigned at = 0; at < reg_bits; at += size) v |= elt << at;
  return v;
}

std::set<std::uint64_t> all_bitmasks(unsigned reg_bits) {
  std::set<std::uint64_t> out;
  for (unsigned size = 2; size <= reg_bits; size *= 2)
    for (unsigned ones = 1; ones < size; ++ones)
      for (unsigned r = 0; r < size; ++r) out.insert(bitmask_value(size, ones, r, reg_bits));
  return out;
}

const std::set<std::uint64_t>& bitmasks64() {
  static const auto s = all_bitmasks(64);
  return s;
}
const std::set<std::uint64_t>& bitmasks32() {
  static const auto s = all_bitmasks(32);
  return s;
}

// Shortest movz/movn(+movk) or single orr sequence, as the ARM ARM's instructions allow.
unsigned shortest_mov(std::uint64_t v, bool is64) {
  auto best_for = [](std::uint64_t x, unsigned halves, const std::set<std::uint64_t>& bm) {
    unsigned nz = 0, nf = 0;
    for (unsigned i = 0; i < halves; ++i) {
      const unsigned h = (x >> (16 * i)) & 0xffff;
      nz += h != 0;
      nf += h != 0xffff;
    }
    unsigned best = std::min(std::max(nz, 1u), std::max(nf, 1u));
    if (bm.count(x)) best = 1;
    return best;
  };
  if (!is64) return best_for(v & 0xffffffffu, 2, bitmasks32());
  unsigned best = best_for(v, 4, bitmasks64());
  if ((v >> 32) == 0) best = std::min(best, best_for(v, 2, bitmasks32()));
  return best;
}

template <typename F>
bool fails(F&& emit) {
  Assembler a;
  emit(a);
  return !a.status().ok();
}

#if BPFVM_HAVE_LLVM

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string xr(unsigned n) { return n == 31 ? "xzr" : "x" + std::to_string(n); }
std::string wr(unsigned n) { return n == 31 ? "wzr" : "w" + std::to_string(n); }
std::string rn(bool is64, unsigned n) { return is64 ? xr(n) : wr(n); }
Reg reg(bool is64, unsigned n) { return is64 ? X(n) : W(n); }

const char* const kConds[] = {"eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc",
                              "hi", "ls", "ge", "lt", "gt", "le", "al", "nv"};

class Disassembler {
 public:
  Disassembler() {
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64Disassembler();
    ctx_ = LLVMCreateDisasmCPUFeatures("aarch64-linux-gnu", "generic", "+lse", nullptr, 0, nullptr, nullptr);
  }
  ~Disassembler() {
    if (ctx_) LLVMDisasmDispose(ctx_);
  }
  Disassembler(const Disassembler&) = delete;
  Disassembler& operator=(const Disassembler&) = delete;

  // One instruction as "mnemonic operands" with single spaces; "<invalid>" when LLVM rejects it.
  std::string text(std::uint32_t word) const {
    std::uint8_t bytes[4];
    for (unsigned i = 0; i < 4; ++i) bytes[i] = static_cast<std::uint8_t>(word >> (8 * i));
    char buf[256] = {};
    const std::size_t used = LLVMDisasmInstruction(ctx_, bytes, 4, 0x10000, buf, sizeof buf);
    if (used != 4) return "<invalid>";
    std::string out;
    for (char c : std::string(buf)) {
      if (c == '\t' || c == ' ') {
        if (!out.empty() && out.back() != ' ') out += ' ';
      } else {
        out += c;
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }
  bool ok() const { return ctx_ != nullptr; }

 private:
  LLVMDisasmContextRef ctx_ = nullptr;
};

const Disassembler& llvm() {
  static const Disassembler d;
  return d;
}

std::vector<std::string> texts(const Assembler& a) {
  std::vector<std::string> out;
  for (std::uint32_t w : a.words()) out.push_back(llvm().text(w));
  return out;
}

// Emits, requires success and exactly one 4-byte instruction, returns LLVM's text for it.
template <typename F>
std::string one(F&& emit) {
  Assembler a;
  emit(a);
  INFO((a.status().ok() ? std::string() : a.status().error().message));
  REQUIRE(a.status().ok());
  REQUIRE(a.size() == 4);
  REQUIRE(a.bytes().size() == 4);
  return llvm().text(a.words()[0]);
}

template <typename F>
std::vector<std::string> all(F&& emit) {
  Assembler a;
  emit(a);
  INFO((a.status().ok() ? std::string() : a.status().error().message));
  REQUIRE(a.status().ok());
  REQUIRE(a.size() == 4 * a.words().size());
  return texts(a);
}

// Runs LLVM's text of a constant-building sequence (mov aliases, movz/movn/movk, orr from the
// zero register) and returns the register's final value; every line must write register `n`.
std::uint64_t simulate_mov(const std::vector<std::string>& lines, unsigned n) {
  std::uint64_t v = 0;
  for (const std::string& line : lines) {
    INFO(line);
    // "op reg, [zr, ]#imm[, lsl #shift]"
    std::vector<std::string> parts;
    const std::size_t space = line.find(' ');
    REQUIRE(space != std::string::npos);
    const std::string op = line.substr(0, space);
    for (std::size_t at = space + 1;;) {
      const std::size_t comma = line.find(", ", at);
      parts.push_back(line.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      if (comma == std::string::npos) break;
      at = comma + 2;
    }
    REQUIRE((op == "mov" || op == "movz" || op == "movn" || op == "movk" || op == "orr"));
    REQUIRE(parts.size() >= 2);
    REQUIRE(parts[0] == std::string(1, parts[0][0]) + std::to_string(n));
    const bool wide = parts[0][0] == 'x';
    REQUIRE((wide || parts[0][0] == 'w'));
    std::size_t next = 1;
    if (op == "orr") {
      REQUIRE(parts[next] == (wide ? "xzr" : "wzr"));
      ++next;
    }
    REQUIRE(next < parts.size());
    REQUIRE(parts[next].size() > 1);
    REQUIRE(parts[next][0] == '#');
    const std::string num = parts[next].substr(1);
    const std::uint64_t imm =
        num.rfind("0x", 0) == 0 ? std::stoull(num, nullptr, 16) : static_cast<std::uint64_t>(std::stoll(num));
    unsigned shift = 0;
    if (++next < parts.size()) {
      REQUIRE(parts[next].rfind("lsl #", 0) == 0);
      shift = static_cast<unsigned>(std::stoul(parts[next].substr(5)));
      REQUIRE(next + 1 == parts.size());
    }
    const std::uint64_t mask = wide ? ~0ull : 0xffffffffull;
    if (op == "mov" || op == "orr") {
      v = imm & mask;
    } else if (op == "movz") {
      v = (imm << shift) & mask;
    } else if (op == "movn") {
      v = ~(imm << shift) & mask;
    } else {
      v = ((v & ~(0xffffull << shift)) | (imm << shift)) & mask;
    }
  }
  return v;
}

#endif

}  // namespace

TEST_CASE("a64: bitmask immediate encoder agrees with an independent enumeration", "[a64]") {
  REQUIRE(bitmasks64().size() == 5334);
  REQUIRE(bitmasks32().size() == 1302);
  for (std::uint64_t v : bitmasks64()) REQUIRE(encode_bitmask_imm(v, true).has_value());
  for (std::uint64_t v : bitmasks32()) REQUIRE(encode_bitmask_imm(v, false).has_value());
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    CAPTURE(v);
    REQUIRE(encode_bitmask_imm(v, true).has_value() == (bitmasks64().count(v) == 1));
    REQUIRE(encode_bitmask_imm(v, false).has_value() == (bitmasks32().count(v & 0xffffffffu) == 1));
  }
  for (std::uint64_t v : {0ull, ~0ull, 0xffffffffull}) CHECK_FALSE(encode_bitmask_imm(v, v != 0xffffffffull));
}

TEST_CASE("a64: mov_imm_length is the shortest sequence", "[a64]") {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t v = 0;
    for (unsigned h = 0; h < 4; ++h) {
      const std::uint64_t pick[] = {0, 0xffff, rng() & 0xffff};
      v |= pick[rng() % 3] << (16 * h);
    }
    CAPTURE(v);
    REQUIRE(Assembler::mov_imm_length(v, true) == shortest_mov(v, true));
    REQUIRE(Assembler::mov_imm_length(v, false) == shortest_mov(v, false));
  }
}

TEST_CASE("a64: misuse is reported as an error value", "[a64]") {
  CHECK(fails([](Assembler& a) { a.add(X(0), X(1), sp); }));  // shifted form: 31 is xzr
  CHECK(fails([](Assembler& a) { a.orr(X(0), sp, X(1)); }));
  CHECK(fails([](Assembler& a) { a.add(xzr, X(1), 1); }));  // imm form: 31 is sp
  CHECK(fails([](Assembler& a) { a.ldr(X(0), Mem::at(xzr, 8)); }));
  CHECK(fails([](Assembler& a) { a.ldr(X(0), Mem::at(W(1), 8)); }));
  CHECK(fails([](Assembler& a) { a.add(X(0), W(1), X(2)); }));
  CHECK(fails([](Assembler& a) { a.sub(X(0), X(1), X(2), Shift::ror, 1); }));
  CHECK(fails([](Assembler& a) { a.add(X(0), X(1), X(2), Shift::lsl, 64); }));
  CHECK(fails([](Assembler& a) { a.add(W(0), W(1), W(2), Shift::lsl, 32); }));
  CHECK(fails([](Assembler& a) { a.movz(X(0), 1, 8); }));
  CHECK(fails([](Assembler& a) { a.movk(W(0), 1, 32); }));
  CHECK(fails([](Assembler& a) { a.lsl(X(0), X(1), 64); }));
  CHECK(fails([](Assembler& a) { a.uxtb(X(0), W(1)); }));
  CHECK(fails([](Assembler& a) { a.sxtw(W(0), W(1)); }));
  CHECK(fails([](Assembler& a) { a.ldrb(X(0), Mem::at(X(1))); }));
  CHECK(fails([](Assembler& a) { a.ldrsw(W(0), Mem::at(X(1))); }));
  CHECK(fails([](Assembler& a) { a.ldr(X(1), Mem::pre(X(1), 8)); }));  // writeback into the loaded register
  CHECK(fails([](Assembler& a) { a.str(X(1), Mem::post(X(1), 8)); }));
  CHECK(fails([](Assembler& a) { a.str(X(16), Mem::at(X(1), 0x123456), X(16)); }));  // scratch is the data
  CHECK_FALSE(X(32).valid());
  CHECK(X(31) == xzr);
  CHECK(fails([](Assembler& a) { a.ldp(X(1), X(1), Mem::at(X(2))); }));
  CHECK(fails([](Assembler& a) { a.stxr(W(1), X(1), X(2)); }));  // status overlaps data
  CHECK(fails([](Assembler& a) { a.stxr(X(3), X(1), X(2)); }));  // status must be w
  CHECK(fails([](Assembler& a) { a.cset(X(0), Cond::al); }));
  CHECK(fails([](Assembler& a) { a.br(W(3)); }));
  CHECK(fails([](Assembler& a) { a.tbz(W(0), 32, 8); }));
  CHECK(fails([](Assembler& a) { a.ldr(X(0), Mem::indexed(X(1), X(2), Extend::uxtb)); }));
  CHECK(fails([](Assembler& a) { a.ldr(X(0), Mem::indexed(X(1), W(2), Extend::uxtx)); }));

  // Failed emitters still occupy their length, and the first error is kept.
  Assembler a;
  a.and_(X(0), X(1), 0x1234);
  a.nop();
  CHECK(a.size() == 8);
  REQUIRE_FALSE(a.status().ok());
  CHECK(a.status().error().message.find("0x1234") != std::string::npos);
  CHECK_FALSE(a.finish().ok());
}

TEST_CASE("a64: labels", "[a64]") {
  SECTION("a label that is branched to but never bound is an error at finish") {
    Assembler a;
    Label l = a.new_label();
    a.cbz(X(0), l);
    REQUIRE(a.status().ok());
    auto r = a.finish();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("never bound") != std::string::npos);
  }
  SECTION("binding twice is an error") {
    Assembler a;
    Label l = a.new_label();
    a.bind(l);
    a.bind(l);
    CHECK_FALSE(a.status().ok());
  }
  SECTION("bound labels report their offset") {
    Assembler a;
    Label l = a.new_label();
    a.nop();
    a.nop();
    a.bind(l);
    CHECK(a.is_bound(l));
    CHECK(a.label_offset(l) == 8);
    auto r = a.finish();
    REQUIRE(r.ok());
    CHECK(r->size() == 8);
  }
}

#if BPFVM_HAVE_LLVM

TEST_CASE("a64 llvm: registers x0-x30, sp and xzr", "[a64][llvm]") {
  REQUIRE(llvm().ok());
  for (unsigned d = 0; d < 31; ++d) {
    const unsigned n = (d + 1) % 31, m = (d + 7) % 31;
    for (bool x : {true, false}) {
      CHECK(one([&](Assembler& a) { a.add(reg(x, d), reg(x, n), reg(x, m)); }) ==
            "add " + rn(x, d) + ", " + rn(x, n) + ", " + rn(x, m));
      CHECK(one([&](Assembler& a) { a.sub(reg(x, d), reg(x, n), 9); }) ==
            "sub " + rn(x, d) + ", " + rn(x, n) + ", #9");
      CHECK(one([&](Assembler& a) { a.mov(reg(x, d), reg(x, n)); }) == "mov " + rn(x, d) + ", " + rn(x, n));
      CHECK(one([&](Assembler& a) { a.ldr(reg(x, d), Mem::at(X(n), 16)); }) ==
            "ldr " + rn(x, d) + ", [" + xr(n) + ", #16]");
    }
  }
  CHECK(one([](Assembler& a) { a.add(X(0), xzr, X(2)); }) == "add x0, xzr, x2");
  CHECK(one([](Assembler& a) { a.add(xzr, X(1), X(2)); }) == "add xzr, x1, x2");
  CHECK(one([](Assembler& a) { a.mov(X(0), xzr); }) == "mov x0, xzr");
  CHECK(one([](Assembler& a) { a.add(sp, sp, 16); }) == "add sp, sp, #16");
  CHECK(one([](Assembler& a) { a.sub(sp, sp, 32); }) == "sub sp, sp, #32");
  CHECK(one([](Assembler& a) { a.add(X(29), sp, 0); }) == "mov x29, sp");
  CHECK(one([](Assembler& a) { a.mov(X(29), sp); }) == "mov x29, sp");
  CHECK(one([](Assembler& a) { a.mov(sp, X(29)); }) == "mov sp, x29");
  CHECK(one([](Assembler& a) { a.mov(wsp, W(3)); }) == "mov wsp, w3");
  CHECK(one([](Assembler& a) { a.add(X(0), sp, X(2)); }) == "add x0, sp, x2");
  CHECK(one([](Assembler& a) { a.add(sp, X(1), X(2)); }) == "add sp, x1, x2");
  CHECK(one([](Assembler& a) { a.sub(sp, sp, X(2), Shift::lsl, 3); }) == "sub sp, sp, x2, lsl #3");
  CHECK(one([](Assembler& a) { a.add(W(0), wsp, W(2)); }) == "add w0, wsp, w2");
  CHECK(one([](Assembler& a) { a.add(X(0), sp, W(2), Extend::uxtw, 2); }) == "add x0, sp, w2, uxtw #2");
  CHECK(one([](Assembler& a) { a.add(X(0), X(1), W(2), Extend::sxtw); }) == "add x0, x1, w2, sxtw");
  CHECK(one([](Assembler& a) { a.sub(X(0), X(1), X(2), Extend::sxtx, 1); }) == "sub x0, x1, x2, sxtx #1");
  CHECK(one([](Assembler& a) { a.cmp(sp, 1); }) == "cmp sp, #1");
  CHECK(one([](Assembler& a) { a.adds(X(0), sp, 1); }) == "adds x0, sp, #1");
  CHECK(one([](Assembler& a) { a.ldr(X(0), Mem::at(sp, 8)); }) == "ldr x0, [sp, #8]");
  CHECK(one([](Assembler& a) { a.str(xzr, Mem::at(sp, 8)); }) == "str xzr, [sp, #8]");
}

TEST_CASE("a64 llvm: every register in every register field", "[a64][llvm]") {
  struct Form {
    void (*emit)(Assembler&, unsigned d, unsigned n, unsigned m, unsigned a);
    std::string (*text)(unsigned d, unsigned n, unsigned m, unsigned a);
  };
  const Form forms[] = {
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned a) { as.madd(X(d), X(n), X(m), X(a)); },
       [](unsigned d, unsigned n, unsigned m, unsigned a) {
         return "madd " + xr(d) + ", " + xr(n) + ", " + xr(m) + ", " + xr(a);
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned a) { as.msub(W(d), W(n), W(m), W(a)); },
       [](unsigned d, unsigned n, unsigned m, unsigned a) {
         return "msub " + wr(d) + ", " + wr(n) + ", " + wr(m) + ", " + wr(a);
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) { as.sdiv(X(d), X(n), X(m)); },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "sdiv " + xr(d) + ", " + xr(n) + ", " + xr(m);
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) { as.umulh(X(d), X(n), X(m)); },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "umulh " + xr(d) + ", " + xr(n) + ", " + xr(m);
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) { as.asrv(W(d), W(n), W(m)); },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "asr " + wr(d) + ", " + wr(n) + ", " + wr(m);
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.eor(X(d), X(n), X(m), Shift::ror, 3);
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "eor " + xr(d) + ", " + xr(n) + ", " + xr(m) + ", ror #3";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.subs(X(d), X(n), X(m), Shift::asr, 2);
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "subs " + xr(d) + ", " + xr(n) + ", " + xr(m) + ", asr #2";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.csel(X(d), X(n), X(m), Cond::hi);
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "csel " + xr(d) + ", " + xr(n) + ", " + xr(m) + ", hi";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned, unsigned) { as.and_(X(d), X(n), 0xff0); },
       [](unsigned d, unsigned n, unsigned, unsigned) { return "and " + xr(d) + ", " + xr(n) + ", #0xff0"; }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned, unsigned) { as.sub(W(d), W(n), 100); },
       [](unsigned d, unsigned n, unsigned, unsigned) { return "sub " + wr(d) + ", " + wr(n) + ", #100"; }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned, unsigned) { as.rev(X(d), X(n)); },
       [](unsigned d, unsigned n, unsigned, unsigned) { return "rev " + xr(d) + ", " + xr(n); }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned, unsigned) { as.sxth(X(d), W(n)); },
       [](unsigned d, unsigned n, unsigned, unsigned) { return "sxth " + xr(d) + ", " + wr(n); }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned, unsigned) { as.ubfx(X(d), X(n), 4, 9); },
       [](unsigned d, unsigned n, unsigned, unsigned) {
         return "ubfx " + xr(d) + ", " + xr(n) + ", #4, #9";
       }},
      {[](Assembler& as, unsigned d, unsigned, unsigned, unsigned) { as.movk(X(d), 7, 48); },
       [](unsigned d, unsigned, unsigned, unsigned) { return "movk " + xr(d) + ", #7, lsl #48"; }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned, unsigned) { as.ldrsh(X(d), Mem::at(X(n), 6)); },
       [](unsigned d, unsigned n, unsigned, unsigned) { return "ldrsh " + xr(d) + ", [" + xr(n) + ", #6]"; }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.str(W(d), Mem::indexed(X(n), W(m), Extend::sxtw, true));
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "str " + wr(d) + ", [" + xr(n) + ", " + wr(m) + ", sxtw #2]";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.stp(X(d), X(m), Mem::at(X(n), -8));
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "stp " + xr(d) + ", " + xr(m) + ", [" + xr(n) + ", #-8]";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) { as.stlxr(W(m), X(d), X(n)); },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "stlxr " + wr(m) + ", " + xr(d) + ", [" + xr(n) + "]";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.ldclr(X(m), X(d), X(n), Order::acq_rel);
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "ldclral " + xr(m) + ", " + xr(d) + ", [" + xr(n) + "]";
       }},
      {[](Assembler& as, unsigned d, unsigned n, unsigned m, unsigned) {
         as.cas(W(m), W(d), X(n), Order::acquire);
       },
       [](unsigned d, unsigned n, unsigned m, unsigned) {
         return "casa " + wr(m) + ", " + wr(d) + ", [" + xr(n) + "]";
       }},
      {[](Assembler& as, unsigned d, unsigned, unsigned, unsigned) { as.cbnz(X(d), 64); },
       [](unsigned d, unsigned, unsigned, unsigned) { return "cbnz " + xr(d) + ", #64"; }},
      {[](Assembler& as, unsigned d, unsigned, unsigned, unsigned) { as.tbz(X(d), 33, -64); },
       [](unsigned d, unsigned, unsigned, unsigned) { return "tbz " + xr(d) + ", #33, #-64"; }},
      {[](Assembler& as, unsigned d, unsigned, unsigned, unsigned) { as.blr(X(d)); },
       [](unsigned d, unsigned, unsigned, unsigned) { return "blr " + xr(d); }},
  };
  for (unsigned r = 0; r < 31; ++r) {
    const unsigned d = r, n = (r + 11) % 31, m = (r + 23) % 31, a = (r + 5) % 31;
    for (const Form& f : forms) {
      Assembler as;
      f.emit(as, d, n, m, a);
      if (!as.status().ok()) {
        // Only the unpredictable overlaps (status = data/address) may be refused.
        INFO(as.status().error().message);
        CHECK((d == m || n == m));
        continue;
      }
      REQUIRE(as.size() == 4);
      CHECK(llvm().text(as.words()[0]) == f.text(d, n, m, a));
    }
  }
}

TEST_CASE("a64 llvm: add/sub immediates", "[a64][llvm]") {
  for (bool x : {true, false}) {
    const std::string d = rn(x, 0), n = rn(x, 1);
    for (std::int64_t imm : {0, 1, 7, 4095}) {
      CHECK(one([&](Assembler& a) { a.add(reg(x, 0), reg(x, 1), imm); }) ==
            "add " + d + ", " + n + ", #" + std::to_string(imm));
      CHECK(one([&](Assembler& a) { a.subs(reg(x, 0), reg(x, 1), imm); }) ==
            "subs " + d + ", " + n + ", #" + std::to_string(imm));
      CHECK(one([&](Assembler& a) { a.cmp(reg(x, 1), imm); }) == "cmp " + n + ", #" + std::to_string(imm));
      CHECK(one([&](Assembler& a) { a.cmn(reg(x, 1), imm); }) == "cmn " + n + ", #" + std::to_string(imm));
    }
    for (std::int64_t imm : {1, 4095}) {
      CHECK(one([&](Assembler& a) { a.add(reg(x, 0), reg(x, 1), imm << 12); }) ==
            "add " + d + ", " + n + ", #" + std::to_string(imm) + ", lsl #12");
      CHECK(one([&](Assembler& a) { a.sub(reg(x, 0), reg(x, 1), -imm); }) ==
            "add " + d + ", " + n + ", #" + std::to_string(imm));
      CHECK(one([&](Assembler& a) { a.add(reg(x, 0), reg(x, 1), -imm); }) ==
            "sub " + d + ", " + n + ", #" + std::to_string(imm));
      CHECK(one([&](Assembler& a) { a.add(reg(x, 0), reg(x, 1), -(imm << 12)); }) ==
            "sub " + d + ", " + n + ", #" + std::to_string(imm) + ", lsl #12");
      CHECK(one([&](Assembler& a) { a.cmp(reg(x, 1), -imm); }) == "cmn " + n + ", #" + std::to_string(imm));
      CHECK(one([&](Assembler& a) { a.adds(reg(x, 0), reg(x, 1), -imm); }) ==
            "subs " + d + ", " + n + ", #" + std::to_string(imm));
    }
    // 24 bits: high part shifted, then the low part into the destination.
    CHECK(all([&](Assembler& a) { a.add(reg(x, 0), reg(x, 1), 0x123456); }) ==
          std::vector<std::string>{"add " + d + ", " + n + ", #291, lsl #12",
                                   "add " + d + ", " + d + ", #1110"});
    CHECK(
        all([&](Assembler& a) { a.sub(reg(x, 0), reg(x, 1), 0xfff001); }) ==
        std::vector<std::string>{"sub " + d + ", " + n + ", #4095, lsl #12", "sub " + d + ", " + d + ", #1"});
    // Beyond: an error without a scratch register, a constant in the scratch with one.
    CHECK(fails([&](Assembler& a) { a.add(reg(x, 0), reg(x, 1), 0x1234567); }));
    CHECK(fails([&](Assembler& a) { a.adds(reg(x, 0), reg(x, 1), 0x123456); }));
    CHECK(fails([&](Assembler& a) { a.cmp(reg(x, 1), 0x1001); }));
    for (std::int64_t imm : {0x1234567ll, -0x1234567ll, 0x1001ll, -0x1001ll}) {
      for (bool flags : {false, true}) {
        if (!flags && imm > -(1 << 24) && imm < (1 << 24)) continue;  // two add/sub instead
        auto lines = all([&](Assembler& a) {
          if (flags) {
            a.subs(reg(x, 0), reg(x, 1), imm, X(16));
          } else {
            a.sub(reg(x, 0), reg(x, 1), imm, X(16));
          }
        });
        REQUIRE(lines.size() >= 2);
        CHECK(lines.back() == std::string(flags ? "subs " : "sub ") + d + ", " + n + ", " + rn(x, 16));
        lines.pop_back();
        CHECK(simulate_mov(lines, 16) == (static_cast<std::uint64_t>(imm) & (x ? ~0ull : 0xffffffffull)));
      }
    }
  }
  auto lines = all([](Assembler& a) { a.add(X(0), sp, 0x12345678, X(16)); });
  CHECK(lines.back() == "add x0, sp, x16");
  CHECK(fails([](Assembler& a) { a.add(X(0), X(16), 0x12345678, X(16)); }));  // scratch is the source
}

TEST_CASE("a64 llvm: logical immediates over every encodable pattern", "[a64][llvm]") {
  std::size_t i = 0;
  for (std::uint64_t v : bitmasks64()) {
    CAPTURE(v);
    CHECK(one([&](Assembler& a) { a.and_(X(0), X(1), v); }) == "and x0, x1, #" + hex(v));
    if (i++ % 5 == 0) {
      CHECK(one([&](Assembler& a) { a.eor(X(2), X(3), v); }) == "eor x2, x3, #" + hex(v));
      CHECK(one([&](Assembler& a) { a.orr(X(4), X(5), v); }) == "orr x4, x5, #" + hex(v));
      CHECK(one([&](Assembler& a) { a.ands(X(6), X(7), v); }) == "ands x6, x7, #" + hex(v));
      CHECK(one([&](Assembler& a) { a.tst(X(8), v); }) == "tst x8, #" + hex(v));
    }
  }
  for (std::uint64_t v : bitmasks32()) {
    CAPTURE(v);
    CHECK(one([&](Assembler& a) { a.and_(W(0), W(1), v); }) == "and w0, w1, #" + hex(v));
    CHECK(one([&](Assembler& a) { a.orr(W(9), W(10), v); }) == "orr w9, w10, #" + hex(v));
  }
  CHECK(one([](Assembler& a) { a.and_(sp, X(1), 0xfffffffffffffff0ull); }) ==
        "and sp, x1, #0xfffffffffffffff0");
}

TEST_CASE("a64 llvm: logical immediates that do not encode fall back to a scratch register", "[a64][llvm]") {
  std::mt19937_64 rng(3);
  std::vector<std::uint64_t> values = {0, ~0ull, 0x1234, 0x8000000000000001ull - 2, 0x00ff00ff00ff00feull};
  for (int i = 0; i < 3000; ++i) values.push_back(rng() >> (rng() % 48));
  for (std::uint64_t v : values) {
    if (bitmasks64().count(v)) continue;
    CAPTURE(v);
    CHECK(fails([&](Assembler& a) { a.and_(X(0), X(1), v); }));
    auto lines = all([&](Assembler& a) { a.and_(X(0), X(1), v, X(17)); });
    REQUIRE(lines.size() >= 2);
    CHECK(lines.back() == "and x0, x1, x17");
    lines.pop_back();
    CHECK(lines.size() == shortest_mov(v, true));
    CHECK(simulate_mov(lines, 17) == v);
    const std::uint64_t v32 = v & 0xffffffffu;
    if (bitmasks32().count(v32)) continue;
    auto wlines = all([&](Assembler& a) { a.eor(W(2), W(3), v32, X(16)); });
    CHECK(wlines.back() == "eor w2, w3, w16");
    wlines.pop_back();
    CHECK(simulate_mov(wlines, 16) == v32);
  }
}

TEST_CASE("a64 llvm: mov_imm builds every value with the shortest sequence", "[a64][llvm]") {
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> values = {0,
                                       1,
                                       0xffff,
                                       0x10000,
                                       ~0ull,
                                       0xffffffffull,
                                       0xffffffff0000ull,
                                       0x8000000000000000ull,
                                       0x00000000ffff1234ull,
                                       0x5555555555555555ull};
  for (int i = 0; i < 4000; ++i) {
    std::uint64_t v = 0;
    for (unsigned h = 0; h < 4; ++h) {
      const std::uint64_t pick[] = {0, 0xffff, rng() & 0xffff};
      v |= pick[rng() % 3] << (16 * h);
    }
    values.push_back(v);
    values.push_back(rng());
  }
  std::size_t i = 0;
  for (std::uint64_t v : bitmasks64())
    if (i++ % 4 == 0) values.push_back(v);
  for (std::uint64_t v : values) {
    CAPTURE(v);
    auto lines = all([&](Assembler& a) { a.mov_imm(X(5), v); });
    CHECK(lines.size() == shortest_mov(v, true));
    CHECK(simulate_mov(lines, 5) == v);
    auto wlines = all([&](Assembler& a) { a.mov_imm(W(7), v); });
    CHECK(wlines.size() == shortest_mov(v, false));
    CHECK(simulate_mov(wlines, 7) == (v & 0xffffffffu));
  }
}

TEST_CASE("a64 llvm: move wide", "[a64][llvm]") {
  for (unsigned shift : {0u, 16u, 32u, 48u}) {
    const std::string lsl = shift ? ", lsl #" + std::to_string(shift) : "";
    CHECK(one([&](Assembler& a) { a.movk(X(3), 0x1234, shift); }) == "movk x3, #4660" + lsl);
    CHECK(one([&](Assembler& a) { a.movz(X(3), 0x1234, shift); }) ==
          "mov x3, #" + std::to_string(0x1234ull << shift));
    CHECK(one([&](Assembler& a) { a.movn(X(3), 0x1234, shift); }) ==
          "mov x3, #" + std::to_string(static_cast<std::int64_t>(~(0x1234ull << shift))));
    if (shift < 32) CHECK(one([&](Assembler& a) { a.movk(W(3), 0xffff, shift); }) == "movk w3, #65535" + lsl);
  }
  CHECK(one([](Assembler& a) { a.movz(X(3), 0, 16); }) == "movz x3, #0, lsl #16");
}

TEST_CASE("a64 llvm: register forms with shifts", "[a64][llvm]") {
  const char* shifts[] = {"lsl", "lsr", "asr", "ror"};
  for (bool x : {true, false}) {
    const std::string d = rn(x, 0), n = rn(x, 1), m = rn(x, 2);
    const Reg D = reg(x, 0), N = reg(x, 1), M = reg(x, 2);
    for (unsigned s = 0; s < 4; ++s) {
      const Shift sh = static_cast<Shift>(s);
      for (unsigned amount : {1u, x ? 63u : 31u}) {
        const std::string tail = std::string(", ") + shifts[s] + " #" + std::to_string(amount);
        if (sh != Shift::ror) {
          CHECK(one([&](Assembler& a) { a.add(D, N, M, sh, amount); }) ==
                "add " + d + ", " + n + ", " + m + tail);
          CHECK(one([&](Assembler& a) { a.subs(D, N, M, sh, amount); }) ==
                "subs " + d + ", " + n + ", " + m + tail);
          CHECK(one([&](Assembler& a) { a.cmp(N, M, sh, amount); }) == "cmp " + n + ", " + m + tail);
          CHECK(one([&](Assembler& a) { a.cmn(N, M, sh, amount); }) == "cmn " + n + ", " + m + tail);
          CHECK(one([&](Assembler& a) { a.neg(D, M, sh, amount); }) == "neg " + d + ", " + m + tail);
        }
        CHECK(one([&](Assembler& a) { a.and_(D, N, M, sh, amount); }) ==
              "and " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.orr(D, N, M, sh, amount); }) ==
              "orr " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.eor(D, N, M, sh, amount); }) ==
              "eor " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.bic(D, N, M, sh, amount); }) ==
              "bic " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.orn(D, N, M, sh, amount); }) ==
              "orn " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.eon(D, N, M, sh, amount); }) ==
              "eon " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.ands(D, N, M, sh, amount); }) ==
              "ands " + d + ", " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.tst(N, M, sh, amount); }) == "tst " + n + ", " + m + tail);
        CHECK(one([&](Assembler& a) { a.mvn(D, M, sh, amount); }) == "mvn " + d + ", " + m + tail);
      }
    }
    CHECK(one([&](Assembler& a) { a.sub(D, N, M); }) == "sub " + d + ", " + n + ", " + m);
    CHECK(one([&](Assembler& a) { a.adds(D, N, M); }) == "adds " + d + ", " + n + ", " + m);
    CHECK(one([&](Assembler& a) { a.neg(D, M); }) == "neg " + d + ", " + m);
    CHECK(one([&](Assembler& a) { a.mvn(D, M); }) == "mvn " + d + ", " + m);
    CHECK(one([&](Assembler& a) { a.cmp(N, M); }) == "cmp " + n + ", " + m);
  }
}

TEST_CASE("a64 llvm: multiply, divide, variable shifts", "[a64][llvm]") {
  for (bool x : {true, false}) {
    const std::string d = rn(x, 3), n = rn(x, 4), m = rn(x, 5), ra = rn(x, 6);
    const Reg D = reg(x, 3), N = reg(x, 4), M = reg(x, 5), A = reg(x, 6);
    const std::string ops = d + ", " + n + ", " + m;
    CHECK(one([&](Assembler& a) { a.madd(D, N, M, A); }) == "madd " + ops + ", " + ra);
    CHECK(one([&](Assembler& a) { a.msub(D, N, M, A); }) == "msub " + ops + ", " + ra);
    CHECK(one([&](Assembler& a) { a.mul(D, N, M); }) == "mul " + ops);
    CHECK(one([&](Assembler& a) { a.udiv(D, N, M); }) == "udiv " + ops);
    CHECK(one([&](Assembler& a) { a.sdiv(D, N, M); }) == "sdiv " + ops);
    CHECK(one([&](Assembler& a) { a.lslv(D, N, M); }) == "lsl " + ops);
    CHECK(one([&](Assembler& a) { a.lsrv(D, N, M); }) == "lsr " + ops);
    CHECK(one([&](Assembler& a) { a.asrv(D, N, M); }) == "asr " + ops);
    CHECK(one([&](Assembler& a) { a.rorv(D, N, M); }) == "ror " + ops);
  }
}

TEST_CASE("a64 llvm: immediate shifts, extensions, byte swaps", "[a64][llvm]") {
  for (bool x : {true, false}) {
    const unsigned width = x ? 64 : 32;
    const std::string dn = rn(x, 0) + ", " + rn(x, 1);
    const Reg D = reg(x, 0), N = reg(x, 1);
    for (unsigned s = 0; s < width; ++s) {
      const std::string amt = ", #" + std::to_string(s);
      // lsl #0 is the same instruction as lsr #0, which is the preferred text.
      CHECK(one([&](Assembler& a) { a.lsl(D, N, s); }) == (s == 0 ? "lsr " : "lsl ") + dn + amt);
      CHECK(one([&](Assembler& a) { a.lsr(D, N, s); }) == "lsr " + dn + amt);
      CHECK(one([&](Assembler& a) { a.asr(D, N, s); }) == "asr " + dn + amt);
      CHECK(one([&](Assembler& a) { a.ror(D, N, s); }) == "ror " + dn + amt);
    }
    CHECK(one([&](Assembler& a) { a.sxtb(D, W(1)); }) == "sxtb " + rn(x, 0) + ", w1");
    CHECK(one([&](Assembler& a) { a.sxth(D, W(1)); }) == "sxth " + rn(x, 0) + ", w1");
    CHECK(one([&](Assembler& a) { a.rev(D, N); }) == "rev " + dn);
    CHECK(one([&](Assembler& a) { a.rev16(D, N); }) == "rev16 " + dn);
    CHECK(one([&](Assembler& a) { a.ubfm(D, N, 3, 9); }) == "ubfx " + dn + ", #3, #7");
    CHECK(one([&](Assembler& a) { a.sbfm(D, N, 3, 9); }) == "sbfx " + dn + ", #3, #7");
  }
  for (bool x : {true, false}) {
    const unsigned bits = x ? 64 : 32;
    const std::string dn = rn(x, 0) + ", " + rn(x, 1);
    const Reg D = reg(x, 0), N = reg(x, 1);
    // Fields that neither touch the top bit nor start at bit 0 have no shorter alias.
    for (unsigned lsb : {1u, 5u, 20u, bits - 3}) {
      for (unsigned width : {1u, 2u, 3u, 8u}) {
        if (lsb + width >= bits) continue;
        const std::string f = ", #" + std::to_string(lsb) + ", #" + std::to_string(width);
        CHECK(one([&](Assembler& a) { a.ubfx(D, N, lsb, width); }) == "ubfx " + dn + f);
        CHECK(one([&](Assembler& a) { a.sbfx(D, N, lsb, width); }) == "sbfx " + dn + f);
        CHECK(one([&](Assembler& a) { a.ubfiz(D, N, lsb, width); }) == "ubfiz " + dn + f);
        CHECK(one([&](Assembler& a) { a.bfi(D, N, lsb, width); }) == "bfi " + dn + f);
        CHECK(one([&](Assembler& a) { a.bfxil(D, N, lsb, width); }) == "bfxil " + dn + f);
      }
    }
    CHECK(one([&](Assembler& a) { a.ubfx(D, N, 0, 3); }) == "ubfx " + dn + ", #0, #3");
    CHECK(fails([&](Assembler& a) { a.ubfx(D, N, bits - 4, 5); }));
    CHECK(fails([&](Assembler& a) { a.bfi(D, N, 0, 0); }));
    CHECK(fails([&](Assembler& a) { a.ubfiz(D, N, bits, 1); }));
    CHECK(one([&](Assembler& a) { a.clz(D, N); }) == "clz " + dn);
  }
  CHECK(one([](Assembler& a) { a.umulh(X(0), X(1), X(2)); }) == "umulh x0, x1, x2");
  CHECK(one([](Assembler& a) { a.smulh(X(0), X(1), X(2)); }) == "smulh x0, x1, x2");
  CHECK(fails([](Assembler& a) { a.umulh(W(0), W(1), W(2)); }));
  CHECK(one([](Assembler& a) { a.sxtw(X(0), W(1)); }) == "sxtw x0, w1");
  CHECK(one([](Assembler& a) { a.uxtb(W(0), W(1)); }) == "uxtb w0, w1");
  CHECK(one([](Assembler& a) { a.uxth(W(0), W(1)); }) == "uxth w0, w1");
  CHECK(one([](Assembler& a) { a.rev32(X(0), X(1)); }) == "rev32 x0, x1");
}

TEST_CASE("a64 llvm: conditional select", "[a64][llvm]") {
  for (unsigned c = 0; c < 16; ++c) {
    const Cond cond = static_cast<Cond>(c);
    for (bool x : {true, false}) {
      const std::string ops = rn(x, 0) + ", " + rn(x, 1) + ", " + rn(x, 2) + ", " + kConds[c];
      const Reg D = reg(x, 0), N = reg(x, 1), M = reg(x, 2);
      CHECK(one([&](Assembler& a) { a.csel(D, N, M, cond); }) == "csel " + ops);
      CHECK(one([&](Assembler& a) { a.csinc(D, N, M, cond); }) == "csinc " + ops);
      CHECK(one([&](Assembler& a) { a.csinv(D, N, M, cond); }) == "csinv " + ops);
      CHECK(one([&](Assembler& a) { a.csneg(D, N, M, cond); }) == "csneg " + ops);
      if (c < 14) {
        CHECK(one([&](Assembler& a) { a.cset(D, cond); }) == "cset " + rn(x, 0) + ", " + kConds[c]);
        CHECK(one([&](Assembler& a) { a.csetm(D, cond); }) == "csetm " + rn(x, 0) + ", " + kConds[c]);
      }
    }
  }
}

namespace {
struct LoadStore {
  const char* name;
  void (Assembler::*emit)(Reg, Mem, Reg);
  unsigned size_log2;
  bool x;
};
const LoadStore kLoadStores[] = {
    {"ldrb", &Assembler::ldrb, 0, false},   {"ldrh", &Assembler::ldrh, 1, false},
    {"ldr", &Assembler::ldr, 2, false},     {"ldr", &Assembler::ldr, 3, true},
    {"ldrsb", &Assembler::ldrsb, 0, false}, {"ldrsb", &Assembler::ldrsb, 0, true},
    {"ldrsh", &Assembler::ldrsh, 1, false}, {"ldrsh", &Assembler::ldrsh, 1, true},
    {"ldrsw", &Assembler::ldrsw, 2, true},  {"strb", &Assembler::strb, 0, false},
    {"strh", &Assembler::strh, 1, false},   {"str", &Assembler::str, 2, false},
    {"str", &Assembler::str, 3, true},
};
}  // namespace

TEST_CASE("a64 llvm: loads and stores of every width and addressing mode", "[a64][llvm]") {
  for (const LoadStore& ls : kLoadStores) {
    const std::string name = ls.name;
    const std::string unscaled = name.substr(0, 2) + "u" + name.substr(2);
    const std::string t = rn(ls.x, 0);
    const Reg T = reg(ls.x, 0);
    const std::int64_t scale = std::int64_t{1} << ls.size_log2;
    auto emit = [&](Mem m) { return [=](Assembler& a) { (a.*ls.emit)(T, m, no_reg); }; };
    CAPTURE(name, ls.x);
    // Scaled unsigned offsets up to 4095 units.
    CHECK(one(emit(Mem::at(X(1)))) == name + " " + t + ", [x1]");
    for (std::int64_t off : {scale, 8 * scale, 4095 * scale})
      CHECK(one(emit(Mem::at(X(1), off))) == name + " " + t + ", [x1, #" + std::to_string(off) + "]");
    CHECK(one(emit(Mem::at(sp, 2 * scale))) == name + " " + t + ", [sp, #" + std::to_string(2 * scale) + "]");
    // Unscaled signed offsets -256..255 when the scaled form cannot express them.
    for (std::int64_t off : {std::int64_t{-256}, std::int64_t{-1}, -scale})
      CHECK(one(emit(Mem::at(X(1), off))) == unscaled + " " + t + ", [x1, #" + std::to_string(off) + "]");
    if (scale > 1) {
      CHECK(one(emit(Mem::at(X(1), 1))) == unscaled + " " + t + ", [x1, #1]");
      CHECK(one(emit(Mem::at(X(1), 255))) == unscaled + " " + t + ", [x1, #255]");
    }
    CHECK(fails(emit(Mem::at(X(1), -257))));
    CHECK(fails(emit(Mem::at(X(1), 4096 * scale))));
    if (scale > 1) CHECK(fails(emit(Mem::at(X(1), 4095 * scale + 1))));
    // Offsets beyond both forms go through a scratch register as a register offset.
    for (std::int64_t off :
         {std::int64_t{-257}, 4096 * scale, std::int64_t{0x123456}, std::int64_t{-100000}}) {
      CAPTURE(off);
      auto lines = all([&](Assembler& a) { (a.*ls.emit)(T, Mem::at(X(1), off), X(16)); });
      REQUIRE(lines.size() >= 2);
      CHECK(lines.back() == name + " " + t + ", [x1, x16]");
      lines.pop_back();
      CHECK(simulate_mov(lines, 16) == static_cast<std::uint64_t>(off));
    }
    CHECK(fails([&](Assembler& a) { (a.*ls.emit)(T, Mem::at(X(16), 0x123456), X(16)); }));
    // Pre- and post-index.
    for (std::int64_t off : {-256, 255, 8}) {
      const std::string o = std::to_string(off);
      CHECK(one(emit(Mem::pre(X(1), off))) == name + " " + t + ", [x1, #" + o + "]!");
      CHECK(one(emit(Mem::post(X(1), off))) == name + " " + t + ", [x1], #" + o);
    }
    CHECK(fails(emit(Mem::pre(X(1), 256))));
    CHECK(fails(emit(Mem::post(X(1), -257))));
    // Register offsets.
    const std::string sh = " #" + std::to_string(ls.size_log2);
    CHECK(one(emit(Mem::indexed(X(1), X(2)))) == name + " " + t + ", [x1, x2]");
    CHECK(one(emit(Mem::indexed(X(1), X(2), Extend::uxtx, true))) ==
          name + " " + t + ", [x1, x2, lsl" + sh + "]");
    CHECK(one(emit(Mem::indexed(X(1), W(2), Extend::uxtw))) == name + " " + t + ", [x1, w2, uxtw]");
    CHECK(one(emit(Mem::indexed(X(1), W(2), Extend::uxtw, true))) ==
          name + " " + t + ", [x1, w2, uxtw" + sh + "]");
    CHECK(one(emit(Mem::indexed(X(1), W(2), Extend::sxtw))) == name + " " + t + ", [x1, w2, sxtw]");
    CHECK(one(emit(Mem::indexed(X(1), X(2), Extend::sxtx, true))) ==
          name + " " + t + ", [x1, x2, sxtx" + sh + "]");
    CHECK(one(emit(Mem::indexed(sp, X(30)))) == name + " " + t + ", [sp, x30]");
  }
  CHECK(one([](Assembler& a) { a.ldur(X(0), X(1), 8); }) == "ldur x0, [x1, #8]");
  CHECK(one([](Assembler& a) { a.ldur(W(0), sp, -256); }) == "ldur w0, [sp, #-256]");
  CHECK(one([](Assembler& a) { a.stur(X(0), X(1), 255); }) == "stur x0, [x1, #255]");
  CHECK(one([](Assembler& a) { a.stur(W(0), X(1), 0); }) == "stur w0, [x1]");
  CHECK(fails([](Assembler& a) { a.ldur(X(0), X(1), 256); }));
  CHECK(fails([](Assembler& a) { a.stur(X(0), X(1), -257); }));
}

TEST_CASE("a64 llvm: load/store pair", "[a64][llvm]") {
  for (bool x : {true, false}) {
    const std::int64_t scale = x ? 8 : 4;
    const std::string regs = rn(x, 29) + ", " + rn(x, 30);
    const Reg A = reg(x, 29), B = reg(x, 30);
    for (std::int64_t off : {-64 * scale, scale, 63 * scale}) {
      const std::string o = std::to_string(off);
      CHECK(one([&](Assembler& a) { a.stp(A, B, Mem::at(sp, off)); }) ==
            "stp " + regs + ", [sp, #" + o + "]");
      CHECK(one([&](Assembler& a) { a.ldp(A, B, Mem::at(X(2), off)); }) ==
            "ldp " + regs + ", [x2, #" + o + "]");
      CHECK(one([&](Assembler& a) { a.stp(A, B, Mem::pre(sp, off)); }) ==
            "stp " + regs + ", [sp, #" + o + "]!");
      CHECK(one([&](Assembler& a) { a.ldp(A, B, Mem::post(sp, off)); }) == "ldp " + regs + ", [sp], #" + o);
    }
    CHECK(one([&](Assembler& a) { a.ldp(A, B, Mem::at(X(2))); }) == "ldp " + regs + ", [x2]");
    CHECK(fails([&](Assembler& a) { a.stp(A, B, Mem::at(sp, 64 * scale)); }));
    CHECK(fails([&](Assembler& a) { a.stp(A, B, Mem::pre(sp, -65 * scale)); }));
    CHECK(fails([&](Assembler& a) { a.stp(A, B, Mem::at(sp, scale / 2)); }));
    CHECK(fails([&](Assembler& a) { a.stp(A, B, Mem::indexed(sp, X(1))); }));
  }
  CHECK(one([](Assembler& a) { a.stp(X(29), X(30), Mem::pre(sp, -16)); }) == "stp x29, x30, [sp, #-16]!");
  CHECK(one([](Assembler& a) { a.ldp(X(29), X(30), Mem::post(sp, 16)); }) == "ldp x29, x30, [sp], #16");
}

TEST_CASE("a64 llvm: exclusive and LSE atomics, barriers", "[a64][llvm]") {
  for (bool x : {true, false}) {
    const std::string t = rn(x, 0);
    const Reg T = reg(x, 0);
    CHECK(one([&](Assembler& a) { a.ldxr(T, X(1)); }) == "ldxr " + t + ", [x1]");
    CHECK(one([&](Assembler& a) { a.ldaxr(T, sp); }) == "ldaxr " + t + ", [sp]");
    CHECK(one([&](Assembler& a) { a.stxr(W(2), T, X(1)); }) == "stxr w2, " + t + ", [x1]");
    CHECK(one([&](Assembler& a) { a.stlxr(W(2), T, X(1)); }) == "stlxr w2, " + t + ", [x1]");
    CHECK(one([&](Assembler& a) { a.ldar(T, X(1)); }) == "ldar " + t + ", [x1]");
    CHECK(one([&](Assembler& a) { a.stlr(T, X(1)); }) == "stlr " + t + ", [x1]");

    const char* suffix[] = {"", "a", "l", "al"};
    struct Op {
      const char* name;
      void (Assembler::*emit)(Reg, Reg, Reg, Order);
    };
    const Op ops[] = {{"ldadd", &Assembler::ldadd}, {"ldclr", &Assembler::ldclr},
                      {"ldeor", &Assembler::ldeor}, {"ldset", &Assembler::ldset},
                      {"swp", &Assembler::swp},     {"cas", &Assembler::cas}};
    const std::string s = rn(x, 3);
    for (const Op& op : ops) {
      for (unsigned o = 0; o < 4; ++o) {
        const Order order = static_cast<Order>(o);
        CHECK(one([&](Assembler& a) { (a.*op.emit)(reg(x, 3), T, X(1), order); }) ==
              std::string(op.name) + suffix[o] + " " + s + ", " + t + ", [x1]");
      }
    }
    // A load-op that discards its result (rt = zr, no acquire) is printed as the store-op alias.
    CHECK(one([&](Assembler& a) { a.ldadd(reg(x, 3), reg(x, 31), X(1)); }) == "stadd " + s + ", [x1]");
    CHECK(one([&](Assembler& a) { a.ldset(reg(x, 3), reg(x, 31), X(1), Order::release); }) ==
          "stsetl " + s + ", [x1]");
  }
  CHECK(one([](Assembler& a) { a.dmb(Barrier::ish); }) == "dmb ish");
  CHECK(one([](Assembler& a) { a.dmb(Barrier::ishld); }) == "dmb ishld");
  CHECK(one([](Assembler& a) { a.dmb(Barrier::ishst); }) == "dmb ishst");
  CHECK(one([](Assembler& a) { a.dmb(Barrier::sy); }) == "dmb sy");
}

TEST_CASE("a64 llvm: branches over their full ranges", "[a64][llvm]") {
  const std::int64_t b26 = std::int64_t{1} << 27, imm19 = 1 << 20, imm14 = 1 << 15;
  for (std::int64_t off : {std::int64_t{0}, std::int64_t{4}, std::int64_t{-4}, b26 - 4, -b26}) {
    const std::string o = "#" + std::to_string(off);
    CHECK(one([&](Assembler& a) { a.b(off); }) == "b " + o);
    CHECK(one([&](Assembler& a) { a.bl(off); }) == "bl " + o);
  }
  for (std::int64_t off : {b26, -b26 - 4, std::int64_t{2}}) {
    CHECK(fails([&](Assembler& a) { a.b(off); }));
    CHECK(fails([&](Assembler& a) { a.bl(off); }));
  }
  for (std::int64_t off : {std::int64_t{8}, std::int64_t{-8}, imm19 - 4, -imm19}) {
    const std::string o = "#" + std::to_string(off);
    for (unsigned c = 0; c < 16; ++c)
      CHECK(one([&](Assembler& a) { a.b(static_cast<Cond>(c), off); }) ==
            std::string("b.") + kConds[c] + " " + o);
    for (bool x : {true, false}) {
      CHECK(one([&](Assembler& a) { a.cbz(reg(x, 7), off); }) == "cbz " + rn(x, 7) + ", " + o);
      CHECK(one([&](Assembler& a) { a.cbnz(reg(x, 7), off); }) == "cbnz " + rn(x, 7) + ", " + o);
    }
  }
  for (std::int64_t off : {imm19, -imm19 - 4, std::int64_t{6}}) {
    CHECK(fails([&](Assembler& a) { a.b(Cond::eq, off); }));
    CHECK(fails([&](Assembler& a) { a.cbz(X(0), off); }));
    CHECK(fails([&](Assembler& a) { a.cbnz(W(0), off); }));
  }
  for (std::int64_t off : {std::int64_t{8}, imm14 - 4, -imm14}) {
    const std::string o = "#" + std::to_string(off);
    for (unsigned bit = 0; bit < 64; ++bit) {
      // The register is printed as w for bits 0-31, as x above.
      const std::string r = bit < 32 ? "w9" : "x9";
      const std::string tail = ", #" + std::to_string(bit) + ", " + o;
      CHECK(one([&](Assembler& a) { a.tbz(X(9), bit, off); }) == "tbz " + r + tail);
      CHECK(one([&](Assembler& a) { a.tbnz(X(9), bit, off); }) == "tbnz " + r + tail);
      if (bit < 32) CHECK(one([&](Assembler& a) { a.tbz(W(9), bit, off); }) == "tbz w9" + tail);
    }
  }
  for (std::int64_t off : {imm14, -imm14 - 4}) {
    CHECK(fails([&](Assembler& a) { a.tbz(X(0), 1, off); }));
    CHECK(fails([&](Assembler& a) { a.tbnz(X(0), 40, off); }));
  }
  CHECK(one([](Assembler& a) { a.br(X(16)); }) == "br x16");
  CHECK(one([](Assembler& a) { a.blr(X(16)); }) == "blr x16");
  CHECK(one([](Assembler& a) { a.ret(); }) == "ret");
  CHECK(one([](Assembler& a) { a.ret(X(1)); }) == "ret x1");
  CHECK(one([](Assembler& a) { a.brk(1); }) == "brk #0x1");
  CHECK(one([](Assembler& a) { a.brk(0xf000); }) == "brk #0xf000");
  CHECK(one([](Assembler& a) { a.nop(); }) == "nop");
}

namespace {
// A branch at byte 0 to a label `distance` bytes away (negative: bound before the branch), with
// nops in between. Returns the branch's text, or "error" if the assembler reported one.
template <typename Branch>
std::string label_branch(std::int64_t distance, Branch branch) {
  Assembler a;
  Label l = a.new_label();
  std::size_t at = 0;
  if (distance <= 0) {
    a.bind(l);
    for (std::int64_t i = 0; i < -distance / 4; ++i) a.nop();
    at = a.words().size();
    branch(a, l);
  } else {
    branch(a, l);
    for (std::int64_t i = 1; i < distance / 4; ++i) a.nop();
    a.bind(l);
  }
  if (!a.finish().ok()) return "error";
  return llvm().text(a.words()[at]);
}
}  // namespace

TEST_CASE("a64 llvm: label fix-ups at the edges of each range", "[a64][llvm]") {
  const std::int64_t imm19 = 1 << 20, imm14 = 1 << 15;
  auto bne = [](Assembler& a, Label l) { a.b(Cond::ne, l); };
  auto cbz = [](Assembler& a, Label l) { a.cbz(X(3), l); };
  auto tbnz = [](Assembler& a, Label l) { a.tbnz(X(3), 63, l); };
  auto b = [](Assembler& a, Label l) { a.b(l); };
  auto bl = [](Assembler& a, Label l) { a.bl(l); };
  for (std::int64_t d : {imm19 - 4, -imm19, std::int64_t{4}, std::int64_t{0}}) {
    CHECK(label_branch(d, bne) == "b.ne #" + std::to_string(d));
    CHECK(label_branch(d, cbz) == "cbz x3, #" + std::to_string(d));
  }
  for (std::int64_t d : {imm19, -imm19 - 4}) {
    CHECK(label_branch(d, bne) == "error");
    CHECK(label_branch(d, cbz) == "error");
  }
  for (std::int64_t d : {imm14 - 4, -imm14, std::int64_t{8}}) {
    CHECK(label_branch(d, tbnz) == "tbnz x3, #63, #" + std::to_string(d));
  }
  for (std::int64_t d : {imm14, -imm14 - 4}) CHECK(label_branch(d, tbnz) == "error");
  for (std::int64_t d : {imm19 + 4, -imm19 - 8, std::int64_t{12}}) {
    CHECK(label_branch(d, b) == "b #" + std::to_string(d));
    CHECK(label_branch(d, bl) == "bl #" + std::to_string(d));
  }
  // Far branches: the inverted test skips a `b` that reaches beyond the short ranges.
  for (bool forward : {true, false}) {
    Assembler a;
    a.set_far_branches(true);
    Label l = a.new_label();
    const std::size_t gap = 300000;  // 1.2 MB of nops
    if (!forward) {
      a.bind(l);
      for (std::size_t i = 0; i < gap; ++i) a.nop();
    }
    const std::size_t first = a.words().size();
    a.b(Cond::ne, l);
    a.cbz(X(3), l);
    a.tbnz(W(3), 7, l);
    a.b(Cond::al, l);
    if (forward) {
      for (std::size_t i = 0; i < gap; ++i) a.nop();
      a.bind(l);
    }
    REQUIRE(a.finish().ok());
    const auto target = static_cast<std::int64_t>(a.label_offset(l));
    auto b_at = [&](std::size_t word) {
      return "b #" + std::to_string(target - static_cast<std::int64_t>(word * 4));
    };
    std::vector<std::string> got;
    for (std::size_t i = first; i < first + 7; ++i) got.push_back(llvm().text(a.words()[i]));
    CHECK(got == std::vector<std::string>{"b.eq #8", b_at(first + 1), "cbnz x3, #8", b_at(first + 3),
                                          "tbz w3, #7, #8", b_at(first + 5), b_at(first + 6)});
  }
  // Several forward uses of one label are all patched.
  Assembler a;
  Label l = a.new_label();
  a.b(l);
  a.cbnz(W(1), l);
  a.tbz(W(2), 3, l);
  a.bind(l);
  REQUIRE(a.finish().ok());
  CHECK(texts(a) == std::vector<std::string>{"b #12", "cbnz w1, #8", "tbz w2, #3, #4"});
}

#endif  // BPFVM_HAVE_LLVM

#if defined(__aarch64__)

TEST_CASE("a64 run: emitted code executes", "[a64][run]") {
  SECTION("x0 + x1") {
    Assembler a;
    a.add(X(0), X(0), X(1));
    a.ret();
    auto code = a.finish();
    REQUIRE(code.ok());
    auto mem = ExecutableMemory::create(*code);
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t, std::uint64_t)>();
    CHECK(fn(40, 2) == 42);
    CHECK(fn(~0ull, 2) == 1);
  }
  SECTION("constants") {
    std::mt19937_64 rng(9);
    for (int i = 0; i < 50; ++i) {
      const std::uint64_t v = i == 0 ? 0 : i == 1 ? ~0ull : rng() >> (rng() % 64);
      Assembler a;
      a.mov_imm(X(0), v);
      a.ret();
      auto mem = ExecutableMemory::create(*a.finish());
      REQUIRE(mem.ok());
      CHECK(mem->as<std::uint64_t (*)()>()() == v);
    }
  }
  SECTION("a loop with labels: sum of 1..n") {
    Assembler a;
    Label loop = a.new_label(), done = a.new_label();
    a.mov(X(1), X(0));
    a.mov_imm(X(0), 0);
    a.cbz(X(1), done);
    a.bind(loop);
    a.add(X(0), X(0), X(1));
    a.sub(X(1), X(1), 1);
    a.cbnz(X(1), loop);
    a.bind(done);
    a.ret();
    auto mem = ExecutableMemory::create(*a.finish());
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t)>();
    CHECK(fn(0) == 0);
    CHECK(fn(100) == 5050);
  }
  SECTION("LL/SC fetch-add") {
    // w0 = old *x0; *x0 += x1, with an exclusive-monitor retry loop.
    Assembler a;
    Label retry = a.new_label();
    a.mov(X(2), X(0));
    a.bind(retry);
    a.ldaxr(X(0), X(2));
    a.add(X(3), X(0), X(1));
    a.stlxr(W(4), X(3), X(2));
    a.cbnz(W(4), retry);
    a.ret();
    auto mem = ExecutableMemory::create(*a.finish());
    REQUIRE(mem.ok());
    std::uint64_t cell = 5;
    CHECK(mem->as<std::uint64_t (*)(std::uint64_t*, std::uint64_t)>()(&cell, 7) == 5);
    CHECK(cell == 12);
  }
  SECTION("division and modulo have BPF's results without wrappers") {
    using Fn = std::uint64_t (*)(std::uint64_t, std::uint64_t);
    auto build = [](auto body) {
      Assembler a;
      body(a);
      a.ret();
      auto mem = ExecutableMemory::create(*a.finish());
      REQUIRE(mem.ok());
      return std::move(*mem);
    };
    auto udiv = build([](Assembler& a) { a.udiv(X(0), X(0), X(1)); });
    auto sdiv = build([](Assembler& a) { a.sdiv(X(0), X(0), X(1)); });
    auto umod = build([](Assembler& a) {
      a.udiv(X(9), X(0), X(1));
      a.msub(X(0), X(9), X(1), X(0));
    });
    auto smod = build([](Assembler& a) {
      a.sdiv(X(9), X(0), X(1));
      a.msub(X(0), X(9), X(1), X(0));
    });
    auto smod32 = build([](Assembler& a) {
      a.sdiv(W(9), W(0), W(1));
      a.msub(W(0), W(9), W(1), W(0));
    });
    const std::uint64_t int_min = 1ull << 63;
    CHECK(udiv.as<Fn>()(7, 0) == 0);
    CHECK(udiv.as<Fn>()(7, 2) == 3);
    CHECK(sdiv.as<Fn>()(7, 0) == 0);
    CHECK(sdiv.as<Fn>()(int_min, ~0ull) == int_min);
    CHECK(sdiv.as<Fn>()(static_cast<std::uint64_t>(-7), 2) == static_cast<std::uint64_t>(-3));
    CHECK(umod.as<Fn>()(7, 0) == 7);
    CHECK(umod.as<Fn>()(7, 4) == 3);
    CHECK(smod.as<Fn>()(int_min, ~0ull) == 0);
    CHECK(smod.as<Fn>()(static_cast<std::uint64_t>(-7), 2) == static_cast<std::uint64_t>(-1));
    // 32-bit: the upper half of the result is zeroed, also for a zero divisor.
    CHECK(smod32.as<Fn>()(0xdeadbeef00000007ull, 0) == 7);
    CHECK(smod32.as<Fn>()(0x80000000ull, 0xffffffffull) == 0);
  }
  SECTION("byte swaps") {
    using Fn = std::uint64_t (*)(std::uint64_t);
    Assembler a16, a32, a64;
    a16.rev16(W(0), W(0));
    a16.uxth(W(0), W(0));
    a32.rev(W(0), W(0));
    a64.rev(X(0), X(0));
    for (Assembler* a : {&a16, &a32, &a64}) a->ret();
    auto m16 = ExecutableMemory::create(*a16.finish());
    auto m32 = ExecutableMemory::create(*a32.finish());
    auto m64 = ExecutableMemory::create(*a64.finish());
    REQUIRE((m16.ok() && m32.ok() && m64.ok()));
    CHECK(m16->as<Fn>()(0x1122334455667788ull) == 0x8877);
    CHECK(m32->as<Fn>()(0x1122334455667788ull) == 0x88776655);
    CHECK(m64->as<Fn>()(0x1122334455667788ull) == 0x8877665544332211ull);
  }
  SECTION("LSE atomics (qemu's default CPU has them)") {
    Assembler a;
    a.ldadd(X(1), X(0), X(0), Order::acq_rel);  // x0 = old *x0; *x0 += x1
    a.ret();
    auto mem = ExecutableMemory::create(*a.finish());
    REQUIRE(mem.ok());
    std::uint64_t cell = 40;
    CHECK(mem->as<std::uint64_t (*)(std::uint64_t*, std::uint64_t)>()(&cell, 2) == 40);
    CHECK(cell == 42);

    Assembler c;
    c.cas(X(1), X(2), X(0), Order::acq_rel);  // if *x0 == x1 then *x0 = x2; x1 = old
    c.mov(X(0), X(1));
    c.ret();
    auto cmem = ExecutableMemory::create(*c.finish());
    REQUIRE(cmem.ok());
    auto cas = cmem->as<std::uint64_t (*)(std::uint64_t*, std::uint64_t, std::uint64_t)>();
    std::uint64_t word = 5;
    CHECK(cas(&word, 4, 9) == 5);
    CHECK(word == 5);
    CHECK(cas(&word, 5, 9) == 5);
    CHECK(word == 9);
  }
  SECTION("compare with a negated immediate sets the same flags as with the register") {
    // Returns a mask with bit c set when condition c holds after the compare.
    auto flags_fn = [](std::int64_t imm, bool through_register, bool is64) {
      Assembler a;
      const Reg n = is64 ? X(0) : W(0);
      if (through_register) {
        a.mov_imm(X(9), static_cast<std::uint64_t>(imm));
        a.cmp(n, is64 ? X(9) : W(9));
      } else {
        a.cmp(n, imm);
      }
      a.mov_imm(X(0), 0);
      for (unsigned c = 0; c < 14; ++c) {
        a.cset(X(10), static_cast<Cond>(c));
        a.orr(X(0), X(0), X(10), Shift::lsl, c);
      }
      a.ret();
      auto mem = ExecutableMemory::create(*a.finish());
      REQUIRE(mem.ok());
      return std::move(*mem);
    };
    const std::uint64_t xs[] = {
        0,     1,    2,    0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffff, 0x8000000000000000,
        ~0ull, 4095, 4096, 0x123456};
    for (std::int64_t imm : {-1ll, -2ll, -4095ll, -4096ll, -0x123000ll, 1ll, 4095ll, 0x5000ll}) {
      for (bool is64 : {true, false}) {
        auto direct = flags_fn(imm, false, is64);
        auto via_reg = flags_fn(imm, true, is64);
        for (std::uint64_t x : xs) {
          CAPTURE(imm, is64, x);
          CHECK(direct.as<std::uint64_t (*)(std::uint64_t)>()(x) ==
                via_reg.as<std::uint64_t (*)(std::uint64_t)>()(x));
        }
      }
    }
  }
  SECTION("loads and stores through a frame") {
    Assembler a;
    a.stp(X(29), X(30), Mem::pre(sp, -32));
    a.str(X(0), Mem::at(sp, 16));
    a.strb(W(1), Mem::at(sp, 24));
    a.ldrsb(X(2), Mem::at(sp, 24));
    a.ldr(X(3), Mem::at(sp, 16));
    a.add(X(0), X(3), X(2));
    a.ldp(X(29), X(30), Mem::post(sp, 32));
    a.ret();
    auto mem = ExecutableMemory::create(*a.finish());
    REQUIRE(mem.ok());
    // 1000 + (int8_t)0xff
    CHECK(mem->as<std::uint64_t (*)(std::uint64_t, std::uint64_t)>()(1000, 0xff) == 999);
  }
}

#endif  // __aarch64__
