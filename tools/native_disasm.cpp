#include "tools/native_disasm.hpp"

#ifdef BPFVM_HAVE_LLVM
#include <dlfcn.h>
#include <llvm-c/Disassembler.h>

#include <algorithm>
#include <array>
#include <string_view>
#endif

namespace bpfvm::cli {

#ifdef BPFVM_HAVE_LLVM
namespace {

// The part of LLVM's C API the listing uses, from the library found at build time
// (BPFVM_LIBLLVM). Loading it costs about 16 ms, which linking it would add to every command.
struct Llvm {
  decltype(&LLVMCreateDisasmCPUFeatures) create = nullptr;
  decltype(&LLVMSetDisasmOptions) set_options = nullptr;
  decltype(&LLVMDisasmInstruction) disassemble = nullptr;
  decltype(&LLVMDisasmDispose) dispose = nullptr;
  std::string error;  // why it could not be loaded
};

template <typename Fn>
bool resolve(void* library, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(library, name));
  return fn != nullptr;
}

Llvm load_llvm() {
  Llvm llvm;
  // Kept loaded until exit.
  void* library = dlopen(BPFVM_LIBLLVM, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    llvm.error = dlerror();
    return llvm;
  }
  for (const char* init : {"LLVMInitializeX86TargetInfo", "LLVMInitializeX86TargetMC",
                           "LLVMInitializeX86Disassembler", "LLVMInitializeAArch64TargetInfo",
                           "LLVMInitializeAArch64TargetMC", "LLVMInitializeAArch64Disassembler"}) {
    void (*initialize)() = nullptr;
    if (!resolve(library, init, initialize)) {
      llvm.error = std::string(BPFVM_LIBLLVM) + " has no " + init;
      return llvm;
    }
    initialize();
  }
  if (!resolve(library, "LLVMCreateDisasmCPUFeatures", llvm.create) ||
      !resolve(library, "LLVMSetDisasmOptions", llvm.set_options) ||
      !resolve(library, "LLVMDisasmInstruction", llvm.disassemble) ||
      !resolve(library, "LLVMDisasmDispose", llvm.dispose)) {
    llvm.error = std::string(BPFVM_LIBLLVM) + " lacks the disassembler's C API";
    llvm.create = nullptr;
  }
  return llvm;
}

const Llvm& llvm() {
  static const Llvm loaded = load_llvm();
  return loaded;
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
  const Llvm& api = llvm();
  if (!api.create) {
    error_ = "LLVM could not be loaded (" + api.error + ")";
    return;
  }
  const char* triple = arch == NativeArch::x86_64 ? "x86_64-linux-gnu" : "aarch64-linux-gnu";
  // AArch64: every extension the JIT may use (LSE atomics) decodes.
  const char* features = arch == NativeArch::aarch64 ? "+lse" : "";
  LLVMDisasmContextRef context = api.create(triple, "", features, nullptr, 0, nullptr, no_symbol);
  if (!context) {
    error_ = std::string("LLVM has no disassembler for ") + triple;
    return;
  }
  api.set_options(context, LLVMDisassembler_Option_PrintImmHex);
  context_ = context;
}

NativeDisassembler::~NativeDisassembler() {
  if (context_) llvm().dispose(static_cast<LLVMDisasmContextRef>(context_));
}

NativeDisassembler::Insn NativeDisassembler::decode(std::span<const std::uint8_t> code,
                                                    std::size_t at) const {
  std::array<char, 256> text{};
  // LLVM's API takes a non-const pointer but only reads the bytes.
  auto* bytes = const_cast<std::uint8_t*>(code.data() + at);
  const std::size_t size = llvm().disassemble(static_cast<LLVMDisasmContextRef>(context_), bytes,
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

#else

NativeDisassembler::NativeDisassembler(NativeArch arch)
    : arch_(arch), error_("LLVM is not built into this bpfvm") {}
NativeDisassembler::~NativeDisassembler() = default;
NativeDisassembler::Insn NativeDisassembler::decode(std::span<const std::uint8_t>, std::size_t) const {
  return {};
}

#endif

}  // namespace bpfvm::cli
