#include "jit/a64/assembler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace bpfvm::jit::a64 {

std::string Reg::name() const {
  if (!valid()) return "<no register>";
  if (is_sp()) return is64_ ? "sp" : "wsp";
  if (is_zr()) return is64_ ? "xzr" : "wzr";
  return fmt::format("{}{}", is64_ ? 'x' : 'w', id_);
}

const char* cond_name(Cond c) {
  static constexpr const char* kNames[] = {"eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc",
                                           "hi", "ls", "ge", "lt", "gt", "le", "al", "nv"};
  return kNames[static_cast<unsigned>(c) & 15];
}

// ------------------------------------------------------------------------- bitmask immediates
// A logical immediate is an element of 2, 4, ..., 64 bits, repeated across the register, whose
// value is a run of s ones (0 < s < size) rotated right by immr. imms encodes both the element
// size (leading ones above a zero) and s - 1.
std::optional<BitmaskImm> encode_bitmask_imm(std::uint64_t value, bool is64) {
  if (!is64) {
    value &= 0xffffffffu;
    value |= value << 32;
  }
  for (unsigned size = 2; size <= 64; size *= 2) {
    const std::uint64_t mask = size == 64 ? ~0ull : (1ull << size) - 1;
    const std::uint64_t elt = value & mask;
    bool repeats = true;
    for (unsigned at = size; at < 64 && repeats; at += size) repeats = ((value >> at) & mask) == elt;
    if (!repeats) continue;
    if (elt == 0 || elt == mask) return std::nullopt;
    if (!is64 && size == 64) return std::nullopt;
    for (unsigned r = 0; r < size; ++r) {
      // Rotating left by r undoes a right rotation by r.
      const std::uint64_t t = r == 0 ? elt : ((elt << r) | (elt >> (size - r))) & mask;
      if ((t & (t + 1)) == 0) {
        const unsigned ones = static_cast<unsigned>(__builtin_popcountll(t));
        const unsigned imms = ((~(size - 1) << 1) & 0x3f) | (ones - 1);
        return BitmaskImm{size == 64 ? 1u : 0u, r, imms};
      }
    }
    return std::nullopt;
  }
  return std::nullopt;
}

namespace {

constexpr std::uint32_t bit(bool b, unsigned at) { return static_cast<std::uint32_t>(b) << at; }

bool fits_signed(std::int64_t v, unsigned bits) {
  const std::int64_t lim = std::int64_t{1} << (bits - 1);
  return v >= -lim && v < lim;
}

// How mov_imm materialises a constant.
struct MovPlan {
  enum Kind { movz, movn, orr } kind;
  bool is64;
  unsigned length;
};

unsigned halfwords_not(std::uint64_t v, unsigned count, std::uint16_t skip) {
  unsigned n = 0;
  for (unsigned i = 0; i < count; ++i) n += static_cast<std::uint16_t>(v >> (16 * i)) != skip;
  return n;
}

MovPlan plan_mov(std::uint64_t value, bool is64) {
  std::optional<MovPlan> best;
  auto consider = [&](MovPlan p) {
    if (!best || p.length < best->length) best = p;
  };
  auto forms = [&](std::uint64_t v, bool wide) {
    const unsigned count = wide ? 4 : 2;
    consider({MovPlan::movz, wide, std::max(1u, halfwords_not(v, count, 0))});
    consider({MovPlan::movn, wide, std::max(1u, halfwords_not(v, count, 0xffff))});
    if (encode_bitmask_imm(v, wide)) consider({MovPlan::orr, wide, 1});
  };
  if (is64) {
    // The 32-bit forms zero-extend, so they also build 64-bit values with a zero upper half.
    if ((value >> 32) == 0) forms(value, false);
    forms(value, true);
  } else {
    forms(value & 0xffffffffu, false);
  }
  return *best;
}

unsigned extend_option(Extend e) { return static_cast<unsigned>(e); }

const char* extend_name(Extend e) {
  static constexpr const char* kNames[] = {"uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw", "sxtx"};
  return kNames[static_cast<unsigned>(e) & 7];
}

}  // namespace

// ------------------------------------------------------------------------- buffer and errors
std::vector<std::uint8_t> Assembler::bytes() const {
  std::vector<std::uint8_t> out;
  out.reserve(size());
  for (std::uint32_t w : words_)
    for (unsigned i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(w >> (8 * i)));
  return out;
}

Status Assembler::status() const {
  if (error_) return *error_;
  return {};
}

Result<std::vector<std::uint8_t>> Assembler::finish() const {
  if (error_) return *error_;
  for (std::size_t i = 0; i < labels_.size(); ++i)
    if (!labels_[i].word && !labels_[i].uses.empty())
      return Error(fmt::format("a64 assembler: label {} is branched to (at byte {}) but never bound", i,
                               labels_[i].uses.front().at * 4));
  return bytes();
}

void Assembler::fail(std::string message) {
  if (!error_) error_ = Error(fmt::format("a64 assembler: at byte {}: {}", size(), message));
}

unsigned Assembler::rz(Reg r, const char* what) {
  if (!r.valid()) {
    fail(fmt::format("{}: missing register", what));
  } else if (r.is_sp()) {
    fail(fmt::format("{}: {} is not allowed here (register 31 is the zero register)", what, r.name()));
  }
  return r.code();
}

unsigned Assembler::rs(Reg r, const char* what) {
  if (!r.valid()) {
    fail(fmt::format("{}: missing register", what));
  } else if (r.is_zr()) {
    fail(fmt::format("{}: {} is not allowed here (register 31 is the stack pointer)", what, r.name()));
  }
  return r.code();
}

unsigned Assembler::sf(Reg rd, std::initializer_list<Reg> same_width) {
  for (Reg r : same_width)
    if (r.valid() && rd.valid() && r.is64() != rd.is64())
      fail(fmt::format("{} and {} differ in width", rd.name(), r.name()));
  return rd.is64() ? 1u : 0u;
}

// ------------------------------------------------------------------------- labels, branches
Label Assembler::new_label() {
  labels_.emplace_back();
  return Label{static_cast<std::uint32_t>(labels_.size() - 1)};
}

bool Assembler::is_bound(Label label) const { return label.id < labels_.size() && labels_[label.id].word; }

std::size_t Assembler::label_offset(Label label) const {
  return is_bound(label) ? *labels_[label.id].word * 4 : 0;
}

void Assembler::bind(Label label) {
  if (label.id >= labels_.size()) return fail("bind: unknown label");
  LabelState& st = labels_[label.id];
  if (st.word) return fail(fmt::format("bind: label {} is already bound", label.id));
  st.word = words_.size();
  for (const Use& use : st.uses)
    patch(use.at, use.fix, (static_cast<std::int64_t>(*st.word) - static_cast<std::int64_t>(use.at)) * 4);
  st.uses.clear();
}

bool Assembler::patch(std::size_t at, Fix fix, std::int64_t offset) {
  static constexpr struct {
    unsigned bits, shift;
    const char* range;
  } kFix[] = {{26, 0, "+-128 MiB"}, {19, 5, "+-1 MiB"}, {14, 5, "+-32 KiB"}};
  const auto& f = kFix[static_cast<unsigned>(fix)];
  if (offset % 4 != 0) {
    fail(fmt::format("branch offset {} is not a multiple of 4", offset));
    return false;
  }
  if (!fits_signed(offset / 4, f.bits)) {
    fail(fmt::format("branch at byte {} to offset {} is out of range ({})", at * 4, offset, f.range));
    return false;
  }
  const std::uint32_t field = static_cast<std::uint32_t>(offset / 4) & ((1u << f.bits) - 1);
  words_[at] |= field << f.shift;
  return true;
}

void Assembler::branch(std::uint32_t base, Fix fix, Label target) {
  if (target.id >= labels_.size()) {
    emit(base);
    return fail("branch to an unknown label");
  }
  const std::size_t at = words_.size();
  emit(base);
  LabelState& st = labels_[target.id];
  if (st.word) {
    patch(at, fix, (static_cast<std::int64_t>(*st.word) - static_cast<std::int64_t>(at)) * 4);
  } else {
    st.uses.push_back({at, fix});
  }
}

void Assembler::branch(std::uint32_t base, Fix fix, std::int64_t offset) {
  const std::size_t at = words_.size();
  emit(base);
  patch(at, fix, offset);
}

namespace {
constexpr std::uint32_t kB = 0x14000000, kBl = 0x94000000, kBCond = 0x54000000;
constexpr std::uint32_t kCbz = 0x34000000, kCbnz = 0x35000000, kTbz = 0x36000000, kTbnz = 0x37000000;
}  // namespace

void Assembler::b(Label t) { branch(kB, Fix::b26, t); }
void Assembler::bl(Label t) { branch(kBl, Fix::b26, t); }
void Assembler::cond_branch(std::uint32_t base, std::uint32_t inverse, Fix fix, Label target) {
  if (!far_) return branch(base, fix, target);
  branch(inverse, fix, std::int64_t{8});
  branch(kB, Fix::b26, target);
}

void Assembler::b(Cond c, Label t) {
  // al and nv both mean "always" (nv has no inverse), so a far form is a plain b.
  if (far_ && (c == Cond::al || c == Cond::nv)) return b(t);
  cond_branch(kBCond | static_cast<unsigned>(c), kBCond | static_cast<unsigned>(invert(c)), Fix::imm19, t);
}
void Assembler::cbz(Reg rt, Label t) {
  const std::uint32_t operand = sf(rt, {}) << 31 | rz(rt, "cbz");
  cond_branch(kCbz | operand, kCbnz | operand, Fix::imm19, t);
}
void Assembler::cbnz(Reg rt, Label t) {
  const std::uint32_t operand = sf(rt, {}) << 31 | rz(rt, "cbnz");
  cond_branch(kCbnz | operand, kCbz | operand, Fix::imm19, t);
}
void Assembler::b(std::int64_t off) { branch(kB, Fix::b26, off); }
void Assembler::bl(std::int64_t off) { branch(kBl, Fix::b26, off); }
void Assembler::b(Cond c, std::int64_t off) { branch(kBCond | static_cast<unsigned>(c), Fix::imm19, off); }
void Assembler::cbz(Reg rt, std::int64_t off) {
  branch(kCbz | sf(rt, {}) << 31 | rz(rt, "cbz"), Fix::imm19, off);
}
void Assembler::cbnz(Reg rt, std::int64_t off) {
  branch(kCbnz | sf(rt, {}) << 31 | rz(rt, "cbnz"), Fix::imm19, off);
}

namespace {
std::uint32_t test_bit_base(std::uint32_t op, unsigned code, unsigned bitno) {
  return op | bit(bitno >> 5, 31) | (bitno & 31) << 19 | code;
}
}  // namespace

void Assembler::tbz(Reg rt, unsigned n, Label t) {
  if (n >= (rt.is64() ? 64u : 32u)) fail(fmt::format("tbz: bit {} is outside {}", n, rt.name()));
  const unsigned code = rz(rt, "tbz");
  cond_branch(test_bit_base(kTbz, code, n & 63), test_bit_base(kTbnz, code, n & 63), Fix::imm14, t);
}
void Assembler::tbnz(Reg rt, unsigned n, Label t) {
  if (n >= (rt.is64() ? 64u : 32u)) fail(fmt::format("tbnz: bit {} is outside {}", n, rt.name()));
  const unsigned code = rz(rt, "tbnz");
  cond_branch(test_bit_base(kTbnz, code, n & 63), test_bit_base(kTbz, code, n & 63), Fix::imm14, t);
}
void Assembler::tbz(Reg rt, unsigned n, std::int64_t off) {
  if (n >= (rt.is64() ? 64u : 32u)) fail(fmt::format("tbz: bit {} is outside {}", n, rt.name()));
  branch(test_bit_base(kTbz, rz(rt, "tbz"), n & 63), Fix::imm14, off);
}
void Assembler::tbnz(Reg rt, unsigned n, std::int64_t off) {
  if (n >= (rt.is64() ? 64u : 32u)) fail(fmt::format("tbnz: bit {} is outside {}", n, rt.name()));
  branch(test_bit_base(kTbnz, rz(rt, "tbnz"), n & 63), Fix::imm14, off);
}

void Assembler::br(Reg xn) {
  if (!xn.is64()) fail("br: the target must be an x register");
  emit(0xD61F0000 | rz(xn, "br") << 5);
}
void Assembler::blr(Reg xn) {
  if (!xn.is64()) fail("blr: the target must be an x register");
  emit(0xD63F0000 | rz(xn, "blr") << 5);
}
void Assembler::ret(Reg xn) {
  if (!xn.is64()) fail("ret: the target must be an x register");
  emit(0xD65F0000 | rz(xn, "ret") << 5);
}
void Assembler::brk(std::uint16_t imm) { emit(0xD4200000 | std::uint32_t{imm} << 5); }
void Assembler::nop() { emit(0xD503201F); }
void Assembler::dmb(Barrier barrier) { emit(0xD50330BF | static_cast<std::uint32_t>(barrier) << 8); }

// ------------------------------------------------------------------------- add / sub
bool Assembler::addsub_imm(bool sub, bool set_flags, Reg rd, Reg rn, std::int64_t imm, Reg scratch) {
  const char* name = sub ? (set_flags ? "subs" : "sub") : (set_flags ? "adds" : "add");
  const unsigned s = sf(rd, {rn});
  const unsigned d = set_flags ? rz(rd, name) : rs(rd, name);
  const unsigned n = rs(rn, name);
  const std::uint64_t mask = s ? ~0ull : 0xffffffffull;
  const std::uint64_t v = static_cast<std::uint64_t>(imm) & mask;
  const std::uint64_t negated = (0 - v) & mask;
  auto one = [&](bool op_sub, std::uint64_t u, unsigned dst, unsigned src) {
    std::uint32_t field;
    if (u < 4096) {
      field = static_cast<std::uint32_t>(u) << 10;
    } else if ((u & 0xfff) == 0 && u < (1u << 24)) {
      field = 1u << 22 | static_cast<std::uint32_t>(u >> 12) << 10;
    } else {
      return false;
    }
    emit(s << 31 | bit(op_sub, 30) | bit(set_flags, 29) | 0b100010u << 23 | field | src << 5 | dst);
    return true;
  };
  if (one(sub, v, d, n)) return true;
  // x - v and x + (-v) set the same flags for every v but 0 and INT_MIN, and neither of those
  // reaches this line (0 encodes, INT_MIN's negation does not).
  if (v != 0 && one(!sub, negated, d, n)) return true;
  if (!set_flags) {
    // Two instructions for 24 bits: the high 12 bits shifted, then the low 12 bits.
    for (auto [op_sub, u] : {std::pair{sub, v}, std::pair{!sub, negated}}) {
      if (u < (1u << 24)) {
        one(op_sub, u & ~0xfffull, d, n);
        one(op_sub, u & 0xfff, d, d);
        return true;
      }
    }
  }
  if (!scratch.valid()) {
    fail(fmt::format("{}: immediate {:#x} does not fit and no scratch register was given", name, v));
    emit(0);
    return false;
  }
  const Reg tmp = s ? scratch.as_x() : scratch.as_w();
  if (tmp.code() == rn.code() && !rn.is_zr())
    fail(fmt::format("{}: scratch {} is the source", name, tmp.name()));
  mov_imm(tmp, v);
  addsub_reg(sub, set_flags, rd, rn, tmp, Shift::lsl, 0);
  return true;
}

void Assembler::addsub_reg(bool sub, bool set_flags, Reg rd, Reg rn, Reg rm, Shift shift, unsigned amount) {
  const char* name = sub ? (set_flags ? "subs" : "sub") : (set_flags ? "adds" : "add");
  if ((rd.is_sp() && !set_flags) || rn.is_sp()) {
    // Register 31 means sp only in the extended-register form.
    if (shift != Shift::lsl || amount > 4) fail(fmt::format("{}: with sp only lsl #0-4 is available", name));
    return addsub_ext(sub, set_flags, rd, rn, rm, rd.is64() ? Extend::uxtx : Extend::uxtw, amount & 7);
  }
  const unsigned s = sf(rd, {rn, rm});
  if (shift == Shift::ror) fail(fmt::format("{}: ror is not an add/sub shift", name));
  if (amount >= (s ? 64u : 32u)) fail(fmt::format("{}: shift amount {} is too large", name, amount));
  emit(s << 31 | bit(sub, 30) | bit(set_flags, 29) | 0b01011u << 24 | static_cast<unsigned>(shift) << 22 |
       rz(rm, name) << 16 | (amount & 63) << 10 | rz(rn, name) << 5 | rz(rd, name));
}

void Assembler::addsub_ext(bool sub, bool set_flags, Reg rd, Reg rn, Reg rm, Extend ext, unsigned amount) {
  const char* name = sub ? (set_flags ? "subs" : "sub") : (set_flags ? "adds" : "add");
  const unsigned s = sf(rd, {rn});
  const bool wide_source = ext == Extend::uxtx || ext == Extend::sxtx;
  if (rm.valid() && rm.is64() != (s && wide_source))
    fail(fmt::format("{}: {} does not suit extend {}", name, rm.name(), extend_name(ext)));
  if (amount > 4) fail(fmt::format("{}: extend shift {} is above 4", name, amount));
  emit(s << 31 | bit(sub, 30) | bit(set_flags, 29) | 0b01011u << 24 | 1u << 21 | rz(rm, name) << 16 |
       extend_option(ext) << 13 | (amount & 7) << 10 | rs(rn, name) << 5 |
       (set_flags ? rz(rd, name) : rs(rd, name)));
}

void Assembler::add(Reg rd, Reg rn, std::int64_t imm, Reg scratch) {
  addsub_imm(false, false, rd, rn, imm, scratch);
}
void Assembler::adds(Reg rd, Reg rn, std::int64_t imm, Reg scratch) {
  addsub_imm(false, true, rd, rn, imm, scratch);
}
void Assembler::sub(Reg rd, Reg rn, std::int64_t imm, Reg scratch) {
  addsub_imm(true, false, rd, rn, imm, scratch);
}
void Assembler::subs(Reg rd, Reg rn, std::int64_t imm, Reg scratch) {
  addsub_imm(true, true, rd, rn, imm, scratch);
}
void Assembler::cmp(Reg rn, std::int64_t imm, Reg scratch) {
  addsub_imm(true, true, Reg::zr(rn.is64()), rn, imm, scratch);
}
void Assembler::cmn(Reg rn, std::int64_t imm, Reg scratch) {
  addsub_imm(false, true, Reg::zr(rn.is64()), rn, imm, scratch);
}
void Assembler::add(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  addsub_reg(false, false, rd, rn, rm, sh, a);
}
void Assembler::adds(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  addsub_reg(false, true, rd, rn, rm, sh, a);
}
void Assembler::sub(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  addsub_reg(true, false, rd, rn, rm, sh, a);
}
void Assembler::subs(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  addsub_reg(true, true, rd, rn, rm, sh, a);
}
void Assembler::cmp(Reg rn, Reg rm, Shift sh, unsigned a) {
  addsub_reg(true, true, Reg::zr(rn.is64()), rn, rm, sh, a);
}
void Assembler::cmn(Reg rn, Reg rm, Shift sh, unsigned a) {
  addsub_reg(false, true, Reg::zr(rn.is64()), rn, rm, sh, a);
}
void Assembler::neg(Reg rd, Reg rm, Shift sh, unsigned a) {
  addsub_reg(true, false, rd, Reg::zr(rd.is64()), rm, sh, a);
}
void Assembler::add(Reg rd, Reg rn, Reg rm, Extend e, unsigned a) {
  addsub_ext(false, false, rd, rn, rm, e, a);
}
void Assembler::sub(Reg rd, Reg rn, Reg rm, Extend e, unsigned a) {
  addsub_ext(true, false, rd, rn, rm, e, a);
}

// ------------------------------------------------------------------------- logical
namespace {
constexpr unsigned kAnd = 0, kOrr = 1, kEor = 2, kAnds = 3;
constexpr const char* kLogicalNames[2][4] = {{"and", "orr", "eor", "ands"}, {"bic", "orn", "eon", "bics"}};
}  // namespace

void Assembler::logical_imm(unsigned opc, Reg rd, Reg rn, std::uint64_t imm, Reg scratch) {
  const char* name = kLogicalNames[0][opc];
  const unsigned s = sf(rd, {rn});
  const std::uint64_t v = s ? imm : imm & 0xffffffffu;
  if (auto enc = encode_bitmask_imm(v, s)) {
    emit(s << 31 | opc << 29 | 0b100100u << 23 | enc->n << 22 | enc->immr << 16 | enc->imms << 10 |
         rz(rn, name) << 5 | (opc == kAnds ? rz(rd, name) : rs(rd, name)));
    return;
  }
  if (!scratch.valid()) {
    fail(fmt::format("{}: {:#x} is not a bitmask immediate and no scratch register was given", name, v));
    return emit(0);
  }
  const Reg tmp = s ? scratch.as_x() : scratch.as_w();
  if (tmp.code() == rn.code() && !rn.is_zr())
    fail(fmt::format("{}: scratch {} is the source", name, tmp.name()));
  mov_imm(tmp, v);
  logical_reg(opc, false, rd, rn, tmp, Shift::lsl, 0);
}

void Assembler::logical_reg(unsigned opc, bool invert, Reg rd, Reg rn, Reg rm, Shift shift, unsigned amount) {
  const char* name = kLogicalNames[invert][opc];
  const unsigned s = sf(rd, {rn, rm});
  if (amount >= (s ? 64u : 32u)) fail(fmt::format("{}: shift amount {} is too large", name, amount));
  emit(s << 31 | opc << 29 | 0b01010u << 24 | static_cast<unsigned>(shift) << 22 | bit(invert, 21) |
       rz(rm, name) << 16 | (amount & 63) << 10 | rz(rn, name) << 5 | rz(rd, name));
}

void Assembler::and_(Reg rd, Reg rn, std::uint64_t imm, Reg t) { logical_imm(kAnd, rd, rn, imm, t); }
void Assembler::ands(Reg rd, Reg rn, std::uint64_t imm, Reg t) { logical_imm(kAnds, rd, rn, imm, t); }
void Assembler::orr(Reg rd, Reg rn, std::uint64_t imm, Reg t) { logical_imm(kOrr, rd, rn, imm, t); }
void Assembler::eor(Reg rd, Reg rn, std::uint64_t imm, Reg t) { logical_imm(kEor, rd, rn, imm, t); }
void Assembler::tst(Reg rn, std::uint64_t imm, Reg t) { logical_imm(kAnds, Reg::zr(rn.is64()), rn, imm, t); }
void Assembler::and_(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kAnd, false, rd, rn, rm, sh, a);
}
void Assembler::ands(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kAnds, false, rd, rn, rm, sh, a);
}
void Assembler::orr(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kOrr, false, rd, rn, rm, sh, a);
}
void Assembler::eor(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kEor, false, rd, rn, rm, sh, a);
}
void Assembler::bic(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kAnd, true, rd, rn, rm, sh, a);
}
void Assembler::orn(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kOrr, true, rd, rn, rm, sh, a);
}
void Assembler::eon(Reg rd, Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kEor, true, rd, rn, rm, sh, a);
}
void Assembler::tst(Reg rn, Reg rm, Shift sh, unsigned a) {
  logical_reg(kAnds, false, Reg::zr(rn.is64()), rn, rm, sh, a);
}
void Assembler::mvn(Reg rd, Reg rm, Shift sh, unsigned a) {
  logical_reg(kOrr, true, rd, Reg::zr(rd.is64()), rm, sh, a);
}

void Assembler::mov(Reg rd, Reg rm) {
  if (rd.is_sp() || rm.is_sp()) {
    const unsigned s = sf(rd, {rm});
    emit(s << 31 | 0b100010u << 23 | rs(rm, "mov") << 5 | rs(rd, "mov"));
    return;
  }
  logical_reg(kOrr, false, rd, Reg::zr(rd.is64()), rm, Shift::lsl, 0);
}

// ------------------------------------------------------------------------- move wide
void Assembler::move_wide(unsigned opc, Reg rd, std::uint16_t imm, unsigned shift) {
  static constexpr const char* kNames[] = {"movn", "", "movz", "movk"};
  const unsigned s = sf(rd, {});
  if (shift % 16 != 0 || shift >= (s ? 64u : 32u))
    fail(fmt::format("{}: shift {} is not lsl #0/16{} ", kNames[opc], shift, s ? "/32/48" : ""));
  emit(s << 31 | opc << 29 | 0b100101u << 23 | ((shift / 16) & 3) << 21 | std::uint32_t{imm} << 5 |
       rz(rd, kNames[opc]));
}

void Assembler::movz(Reg rd, std::uint16_t imm, unsigned shift) { move_wide(2, rd, imm, shift); }
void Assembler::movn(Reg rd, std::uint16_t imm, unsigned shift) { move_wide(0, rd, imm, shift); }
void Assembler::movk(Reg rd, std::uint16_t imm, unsigned shift) { move_wide(3, rd, imm, shift); }

unsigned Assembler::mov_imm_length(std::uint64_t value, bool is64) { return plan_mov(value, is64).length; }

void Assembler::mov_imm(Reg rd, std::uint64_t value) {
  const MovPlan p = plan_mov(value, rd.is64());
  const Reg dst = p.is64 ? rd.as_x() : rd.as_w();
  const std::uint64_t v = p.is64 ? value : value & 0xffffffffu;
  const unsigned count = p.is64 ? 4 : 2;
  auto half = [&](unsigned i) { return static_cast<std::uint16_t>(v >> (16 * i)); };
  switch (p.kind) {
    case MovPlan::orr:
      rz(rd, "mov");  // the orr form would accept sp; a constant never goes there
      return logical_imm(kOrr, dst, Reg::zr(p.is64), v, no_reg);
    case MovPlan::movz:
    case MovPlan::movn: {
      const std::uint16_t fill = p.kind == MovPlan::movz ? 0 : 0xffff;
      bool first = true;
      for (unsigned i = 0; i < count; ++i) {
        if (half(i) == fill) continue;
        if (first) {
          move_wide(p.kind == MovPlan::movz ? 2 : 0, dst, p.kind == MovPlan::movz ? half(i) : ~half(i),
                    16 * i);
        } else {
          movk(dst, half(i), 16 * i);
        }
        first = false;
      }
      if (first) move_wide(p.kind == MovPlan::movz ? 2 : 0, dst, 0, 0);
      return;
    }
  }
}

// ------------------------------------------------------------------------- multiply, divide, shifts
void Assembler::dp2(unsigned opcode, Reg rd, Reg rn, Reg rm) {
  const unsigned s = sf(rd, {rn, rm});
  emit(s << 31 | 0b11010110u << 21 | rz(rm, "dp2") << 16 | opcode << 10 | rz(rn, "dp2") << 5 | rz(rd, "dp2"));
}

void Assembler::dp3(bool sub, Reg rd, Reg rn, Reg rm, Reg ra) {
  const char* name = sub ? "msub" : "madd";
  const unsigned s = sf(rd, {rn, rm, ra});
  emit(s << 31 | 0b11011u << 24 | rz(rm, name) << 16 | bit(sub, 15) | rz(ra, name) << 10 | rz(rn, name) << 5 |
       rz(rd, name));
}

void Assembler::madd(Reg rd, Reg rn, Reg rm, Reg ra) { dp3(false, rd, rn, rm, ra); }
void Assembler::umulh(Reg xd, Reg xn, Reg xm) {
  if (!xd.is64()) fail("umulh: operands are x registers");
  sf(xd, {xn, xm});
  emit(1u << 31 | 0b11011u << 24 | 0b110u << 21 | rz(xm, "umulh") << 16 | 31u << 10 | rz(xn, "umulh") << 5 |
       rz(xd, "umulh"));
}
void Assembler::smulh(Reg xd, Reg xn, Reg xm) {
  if (!xd.is64()) fail("smulh: operands are x registers");
  sf(xd, {xn, xm});
  emit(1u << 31 | 0b11011u << 24 | 0b010u << 21 | rz(xm, "smulh") << 16 | 31u << 10 | rz(xn, "smulh") << 5 |
       rz(xd, "smulh"));
}
void Assembler::msub(Reg rd, Reg rn, Reg rm, Reg ra) { dp3(true, rd, rn, rm, ra); }
void Assembler::mul(Reg rd, Reg rn, Reg rm) { dp3(false, rd, rn, rm, Reg::zr(rd.is64())); }
void Assembler::udiv(Reg rd, Reg rn, Reg rm) { dp2(0b000010, rd, rn, rm); }
void Assembler::sdiv(Reg rd, Reg rn, Reg rm) { dp2(0b000011, rd, rn, rm); }
void Assembler::lslv(Reg rd, Reg rn, Reg rm) { dp2(0b001000, rd, rn, rm); }
void Assembler::lsrv(Reg rd, Reg rn, Reg rm) { dp2(0b001001, rd, rn, rm); }
void Assembler::asrv(Reg rd, Reg rn, Reg rm) { dp2(0b001010, rd, rn, rm); }
void Assembler::rorv(Reg rd, Reg rn, Reg rm) { dp2(0b001011, rd, rn, rm); }

void Assembler::bitfield(unsigned opc, Reg rd, Reg rn, unsigned immr, unsigned imms) {
  static constexpr const char* kNames[] = {"sbfm", "bfm", "ubfm"};
  const char* name = kNames[opc];
  const unsigned s = sf(rd, {rn});
  const unsigned width = s ? 64 : 32;
  if (immr >= width || imms >= width)
    fail(fmt::format("{}: immr {} / imms {} exceed the width", name, immr, imms));
  emit(s << 31 | opc << 29 | 0b100110u << 23 | s << 22 | (immr & 63) << 16 | (imms & 63) << 10 |
       rz(rn, name) << 5 | rz(rd, name));
}

void Assembler::ubfm(Reg rd, Reg rn, unsigned immr, unsigned imms) { bitfield(2, rd, rn, immr, imms); }
void Assembler::sbfm(Reg rd, Reg rn, unsigned immr, unsigned imms) { bitfield(0, rd, rn, immr, imms); }
void Assembler::bfm(Reg rd, Reg rn, unsigned immr, unsigned imms) { bitfield(1, rd, rn, immr, imms); }

// Extraction rotates the field at lsb down to bit 0 (immr = lsb, imms = top bit); insertion
// rotates bit 0 up to lsb (immr = -lsb mod width, imms = width - 1).
void Assembler::bitfield_range(unsigned opc, bool insert, Reg rd, Reg rn, unsigned lsb, unsigned width) {
  const unsigned bits = rd.is64() ? 64 : 32;
  if (width == 0 || lsb >= bits || width > bits - lsb) {
    fail(fmt::format("bitfield: {} bits at bit {} do not fit in {}", width, lsb, rd.name()));
    return emit(0);
  }
  if (insert) return bitfield(opc, rd, rn, (bits - lsb) % bits, width - 1);
  bitfield(opc, rd, rn, lsb, lsb + width - 1);
}
void Assembler::ubfx(Reg rd, Reg rn, unsigned lsb, unsigned w) { bitfield_range(2, false, rd, rn, lsb, w); }
void Assembler::sbfx(Reg rd, Reg rn, unsigned lsb, unsigned w) { bitfield_range(0, false, rd, rn, lsb, w); }
void Assembler::ubfiz(Reg rd, Reg rn, unsigned lsb, unsigned w) { bitfield_range(2, true, rd, rn, lsb, w); }
void Assembler::bfi(Reg rd, Reg rn, unsigned lsb, unsigned w) { bitfield_range(1, true, rd, rn, lsb, w); }
void Assembler::bfxil(Reg rd, Reg rn, unsigned lsb, unsigned w) { bitfield_range(1, false, rd, rn, lsb, w); }

void Assembler::lsl(Reg rd, Reg rn, unsigned amount) {
  const unsigned width = rd.is64() ? 64 : 32;
  if (amount >= width) fail(fmt::format("lsl: shift {} is too large", amount));
  amount %= width;
  bitfield(2, rd, rn, (width - amount) % width, width - 1 - amount);
}
void Assembler::lsr(Reg rd, Reg rn, unsigned amount) { bitfield(2, rd, rn, amount, rd.is64() ? 63 : 31); }
void Assembler::asr(Reg rd, Reg rn, unsigned amount) { bitfield(0, rd, rn, amount, rd.is64() ? 63 : 31); }

void Assembler::ror(Reg rd, Reg rn, unsigned amount) {
  const unsigned s = sf(rd, {rn});
  if (amount >= (s ? 64u : 32u)) fail(fmt::format("ror: rotation {} is too large", amount));
  const unsigned n = rz(rn, "ror");
  emit(s << 31 | 0b100111u << 23 | s << 22 | n << 16 | (amount & 63) << 10 | n << 5 | rz(rd, "ror"));
}

void Assembler::sxtb(Reg rd, Reg wn) {
  if (wn.is64()) fail("sxtb: the source must be a w register");
  bitfield(0, rd, rd.is64() ? wn.as_x() : wn, 0, 7);
}
void Assembler::sxth(Reg rd, Reg wn) {
  if (wn.is64()) fail("sxth: the source must be a w register");
  bitfield(0, rd, rd.is64() ? wn.as_x() : wn, 0, 15);
}
void Assembler::sxtw(Reg xd, Reg wn) {
  if (!xd.is64() || wn.is64()) fail("sxtw: writes an x register from a w register");
  bitfield(0, xd.as_x(), wn.as_x(), 0, 31);
}
void Assembler::uxtb(Reg wd, Reg wn) {
  if (wd.is64() || wn.is64()) fail("uxtb: operands are w registers");
  bitfield(2, wd.as_w(), wn.as_w(), 0, 7);
}
void Assembler::uxth(Reg wd, Reg wn) {
  if (wd.is64() || wn.is64()) fail("uxth: operands are w registers");
  bitfield(2, wd.as_w(), wn.as_w(), 0, 15);
}

void Assembler::rev_form(unsigned opcode, Reg rd, Reg rn) {
  const unsigned s = sf(rd, {rn});
  emit(s << 31 | 1u << 30 | 0b11010110u << 21 | opcode << 10 | rz(rn, "rev") << 5 | rz(rd, "rev"));
}
void Assembler::rev(Reg rd, Reg rn) { rev_form(rd.is64() ? 0b000011 : 0b000010, rd, rn); }
void Assembler::rev16(Reg rd, Reg rn) { rev_form(0b000001, rd, rn); }
void Assembler::clz(Reg rd, Reg rn) { rev_form(0b000100, rd, rn); }
void Assembler::rev32(Reg xd, Reg xn) {
  if (!xd.is64()) fail("rev32: operands are x registers");
  rev_form(0b000010, xd, xn);
}

// ------------------------------------------------------------------------- conditional select
void Assembler::csel_form(unsigned op, unsigned op2, Reg rd, Reg rn, Reg rm, Cond cond) {
  const unsigned s = sf(rd, {rn, rm});
  emit(s << 31 | op << 30 | 0b11010100u << 21 | rz(rm, "csel") << 16 | static_cast<unsigned>(cond) << 12 |
       op2 << 10 | rz(rn, "csel") << 5 | rz(rd, "csel"));
}
void Assembler::csel(Reg rd, Reg rn, Reg rm, Cond c) { csel_form(0, 0, rd, rn, rm, c); }
void Assembler::csinc(Reg rd, Reg rn, Reg rm, Cond c) { csel_form(0, 1, rd, rn, rm, c); }
void Assembler::csinv(Reg rd, Reg rn, Reg rm, Cond c) { csel_form(1, 0, rd, rn, rm, c); }
void Assembler::csneg(Reg rd, Reg rn, Reg rm, Cond c) { csel_form(1, 1, rd, rn, rm, c); }
void Assembler::cset(Reg rd, Cond c) {
  if (c == Cond::al || c == Cond::nv) fail("cset: al/nv have no inverse");
  const Reg z = Reg::zr(rd.is64());
  csinc(rd, z, z, invert(c));
}
void Assembler::csetm(Reg rd, Cond c) {
  if (c == Cond::al || c == Cond::nv) fail("csetm: al/nv have no inverse");
  const Reg z = Reg::zr(rd.is64());
  csinv(rd, z, z, invert(c));
}

// ------------------------------------------------------------------------- loads and stores
// size: log2 of the access in bytes; opc: 0 store, 1 load, 2 sign-extending load to x, 3 to w.
void Assembler::load_store(unsigned size, unsigned opc, Reg rt, const Mem& m, Reg scratch) {
  static constexpr const char* kNames[4][4] = {{"strb", "ldrb", "ldrsb", "ldrsb"},
                                               {"strh", "ldrh", "ldrsh", "ldrsh"},
                                               {"str", "ldr", "ldrsw", ""},
                                               {"str", "ldr", "", ""}};
  const char* name = kNames[size][opc];
  const Reg base = m.base();
  if (!base.is64()) fail(fmt::format("{}: base {} must be an x register or sp", name, base.name()));
  const std::uint32_t common = size << 30 | 0b111u << 27 | opc << 22 | rs(base, name) << 5 | rz(rt, name);
  const std::int64_t off = m.offset();
  switch (m.mode()) {
    case Mem::Mode::offset: {
      const std::int64_t scale = std::int64_t{1} << size;
      if (off >= 0 && off % scale == 0 && off / scale < 4096) {
        emit(common | 1u << 24 | static_cast<std::uint32_t>(off / scale) << 10);
      } else if (fits_signed(off, 9)) {
        emit(common | (static_cast<std::uint32_t>(off) & 0x1ff) << 12);
      } else if (scratch.valid()) {
        if (scratch.code() == base.code() || scratch.is_sp() || scratch.is_zr() ||
            (opc == 0 && scratch.code() == rt.code()))
          fail(fmt::format("{}: scratch {} cannot hold the offset", name, scratch.name()));
        mov_imm(scratch.as_x(), static_cast<std::uint64_t>(off));
        emit(common | 1u << 21 | scratch.code() << 16 | extend_option(Extend::uxtx) << 13 | 2u << 10);
      } else {
        fail(fmt::format("{}: offset {} fits neither the scaled unsigned nor the unscaled form", name, off));
        emit(0);
      }
      return;
    }
    case Mem::Mode::pre_index:
    case Mem::Mode::post_index:
      if (!fits_signed(off, 9)) fail(fmt::format("{}: writeback offset {} is outside -256..255", name, off));
      if (rt.code() == base.code() && !base.is_sp())
        fail(fmt::format("{}: writeback base {} is also the data register", name, rt.name()));
      emit(common | (static_cast<std::uint32_t>(off) & 0x1ff) << 12 |
           (m.mode() == Mem::Mode::pre_index ? 3u : 1u) << 10);
      return;
    case Mem::Mode::reg: {
      const Reg idx = m.index();
      const Extend e = m.extend();
      const bool wide = e == Extend::uxtx || e == Extend::sxtx;
      if (!(wide || e == Extend::uxtw || e == Extend::sxtw))
        fail(fmt::format("{}: register offsets extend with lsl/uxtx, sxtx, uxtw or sxtw", name));
      if (idx.valid() && idx.is64() != wide)
        fail(fmt::format("{}: index {} does not suit the extension", name, idx.name()));
      emit(common | 1u << 21 | rz(idx, name) << 16 | extend_option(e) << 13 | bit(m.scaled(), 12) | 2u << 10);
      return;
    }
  }
}

namespace {
bool is_w(Reg r) { return r.valid() && !r.is64(); }
}  // namespace

void Assembler::ldrb(Reg wt, Mem m, Reg scratch) {
  if (!is_w(wt)) fail("ldrb: loads a w register");
  load_store(0, 1, wt, m, scratch);
}
void Assembler::ldrh(Reg wt, Mem m, Reg scratch) {
  if (!is_w(wt)) fail("ldrh: loads a w register");
  load_store(1, 1, wt, m, scratch);
}
void Assembler::ldr(Reg rt, Mem m, Reg scratch) { load_store(rt.is64() ? 3 : 2, 1, rt, m, scratch); }
void Assembler::ldrsb(Reg rt, Mem m, Reg scratch) { load_store(0, rt.is64() ? 2 : 3, rt, m, scratch); }
void Assembler::ldrsh(Reg rt, Mem m, Reg scratch) { load_store(1, rt.is64() ? 2 : 3, rt, m, scratch); }
void Assembler::ldrsw(Reg xt, Mem m, Reg scratch) {
  if (!xt.is64()) fail("ldrsw: loads an x register");
  load_store(2, 2, xt, m, scratch);
}
void Assembler::strb(Reg wt, Mem m, Reg scratch) {
  if (!is_w(wt)) fail("strb: stores a w register");
  load_store(0, 0, wt, m, scratch);
}
void Assembler::strh(Reg wt, Mem m, Reg scratch) {
  if (!is_w(wt)) fail("strh: stores a w register");
  load_store(1, 0, wt, m, scratch);
}
void Assembler::str(Reg rt, Mem m, Reg scratch) { load_store(rt.is64() ? 3 : 2, 0, rt, m, scratch); }

void Assembler::ldur(Reg rt, Reg base, std::int64_t offset) {
  if (!fits_signed(offset, 9)) fail(fmt::format("ldur: offset {} is outside -256..255", offset));
  const unsigned size = rt.is64() ? 3 : 2;
  emit(size << 30 | 0b111u << 27 | 1u << 22 | (static_cast<std::uint32_t>(offset) & 0x1ff) << 12 |
       rs(base, "ldur") << 5 | rz(rt, "ldur"));
}
void Assembler::stur(Reg rt, Reg base, std::int64_t offset) {
  if (!fits_signed(offset, 9)) fail(fmt::format("stur: offset {} is outside -256..255", offset));
  const unsigned size = rt.is64() ? 3 : 2;
  emit(size << 30 | 0b111u << 27 | (static_cast<std::uint32_t>(offset) & 0x1ff) << 12 |
       rs(base, "stur") << 5 | rz(rt, "stur"));
}

void Assembler::pair(bool load, Reg rt1, Reg rt2, const Mem& m) {
  const char* name = load ? "ldp" : "stp";
  const unsigned s = sf(rt1, {rt2});
  const Reg base = m.base();
  const std::int64_t scale = s ? 8 : 4;
  const std::int64_t off = m.offset();
  unsigned mode = 0b010;
  switch (m.mode()) {
    case Mem::Mode::offset: mode = 0b010; break;
    case Mem::Mode::pre_index: mode = 0b011; break;
    case Mem::Mode::post_index: mode = 0b001; break;
    case Mem::Mode::reg: fail(fmt::format("{}: no register-offset form", name)); break;
  }
  if (off % scale != 0 || !fits_signed(off / scale, 7))
    fail(fmt::format("{}: offset {} is not a multiple of {} in -{}..{}", name, off, scale, 64 * scale,
                     63 * scale));
  if (load && rt1 == rt2) fail(fmt::format("ldp: both destinations are {}", rt1.name()));
  if (mode != 0b010 && !base.is_sp() && (rt1.code() == base.code() || rt2.code() == base.code()))
    fail(fmt::format("{}: writeback base {} is also a data register", name, base.name()));
  if (!base.is64()) fail(fmt::format("{}: base {} must be an x register or sp", name, base.name()));
  emit((s ? 2u : 0u) << 30 | 0b101u << 27 | mode << 23 | bit(load, 22) |
       (static_cast<std::uint32_t>(off / scale) & 0x7f) << 15 | rz(rt2, name) << 10 | rs(base, name) << 5 |
       rz(rt1, name));
}
void Assembler::ldp(Reg rt1, Reg rt2, Mem m) { pair(true, rt1, rt2, m); }
void Assembler::stp(Reg rt1, Reg rt2, Mem m) { pair(false, rt1, rt2, m); }

// ------------------------------------------------------------------------- atomics
void Assembler::exclusive(unsigned o2, unsigned l, unsigned o0, Reg rs_, Reg rt, Reg xn) {
  const char* name = "exclusive";
  if (!xn.is64()) fail(fmt::format("{}: address {} must be an x register or sp", name, xn.name()));
  unsigned status = 31;
  if (rs_.valid()) {
    if (rs_.is64()) fail(fmt::format("store-exclusive: status {} must be a w register", rs_.name()));
    if (rs_.code() == rt.code() || (rs_.code() == xn.code() && !xn.is_sp()))
      fail(fmt::format("store-exclusive: status {} overlaps the data or address", rs_.name()));
    status = rz(rs_, name);
  }
  emit((rt.is64() ? 3u : 2u) << 30 | 0b001000u << 24 | o2 << 23 | l << 22 | status << 16 | o0 << 15 |
       31u << 10 | rs(xn, name) << 5 | rz(rt, name));
}
void Assembler::ldxr(Reg rt, Reg xn) { exclusive(0, 1, 0, no_reg, rt, xn); }
void Assembler::ldaxr(Reg rt, Reg xn) { exclusive(0, 1, 1, no_reg, rt, xn); }
void Assembler::stxr(Reg ws, Reg rt, Reg xn) {
  if (!ws.valid()) fail("stxr: missing status register");
  exclusive(0, 0, 0, ws, rt, xn);
}
void Assembler::stlxr(Reg ws, Reg rt, Reg xn) {
  if (!ws.valid()) fail("stlxr: missing status register");
  exclusive(0, 0, 1, ws, rt, xn);
}
void Assembler::ldar(Reg rt, Reg xn) { exclusive(1, 1, 1, no_reg, rt, xn); }
void Assembler::stlr(Reg rt, Reg xn) { exclusive(1, 0, 1, no_reg, rt, xn); }

void Assembler::lse(unsigned o3, unsigned opc, Reg rs_, Reg rt, Reg xn, Order order) {
  const char* name = "lse atomic";
  sf(rt, {rs_});
  if (!xn.is64()) fail(fmt::format("{}: address {} must be an x register or sp", name, xn.name()));
  const bool acquire = order == Order::acquire || order == Order::acq_rel;
  const bool release = order == Order::release || order == Order::acq_rel;
  emit((rt.is64() ? 3u : 2u) << 30 | 0b111u << 27 | bit(acquire, 23) | bit(release, 22) | 1u << 21 |
       rz(rs_, name) << 16 | o3 << 15 | opc << 12 | rs(xn, name) << 5 | rz(rt, name));
}
void Assembler::ldadd(Reg rs_, Reg rt, Reg xn, Order o) { lse(0, 0b000, rs_, rt, xn, o); }
void Assembler::ldclr(Reg rs_, Reg rt, Reg xn, Order o) { lse(0, 0b001, rs_, rt, xn, o); }
void Assembler::ldeor(Reg rs_, Reg rt, Reg xn, Order o) { lse(0, 0b010, rs_, rt, xn, o); }
void Assembler::ldset(Reg rs_, Reg rt, Reg xn, Order o) { lse(0, 0b011, rs_, rt, xn, o); }
void Assembler::swp(Reg rs_, Reg rt, Reg xn, Order o) { lse(1, 0b000, rs_, rt, xn, o); }

void Assembler::cas(Reg rs_, Reg rt, Reg xn, Order order) {
  sf(rt, {rs_});
  if (!xn.is64()) fail(fmt::format("cas: address {} must be an x register or sp", xn.name()));
  const bool acquire = order == Order::acquire || order == Order::acq_rel;
  const bool release = order == Order::release || order == Order::acq_rel;
  emit((rt.is64() ? 3u : 2u) << 30 | 0b0010001u << 23 | bit(acquire, 22) | 1u << 21 | rz(rs_, "cas") << 16 |
       bit(release, 15) | 31u << 10 | rs(xn, "cas") << 5 | rz(rt, "cas"));
}

}  // namespace bpfvm::jit::a64
