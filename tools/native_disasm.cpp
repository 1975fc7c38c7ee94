#include "tools/native_disasm.hpp"

#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <string_view>

namespace bpfvm::cli {
namespace {

void initialize_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86Disassembler();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64Disassembler();
  });
}

// With a symbol lookup, LLVM prints a branch's target as an address (here: the offset into
// the code) instead of the raw displacement, as llvm-objdump does; no symbol is ever named.
const char* no_symbol(void*, std::uint64_t, std::uint64_t* reference_type, std::uint64_t,
                      const char** reference_name) {
  *reference_type = LLVMDisassembler_ReferenceType_InOut_None;
  *reference_name = nullptr;
  return nullptr;
}

}  // namespace

// The syntax is what llvm-objdump-19 -d prints by default, so a listing compares line for line
// with it: AT&T for x86-64 (LLVM's default variant 0), the one ARM syntax for AArch64; both with
// hexadecimal immediates, objdump's default since LLVM 15.
NativeDisassembler::NativeDisassembler(NativeArch arch) : arch_(arch) {
  initialize_llvm();
  const char* triple = arch == NativeArch::x86_64 ? "x86_64-linux-gnu" : "aarch64-linux-gnu";
  // AArch64: every extension the JIT may use (LSE atomics) decodes.
  const char* features = arch == NativeArch::aarch64 ? "+lse" : "";
  LLVMDisasmContextRef context =
      LLVMCreateDisasmCPUFeatures(triple, "", features, nullptr, 0, nullptr, no_symbol);
  if (context) LLVMSetDisasmOptions(context, LLVMDisassembler_Option_PrintImmHex);
  context_ = context;
}

NativeDisassembler::~NativeDisassembler() {
  if (context_) LLVMDisasmDispose(static_cast<LLVMDisasmContextRef>(context_));
}

NativeDisassembler::Insn NativeDisassembler::decode(std::span<const std::uint8_t> code,
                                                    std::size_t at) const {
  std::array<char, 256> text{};
  // LLVM's API takes a non-const pointer but only reads the bytes.
  auto* bytes = const_cast<std::uint8_t*>(code.data() + at);
  const std::size_t size = LLVMDisasmInstruction(static_cast<LLVMDisasmContextRef>(context_), bytes,
                                                 code.size() - at, at, text.data(), text.size());
  Insn insn;
  if (size == 0) {
    // AArch64 instructions are 4 bytes; on x86-64 skip one byte and try again there.
    const std::size_t step = arch_ == NativeArch::aarch64 ? 4 : 1;
    insn.size = std::min(step, code.size() - at);
    insn.text = "<unknown>";
    return insn;
  }
  insn.size = size;
  // LLVM writes "\tmnemonic\toperands" (an x86 prefix as its own "\tlock\t"): single spaces.
  for (const char c : std::string_view(text.data())) {
    const bool space = c == '\t' || c == ' ';
    if (space && (insn.text.empty() || insn.text.back() == ' ')) continue;
    insn.text += space ? ' ' : c;
  }
  while (!insn.text.empty() && insn.text.back() == ' ') insn.text.pop_back();
  return insn;
}

}  // namespace bpfvm::cli
