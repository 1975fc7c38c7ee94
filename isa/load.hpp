// Loading a program from a file or bytes in any supported format into one Program.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "isa/elf.hpp"
#include "isa/error.hpp"
#include "isa/program.hpp"

namespace bpfvm::isa {

enum class InputFormat {
  detect,            // ELF by its magic; text when the bytes are printable; raw otherwise
  elf,               // ELF64 EM_BPF relocatable object (clang -target bpf)
  raw,               // instruction words, 8 bytes each, little-endian
  text_llvm,         // assembly as llvm-objdump prints it: r0 = *(u32 *)(r1 + 4)
  text_conformance,  // the conformance suite's assembly: ldxw %r0, [%r1+4]
};

struct LoadOptions {
  InputFormat format = InputFormat::detect;
  // Which program of an object holding several: a section name (xdp, socket, ...) or a
  // function name. Empty selects the only program, or fails listing the candidates.
  std::string program;
};

Result<Program> load_file(const std::string& path, const LoadOptions& options = {});
// `name` is used in error messages (a file name or "<stdin>").
Result<Program> load_bytes(std::span<const std::uint8_t> bytes, const std::string& name,
                           const LoadOptions& options = {});

// What a file holds without selecting a program: every program of an ELF object and its maps, or
// the one program of the other formats (loaded and validated, its section empty).
Result<ObjectInfo> inspect_file(const std::string& path, InputFormat format = InputFormat::detect);

}  // namespace bpfvm::isa
