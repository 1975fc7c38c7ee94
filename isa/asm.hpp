// Assembling text in either syntax (isa/syntax.hpp) into instructions, driven by the
// llvm_text / conformance_text templates of the ISA table.
#pragma once

#include <string_view>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "isa/syntax.hpp"

namespace bpfvm::isa {

// Parses assembly text into a one-function Program (functions are discovered by isa::validate
// later, by callers). Accepts:
//  - LLVM: what llvm-objdump-19 -d prints, including its `N:` address and byte columns,
//    `0000000000000000 <name>:` headers (taken as labels) and `<...>` annotations (ignored);
//    hex or decimal numbers; w or r for the data register of loads, stores and atomics;
//    labels (`name:` lines), `goto name`, `call name` (a bpf-to-bpf call, src=1).
//  - conformance: the bpf_conformance suite's syntax (suffix-less mnemonics mean 64, `swapN`
//    means `bswapN`, `[%r1+off]`, `+N`/`-N` or label targets, the implicit `exit` label).
//  - both: `#` comments; a comment `# src=N` / `# imm=N` / `# off=N` right after an instruction
//    picks that form where the text alone is ambiguous (as format_insn prints it).
// Errors carry the 1-based line and source_name and say what was expected.
Result<Program> assemble(std::string_view text, Syntax syntax, std::string_view source_name = "<input>");

}  // namespace bpfvm::isa
