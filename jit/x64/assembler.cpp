#include "jit/x64/assembler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <utility>

// The encoding helpers are inlined into each instruction: one instruction's bytes then live in a
// local buffer until the single copy into the code.
#define BPFVM_ENCODER [[gnu::always_inline]] inline

namespace bpfvm::jit::x64 {
namespace {

bool fits_i8(std::int64_t v) { return v >= -128 && v <= 127; }
bool fits_i32(std::int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }
// spl, bpl, sil, dil exist only with a REX prefix (without one, 4-7 mean ah, ch, dh, bh).
bool needs_rex_for_byte(unsigned id) { return id >= 4 && id <= 7; }

unsigned scale_bits(std::uint8_t scale) {
  switch (scale) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: return 4;
  }
}

// ALU opcodes are laid out as 8*op + {0: r/m8,r8; 1: r/m,r; 2: r8,r/m8; 3: r,r/m}.
std::uint8_t alu_opcode(Alu op, unsigned form) {
  return static_cast<std::uint8_t>(8u * static_cast<unsigned>(op) + form);
}

}  // namespace

void Assembler::fail(std::string_view message) {
  if (status_.ok()) status_ = Error("x64 assembler: " + std::string(message));
}

void Assembler::fail_scale(unsigned scale) { fail(fmt::format("scale {} is not 1, 2, 4 or 8", scale)); }

void Assembler::fail_out_of_range(std::size_t jump_at) {
  fail(fmt::format("jump at offset {} out of rel32 range", jump_at));
}

void Assembler::grow(std::size_t at_least) {
  code_.resize(std::max({at_least, 2 * code_.size(), std::size_t{256}}));
}

// Operand-size prefix and REX (W for 64-bit, R/X/B extending reg, index and base/rm).
BPFVM_ENCODER void Assembler::prefixes(Bytes& e, Size s, unsigned reg, const Mem* m, unsigned rm,
                                       bool byte_regs) {
  if (s == Size::b16) e.put(0x66);
  unsigned rex = 0;
  if (s == Size::b64) rex |= 8;
  if (reg >= 8) rex |= 4;
  if (m) {
    if (m->has_index() && m->index.high()) rex |= 2;
    if (m->has_base() && m->base.high()) rex |= 1;
  } else if (rm >= 8) {
    rex |= 1;
  }
  if (rex || byte_regs) e.put(static_cast<std::uint8_t>(0x40 | rex));
}

BPFVM_ENCODER void Assembler::modrm_reg(Bytes& e, unsigned reg, unsigned rm) {
  e.put(static_cast<std::uint8_t>(0xC0 | (reg & 7) << 3 | (rm & 7)));
}

BPFVM_ENCODER void Assembler::modrm_mem(Bytes& e, unsigned reg, Mem m) {
  const unsigned r = (reg & 7) << 3;
  const unsigned scale = scale_bits(m.scale);
  if (scale > 3) fail_scale(m.scale);
  if (m.has_index() && m.index == rsp) fail("rsp cannot be an index register");
  if (m.rip) {
    if (m.has_base() || m.has_index()) fail("rip-relative operand with a base or index");
    e.put(static_cast<std::uint8_t>(r | 5));
    e.imm(static_cast<std::uint32_t>(m.disp), 4);
    return;
  }
  const unsigned index = m.has_index() ? m.index.low3() : 4u;  // 4: no index
  const std::uint8_t sib_scale = static_cast<std::uint8_t>((scale & 3) << 6);
  if (!m.has_base()) {
    // [index*scale + disp32] or [disp32]: SIB with base 101 and mod 00.
    e.put(static_cast<std::uint8_t>(r | 4));
    e.put(static_cast<std::uint8_t>(sib_scale | index << 3 | 5));
    e.imm(static_cast<std::uint32_t>(m.disp), 4);
    return;
  }
  const unsigned base = m.base.low3();
  // Base 101 (rbp, r13) with mod 00 would mean rip/disp32: they always carry a displacement.
  unsigned mod = 2;
  if (m.disp == 0 && base != 5)
    mod = 0;
  else if (fits_i8(m.disp))
    mod = 1;
  // rm 100 (rsp, r12) selects a SIB byte, so these bases always need one.
  const bool sib = m.has_index() || base == 4;
  e.put(static_cast<std::uint8_t>(mod << 6 | r | (sib ? 4u : base)));
  if (sib) e.put(static_cast<std::uint8_t>(sib_scale | index << 3 | base));
  if (mod == 1) e.imm(static_cast<std::uint32_t>(m.disp), 1);
  if (mod == 2) e.imm(static_cast<std::uint32_t>(m.disp), 4);
}

BPFVM_ENCODER Assembler::Bytes Assembler::op_rr(Size s, std::initializer_list<std::uint8_t> op, unsigned reg,
                                                Reg rm, bool byte_reg_field) {
  Bytes e = start();
  const bool byte_regs =
      s == Size::b8 && (needs_rex_for_byte(rm.id) || (byte_reg_field && needs_rex_for_byte(reg)));
  prefixes(e, s, reg, nullptr, rm.id, byte_regs);
  for (auto b : op) e.put(b);
  modrm_reg(e, reg, rm.id);
  return e;
}

BPFVM_ENCODER Assembler::Bytes Assembler::op_rm(Size s, std::initializer_list<std::uint8_t> op, unsigned reg,
                                                Mem m, bool byte_reg_field) {
  Bytes e = start();
  const bool byte_regs = s == Size::b8 && byte_reg_field && needs_rex_for_byte(reg);
  prefixes(e, s, reg, &m, 0, byte_regs);
  for (auto b : op) e.put(b);
  modrm_mem(e, reg, m);
  return e;
}

void Assembler::reset() {
  end_ = 0;
  labels_.clear();
  fixups_.clear();
  status_ = Status{};
}

Result<std::vector<std::uint8_t>> Assembler::finish() {
  if (Status s = link(); !s) return s.error();
  std::vector<std::uint8_t> code = std::move(code_);
  code.resize(end_);
  code_ = {};
  end_ = 0;
  grow(kMaxWrite);  // spent, but still safe to call
  return code;
}

Status Assembler::link() {
  for (const Fixup& f : fixups_) {
    if (f.label.id >= labels_.size() || labels_[f.label.id] == kUnbound) {
      fail(fmt::format("jump at offset {} to a label that was never bound", f.at));
      break;
    }
    const auto rel = static_cast<std::int64_t>(labels_[f.label.id]) - static_cast<std::int64_t>(f.at + 4);
    if (!fits_i32(rel)) fail_out_of_range(f.at);
    const auto v = static_cast<std::uint32_t>(rel);
    std::memcpy(code_.data() + f.at, &v, 4);  // little-endian like the target
  }
  fixups_.clear();
  return status_;
}

// ---- data moves ----

void Assembler::mov(Size s, Reg dst, Reg src) {
  append(op_rr(s, {s == Size::b8 ? std::uint8_t{0x88} : std::uint8_t{0x89}}, src.id, dst, true));
}

void Assembler::mov(Size s, Reg dst, Mem src) {
  append(op_rm(s, {s == Size::b8 ? std::uint8_t{0x8A} : std::uint8_t{0x8B}}, dst.id, src, true));
}

void Assembler::mov(Size s, Mem dst, Reg src) {
  append(op_rm(s, {s == Size::b8 ? std::uint8_t{0x88} : std::uint8_t{0x89}}, src.id, dst, true));
}

void Assembler::mov(Size s, Mem dst, std::int32_t value) {
  Bytes e = op_rm(s, {s == Size::b8 ? std::uint8_t{0xC6} : std::uint8_t{0xC7}}, 0, dst);
  const unsigned bytes = s == Size::b8 ? 1 : s == Size::b16 ? 2 : 4;
  e.imm(static_cast<std::uint32_t>(value), bytes);
  append(e);
}

void Assembler::mov_imm32(Reg dst, std::uint32_t value) {
  Bytes e = start();
  if (dst.high()) e.put(0x41);
  e.put(static_cast<std::uint8_t>(0xB8 + dst.low3()));
  e.imm(value, 4);
  append(e);
}

void Assembler::mov_imm(Reg dst, std::uint64_t value) {
  const auto as_signed = static_cast<std::int64_t>(value);
  if (value <= UINT32_MAX) {
    mov_imm32(dst, static_cast<std::uint32_t>(value));
  } else if (fits_i32(as_signed)) {
    Bytes e = op_rr(Size::b64, {0xC7}, 0, dst);
    e.imm(static_cast<std::uint32_t>(as_signed), 4);
    append(e);
  } else {
    Bytes e = start();
    e.put(static_cast<std::uint8_t>(0x48 | (dst.high() ? 1 : 0)));
    e.put(static_cast<std::uint8_t>(0xB8 + dst.low3()));
    e.imm(value, 8);
    append(e);
  }
}

// movzx/movsx from a register: 0F op, where a byte source in spl..dil needs a REX prefix.
void Assembler::extend(Size dst_size, Reg dst, Size src_size, Reg src, std::uint8_t op) {
  const bool rex8 = src_size == Size::b8 && needs_rex_for_byte(src.id);
  Bytes e = start();
  prefixes(e, dst_size, dst.id, nullptr, src.id, rex8);
  e.put(0x0F);
  e.put(op);
  modrm_reg(e, dst.id, src.id);
  append(e);
}

void Assembler::movzx(Size dst_size, Reg dst, Size src_size, Reg src) {
  if (src_size != Size::b8 && src_size != Size::b16) fail("movzx source must be 8 or 16 bits");
  extend(dst_size, dst, src_size, src, src_size == Size::b8 ? 0xB6 : 0xB7);
}

void Assembler::movzx(Size dst_size, Reg dst, Size src_size, Mem src) {
  if (src_size != Size::b8 && src_size != Size::b16) fail("movzx source must be 8 or 16 bits");
  append(
      op_rm(dst_size, {0x0F, src_size == Size::b8 ? std::uint8_t{0xB6} : std::uint8_t{0xB7}}, dst.id, src));
}

void Assembler::movsx(Size dst_size, Reg dst, Size src_size, Reg src) {
  if (src_size == Size::b32) {
    if (dst_size != Size::b64) fail("movsxd needs a 64-bit destination");
    append(op_rr(Size::b64, {0x63}, dst.id, src));
    return;
  }
  if (src_size != Size::b8 && src_size != Size::b16) fail("movsx source must be 8, 16 or 32 bits");
  extend(dst_size, dst, src_size, src, src_size == Size::b8 ? 0xBE : 0xBF);
}

void Assembler::movsx(Size dst_size, Reg dst, Size src_size, Mem src) {
  if (src_size == Size::b32) {
    if (dst_size != Size::b64) fail("movsxd needs a 64-bit destination");
    append(op_rm(Size::b64, {0x63}, dst.id, src));
    return;
  }
  if (src_size != Size::b8 && src_size != Size::b16) fail("movsx source must be 8, 16 or 32 bits");
  append(
      op_rm(dst_size, {0x0F, src_size == Size::b8 ? std::uint8_t{0xBE} : std::uint8_t{0xBF}}, dst.id, src));
}

void Assembler::lea(Size s, Reg dst, Mem src) {
  if (s != Size::b32 && s != Size::b64) fail("lea needs a 32- or 64-bit destination");
  append(op_rm(s, {0x8D}, dst.id, src));
}

// ---- arithmetic ----

void Assembler::alu(Alu op, Size s, Reg dst, Reg src) {
  append(op_rr(s, {alu_opcode(op, s == Size::b8 ? 0 : 1)}, src.id, dst, true));
}

void Assembler::alu(Alu op, Size s, Reg dst, Mem src) {
  append(op_rm(s, {alu_opcode(op, s == Size::b8 ? 2 : 3)}, dst.id, src, true));
}

void Assembler::alu(Alu op, Size s, Mem dst, Reg src) {
  append(op_rm(s, {alu_opcode(op, s == Size::b8 ? 0 : 1)}, src.id, dst, true));
}

namespace {
// The group-1 ALU opcode for an immediate and the immediate's size in bytes: 0x80 for an 8-bit
// operand, 0x83 for a sign-extended imm8, 0x81 for imm16/imm32.
std::pair<std::uint8_t, int> alu_imm_form(Size s, std::int32_t value) {
  if (s == Size::b8) return {0x80, 1};
  if (fits_i8(value)) return {0x83, 1};
  return {0x81, s == Size::b16 ? 2 : 4};
}
}  // namespace

void Assembler::alu(Alu op, Size s, Reg dst, std::int32_t value) {
  const auto [opcode, imm_size] = alu_imm_form(s, value);
  Bytes e = op_rr(s, {opcode}, static_cast<unsigned>(op), dst);
  e.imm(static_cast<std::uint32_t>(value), imm_size);
  append(e);
}

void Assembler::alu(Alu op, Size s, Mem dst, std::int32_t value) {
  const auto [opcode, imm_size] = alu_imm_form(s, value);
  Bytes e = op_rm(s, {opcode}, static_cast<unsigned>(op), dst);
  e.imm(static_cast<std::uint32_t>(value), imm_size);
  append(e);
}

void Assembler::test(Size s, Reg a, Reg b) {
  append(op_rr(s, {s == Size::b8 ? std::uint8_t{0x84} : std::uint8_t{0x85}}, b.id, a, true));
}

void Assembler::test(Size s, Reg a, std::int32_t value) {
  Bytes e = op_rr(s, {s == Size::b8 ? std::uint8_t{0xF6} : std::uint8_t{0xF7}}, 0, a);
  e.imm(static_cast<std::uint32_t>(value), s == Size::b8 ? 1 : s == Size::b16 ? 2 : 4);
  append(e);
}

void Assembler::imul(Size s, Reg dst, Reg src) { append(op_rr(s, {0x0F, 0xAF}, dst.id, src)); }
void Assembler::imul(Size s, Reg dst, Mem src) { append(op_rm(s, {0x0F, 0xAF}, dst.id, src)); }

void Assembler::imul(Size s, Reg dst, Reg src, std::int32_t value) {
  const bool short_imm = fits_i8(value);
  Bytes e = op_rr(s, {short_imm ? std::uint8_t{0x6B} : std::uint8_t{0x69}}, dst.id, src);
  e.imm(static_cast<std::uint32_t>(value), short_imm ? 1 : s == Size::b16 ? 2 : 4);
  append(e);
}

void Assembler::unary(Unary op, Size s, Reg r) {
  append(op_rr(s, {s == Size::b8 ? std::uint8_t{0xF6} : std::uint8_t{0xF7}}, static_cast<unsigned>(op), r));
}

void Assembler::cdq() { raw({0x99}); }
void Assembler::cqo() { raw({0x48, 0x99}); }

void Assembler::shift(Shift op, Size s, Reg r) {
  append(op_rr(s, {s == Size::b8 ? std::uint8_t{0xD2} : std::uint8_t{0xD3}}, static_cast<unsigned>(op), r));
}

void Assembler::shift(Shift op, Size s, Reg r, std::uint8_t n) {
  Bytes e = op_rr(s, {s == Size::b8 ? std::uint8_t{0xC0} : std::uint8_t{0xC1}}, static_cast<unsigned>(op), r);
  e.put(n);
  append(e);
}

void Assembler::bswap(Size s, Reg r) {
  if (s != Size::b32 && s != Size::b64) fail("bswap needs a 32- or 64-bit register");
  Bytes e = start();
  prefixes(e, s, 0, nullptr, r.id, false);
  e.put(0x0F);
  e.put(static_cast<std::uint8_t>(0xC8 + r.low3()));
  append(e);
}

void Assembler::shift_bmi2(Shift op, Size s, Reg dst, Reg src, Reg count) {
  if (s != Size::b32 && s != Size::b64) fail("shlx/shrx/sarx need 32- or 64-bit registers");
  // VEX prefix: 66 (shlx), F2 (shrx) or F3 (sarx) as pp, map 0F38, the count in vvvv.
  unsigned pp = 1;
  if (op == Shift::shr)
    pp = 3;
  else if (op == Shift::sar)
    pp = 2;
  else if (op != Shift::shl)
    fail("shift_bmi2 supports shl, shr and sar");
  Bytes e = start();
  e.put(0xC4);
  e.put(static_cast<std::uint8_t>((dst.high() ? 0 : 0x80) | 0x40 | (src.high() ? 0 : 0x20) | 0x02));
  e.put(static_cast<std::uint8_t>((s == Size::b64 ? 0x80 : 0) | (~count.id & 15u) << 3 | pp));
  e.put(0xF7);
  modrm_reg(e, dst.id, src.id);
  append(e);
}

void Assembler::cmov(Cond c, Size s, Reg dst, Reg src) {
  if (s == Size::b8) fail("cmov has no 8-bit form");
  append(op_rr(s, {0x0F, static_cast<std::uint8_t>(0x40 + static_cast<unsigned>(c))}, dst.id, src));
}

void Assembler::cmov(Cond c, Size s, Reg dst, Mem src) {
  if (s == Size::b8) fail("cmov has no 8-bit form");
  append(op_rm(s, {0x0F, static_cast<std::uint8_t>(0x40 + static_cast<unsigned>(c))}, dst.id, src));
}

void Assembler::setcc(Cond c, Reg dst) {
  append(op_rr(Size::b8, {0x0F, static_cast<std::uint8_t>(0x90 + static_cast<unsigned>(c))}, 0, dst));
}

// ---- atomics ----

void Assembler::lock_alu(Alu op, Size s, Mem dst, Reg src) {
  if (op != Alu::add && op != Alu::or_ && op != Alu::and_ && op != Alu::xor_)
    fail("lock_alu supports add, or, and, xor");
  raw({0xF0});  // lock
  alu(op, s, dst, src);
}

void Assembler::lock_xadd(Size s, Mem dst, Reg src) {
  raw({0xF0});  // lock
  append(op_rm(s, {0x0F, s == Size::b8 ? std::uint8_t{0xC0} : std::uint8_t{0xC1}}, src.id, dst, true));
}

void Assembler::xchg(Size s, Mem dst, Reg src) {
  append(op_rm(s, {s == Size::b8 ? std::uint8_t{0x86} : std::uint8_t{0x87}}, src.id, dst, true));
}

void Assembler::lock_cmpxchg(Size s, Mem dst, Reg src) {
  raw({0xF0});  // lock
  append(op_rm(s, {0x0F, s == Size::b8 ? std::uint8_t{0xB0} : std::uint8_t{0xB1}}, src.id, dst, true));
}

// ---- stack and control flow ----

void Assembler::push(Reg r) {
  Bytes e = start();
  if (r.high()) e.put(0x41);
  e.put(static_cast<std::uint8_t>(0x50 + r.low3()));
  append(e);
}

void Assembler::pop(Reg r) {
  Bytes e = start();
  if (r.high()) e.put(0x41);
  e.put(static_cast<std::uint8_t>(0x58 + r.low3()));
  append(e);
}

void Assembler::ret() { raw({0xC3}); }
void Assembler::int3() { raw({0xCC}); }
void Assembler::ud2() { raw({0x0F, 0x0B}); }

void Assembler::nop(std::size_t bytes) {
  // The multi-byte NOP forms (0F 1F /0 with growing addressing modes), longest 9 bytes.
  static constexpr std::uint8_t kNops[9][9] = {
      {0x90},
      {0x66, 0x90},
      {0x0F, 0x1F, 0x00},
      {0x0F, 0x1F, 0x40, 0x00},
      {0x0F, 0x1F, 0x44, 0x00, 0x00},
      {0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00},
      {0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00},
      {0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
      {0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
  };
  while (bytes > 0) {
    const std::size_t n = bytes < 9 ? bytes : 9;
    Bytes e = start();
    for (std::size_t i = 0; i < n; ++i) e.put(kNops[n - 1][i]);
    append(e);
    bytes -= n;
  }
}

void Assembler::call(Reg target) { append(op_rr(Size::b32, {0xFF}, 2, target)); }
void Assembler::jmp(Reg target) { append(op_rr(Size::b32, {0xFF}, 4, target)); }

void Assembler::call(Label target) { rel_jump({}, {0xE8}, target); }
void Assembler::jmp(Label target) { rel_jump({0xEB}, {0xE9}, target); }

void Assembler::jcc(Cond c, Label target) {
  const auto cc = static_cast<unsigned>(c);
  rel_jump({static_cast<std::uint8_t>(0x70 + cc)}, {0x0F, static_cast<std::uint8_t>(0x80 + cc)}, target);
}

std::uint32_t Assembler::jcc_forward(Cond c) {
  Bytes e = start();
  e.put(0x0F);
  e.put(static_cast<std::uint8_t>(0x80 + static_cast<unsigned>(c)));
  const auto at = static_cast<std::size_t>(e.p - code_.data());
  if (at >= kUnbound) fail("code larger than 4 GiB");
  e.imm(0, 4);
  append(e);
  return static_cast<std::uint32_t>(at);
}

void Assembler::patch_here(std::uint32_t displacement_at) {
  if (displacement_at + std::size_t{4} > end_) return fail("patch of a jump outside the code");
  const auto rel = static_cast<std::int64_t>(end_) - static_cast<std::int64_t>(displacement_at + 4);
  if (!fits_i32(rel)) fail_out_of_range(displacement_at);
  const auto v = static_cast<std::uint32_t>(rel);
  std::memcpy(code_.data() + displacement_at, &v, 4);  // little-endian like the target
}

BPFVM_ENCODER void Assembler::rel_jump(std::initializer_list<std::uint8_t> short_op,
                                       std::initializer_list<std::uint8_t> near_op, Label l) {
  if (l.id >= labels_.size()) {
    fail("jump to a label this assembler did not create");
    l = Label{};
  }
  Bytes e = start();
  if (bound(l)) {
    // Backward: rel8 when it reaches and the jump has that form, else rel32 written now.
    const auto target = static_cast<std::int64_t>(labels_[l.id]);
    if (short_op.size() != 0) {
      const auto rel = target - static_cast<std::int64_t>(end_ + short_op.size() + 1);
      if (fits_i8(rel)) {
        for (auto b : short_op) e.put(b);
        e.imm(static_cast<std::uint64_t>(rel), 1);
        return append(e);
      }
    }
    for (auto b : near_op) e.put(b);
    const auto at = static_cast<std::int64_t>(e.p - code_.data());
    const auto rel = target - (at + 4);
    if (!fits_i32(rel)) fail_out_of_range(static_cast<std::size_t>(at));
    e.imm(static_cast<std::uint32_t>(rel), 4);
    return append(e);
  }
  for (auto b : near_op) e.put(b);
  const auto at = static_cast<std::size_t>(e.p - code_.data());
  if (at >= kUnbound) fail("code larger than 4 GiB");
  fixups_.push_back({static_cast<std::uint32_t>(at), l});
  e.imm(0, 4);
  append(e);
}

Label Assembler::new_labels(std::uint32_t count) {
  const auto first = static_cast<std::uint32_t>(labels_.size());
  labels_.resize(labels_.size() + count, kUnbound);
  return Label{first};
}

void Assembler::bind_error(Label l) {
  if (l.id >= labels_.size()) return fail("bind of a label this assembler did not create");
  if (labels_[l.id] != kUnbound) return fail(fmt::format("label {} bound twice", l.id));
  fail("code larger than 4 GiB");
}

std::size_t Assembler::offset_of(Label l) const {
  return bound(l) ? labels_[l.id] : std::numeric_limits<std::size_t>::max();
}

}  // namespace bpfvm::jit::x64
