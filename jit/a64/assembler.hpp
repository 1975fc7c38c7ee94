// A typed AArch64 assembler: the only place in the project that knows A64 instruction bits.
// It is portable C++ (it produces bytes on any host). Misuse (a register that the form does not
// accept, an immediate that does not fit, a branch out of range, an unbound label) records the
// first error; status() and finish() report it, and every call still emits its full length so
// that offsets stay meaningful.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "isa/error.hpp"

namespace bpfvm::jit::a64 {

// A general-purpose register: x0-x30 / w0-w30, or number 31 as the zero register (xzr/wzr) or
// the stack pointer (sp/wsp). Each instruction form accepts one of the two meanings of 31.
class Reg {
 public:
  constexpr Reg() = default;
  // Numbers 0-30; 31 is the zero register; anything else is no register.
  static constexpr Reg x(unsigned n) { return Reg(n <= 31 ? static_cast<std::uint8_t>(n) : kNone, true); }
  static constexpr Reg w(unsigned n) { return Reg(n <= 31 ? static_cast<std::uint8_t>(n) : kNone, false); }
  static constexpr Reg zr(bool is64) { return Reg(kZr, is64); }
  static constexpr Reg stack(bool is64) { return Reg(kSp, is64); }

  constexpr bool valid() const { return id_ <= kSp; }
  constexpr bool is64() const { return is64_; }
  constexpr bool is_sp() const { return id_ == kSp; }
  constexpr bool is_zr() const { return id_ == kZr; }
  // The 5-bit register field (31 for both sp and zr).
  constexpr unsigned code() const { return id_ >= kZr ? 31u : id_; }
  constexpr Reg as_x() const { return Reg(id_, true); }
  constexpr Reg as_w() const { return Reg(id_, false); }
  std::string name() const;

  friend constexpr bool operator==(Reg a, Reg b) { return a.id_ == b.id_ && a.is64_ == b.is64_; }

 private:
  static constexpr std::uint8_t kZr = 31, kSp = 32, kNone = 0xff;
  constexpr Reg(std::uint8_t id, bool is64) : id_(id <= kSp ? id : kNone), is64_(is64) {}
  std::uint8_t id_ = kNone;
  bool is64_ = true;
};

inline constexpr Reg X(unsigned n) { return Reg::x(n); }
inline constexpr Reg W(unsigned n) { return Reg::w(n); }
inline constexpr Reg xzr = Reg::zr(true), wzr = Reg::zr(false);
inline constexpr Reg sp = Reg::stack(true), wsp = Reg::stack(false);
inline constexpr Reg no_reg{};
// The intra-procedure-call scratch registers (AAPCS64), free for the assembler's callers.
inline constexpr Reg ip0 = X(16), ip1 = X(17);

enum class Cond : std::uint8_t { eq, ne, hs, lo, mi, pl, vs, vc, hi, ls, ge, lt, gt, le, al, nv };
constexpr Cond invert(Cond c) { return static_cast<Cond>(static_cast<unsigned>(c) ^ 1u); }
const char* cond_name(Cond c);

enum class Shift : std::uint8_t { lsl, lsr, asr, ror };
// Register extension for add/sub (extended register) and register-offset addressing.
enum class Extend : std::uint8_t { uxtb, uxth, uxtw, uxtx, sxtb, sxth, sxtw, sxtx };
enum class Barrier : std::uint8_t { ishld = 0b1001, ishst = 0b1010, ish = 0b1011, sy = 0b1111 };
// Ordering of an LSE atomic: plain, acquire (A), release (L), or both (AL).
enum class Order : std::uint8_t { plain, acquire, release, acq_rel };

// A memory operand. Offsets are in bytes.
class Mem {
 public:
  enum class Mode : std::uint8_t { offset, pre_index, post_index, reg };
  // [base, #offset]: the load/store picks the scaled unsigned form, else the unscaled signed one.
  static Mem at(Reg base, std::int64_t offset = 0) { return Mem(base, offset, Mode::offset); }
  // [base, #offset]!  and  [base], #offset
  static Mem pre(Reg base, std::int64_t offset) { return Mem(base, offset, Mode::pre_index); }
  static Mem post(Reg base, std::int64_t offset) { return Mem(base, offset, Mode::post_index); }
  // [base, index{, extend {#log2(access size)}}]; index is an x register for lsl/uxtx/sxtx, w for
  // uxtw/sxtw. scaled shifts the index by the access size.
  static Mem indexed(Reg base, Reg index, Extend ext = Extend::uxtx, bool scaled = false) {
    Mem m(base, 0, Mode::reg);
    m.index_ = index;
    m.ext_ = ext;
    m.scaled_ = scaled;
    return m;
  }

  Reg base() const { return base_; }
  std::int64_t offset() const { return offset_; }
  Mode mode() const { return mode_; }
  Reg index() const { return index_; }
  Extend extend() const { return ext_; }
  bool scaled() const { return scaled_; }

 private:
  Mem(Reg base, std::int64_t offset, Mode mode) : base_(base), offset_(offset), mode_(mode) {}
  Reg base_;
  std::int64_t offset_ = 0;
  Mode mode_ = Mode::offset;
  Reg index_;
  Extend ext_ = Extend::uxtx;
  bool scaled_ = false;
};

// A branch target. Created by Assembler::new_label, placed by bind.
struct Label {
  std::uint32_t id = UINT32_MAX;
};

// Bitmask immediate fields (N:immr:imms) for a logical instruction of the given width, or none.
struct BitmaskImm {
  unsigned n, immr, imms;
};
std::optional<BitmaskImm> encode_bitmask_imm(std::uint64_t value, bool is64);

class Assembler {
 public:
  // ---- buffer, labels, errors
  std::size_t size() const { return words_.size() * 4; }  // bytes emitted so far
  const std::vector<std::uint32_t>& words() const { return words_; }
  std::vector<std::uint8_t> bytes() const;  // little-endian
  Status status() const;
  // The code, or the first error (including labels that were branched to but never bound).
  Result<std::vector<std::uint8_t>> finish() const;

  Label new_label();
  void bind(Label label);
  bool is_bound(Label label) const;
  std::size_t label_offset(Label label) const;  // only for bound labels

  // ---- add / sub. The immediate forms take any value: imm12, imm12 << 12, the negated value
  // through the opposite instruction, two instructions for 24 bits (add/sub only), else it is
  // moved into `scratch` (an error without one). 32-bit forms use the low 32 bits of imm.
  void add(Reg rd, Reg rn, std::int64_t imm, Reg scratch = no_reg);
  void adds(Reg rd, Reg rn, std::int64_t imm, Reg scratch = no_reg);
  void sub(Reg rd, Reg rn, std::int64_t imm, Reg scratch = no_reg);
  void subs(Reg rd, Reg rn, std::int64_t imm, Reg scratch = no_reg);
  void cmp(Reg rn, std::int64_t imm, Reg scratch = no_reg);
  void cmn(Reg rn, std::int64_t imm, Reg scratch = no_reg);
  // Shifted register (lsl/lsr/asr). With sp as rd or rn, the extended-register form (uxtx/uxtw).
  void add(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void adds(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void sub(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void subs(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void cmp(Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void cmn(Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void neg(Reg rd, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  // Extended register: rd, rn may be sp; rm is w for uxtb..sxtw-style 32-bit sources. amount 0-4.
  void add(Reg rd, Reg rn, Reg rm, Extend ext, unsigned amount = 0);
  void sub(Reg rd, Reg rn, Reg rm, Extend ext, unsigned amount = 0);

  // ---- logical. Immediates use the bitmask encoding when possible, else `scratch`.
  void and_(Reg rd, Reg rn, std::uint64_t imm, Reg scratch = no_reg);
  void ands(Reg rd, Reg rn, std::uint64_t imm, Reg scratch = no_reg);
  void orr(Reg rd, Reg rn, std::uint64_t imm, Reg scratch = no_reg);
  void eor(Reg rd, Reg rn, std::uint64_t imm, Reg scratch = no_reg);
  void tst(Reg rn, std::uint64_t imm, Reg scratch = no_reg);
  void and_(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void ands(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void orr(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void eor(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void bic(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void orn(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void eon(Reg rd, Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void tst(Reg rn, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  void mvn(Reg rd, Reg rm, Shift shift = Shift::lsl, unsigned amount = 0);
  // Register move; with sp on either side, `add rd, rn, #0`.
  void mov(Reg rd, Reg rm);

  // ---- move wide and constants
  void movz(Reg rd, std::uint16_t imm, unsigned shift = 0);
  void movn(Reg rd, std::uint16_t imm, unsigned shift = 0);
  void movk(Reg rd, std::uint16_t imm, unsigned shift = 0);
  // The shortest of: one movz/movn/orr-bitmask, or movz/movn followed by movk for the remaining
  // halfwords. A 64-bit value with a zero upper half may use the 32-bit forms (they zero-extend).
  void mov_imm(Reg rd, std::uint64_t value);
  // Instructions mov_imm would emit for the value, without emitting.
  static unsigned mov_imm_length(std::uint64_t value, bool is64);

  // ---- multiply, divide, shifts, extension, byte swaps
  void madd(Reg rd, Reg rn, Reg rm, Reg ra);
  void msub(Reg rd, Reg rn, Reg rm, Reg ra);
  void mul(Reg rd, Reg rn, Reg rm);
  void udiv(Reg rd, Reg rn, Reg rm);
  void sdiv(Reg rd, Reg rn, Reg rm);
  void lslv(Reg rd, Reg rn, Reg rm);
  void lsrv(Reg rd, Reg rn, Reg rm);
  void asrv(Reg rd, Reg rn, Reg rm);
  void rorv(Reg rd, Reg rn, Reg rm);
  void lsl(Reg rd, Reg rn, unsigned amount);
  void lsr(Reg rd, Reg rn, unsigned amount);
  void asr(Reg rd, Reg rn, unsigned amount);
  void ror(Reg rd, Reg rn, unsigned amount);
  void ubfm(Reg rd, Reg rn, unsigned immr, unsigned imms);
  void sbfm(Reg rd, Reg rn, unsigned immr, unsigned imms);
  void bfm(Reg rd, Reg rn, unsigned immr, unsigned imms);
  // Bitfields of `width` bits at bit `lsb`: extract (zero/sign-extended), insert into zeros,
  // insert into rd keeping its other bits, extract into rd's low bits keeping the rest.
  void ubfx(Reg rd, Reg rn, unsigned lsb, unsigned width);
  void sbfx(Reg rd, Reg rn, unsigned lsb, unsigned width);
  void ubfiz(Reg rd, Reg rn, unsigned lsb, unsigned width);
  void bfi(Reg rd, Reg rn, unsigned lsb, unsigned width);
  void bfxil(Reg rd, Reg rn, unsigned lsb, unsigned width);
  void umulh(Reg xd, Reg xn, Reg xm);  // high 64 bits of the 128-bit product
  void smulh(Reg xd, Reg xn, Reg xm);
  void clz(Reg rd, Reg rn);
  // Sign extensions write rd (w or x) from the low bits of a w source; the zero extensions are
  // 32-bit forms (writing w zero-extends to x).
  void sxtb(Reg rd, Reg wn);
  void sxth(Reg rd, Reg wn);
  void sxtw(Reg xd, Reg wn);
  void uxtb(Reg wd, Reg wn);
  void uxth(Reg wd, Reg wn);
  void rev(Reg rd, Reg rn);    // all bytes of the register
  void rev16(Reg rd, Reg rn);  // bytes within each halfword
  void rev32(Reg xd, Reg xn);  // bytes within each word (64-bit only)

  // ---- conditional select
  void csel(Reg rd, Reg rn, Reg rm, Cond cond);
  void csinc(Reg rd, Reg rn, Reg rm, Cond cond);
  void csinv(Reg rd, Reg rn, Reg rm, Cond cond);
  void csneg(Reg rd, Reg rn, Reg rm, Cond cond);
  void cset(Reg rd, Cond cond);   // rd = cond ? 1 : 0
  void csetm(Reg rd, Cond cond);  // rd = cond ? -1 : 0

  // ---- loads and stores. The register's width picks w/x for ldr/str; ldrs* sign-extend into w
  // or x. Offsets: scaled unsigned 12-bit, else unscaled signed 9-bit (ldur/stur); pre/post index
  // take a signed 9-bit offset; register offsets as in Mem::indexed. An offset that fits neither
  // form goes through `scratch` as a register offset (an error without one).
  void ldrb(Reg wt, Mem m, Reg scratch = no_reg);
  void ldrh(Reg wt, Mem m, Reg scratch = no_reg);
  void ldr(Reg rt, Mem m, Reg scratch = no_reg);
  void ldrsb(Reg rt, Mem m, Reg scratch = no_reg);
  void ldrsh(Reg rt, Mem m, Reg scratch = no_reg);
  void ldrsw(Reg xt, Mem m, Reg scratch = no_reg);
  void strb(Reg wt, Mem m, Reg scratch = no_reg);
  void strh(Reg wt, Mem m, Reg scratch = no_reg);
  void str(Reg rt, Mem m, Reg scratch = no_reg);
  // Explicit unscaled forms (offset -256..255).
  void ldur(Reg rt, Reg base, std::int64_t offset);
  void stur(Reg rt, Reg base, std::int64_t offset);
  // Pairs: offset, pre- or post-index, offsets a multiple of the register size in -64..63 units.
  void ldp(Reg rt1, Reg rt2, Mem m);
  void stp(Reg rt1, Reg rt2, Mem m);

  // ---- atomics. LL/SC works on every ARMv8.0 core; LSE (ARMv8.1) forms are optional.
  void ldxr(Reg rt, Reg xn);
  void ldaxr(Reg rt, Reg xn);
  void stxr(Reg ws, Reg rt, Reg xn);  // ws = 0 on success
  void stlxr(Reg ws, Reg rt, Reg xn);
  void ldar(Reg rt, Reg xn);
  void stlr(Reg rt, Reg xn);
  void ldadd(Reg rs, Reg rt, Reg xn, Order order = Order::plain);
  void ldclr(Reg rs, Reg rt, Reg xn, Order order = Order::plain);
  void ldeor(Reg rs, Reg rt, Reg xn, Order order = Order::plain);
  void ldset(Reg rs, Reg rt, Reg xn, Order order = Order::plain);
  void swp(Reg rs, Reg rt, Reg xn, Order order = Order::plain);
  void cas(Reg rs, Reg rt, Reg xn, Order order = Order::plain);
  void dmb(Barrier barrier);

  // ---- branches. Label forms are fixed up when the label is bound; the byte-offset forms
  // branch relative to the branch instruction itself. Ranges: b/bl +-128 MiB, b.cond/cbz/cbnz
  // +-1 MiB, tbz/tbnz +-32 KiB.
  // With far branches on, the label forms of b.cond/cbz/cbnz/tbz/tbnz emit the inverted test
  // over a `b` (two instructions, +-128 MiB): for functions too large for the short ranges.
  void set_far_branches(bool on) { far_ = on; }
  void b(Label target);
  void bl(Label target);
  void b(Cond cond, Label target);
  void cbz(Reg rt, Label target);
  void cbnz(Reg rt, Label target);
  void tbz(Reg rt, unsigned bit, Label target);
  void tbnz(Reg rt, unsigned bit, Label target);
  void b(std::int64_t offset);
  void bl(std::int64_t offset);
  void b(Cond cond, std::int64_t offset);
  void cbz(Reg rt, std::int64_t offset);
  void cbnz(Reg rt, std::int64_t offset);
  void tbz(Reg rt, unsigned bit, std::int64_t offset);
  void tbnz(Reg rt, unsigned bit, std::int64_t offset);
  void br(Reg xn);
  void blr(Reg xn);
  void ret(Reg xn = X(30));
  void brk(std::uint16_t imm);
  void nop();

 private:
  enum class Fix : std::uint8_t { b26, imm19, imm14 };
  struct Use {
    std::size_t at;  // word index of the branch
    Fix fix;
  };
  struct LabelState {
    std::optional<std::size_t> word;  // bound position
    std::vector<Use> uses;
  };

  void emit(std::uint32_t word) { words_.push_back(word); }
  void fail(std::string message);
  // Register field checks: rz accepts zr (not sp), rs accepts sp (not zr).
  unsigned rz(Reg r, const char* what);
  unsigned rs(Reg r, const char* what);
  unsigned sf(Reg rd, std::initializer_list<Reg> same_width);
  bool patch(std::size_t at, Fix fix, std::int64_t offset);
  // A conditional branch to a label: short, or (far_) `inverse` skipping over a `b`.
  void cond_branch(std::uint32_t base, std::uint32_t inverse, Fix fix, Label target);
  void branch(std::uint32_t base, Fix fix, Label target);
  void branch(std::uint32_t base, Fix fix, std::int64_t offset);

  bool addsub_imm(bool sub, bool set_flags, Reg rd, Reg rn, std::int64_t imm, Reg scratch);
  void addsub_reg(bool sub, bool set_flags, Reg rd, Reg rn, Reg rm, Shift shift, unsigned amount);
  void addsub_ext(bool sub, bool set_flags, Reg rd, Reg rn, Reg rm, Extend ext, unsigned amount);
  void logical_imm(unsigned opc, Reg rd, Reg rn, std::uint64_t imm, Reg scratch);
  void logical_reg(unsigned opc, bool invert, Reg rd, Reg rn, Reg rm, Shift shift, unsigned amount);
  void move_wide(unsigned opc, Reg rd, std::uint16_t imm, unsigned shift);
  void dp2(unsigned opcode, Reg rd, Reg rn, Reg rm);
  void dp3(bool sub, Reg rd, Reg rn, Reg rm, Reg ra);
  void bitfield(unsigned opc, Reg rd, Reg rn, unsigned immr, unsigned imms);
  void bitfield_range(unsigned opc, bool insert, Reg rd, Reg rn, unsigned lsb, unsigned width);
  void csel_form(unsigned op, unsigned op2, Reg rd, Reg rn, Reg rm, Cond cond);
  void rev_form(unsigned opcode, Reg rd, Reg rn);
  void load_store(unsigned size, unsigned opc, Reg rt, const Mem& m, Reg scratch);
  void pair(bool load, Reg rt1, Reg rt2, const Mem& m);
  void exclusive(unsigned o2, unsigned l, unsigned o0, Reg rs, Reg rt, Reg xn);
  void lse(unsigned o3, unsigned opc, Reg rs, Reg rt, Reg xn, Order order);

  std::vector<std::uint32_t> words_;
  std::vector<LabelState> labels_;
  std::optional<Error> error_;
  bool far_ = false;
};

}  // namespace bpfvm::jit::a64
