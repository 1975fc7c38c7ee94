// Machine code as instruction text, through LLVM's MC disassembler (C API). Compiled only when
// LLVM was built in (BPFVM_HAVE_LLVM); the core libraries never link LLVM, only the CLI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace bpfvm::cli {

enum class NativeArch { x86_64, aarch64 };

class NativeDisassembler {
 public:
  // Fails (ok() is false) only if LLVM lacks the target.
  explicit NativeDisassembler(NativeArch arch);
  ~NativeDisassembler();
  NativeDisassembler(const NativeDisassembler&) = delete;
  NativeDisassembler& operator=(const NativeDisassembler&) = delete;

  bool ok() const { return context_ != nullptr; }

  struct Insn {
    std::size_t size = 0;  // at least 1, also for bytes that decode to nothing
    std::string text;      // "mnemonic operands"; "<unknown>" as llvm-objdump says it
  };
  // The instruction at code[at], which sits at `at` in the code (branch targets print as
  // offsets into `code`).
  Insn decode(std::span<const std::uint8_t> code, std::size_t at) const;

 private:
  NativeArch arch_;
  void* context_ = nullptr;  // LLVMDisasmContextRef
};

}  // namespace bpfvm::cli
