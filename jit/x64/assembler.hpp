// A typed x86-64 assembler: the only place in the project that knows x86-64 opcode bytes.
// Misuse (an unbound label, a jump out of range, a scale that is not 1/2/4/8) records the first
// error; status() and finish() report it, and every call still emits bytes so offsets stay stable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "isa/error.hpp"

namespace bpfvm::jit::x64 {

// A general-purpose register number 0-15 (rax..r15); the operand size is chosen per instruction.
struct Reg {
  std::uint8_t id = 0;
  constexpr unsigned low3() const { return id & 7u; }
  constexpr bool high() const { return id >= 8; }
  friend constexpr bool operator==(Reg a, Reg b) { return a.id == b.id; }
};

inline constexpr Reg rax{0}, rcx{1}, rdx{2}, rbx{3}, rsp{4}, rbp{5}, rsi{6}, rdi{7};
inline constexpr Reg r8{8}, r9{9}, r10{10}, r11{11}, r12{12}, r13{13}, r14{14}, r15{15};

// Operand size in bytes.
enum class Size : std::uint8_t { b8 = 1, b16 = 2, b32 = 4, b64 = 8 };

// base + index*scale + disp, or rip + disp. Eight bytes, passed by value in a register: an
// operand built in memory from fields of other sizes and read back whole stalls store
// forwarding, which measured as most of the time to encode a memory operand.
struct Mem {
  static constexpr Reg none{0xff};  // no base, no index
  Reg base = none;
  Reg index = none;        // rsp cannot be an index
  std::uint8_t scale = 1;  // 1, 2, 4 or 8
  bool rip = false;
  std::int32_t disp = 0;

  constexpr bool has_base() const { return base.id != none.id; }
  constexpr bool has_index() const { return index.id != none.id; }
};
static_assert(sizeof(Mem) == 8);
inline constexpr Mem ptr(Reg base, std::int32_t disp = 0) { return Mem{base, Mem::none, 1, false, disp}; }
inline constexpr Mem ptr(Reg base, Reg index, std::uint8_t scale, std::int32_t disp = 0) {
  return Mem{base, index, scale, false, disp};
}
// [index*scale + disp], no base.
inline constexpr Mem index_ptr(Reg index, std::uint8_t scale, std::int32_t disp = 0) {
  return Mem{Mem::none, index, scale, false, disp};
}
inline constexpr Mem rip_ptr(std::int32_t disp) { return Mem{Mem::none, Mem::none, 1, true, disp}; }

// Condition codes in their hardware order (the low nibble of jcc/setcc/cmovcc).
enum class Cond : std::uint8_t { o, no, b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g };
constexpr Cond invert(Cond c) { return static_cast<Cond>(static_cast<unsigned>(c) ^ 1u); }

enum class Alu : std::uint8_t { add = 0, or_ = 1, adc = 2, sbb = 3, and_ = 4, sub = 5, xor_ = 6, cmp = 7 };
enum class Shift : std::uint8_t { rol = 0, ror = 1, shl = 4, shr = 5, sar = 7 };
// Unary group-3 operations on rdx:rax or the operand itself.
enum class Unary : std::uint8_t { not_ = 2, neg = 3, mul = 4, imul1 = 5, div = 6, idiv = 7 };

// A jump target; create with Assembler::new_label(), place with bind().
struct Label {
  std::uint32_t id = UINT32_MAX;
};

class Assembler {
 public:
  Assembler() { grow(kMaxWrite); }
  // Room for `bytes` of code, `labels` labels and `jumps` forward jumps without reallocating.
  void reserve(std::size_t bytes, std::size_t labels, std::size_t jumps) {
    if (bytes + kMaxWrite > code_.size()) grow(bytes + kMaxWrite);
    labels_.reserve(labels);
    fixups_.reserve(jumps);
  }
  // Empty again, keeping the buffers' capacity (an assembler reused for the next program).
  void reset();
  std::size_t size() const { return end_; }
  const Status& status() const { return status_; }
  // Patches every pending fix-up and hands the code over (the assembler is spent); fails if a
  // label used was never bound or an error was recorded.
  Result<std::vector<std::uint8_t>> finish();
  // Patches every pending fix-up, leaving the code in the assembler: bytes() until reset().
  Status link();
  std::span<const std::uint8_t> bytes() const { return {code_.data(), end_}; }

  // Data moves.
  void mov(Size s, Reg dst, Reg src);
  void mov(Size s, Reg dst, Mem src);           // load
  void mov(Size s, Mem dst, Reg src);           // store
  void mov(Size s, Mem dst, std::int32_t imm);  // store an immediate (sign-extended for b64)
  // dst = value with the shortest encoding: mov r32 (zero-extends), mov r/m64 sign-extended, or imm64.
  void mov_imm(Reg dst, std::uint64_t value);
  void mov_imm32(Reg dst, std::uint32_t value);                // 32-bit destination, upper half cleared
  void movzx(Size dst_size, Reg dst, Size src_size, Reg src);  // src_size b8 or b16
  void movzx(Size dst_size, Reg dst, Size src_size, Mem src);
  void movsx(Size dst_size, Reg dst, Size src_size, Reg src);  // src_size b8, b16 or b32 (movsxd)
  void movsx(Size dst_size, Reg dst, Size src_size, Mem src);
  void lea(Size s, Reg dst, Mem src);  // s is b32 or b64

  // Arithmetic and logic (sets flags).
  void alu(Alu op, Size s, Reg dst, Reg src);
  void alu(Alu op, Size s, Reg dst, Mem src);
  void alu(Alu op, Size s, Mem dst, Reg src);
  void alu(Alu op, Size s, Reg dst, std::int32_t imm);  // imm8 when it fits
  void alu(Alu op, Size s, Mem dst, std::int32_t imm);
  void test(Size s, Reg a, Reg b);
  void test(Size s, Reg a, std::int32_t imm);
  void imul(Size s, Reg dst, Reg src);
  void imul(Size s, Reg dst, Mem src);
  void imul(Size s, Reg dst, Reg src, std::int32_t imm);
  void unary(Unary op, Size s, Reg r);
  void cdq();                                           // edx:eax = sign-extended eax
  void cqo();                                           // rdx:rax = sign-extended rax
  void shift(Shift op, Size s, Reg r);                  // by cl
  void shift(Shift op, Size s, Reg r, std::uint8_t n);  // by an immediate
  void bswap(Size s, Reg r);                            // b32 or b64
  // BMI2: dst = src shifted by count (any register, masked like shl/shr/sar), flags untouched.
  void shift_bmi2(Shift op, Size s, Reg dst, Reg src, Reg count);  // shl, shr or sar; b32 or b64
  void cmov(Cond c, Size s, Reg dst, Reg src);                     // b16, b32 or b64
  void cmov(Cond c, Size s, Reg dst, Mem src);
  void setcc(Cond c, Reg dst);  // the low byte of dst

  // Atomics on memory (b32 or b64).
  void lock_alu(Alu op, Size s, Mem dst, Reg src);  // add, or, and, xor
  void lock_xadd(Size s, Mem dst, Reg src);
  void xchg(Size s, Mem dst, Reg src);  // locked by the hardware
  void lock_cmpxchg(Size s, Mem dst, Reg src);

  // Stack, control flow.
  void push(Reg r);
  void pop(Reg r);
  void ret();
  void int3();
  void ud2();
  void nop(std::size_t bytes);  // the fewest multi-byte nops covering exactly `bytes`
  void call(Reg target);
  void call(Label target);
  void jmp(Reg target);
  // Backward jumps to a bound label use rel8 when it reaches; forward jumps use rel32.
  void jmp(Label target);
  void jcc(Cond c, Label target);
  // A forward jcc (rel32) needing no label: returns where its displacement sits, for
  // patch_here() once the code it jumps to starts (stubs out of line use it: no label to
  // allocate, bind and link).
  std::uint32_t jcc_forward(Cond c);
  void patch_here(std::uint32_t displacement_at);

  Label new_label() {
    labels_.push_back(kUnbound);
    return Label{static_cast<std::uint32_t>(labels_.size() - 1)};
  }
  // `count` labels with consecutive ids; returns the first (the i-th is Label{first.id + i}).
  Label new_labels(std::uint32_t count);
  void bind(Label l) {
    if (l.id < labels_.size() && labels_[l.id] == kUnbound && end_ < kUnbound)
      labels_[l.id] = static_cast<std::uint32_t>(end_);
    else
      bind_error(l);
  }
  bool bound(Label l) const { return l.id < labels_.size() && labels_[l.id] != kUnbound; }
  std::size_t offset_of(Label l) const;  // only for bound labels

 private:
  // A cursor writing one instruction straight into the code (at most 15 bytes; an immediate is
  // stored as 8 bytes, of which only the low ones count). Gathering the bytes in a local buffer
  // and copying it would read back bytes just stored one at a time: a store-forwarding stall
  // per instruction, which measured as most of the assembler's time.
  struct Bytes {
    std::uint8_t* p;
    void put(std::uint8_t v) { *p++ = v; }
    void imm(std::uint64_t v, unsigned bytes) {  // little-endian, like the target
      std::memcpy(p, &v, 8);
      p += bytes;
    }
  };
  static constexpr std::size_t kMaxWrite = 24;  // room one instruction may write into

  static constexpr std::uint32_t kUnbound = UINT32_MAX;  // a label's offset while unbound

  // Misuse, out of line and cold: an instruction's own code then needs no room for building a
  // message (nor the saved registers that calling a formatter takes).
  [[gnu::cold, gnu::noinline]] void fail(std::string_view message);
  [[gnu::cold, gnu::noinline]] void fail_scale(unsigned scale);
  [[gnu::cold, gnu::noinline]] void fail_out_of_range(std::size_t jump_at);
  void bind_error(Label l);                           // records why bind(l) cannot bind
  [[gnu::noinline]] void grow(std::size_t at_least);  // code_ holds at least that many bytes
  // The cursor for the next instruction, and its end once written. There is always room for
  // kMaxWrite bytes at the end of the code: append() makes room for the next instruction after
  // each one, when nothing is left to keep across the call (each instruction's own code then
  // needs no saved registers and no check before it writes).
  Bytes start() { return Bytes{code_.data() + end_}; }
  void append(const Bytes& e) {
    end_ = static_cast<std::size_t>(e.p - code_.data());
    if (end_ + kMaxWrite > code_.size()) [[unlikely]]
      grow(end_ + kMaxWrite);
  }
  void raw(std::initializer_list<std::uint8_t> bytes) {  // fixed bytes (at most kMaxWrite)
    Bytes e = start();
    for (auto b : bytes) e.put(b);
    append(e);
  }
  void prefixes(Bytes& e, Size s, unsigned reg, const Mem* m, unsigned rm, bool byte_regs);
  void modrm_reg(Bytes& e, unsigned reg, unsigned rm);
  void modrm_mem(Bytes& e, unsigned reg, Mem m);
  void extend(Size dst_size, Reg dst, Size src_size, Reg src,
              std::uint8_t op);  // movzx/movsx from a register
  // opcode bytes (1-3) with operand-size prefix/REX, then ModRM for reg field and a register/memory.
  Bytes op_rr(Size s, std::initializer_list<std::uint8_t> op, unsigned reg, Reg rm,
              bool byte_reg_field = false);
  Bytes op_rm(Size s, std::initializer_list<std::uint8_t> op, unsigned reg, Mem m,
              bool byte_reg_field = false);
  void rel_jump(std::initializer_list<std::uint8_t> short_op, std::initializer_list<std::uint8_t> near_op,
                Label l);

  struct Fixup {
    std::uint32_t at;  // position of the rel32
    Label label;
  };
  std::vector<std::uint8_t> code_;  // [0, end_) is the code; the rest (kMaxWrite at least) is room
  std::size_t end_ = 0;
  // Offsets in 32 bits (rel32 reaches no further anyway): less memory to touch per label.
  std::vector<std::uint32_t> labels_;  // UINT32_MAX while unbound
  std::vector<Fixup> fixups_;
  Status status_;
};

}  // namespace bpfvm::jit::x64
