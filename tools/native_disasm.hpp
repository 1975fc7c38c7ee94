// Machine code as instruction text, through LLVM's MC disassembler (C API), when LLVM was found
// at build time (BPFVM_HAVE_LLVM; else no disassembler is ever ok()). Nothing links LLVM: the
// library is loaded when the first disassembler is made (its load takes longer than most bpfvm
// commands).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace bpfvm::cli {

enum class NativeArch { x86_64, aarch64 };

class NativeDisassembler {
 public:
  explicit NativeDisassembler(NativeArch arch);
  ~NativeDisassembler();
  NativeDisassembler(const NativeDisassembler&) = delete;
  NativeDisassembler& operator=(const NativeDisassembler&) = delete;

  // Whether LLVM could be loaded and knows the target; else error() says why.
  bool ok() const { return context_ != nullptr; }
  const std::string& error() const { return error_; }

  struct Insn {
    std::size_t size = 0;  // at least 1, also for bytes that decode to nothing
    std::string text;      // "mnemonic operands"; "<unknown>" as llvm-objdump says it
  };
  // The instruction at code[at], which sits at `at` in the code (branch targets print as
  // offsets into `code`). Only when ok().
  Insn decode(std::span<const std::uint8_t> code, std::size_t at) const;

 private:
  NativeArch arch_;
  void* context_ = nullptr;  // LLVMDisasmContextRef
  std::string error_;
};

}  // namespace bpfvm::cli
