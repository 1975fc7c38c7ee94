// bpfvm asm IN: assemble LLVM or conformance syntax into raw instruction bytes.
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "isa/load.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* asm_usage =
    "usage: bpfvm asm IN [-o OUT] [--syntax llvm|conformance]\n"
    "\n"
    "Assembles the text in IN (LLVM syntax by default, llvm-objdump-19 -d output included, or the\n"
    "bpf_conformance suite's syntax) into instructions.\n"
    "  -o OUT        write the raw instruction bytes (8 per slot, little-endian) to OUT;\n"
    "                without -o, or with -o -, print them as hex, one slot per line\n"
    "                (\"07 01 00 00 05 00 00 00\"), a form `bpfvm disasm` does not read back\n"
    "  --syntax X    llvm (default) or conformance\n"
    "exit codes: 0 assembled, 1 the text has an error (file:line: message), 2 OUT not writable, 64 usage\n";

}  // namespace

int cmd_asm(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"-o", "--syntax"};
  spec.flags = {"--help", "-h"};
  auto args = Args::parse(argv, spec);
  if (!args) {
    fmt::print(stderr, "bpfvm asm: {}\n\n{}", args.error().message, asm_usage);
    return exit_usage;
  }
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", asm_usage);
    return exit_ok;
  }
  if (args->positionals().size() != 1) {
    fmt::print(stderr, "bpfvm asm: expected one input file\n\n{}", asm_usage);
    return exit_usage;
  }
  isa::LoadOptions load;
  std::string syntax = args->value("--syntax").value_or("llvm");
  if (syntax == "llvm") {
    load.format = isa::InputFormat::text_llvm;
  } else if (syntax == "conformance") {
    load.format = isa::InputFormat::text_conformance;
  } else {
    fmt::print(stderr, "bpfvm asm: --syntax must be llvm or conformance, not '{}'\n", syntax);
    return exit_usage;
  }
  auto program = isa::load_file(args->positionals()[0], load);
  if (!program) {
    fmt::print(stderr, "bpfvm asm: {}\n", program.error().to_string());
    return exit_rejected;
  }
  std::vector<std::uint8_t> bytes = isa::program_bytes(*program);
  std::string out = args->value("-o").value_or("-");
  if (out == "-") {
    for (std::size_t i = 0; i < bytes.size(); i += sizeof(isa::Insn))
      fmt::print("{:02x} {:02x} {:02x} {:02x} {:02x} {:02x} {:02x} {:02x}\n", bytes[i], bytes[i + 1],
                 bytes[i + 2], bytes[i + 3], bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]);
    return exit_ok;
  }
  std::FILE* f = std::fopen(out.c_str(), "wb");
  bool written = f && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (f && std::fclose(f) != 0) written = false;
  if (!written) {
    fmt::print(stderr, "bpfvm asm: cannot write '{}'\n", out);
    return exit_internal;
  }
  return exit_ok;
}

}  // namespace bpfvm::cli
