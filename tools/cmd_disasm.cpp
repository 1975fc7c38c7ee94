// bpfvm disasm FILE: print a program's instructions in LLVM or conformance syntax.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "isa/disasm.hpp"
#include "isa/load.hpp"
#ifdef BPFVM_JIT_X64
#include "jit/x64/backend.hpp"
#endif
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/json.hpp"
#include "tools/selection.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* disasm_usage =
    "usage: bpfvm disasm FILE [--section S | --program P] [--syntax llvm|conformance] [--alu32] [--source]\n"
    "                    [--no-bytes] [--json] [--jit]\n"
    "\n"
    "Prints the instructions of FILE (ELF object, raw instructions or assembly text).\n"
    "  --section S   the program to print when FILE holds several: a section name (xdp, ...)\n"
    "  --program P   ... or a function name (`bpfvm list FILE` shows both)\n"
    "  --syntax X    llvm (default: as llvm-objdump-19 -d prints it) or conformance (bpf_conformance)\n"
    "  --alu32       LLVM syntax with w registers for narrow loads, stores and atomics, as\n"
    "                llvm-objdump-19 -d --mattr=+alu32 prints them\n"
    "  --source      the C source line (from .BTF.ext line info) before its instructions, as a\n"
    "                `# file.c:LINE: text` comment\n"
    "  --no-bytes    leave out the instruction bytes\n"
    "  --json        one JSON object: {\"file\", \"section\", \"program\", \"functions\": [{name, start, "
    "end}],\n"
    "                \"insns\": [{\"pc\", \"bytes\", \"text\"}]}\n"
    "  --jit         after each instruction, the x86-64 machine code the JIT emits for it (hex\n"
    "                bytes), then the out-of-line code; helpers: the conformance suite's\n"
    "The output re-assembles with `bpfvm asm --syntax` of the same syntax (without --jit).\n"
    "exit codes: 0 printed, 1 FILE could not be loaded, 64 usage\n";

#ifdef BPFVM_JIT_X64
// Machine code as rows of hex bytes, 16 a row, each row prefixed with its offset.
[[maybe_unused]] void print_code(const std::vector<std::uint8_t>& code, std::size_t from, std::size_t to) {
  for (std::size_t at = from; at < to; at += 16) {
    std::string row;
    for (std::size_t i = at; i < std::min(to, at + 16); ++i) row += fmt::format(" {:02x}", code[i]);
    fmt::print("        {:6x}:{}\n", at, row);
  }
}

#endif

int print_jit(const isa::Program& program, const isa::DisasmOptions& options) {
#ifdef BPFVM_JIT_X64
  auto helpers = std::make_shared<vm::HelperRegistry>(vm::HelperRegistry::conformance());
  auto listing = jit::x64::listing(program, helpers, {});
  if (!listing) {
    fmt::print(stderr, "bpfvm disasm: {}\n", listing.error().to_string());
    return exit_rejected;
  }
  const auto& offsets = listing->insn_offset;
  fmt::print("prologue\n");
  print_code(listing->code, 0, offsets.empty() ? listing->body_end : offsets[0]);
  for (std::size_t pc = 0; pc < offsets.size(); ++pc) {
    const auto op = isa::decode(program.insns[pc]);
    const std::size_t slots =
        op && pc + 1 < offsets.size() ? static_cast<std::size_t>(isa::slot_count(*op)) : 1;
    // The code of pc runs up to the next instruction's (the functions are laid out in order;
    // the entry function is followed by the shared exit).
    const std::size_t next = pc + slots < offsets.size() ? offsets[pc + slots] : listing->body_end;
    fmt::print("{:>8}: {}\n", pc, isa::format_insn(program.insns, pc, options.syntax, options.alu32));
    print_code(listing->code, offsets[pc], std::max<std::size_t>(next, offsets[pc]));
    pc += slots - 1;
  }
  fmt::print("out of line: slow copies of blocks, trap paths, slow-path thunks\n");
  print_code(listing->code, listing->body_end, listing->code.size());
  return exit_ok;
#else
  (void)program;
  (void)options;
  fmt::print(stderr, "bpfvm disasm: --jit needs the x86-64 JIT, which this build does not have\n");
  return exit_usage;
#endif
}

}  // namespace

int cmd_disasm(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"--syntax"};
  add_selection_options(spec);
  spec.flags = {"--no-bytes", "--json", "--alu32", "--source", "--jit", "--help", "-h"};
  auto args = Args::parse(argv, spec);
  if (!args) {
    fmt::print(stderr, "bpfvm disasm: {}\n\n{}", args.error().message, disasm_usage);
    return exit_usage;
  }
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", disasm_usage);
    return exit_ok;
  }
  if (args->positionals().size() != 1) {
    fmt::print(stderr, "bpfvm disasm: expected one FILE\n\n{}", disasm_usage);
    return exit_usage;
  }
  isa::DisasmOptions options;
  std::string syntax = args->value("--syntax").value_or("llvm");
  if (syntax == "conformance") {
    options.syntax = isa::Syntax::conformance;
  } else if (syntax != "llvm") {
    fmt::print(stderr, "bpfvm disasm: --syntax must be llvm or conformance, not '{}'\n", syntax);
    return exit_usage;
  }
  options.show_bytes = !args->flag("--no-bytes");
  options.alu32 = args->flag("--alu32");
  options.show_source = args->flag("--source");
  auto selection = program_selection(*args);
  if (!selection) {
    fmt::print(stderr, "bpfvm disasm: {}\n\n{}", selection.error().message, disasm_usage);
    return exit_usage;
  }

  const std::string& file = args->positionals()[0];
  isa::LoadOptions load;
  load.program = *selection;
  auto program = isa::load_file(file, load);
  if (!program) {
    fmt::print(stderr, "bpfvm disasm: {}\n", program.error().to_string());
    return exit_rejected;
  }

  if (args->flag("--jit")) return print_jit(*program, options);
  if (!args->flag("--json")) {
    fmt::print("{}", isa::disassemble(*program, options));
    return exit_ok;
  }
  std::string out = fmt::format("{{\"file\":{},\"section\":{},\"program\":{},\"functions\":[",
                                json_string(file), json_string(program->section), json_string(program->name));
  for (std::size_t i = 0; i < program->functions.size(); ++i) {
    const auto& f = program->functions[i];
    out += fmt::format("{}{{\"name\":{},\"start\":{},\"end\":{}}}", i ? "," : "", json_string(f.name),
                       f.start, f.end);
  }
  out += "],\"insns\":[";
  const auto& insns = program->insns;
  for (std::size_t pc = 0; pc < insns.size();) {
    auto op = isa::decode(insns[pc]);
    std::size_t slots = op && pc + 1 < insns.size() ? static_cast<std::size_t>(isa::slot_count(*op)) : 1;
    std::string bytes;
    for (std::size_t s = 0; s < slots; ++s) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(&insns[pc + s]);
      for (std::size_t k = 0; k < sizeof(isa::Insn); ++k)
        bytes += fmt::format("{}{:02x}", bytes.empty() ? "" : " ", b[k]);
    }
    std::string source;
    if (const auto* l = program->line_at(pc); options.show_source && l && l->insn == pc)
      source = fmt::format(",\"source\":{{\"file\":{},\"line\":{},\"column\":{},\"text\":{}}}",
                           json_string(l->file), l->line, l->column, json_string(l->source));
    out += fmt::format("{}{{\"pc\":{},\"bytes\":{},\"text\":{}{}}}", pc ? "," : "", pc, json_string(bytes),
                       json_string(isa::format_insn(insns, pc, options.syntax, options.alu32)), source);
    pc += slots;
  }
  fmt::print("{}]}}\n", out);
  return exit_ok;
}

}  // namespace bpfvm::cli
