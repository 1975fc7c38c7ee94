// The x86-64 assembler against LLVM 19's X86 MC disassembler (Intel syntax, hex immediates):
// every emitter is disassembled and compared with text the test builds from the request itself,
// and the instruction length LLVM consumed must equal the bytes emitted. Emitted code also runs
// from W^X executable memory (those tests need no LLVM).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "jit/executable_memory.hpp"
#include "jit/x64/assembler.hpp"

#if BPFVM_HAVE_LLVM
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>
#endif

using namespace bpfvm::jit::x64;
using bpfvm::jit::ExecutableMemory;

namespace {

std::vector<std::uint8_t> finished(Assembler& a) {
  auto code = a.finish();
  REQUIRE(code.ok());
  return *code;
}

}  // namespace

TEST_CASE("x64: emitted code runs from W^X executable memory") {
  SECTION("rdi + rsi") {
    Assembler a;
    a.lea(Size::b64, rax, ptr(rdi, rsi, 1));
    a.ret();
    auto mem = ExecutableMemory::create(finished(a));
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t, std::uint64_t)>();
    CHECK(fn(40, 2) == 42);
    CHECK(fn(~0ull, 1) == 0);
  }
  SECTION("callee-saved registers, a loop with labels, division and immediates") {
    // sum of i / 3 for i in [0, n), through r12-r15 and rbx which must be preserved.
    Assembler a;
    for (Reg r : {rbx, r12, r13, r14, r15}) a.push(r);
    a.mov(Size::b64, r12, rdi);
    a.mov_imm(r13, 0);
    a.mov_imm(r14, 0);
    a.mov_imm(r15, 3);
    const Label top = a.new_label(), done = a.new_label();
    a.bind(top);
    a.alu(Alu::cmp, Size::b64, r13, r12);
    a.jcc(Cond::ae, done);
    a.mov(Size::b64, rax, r13);
    a.alu(Alu::xor_, Size::b32, rdx, rdx);
    a.unary(Unary::div, Size::b64, r15);
    a.alu(Alu::add, Size::b64, r14, rax);
    a.alu(Alu::add, Size::b64, r13, 1);
    a.jmp(top);
    a.bind(done);
    a.mov(Size::b64, rax, r14);
    for (Reg r : {r15, r14, r13, r12, rbx}) a.pop(r);
    a.ret();
    auto mem = ExecutableMemory::create(finished(a));
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t)>();
    std::uint64_t want = 0;
    for (std::uint64_t i = 0; i < 1000; ++i) want += i / 3;
    CHECK(fn(1000) == want);
    CHECK(fn(0) == 0);
  }
  SECTION("64-bit immediates, byte swaps, shifts by cl, cmov and setcc") {
    Assembler a;
    a.mov_imm(rax, 0x1122334455667788ull);
    a.bswap(Size::b64, rax);  // 0x8877665544332211
    a.mov(Size::b64, rcx, rsi);
    a.shift(Shift::shr, Size::b64, rax, 8);  // 0x0088776655443322
    a.shift(Shift::shl, Size::b64, rax);     // << (rsi & 63)
    a.alu(Alu::cmp, Size::b64, rdi, 0);
    a.mov_imm(rdx, 0xFFFFFFFFFFFFFFFFull);
    a.cmov(Cond::e, Size::b64, rax, rdx);  // rdi == 0 -> all ones
    a.ret();
    auto mem = ExecutableMemory::create(finished(a));
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t, std::uint64_t)>();
    CHECK(fn(1, 0) == 0x0088776655443322ull);
    CHECK(fn(1, 4) == 0x0887766554433220ull);
    CHECK(fn(0, 4) == ~0ull);
  }
  SECTION("be16 by rotating a 16-bit register, truncation by movzx, setcc") {
    Assembler a;
    a.mov(Size::b64, rax, rdi);
    a.shift(Shift::rol, Size::b16, rax, 8);
    a.movzx(Size::b32, rax, Size::b16, rax);
    a.alu(Alu::cmp, Size::b64, rsi, 7);
    a.setcc(Cond::e, rsi);  // sil: needs REX
    a.movzx(Size::b32, rsi, Size::b8, rsi);
    a.shift(Shift::shl, Size::b64, rsi, 32);
    a.alu(Alu::or_, Size::b64, rax, rsi);
    a.ret();
    auto mem = ExecutableMemory::create(finished(a));
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t, std::uint64_t)>();
    CHECK(fn(0xAAAA1234, 0) == 0x3412);
    CHECK(fn(0xAAAA1234, 7) == 0x100003412ull);
  }
  SECTION("BMI2 shifts by any register, when the host has them") {
    if (!__builtin_cpu_supports("bmi2")) return;
    Assembler a;
    a.shift_bmi2(Shift::sar, Size::b64, rax, rdi, rsi);
    a.shift_bmi2(Shift::shl, Size::b32, rdx, rdi, rsi);
    a.alu(Alu::xor_, Size::b64, rax, rdx);
    a.ret();
    auto mem = ExecutableMemory::create(finished(a));
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t, std::uint64_t)>();
    // sar 64 by 4 of 0x8000000000000010, xor (u32)(0x10 << 4).
    CHECK(fn(0x8000000000000010ull, 4) == (0xF800000000000001ull ^ 0x100ull));
    CHECK(fn(0x8000000000000010ull, 68) == (0xF800000000000001ull ^ 0x100ull));  // counts are masked
  }
  SECTION("atomics on memory") {
    Assembler a;
    a.mov(Size::b64, rax, rsi);
    a.lock_xadd(Size::b64, ptr(rdi), rax);  // rax = old value
    a.lock_alu(Alu::or_, Size::b64, ptr(rdi, 8), rsi);
    a.ret();
    auto mem = ExecutableMemory::create(finished(a));
    REQUIRE(mem.ok());
    auto fn = mem->as<std::uint64_t (*)(std::uint64_t*, std::uint64_t)>();
    std::uint64_t cells[2] = {10, 0x10};
    CHECK(fn(cells, 5) == 10);
    CHECK(cells[0] == 15);
    CHECK(cells[1] == 0x15);
  }
}

TEST_CASE("x64: misuse is reported as an error") {
  Assembler a;
  const Label never = a.new_label();
  a.jmp(never);
  CHECK_FALSE(a.finish().ok());
  Assembler b;
  b.mov(Size::b64, rax, ptr(rax, rsp, 2));
  CHECK_FALSE(b.finish().ok());
  Assembler c;
  c.mov(Size::b64, rax, ptr(rax, rbx, 3));
  CHECK_FALSE(c.finish().ok());
  Assembler d;  // a displacement that is not in the code
  d.ret();
  d.patch_here(100);
  CHECK_FALSE(d.finish().ok());
}

#if BPFVM_HAVE_LLVM
namespace {

class Disassembler {
 public:
  Disassembler() {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86Disassembler();
    ctx_ = LLVMCreateDisasm("x86_64-linux-gnu", nullptr, 0, nullptr, nullptr);
    if (ctx_)
      LLVMSetDisasmOptions(ctx_,
                           LLVMDisassembler_Option_AsmPrinterVariant | LLVMDisassembler_Option_PrintImmHex);
  }
  ~Disassembler() {
    if (ctx_) LLVMDisasmDispose(ctx_);
  }
  Disassembler(const Disassembler&) = delete;
  Disassembler& operator=(const Disassembler&) = delete;

  // One instruction at `pc` as "mnemonic operands" with single spaces; its length in *used.
  std::string text(const std::uint8_t* bytes, std::size_t size, std::uint64_t pc, std::size_t* used) const {
    char buf[256] = {};
    *used = LLVMDisasmInstruction(ctx_, const_cast<std::uint8_t*>(bytes), size, pc, buf, sizeof buf);
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

 private:
  LLVMDisasmContextRef ctx_ = nullptr;
};

const Disassembler& llvm() {
  static const Disassembler d;
  return d;
}

const char* const kNames64[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
const char* const kNames32[] = {"eax", "ecx", "edx",  "ebx",  "esp",  "ebp",  "esi",  "edi",
                                "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"};
const char* const kNames16[] = {"ax",  "cx",  "dx",   "bx",   "sp",   "bp",   "si",   "di",
                                "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"};
const char* const kNames8[] = {"al",  "cl",  "dl",   "bl",   "spl",  "bpl",  "sil",  "dil",
                               "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"};
const char* const kConds[] = {"o", "no", "b", "ae", "e", "ne", "be", "a",
                              "s", "ns", "p", "np", "l", "ge", "le", "g"};
const Size kSizes[] = {Size::b8, Size::b16, Size::b32, Size::b64};
const std::int32_t kImms[] = {0, 1, -1, 127, -128, 128, -129, 32767, -32768, INT32_MAX, INT32_MIN};
const std::int32_t kDisps[] = {0, 1, -1, 127, -128, 128, -129, INT32_MAX, INT32_MIN};

Reg R(unsigned n) { return Reg{static_cast<std::uint8_t>(n)}; }
unsigned bits(Size s) { return 8u * static_cast<unsigned>(s); }

std::string rn(Size s, unsigned n) {
  switch (s) {
    case Size::b8: return kNames8[n];
    case Size::b16: return kNames16[n];
    case Size::b32: return kNames32[n];
    case Size::b64: break;
  }
  return kNames64[n];
}

const char* ptr_name(Size s) {
  switch (s) {
    case Size::b8: return "byte ptr ";
    case Size::b16: return "word ptr ";
    case Size::b32: return "dword ptr ";
    case Size::b64: break;
  }
  return "qword ptr ";
}

std::string hex(std::uint64_t v) { return fmt::format("0x{:x}", v); }
std::uint64_t mask(std::int64_t v, unsigned nbits) {
  return nbits == 64 ? static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v) & ((1ull << nbits) - 1);
}

// Intel syntax as LLVM prints it: [base + scale*index +/- disp] in decimal, no scale when it is 1.
std::string mem_text(const Mem& m) {
  std::string s = "[";
  if (m.rip) s += "rip";
  if (m.has_base()) s += kNames64[m.base.id];
  if (m.has_index()) {
    if (s.size() > 1) s += " + ";
    if (m.scale != 1) s += std::to_string(m.scale) + "*";
    s += kNames64[m.index.id];
  }
  if (m.disp != 0 || s.size() == 1) {
    const std::int64_t d = m.disp;
    if (s.size() == 1)
      s += std::to_string(d);
    else
      s += (d < 0 ? " - " : " + ") + std::to_string(d < 0 ? -d : d);
  }
  return s + "]";
}
std::string mem_text(Size s, const Mem& m) { return ptr_name(s) + mem_text(m); }

// The last operand when it is a number, as that many low bits in hex (LLVM prints sign-extended
// immediates as negative numbers, and shift counts in decimal; the encoding only fixes the bits).
std::string canonical(std::string text, unsigned imm_bits) {
  if (imm_bits == 0) return text;
  const auto comma = text.rfind(", ");
  const auto start = comma == std::string::npos ? text.rfind(' ') : comma + 1;
  if (start == std::string::npos) return text;
  std::string tok = text.substr(start + 1);
  const bool neg = !tok.empty() && tok[0] == '-';
  if (neg) tok = tok.substr(1);
  const bool is_hex = tok.rfind("0x", 0) == 0;
  if (tok.empty() || tok.find_first_not_of(is_hex ? "0123456789abcdefx" : "0123456789") != std::string::npos)
    return text;
  const std::uint64_t v = std::stoull(tok, nullptr, is_hex ? 16 : 10);
  const std::uint64_t value = neg ? ~v + 1 : v;
  return text.substr(0, start + 1) + hex(mask(static_cast<std::int64_t>(value), imm_bits));
}

// Disassembles a whole single-instruction emission and compares it with `want`.
void expect_one(Assembler& a, const std::string& want, unsigned imm_bits = 0, std::size_t want_len = 0) {
  const auto code = finished(a);
  INFO("bytes: " << fmt::format("{:02x}", fmt::join(code, " ")));
  // LLVM's C API returns a lock prefix as an instruction of its own: join it to what follows.
  std::size_t used = 0;
  std::string got = llvm().text(code.data(), code.size(), 0, &used);
  if (got == "lock" && used == 1) {
    got += " " + llvm().text(code.data() + 1, code.size() - 1, 1, &used);
    used += 1;
  }
  CHECK(used == code.size());
  CHECK(canonical(got, imm_bits) == want);
  if (want_len) CHECK(code.size() == want_len);
}

template <typename Emit>
void expect(Emit emit, const std::string& want, unsigned imm_bits = 0, std::size_t want_len = 0) {
  Assembler a;
  emit(a);
  expect_one(a, want, imm_bits, want_len);
}

std::vector<Mem> memory_operands() {
  std::vector<Mem> out;
  for (unsigned b = 0; b < 16; ++b)
    for (std::int32_t d : kDisps) out.push_back(ptr(R(b), d));
  for (unsigned b = 0; b < 16; ++b)
    for (unsigned i = 0; i < 16; ++i) {
      if (i == 4) continue;
      for (std::uint8_t sc : {1, 2, 4, 8})
        out.push_back(ptr(R(b), R(i), sc, (b + i) % 3 == 0 ? 0 : (b % 2 ? 8 : -300)));
    }
  out.push_back(index_ptr(r9, 8, 64));
  out.push_back(rip_ptr(16));
  out.push_back(rip_ptr(-1));
  return out;
}

// Length of a load `mov r64, [m]` from the addressing rules alone: REX, opcode, ModRM, then a
// SIB for an index or an rsp/r12 base, and disp8/disp32 (rbp/r13 need a displacement).
std::size_t load_length(const Mem& m) {
  if (m.rip) return 3 + 4;
  if (!m.has_base()) return 3 + 1 + 4;
  std::size_t n = 3;
  if (m.has_index() || m.base.low3() == 4) ++n;
  if (m.disp == 0 && m.base.low3() != 5) return n;
  return n + (m.disp >= -128 && m.disp <= 127 ? 1 : 4);
}

}  // namespace

TEST_CASE("x64 encoding: register-register forms over all registers and sizes") {
  const char* const alu_names[] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};
  for (Size s : kSizes)
    for (unsigned d = 0; d < 16; ++d)
      for (unsigned r = 0; r < 16; ++r) {
        const std::string ops = rn(s, d) + ", " + rn(s, r);
        expect([&](Assembler& a) { a.mov(s, R(d), R(r)); }, "mov " + ops);
        for (unsigned op = 0; op < 8; ++op)
          expect([&](Assembler& a) { a.alu(static_cast<Alu>(op), s, R(d), R(r)); },
                 alu_names[op] + (" " + ops));
        expect([&](Assembler& a) { a.test(s, R(d), R(r)); }, "test " + ops);
        if (s == Size::b8) continue;
        expect([&](Assembler& a) { a.imul(s, R(d), R(r)); }, "imul " + ops);
        for (unsigned c = 0; c < 16; ++c)
          expect([&](Assembler& a) { a.cmov(static_cast<Cond>(c), s, R(d), R(r)); },
                 std::string("cmov") + kConds[c] + " " + ops);
        if (s == Size::b16) continue;
        expect([&](Assembler& a) { a.movzx(s, R(d), Size::b8, R(r)); },
               "movzx " + rn(s, d) + ", " + rn(Size::b8, r));
        expect([&](Assembler& a) { a.movzx(s, R(d), Size::b16, R(r)); },
               "movzx " + rn(s, d) + ", " + rn(Size::b16, r));
        expect([&](Assembler& a) { a.movsx(s, R(d), Size::b8, R(r)); },
               "movsx " + rn(s, d) + ", " + rn(Size::b8, r));
        expect([&](Assembler& a) { a.movsx(s, R(d), Size::b16, R(r)); },
               "movsx " + rn(s, d) + ", " + rn(Size::b16, r));
        if (s == Size::b64)
          expect([&](Assembler& a) { a.movsx(s, R(d), Size::b32, R(r)); },
                 "movsxd " + rn(s, d) + ", " + rn(Size::b32, r));
      }
}

TEST_CASE("x64 encoding: single-register forms") {
  const char* const unary_names[] = {"", "", "not", "neg", "mul", "imul", "div", "idiv"};
  const char* const shift_names[] = {"rol", "ror", "", "", "shl", "shr", "", "sar"};
  for (unsigned r = 0; r < 16; ++r) {
    for (Size s : kSizes) {
      for (unsigned op = 2; op < 8; ++op)
        expect([&](Assembler& a) { a.unary(static_cast<Unary>(op), s, R(r)); },
               unary_names[op] + (" " + rn(s, r)));
      for (unsigned op : {0u, 1u, 4u, 5u, 7u}) {
        expect([&](Assembler& a) { a.shift(static_cast<Shift>(op), s, R(r)); },
               shift_names[op] + (" " + rn(s, r)) + ", cl");
        for (std::uint8_t n : {1, 8, 31, 63})
          expect([&](Assembler& a) { a.shift(static_cast<Shift>(op), s, R(r), n); },
                 shift_names[op] + (" " + rn(s, r)) + ", " + hex(n), 8);
      }
    }
    for (Size s : {Size::b32, Size::b64}) {
      expect([&](Assembler& a) { a.bswap(s, R(r)); }, "bswap " + rn(s, r));
      for (unsigned src = 0; src < 16; ++src)
        for (unsigned cnt : {0u, 1u, 7u, 8u, 15u})
          for (auto [op, name] : {std::pair{Shift::shl, "shlx"}, {Shift::shr, "shrx"}, {Shift::sar, "sarx"}})
            expect([&](Assembler& a) { a.shift_bmi2(op, s, R(r), R(src), R(cnt)); },
                   std::string(name) + " " + rn(s, r) + ", " + rn(s, src) + ", " + rn(s, cnt));
    }
    for (unsigned c = 0; c < 16; ++c)
      expect([&](Assembler& a) { a.setcc(static_cast<Cond>(c), R(r)); },
             std::string("set") + kConds[c] + " " + rn(Size::b8, r));
    expect([&](Assembler& a) { a.push(R(r)); }, "push " + rn(Size::b64, r));
    expect([&](Assembler& a) { a.pop(R(r)); }, "pop " + rn(Size::b64, r));
    expect([&](Assembler& a) { a.call(R(r)); }, "call " + rn(Size::b64, r));
    expect([&](Assembler& a) { a.jmp(R(r)); }, "jmp " + rn(Size::b64, r));
  }
  expect([](Assembler& a) { a.cdq(); }, "cdq");
  expect([](Assembler& a) { a.cqo(); }, "cqo");
  expect([](Assembler& a) { a.ret(); }, "ret");
  expect([](Assembler& a) { a.int3(); }, "int3");
  expect([](Assembler& a) { a.ud2(); }, "ud2");
}

TEST_CASE("x64 encoding: immediates choose imm8 or the full width") {
  const char* const alu_names[] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};
  for (Size s : kSizes)
    for (unsigned r = 0; r < 16; ++r)
      for (std::int32_t v : kImms) {
        const unsigned nb = bits(s);
        if (nb < 32 && (v < -(1 << (nb - 1)) || v >= (1 << (nb - 1)))) continue;
        const std::string opnd = rn(s, r) + ", " + hex(mask(v, nb));
        const bool short_imm = s != Size::b8 && v >= -128 && v <= 127;
        const std::size_t prefix =
            (s == Size::b16 ? 1 : 0) + (s == Size::b64 || r >= 8 || (s == Size::b8 && r >= 4) ? 1 : 0);
        const std::size_t imm_len = s == Size::b8 || short_imm ? 1 : (s == Size::b16 ? 2 : 4);
        for (unsigned op = 0; op < 8; ++op)
          expect([&](Assembler& a) { a.alu(static_cast<Alu>(op), s, R(r), v); }, alu_names[op] + (" " + opnd),
                 nb, prefix + 2 + imm_len);
        expect([&](Assembler& a) { a.test(s, R(r), v); }, "test " + opnd, nb);
        if (s != Size::b8)
          expect([&](Assembler& a) { a.imul(s, R(r), R(15 - r), v); },
                 "imul " + rn(s, r) + ", " + rn(s, 15 - r) + ", " + hex(mask(v, nb)), nb,
                 prefix + ((15 - r) >= 8 && r < 8 && s != Size::b64 ? 1 : 0) + 2 + imm_len);
      }
}

TEST_CASE("x64 encoding: mov of a 64-bit immediate picks the shortest form") {
  const std::uint64_t values[] = {0,
                                  1,
                                  0x7F,
                                  0x80,
                                  0x7FFFFFFF,
                                  0x80000000,
                                  0xFFFFFFFF,
                                  0x100000000,
                                  ~0ull,
                                  ~0ull << 31,
                                  ~0ull << 32,
                                  0x8000000000000000ull,
                                  0x1122334455667788ull};
  for (unsigned r = 0; r < 16; ++r)
    for (std::uint64_t v : values) {
      const auto sv = static_cast<std::int64_t>(v);
      if (v <= 0xFFFFFFFF)
        expect([&](Assembler& a) { a.mov_imm(R(r), v); }, "mov " + rn(Size::b32, r) + ", " + hex(v), 32,
               r >= 8 ? 6 : 5);
      else if (sv >= INT32_MIN && sv <= INT32_MAX)
        expect([&](Assembler& a) { a.mov_imm(R(r), v); }, "mov " + rn(Size::b64, r) + ", " + hex(v), 64, 7);
      else
        expect([&](Assembler& a) { a.mov_imm(R(r), v); }, "movabs " + rn(Size::b64, r) + ", " + hex(v), 64,
               10);
    }
}

TEST_CASE("x64 encoding: memory operands over bases, indices, scales and displacements") {
  const char* const alu_names[] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};
  const auto mems = memory_operands();
  for (const Mem& m : mems) {
    INFO("memory " << mem_text(m));
    expect([&](Assembler& a) { a.mov(Size::b64, rax, m); }, "mov rax, " + mem_text(Size::b64, m), 0,
           load_length(m));
    expect([&](Assembler& a) { a.lea(Size::b64, r11, m); }, "lea r11, " + mem_text(m));
    expect([&](Assembler& a) { a.lea(Size::b32, rcx, m); }, "lea ecx, " + mem_text(m));
    for (Size s : kSizes) {
      const unsigned nb = bits(s);
      for (unsigned r : {0u, 6u, 9u, 15u}) {
        expect([&](Assembler& a) { a.mov(s, R(r), m); }, "mov " + rn(s, r) + ", " + mem_text(s, m));
        expect([&](Assembler& a) { a.mov(s, m, R(r)); }, "mov " + mem_text(s, m) + ", " + rn(s, r));
        for (unsigned op = 0; op < 8; ++op) {
          expect([&](Assembler& a) { a.alu(static_cast<Alu>(op), s, R(r), m); },
                 alu_names[op] + (" " + rn(s, r)) + ", " + mem_text(s, m));
          expect([&](Assembler& a) { a.alu(static_cast<Alu>(op), s, m, R(r)); },
                 alu_names[op] + (" " + mem_text(s, m)) + ", " + rn(s, r));
        }
        if (s == Size::b8 || s == Size::b16) {
          expect([&](Assembler& a) { a.movzx(Size::b32, R(r), s, m); },
                 "movzx " + rn(Size::b32, r) + ", " + mem_text(s, m));
          expect([&](Assembler& a) { a.movsx(Size::b64, R(r), s, m); },
                 "movsx " + rn(Size::b64, r) + ", " + mem_text(s, m));
        }
        if (s == Size::b32)
          expect([&](Assembler& a) { a.movsx(Size::b64, R(r), s, m); },
                 "movsxd " + rn(Size::b64, r) + ", " + mem_text(s, m));
        if (s != Size::b8) {
          expect([&](Assembler& a) { a.imul(s, R(r), m); }, "imul " + rn(s, r) + ", " + mem_text(s, m));
          expect([&](Assembler& a) { a.cmov(Cond::l, s, R(r), m); },
                 "cmovl " + rn(s, r) + ", " + mem_text(s, m));
        }
        if (s == Size::b32 || s == Size::b64) {
          expect([&](Assembler& a) { a.lock_xadd(s, m, R(r)); },
                 "lock xadd " + mem_text(s, m) + ", " + rn(s, r));
          expect([&](Assembler& a) { a.xchg(s, m, R(r)); }, "xchg " + mem_text(s, m) + ", " + rn(s, r));
          expect([&](Assembler& a) { a.lock_cmpxchg(s, m, R(r)); },
                 "lock cmpxchg " + mem_text(s, m) + ", " + rn(s, r));
          for (Alu op : {Alu::add, Alu::or_, Alu::and_, Alu::xor_})
            expect([&](Assembler& a) { a.lock_alu(op, s, m, R(r)); },
                   std::string("lock ") + alu_names[static_cast<unsigned>(op)] + " " + mem_text(s, m) + ", " +
                       rn(s, r));
        }
      }
      for (std::int32_t v : {0, -1, 127, 128, INT32_MIN}) {
        if (nb < 32 && (v < -(1 << (nb - 1)) || v >= (1 << (nb - 1)))) continue;
        expect([&](Assembler& a) { a.mov(s, m, v); }, "mov " + mem_text(s, m) + ", " + hex(mask(v, nb)), nb);
        expect([&](Assembler& a) { a.alu(Alu::sub, s, m, v); },
               "sub " + mem_text(s, m) + ", " + hex(mask(v, nb)), nb);
      }
    }
  }
}

TEST_CASE("x64 encoding: nop padding of every length") {
  for (std::size_t n = 1; n <= 20; ++n) {
    Assembler a;
    a.nop(n);
    const auto code = finished(a);
    REQUIRE(code.size() == n);
    std::size_t at = 0;
    while (at < code.size()) {
      std::size_t used = 0;
      const std::string t = llvm().text(code.data() + at, code.size() - at, at, &used);
      INFO("length " << n << " at " << at << ": " << t);
      REQUIRE(used > 0);
      CHECK(t.rfind("nop", 0) == 0);
      at += used;
    }
    CHECK(at == n);
  }
}

TEST_CASE("x64 encoding: labels, rel8 and rel32 jumps and calls reach their targets") {
  // LLVM prints a pc-relative branch as its displacement from the instruction's end (decimal
  // unless 0x-prefixed).
  auto branch_targets = [](const std::vector<std::uint8_t>& code) {
    std::vector<std::pair<std::string, std::int64_t>> out;  // (mnemonic, absolute target)
    std::size_t at = 0;
    while (at < code.size()) {
      std::size_t used = 0;
      const std::string t = llvm().text(code.data() + at, code.size() - at, at, &used);
      REQUIRE(used > 0);
      const auto sp = t.find(' ');
      if (t[0] == 'j' || t.rfind("call", 0) == 0) {
        std::string tok = t.substr(sp + 1);
        const bool neg = tok[0] == '-';
        tok = tok.substr(neg ? 1 : 0);
        const bool is_hex = tok.rfind("0x", 0) == 0;
        const auto v = static_cast<std::int64_t>(std::stoull(tok, nullptr, is_hex ? 16 : 10));
        out.emplace_back(t.substr(0, sp), static_cast<std::int64_t>(at + used) + (neg ? -v : v));
      }
      at += used;
    }
    return out;
  };
  for (unsigned c = 0; c < 16; ++c)
    for (std::size_t gap : {0, 1, 100, 120, 130, 1000, 100000}) {
      Assembler a;
      const Label back = a.new_label(), fwd = a.new_label();
      a.bind(back);
      a.nop(gap);
      const std::size_t back_jcc = a.size();
      a.jcc(static_cast<Cond>(c), back);
      a.jmp(back);
      a.jcc(static_cast<Cond>(c), fwd);
      a.call(fwd);
      const std::uint32_t unlabelled = a.jcc_forward(static_cast<Cond>(c));
      a.nop(gap);
      a.bind(fwd);
      a.patch_here(unlabelled);
      a.ret();
      const auto code = finished(a);
      const auto targets = branch_targets(code);
      REQUIRE(targets.size() == 5);
      const std::string jcc = std::string("j") + kConds[c];
      const auto end = static_cast<std::int64_t>(code.size() - 1);
      CHECK(targets[0].first == jcc);
      CHECK(targets[0].second == 0);
      CHECK(targets[1].first == "jmp");
      CHECK(targets[1].second == 0);
      CHECK(targets[2].first == jcc);
      CHECK(targets[2].second == end);
      CHECK(targets[3].first == "call");
      CHECK(targets[3].second == end);
      CHECK(targets[4].first == jcc);  // jcc_forward, patched where the ret starts
      CHECK(targets[4].second == end);
      // Backward jcc within rel8 reach is 2 bytes, else 6.
      const std::int64_t rel8 = -static_cast<std::int64_t>(back_jcc + 2);
      CHECK(code[back_jcc] == (rel8 >= -128 ? 0x70 + c : 0x0F));
    }
}
#endif
