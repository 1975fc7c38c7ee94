// The eBPF instruction set: the raw instruction word and the table of instruction forms.
// Every other part of bpfvm decodes through `decode()` and reads `info()`; none of them
// interprets opcode bytes on its own.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bpfvm::isa {

inline constexpr int register_count = 11;  // r0..r10
inline constexpr int frame_pointer = 10;
inline constexpr int stack_frame_size = 512;

// One 8-byte instruction slot exactly as it sits in memory (little-endian host assumed for
// the multi-byte fields; both supported hosts, x86-64 and AArch64 Linux, are little-endian).
struct Insn {
  std::uint8_t opcode = 0;
  std::uint8_t regs = 0;  // low nibble dst, high nibble src
  std::int16_t off = 0;
  std::int32_t imm = 0;

  constexpr int dst() const { return regs & 0x0f; }
  constexpr int src() const { return regs >> 4; }
  constexpr void set_dst(int r) { regs = static_cast<std::uint8_t>((regs & 0xf0) | (r & 0x0f)); }
  constexpr void set_src(int r) { regs = static_cast<std::uint8_t>((regs & 0x0f) | ((r & 0x0f) << 4)); }
  friend constexpr bool operator==(const Insn&, const Insn&) = default;
};
static_assert(sizeof(Insn) == 8);

enum class Kind : std::uint8_t { alu, load, store, atomic, lddw, legacy, jump, call, exit };

enum class Disc : std::uint8_t { none, off, imm, src };

enum class Source : std::uint8_t { imm, reg };

enum class Group : std::uint8_t { base32, base64, divmul32, divmul64, atomic32, atomic64, packet, callx };
inline constexpr int group_count = 8;

// What an instruction does within its kind. Names that are C++ keywords carry a `b` (bitwise).
enum class Operation : std::uint8_t {
  // alu
  add, sub, mul, div, sdiv, mod, smod, bor, band, bxor, lsh, rsh, arsh, neg, mov, movsx, le, be, bswap,
  // load / store / legacy packet loads
  load, loadsx, store, abs, ind,
  // atomic (add, bor, band, bxor above are the non-fetching forms)
  fetch_add, fetch_bor, fetch_band, fetch_bxor, xchg, cmpxchg,
  // lddw source kinds
  imm64, map_fd, map_value, btf_id, func, map_idx, map_idx_value,
  // jump conditions
  ja, jeq, jgt, jge, jset, jne, jsgt, jsge, jlt, jle, jslt, jsle,
  // calls
  helper, local, kfunc, callx,
  // exit
  exit,
};

enum class Op : std::uint8_t {
#define BPFVM_OP(id, ...) id,
#include "isa/opcodes.def"
#undef BPFVM_OP
};

inline constexpr std::size_t op_count = 0
#define BPFVM_OP(...) +1
#include "isa/opcodes.def"
#undef BPFVM_OP
    ;

struct OpInfo {
  Op id;
  std::string_view name;
  std::uint8_t opcode;
  Disc disc;
  std::int32_t disc_value;
  Kind kind;
  Operation operation;
  Source source;
  std::uint8_t width;
  std::uint8_t ext_width;
  std::uint8_t min_cpu;
  Group group;
  std::string_view llvm_text;
  std::string_view conformance_text;
};

namespace detail {
inline constexpr std::uint8_t v1 = 1, v2 = 2, v3 = 3, v4 = 4;
}  // namespace detail

inline constexpr std::array<OpInfo, op_count> op_table = {{
#define BPFVM_OP(id, opc, disc, dv, kind, op, src, width, xw, cpu, group, llvm, conf)                  \
  OpInfo{Op::id,        #id,           opc,      Disc::disc, dv,           Kind::kind,              \
         Operation::op, Source::src,   width,    xw,         detail::cpu,  Group::group, llvm, conf},
#include "isa/opcodes.def"
#undef BPFVM_OP
}};

constexpr const OpInfo& info(Op op) { return op_table[static_cast<std::size_t>(op)]; }

namespace detail {

// decode() is inline (every engine, the verifier and validation call it per slot) and reads
// small tables derived from op_table: the rows sorted by opcode byte, each with its
// distinguishing field as a bit range of the instruction word, and per opcode byte where its
// rows are and a copy of its first (most slots decode with one look-up).
struct Form {
  std::uint32_t mask = 0;   // the field's bits, after `shift` (0: Disc::none, nothing to compare)
  std::uint32_t value = 0;  // disc_value, truncated to the field
  std::uint8_t shift = 0;   // of the field in the little-endian instruction word
  Op op{};
};

struct Forms {
  std::array<Form, op_count> forms{};  // sorted by opcode byte, in table order within one
  std::array<std::uint8_t, 256> first{};
  std::array<std::uint8_t, 256> count{};
  std::array<Form, 256> first_form{};  // forms[first[b]], or one that matches nothing
};

constexpr Form form_of(const OpInfo& row) {
  Form f;
  f.op = row.id;
  switch (row.disc) {
    case Disc::none: return f;
    case Disc::off: f.shift = 16, f.mask = 0xffff; break;
    case Disc::imm: f.shift = 32, f.mask = 0xffffffff; break;
    case Disc::src: f.shift = 12, f.mask = 0xf; break;
  }
  f.value = static_cast<std::uint32_t>(row.disc_value) & f.mask;
  return f;
}

constexpr Forms build_forms() {
  Forms t{};
  for (const OpInfo& row : op_table) ++t.count[row.opcode];
  std::array<std::uint8_t, 256> next{};
  for (std::size_t b = 0, at = 0; b < 256; at += t.count[b], ++b)
    t.first[b] = next[b] = static_cast<std::uint8_t>(at);
  for (const OpInfo& row : op_table) t.forms[next[row.opcode]++] = form_of(row);
  for (std::size_t b = 0; b < 256; ++b)
    t.first_form[b] = t.count[b] ? t.forms[t.first[b]] : Form{0, 1, 0, Op{}};
  return t;
}

inline constexpr Forms forms = build_forms();

}  // namespace detail

// The instruction form of `insn`, or nothing when no row matches (an unknown opcode byte, or a
// known one whose distinguishing field holds an undefined value).
constexpr std::optional<Op> decode(const Insn& insn) {
  const std::uint64_t word = std::bit_cast<std::uint64_t>(insn);
  const detail::Form& form = detail::forms.first_form[insn.opcode];
  if ((word >> form.shift & form.mask) == form.value) return form.op;
  const std::uint8_t first = detail::forms.first[insn.opcode];
  for (std::uint8_t i = first + 1; i < first + detail::forms.count[insn.opcode]; ++i) {
    const detail::Form& f = detail::forms.forms[i];
    if ((word >> f.shift & f.mask) == f.value) return f.op;
  }
  return std::nullopt;
}

// True when the opcode byte appears in some row, whatever its other fields say.
bool opcode_known(std::uint8_t opcode);

// The field whose value tells forms of this opcode byte apart (Disc::none if only one form).
Disc discriminator_of(std::uint8_t opcode);

// lddw occupies two slots; every other instruction one.
constexpr int slot_count(Op op) { return info(op).kind == Kind::lddw ? 2 : 1; }

// The 64-bit immediate of an lddw whose first slot is `first` and second `second`.
constexpr std::uint64_t lddw_value(const Insn& first, const Insn& second) {
  return static_cast<std::uint32_t>(first.imm) | (std::uint64_t{static_cast<std::uint32_t>(second.imm)} << 32);
}

std::string_view to_string(Kind);
std::string_view to_string(Group);
std::string_view to_string(Operation);
std::optional<Group> group_from_string(std::string_view);

}  // namespace bpfvm::isa
