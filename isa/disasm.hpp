// Printing instructions as text in either syntax, driven by the llvm_text / conformance_text
// templates of the ISA table.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "isa/isa.hpp"
#include "isa/program.hpp"
#include "isa/syntax.hpp"

namespace bpfvm::isa {

// Text of the instruction at pc (both slots of an lddw), no address, no bytes.
// alu32 (LLVM syntax only) prints sub-64-bit loads, register stores and 32-bit atomics with w
// registers, as llvm-objdump-19 --mattr=+alu32 and llvm-mc-19 -mcpu=v3/v4 do. Without it the
// text follows plain llvm-objdump-19 -d, except for the 32-bit fetch/xchg/cmpxchg atomics, which
// plain LLVM cannot print (<unknown> or a wrong non-fetch form) and which always use w registers.
// A row whose template is shared with another form of the same opcode byte (lddw source kinds,
// call kinds) gets a trailing hint `# src=N` that assemble() reads back.
std::string format_insn(std::span<const Insn> insns, std::size_t pc, Syntax syntax, bool alu32 = false);

struct DisasmOptions {
  Syntax syntax = Syntax::llvm;
  bool show_pc = true;
  bool show_bytes = true;
  bool alu32 = false;  // see format_insn
  // Before an instruction that starts a new source line (.BTF.ext line info), that line as a
  // comment: `# file.c:42: text` (the assembler skips it).
  bool show_source = false;
};

// The whole program: LLVM syntax like llvm-objdump -d (`0000000000000000 <name>:` headers,
// `       0:\t07 01 00 00 05 00 00 00\tr1 += 0x5`); conformance syntax with `name:` labels and
// the slot index and bytes as a trailing `#` comment. Both re-assemble with assemble().
std::string disassemble(const Program& program, const DisasmOptions& options);

namespace text_detail {
// The template of `row` in `syntax` (with the alu32 register rule applied when asked).
const std::string& row_template(const OpInfo& row, Syntax syntax, bool alu32);
// True when another row of the same opcode byte prints the same text: the row then needs the
// `# src=N` hint unless it is the first of those rows.
bool needs_hint(const OpInfo& row, Syntax syntax);
std::string_view disc_name(Disc disc);
}  // namespace text_detail

}  // namespace bpfvm::isa
