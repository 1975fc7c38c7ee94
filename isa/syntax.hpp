#pragma once

namespace bpfvm::isa {

// The two text forms of eBPF assembly.
enum class Syntax {
  llvm,         // as llvm-objdump prints it: r0 = *(u32 *)(r1 + 0x4)
  conformance,  // the conformance suite's: ldxw %r0, [%r1+4]
};

}  // namespace bpfvm::isa
