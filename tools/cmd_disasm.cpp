// bpfvm disasm FILE: print a program's instructions in LLVM or conformance syntax, or with
// --jit each followed by the machine code a JIT emits for it.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "isa/disasm.hpp"
#include "isa/load.hpp"
#include "jit/a64/codegen.hpp"
#ifdef BPFVM_JIT_A64
#include "jit/a64/backend.hpp"
#endif
#ifdef BPFVM_JIT_X64
#include "jit/x64/backend.hpp"
#endif
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/json.hpp"
#include "tools/native_disasm.hpp"
#include "tools/selection.hpp"
#include "tools/verify_options.hpp"
#include "verifier/verifier.hpp"
#include "vm/linux_helpers.hpp"
#include "vm/maps.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* disasm_usage =
    "usage: bpfvm disasm FILE [--section S | --program P] [--syntax llvm|conformance] [--alu32] [--source]\n"
    "                    [--no-bytes] [--json] [--jit [--engine jit|jit-x64|jit-a64]\n"
    "                    [--verified [--type T] [--mem-size N] [--no-budget]]]\n"
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
    "  --jit         after each instruction, the machine code the JIT emits for it, disassembled\n"
    "                by LLVM as llvm-objdump-19 -d prints it (offset, bytes, AT&T syntax on\n"
    "                x86-64), or hex bytes when LLVM is not built in; the code before the first\n"
    "                instruction first, the out-of-line code last. Programs from ELF objects are\n"
    "                compiled with the Linux helpers and their maps, others with the conformance\n"
    "                suite's helpers\n"
    "  --engine E    with --jit: jit (the host's, default), jit-x64 (x86-64 hosts) or jit-a64\n"
    "                (any host: the AArch64 code generator runs everywhere)\n"
    "  --verified    with --jit: the code of the verified program (as `bpfvm verify` with --type\n"
    "                and --mem-size takes them), without the checks of the accesses it proved;\n"
    "                a rejected program is refused with the verifier's diagnostic\n"
    "  --no-budget   with --verified: the code that counts no instructions (run --no-budget)\n"
    "The output re-assembles with `bpfvm asm --syntax` of the same syntax (without --jit).\n"
    "exit codes: 0 printed, 1 FILE could not be loaded or was not verified, 64 usage\n";

// The code a JIT emits for a program, cut at its BPF instructions.
struct JitCode {
  NativeArch arch = NativeArch::x86_64;
  std::vector<std::uint8_t> code;
  std::vector<std::uint32_t> insn_offset;  // per pc: where its code starts
  std::size_t body_end = 0;                // the instructions' code ends, the out-of-line code begins
  const char* head = "";                   // what runs before the first instruction
  const char* tail = "";                   // what follows the instructions' code
};

// `options` may carry the verifier's proofs and the budget choice; the rest is set here.
Result<JitCode> jit_code(NativeArch arch, const isa::Program& program, vm::CompileOptions options) {
  // As the program would run: from an ELF object with the Linux helpers and its maps (created
  // here, so the code holds real map addresses), else with the conformance suite's helpers.
  vm::HelperRegistry helpers;
  vm::MapSet maps;
  if (program.section.empty()) {
    helpers = vm::HelperRegistry::conformance();
  } else {
    if (Status s = vm::add_linux_helpers(helpers); !s) return s.error();
    auto addresses = maps.bind(program);
    if (!addresses) return addresses.error();
    options.maps = std::move(addresses).value();
  }
  JitCode out;
  out.arch = arch;
#ifdef BPFVM_JIT_X64
  if (arch == NativeArch::x86_64) {
    auto listing = jit::x64::listing(program, std::make_shared<vm::HelperRegistry>(helpers), options);
    if (!listing) return listing.error();
    out.code = std::move(listing->code);
    out.insn_offset = std::move(listing->insn_offset);
    out.body_end = listing->body_end;
    out.head = "prologue";
    out.tail =
        "out of line: loop copies checked at entry, slow copies of blocks, trap paths, slow-path thunks";
    return out;
  }
#endif
  // The AArch64 code generator runs on every host; its atomics are the host's kind on AArch64
  // and LL/SC loops (ARMv8.0) elsewhere.
#ifdef BPFVM_JIT_A64
  const jit::a64::Target target = jit::a64::host_target();
#else
  const jit::a64::Target target;
#endif
  auto generated = jit::a64::generate(program, helpers, options, jit::a64::RuntimeCalls::host(), target);
  if (!generated) return generated.error();
  out.code = std::move(generated->code);
  out.insn_offset = std::move(generated->insn_offset);
  out.body_end = generated->body_end;
  out.head = "entry, exit and trap exit";
  out.tail = "out of line: check and trap stubs, budget paths, slow-path routines";
  return out;
}

// The machine code in [from, to): one instruction a line when LLVM is built in (offset, bytes,
// text), else rows of 16 hex bytes. Offsets are from the start of the code, as branch targets.
void print_code(const JitCode& jit, const NativeDisassembler* native, std::size_t from, std::size_t to,
                bool show_bytes) {
  const std::span<const std::uint8_t> code(jit.code.data(), to);
  auto bytes = [&](std::size_t at, std::size_t size) {
    std::string row;
    for (std::size_t i = at; i < at + size; ++i) row += fmt::format("{}{:02x}", i == at ? "" : " ", code[i]);
    return row;
  };
  for (std::size_t at = from; at < to;) {
    const std::string offset = fmt::format("{:#x}:", at);
    if (!native) {
      const std::size_t size = std::min<std::size_t>(16, to - at);
      fmt::print("{:>11}  {}\n", offset, bytes(at, size));
      at += size;
      continue;
    }
    const NativeDisassembler::Insn insn = native->decode(code, at);
    // Room for the longest instruction either JIT emits: x86-64's 10-byte movabs, AArch64's 4.
    const std::size_t width = jit.arch == NativeArch::x86_64 ? 29 : 11;
    if (show_bytes)
      fmt::print("{:>11}  {:<{}}  {}\n", offset, bytes(at, insn.size), width, insn.text);
    else
      fmt::print("{:>11}  {}\n", offset, insn.text);
    at += insn.size;
  }
}

// LLVM's disassembler for `arch`, or none (after a note saying why: the listing is hex then).
std::unique_ptr<NativeDisassembler> native_disassembler(NativeArch arch) {
  auto native = std::make_unique<NativeDisassembler>(arch);
  if (native->ok()) return native;
  fmt::print("# {}: the machine code as hex bytes\n", native->error());
  return nullptr;
}

int print_jit(const isa::Program& program, const isa::DisasmOptions& options, NativeArch arch,
              const vm::CompileOptions& compile) {
  auto jit = jit_code(arch, program, compile);
  if (!jit) {
    fmt::print(stderr, "bpfvm disasm: {}\n", jit.error().to_string());
    return exit_rejected;
  }
  const auto native = native_disassembler(arch);
  const auto& offsets = jit->insn_offset;
  fmt::print("{}\n", jit->head);
  print_code(*jit, native.get(), 0, offsets.empty() ? jit->body_end : offsets[0], options.show_bytes);
  for (std::size_t pc = 0; pc < offsets.size(); ++pc) {
    const auto op = isa::decode(program.insns[pc]);
    const std::size_t slots =
        op && pc + 1 < offsets.size() ? static_cast<std::size_t>(isa::slot_count(*op)) : 1;
    // The code of pc runs up to the next instruction's (the functions are laid out in order).
    const std::size_t next = pc + slots < offsets.size() ? offsets[pc + slots] : jit->body_end;
    fmt::print("{:>8}: {}\n", pc, isa::format_insn(program.insns, pc, options.syntax, options.alu32));
    print_code(*jit, native.get(), offsets[pc], std::max<std::size_t>(next, offsets[pc]), options.show_bytes);
    pc += slots - 1;
  }
  fmt::print("{}\n", jit->tail);
  print_code(*jit, native.get(), jit->body_end, jit->code.size(), options.show_bytes);
  return exit_ok;
}

// --engine for --jit: "jit" is the host's JIT (AArch64's where there is none: it runs anywhere).
Result<NativeArch> jit_arch(const std::string& engine) {
  if (engine == "jit-x64") {
#ifdef BPFVM_JIT_X64
    return NativeArch::x86_64;
#else
    return Error("jit-x64 is not in this build (x86-64 hosts only); jit-a64 is");
#endif
  }
  if (engine == "jit-a64") return NativeArch::aarch64;
  if (engine != "jit") return Error("--engine must be jit, jit-x64 or jit-a64, not '" + engine + "'");
#ifdef BPFVM_JIT_X64
  return NativeArch::x86_64;
#else
  return NativeArch::aarch64;
#endif
}

}  // namespace

int cmd_disasm(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"--syntax", "--engine"};
  add_selection_options(spec);
  add_verify_options(spec);
  spec.flags = {"--no-bytes", "--json",      "--alu32", "--source", "--jit",
                "--verified", "--no-budget", "--help",  "-h"};
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
  if (args->value("--engine") && !args->flag("--jit")) {
    fmt::print(stderr, "bpfvm disasm: --engine needs --jit\n\n{}", disasm_usage);
    return exit_usage;
  }
  const bool verify = args->flag("--verified");
  if ((verify && !args->flag("--jit")) ||
      ((args->value("--type") || args->value("--mem-size") || args->flag("--no-budget")) && !verify)) {
    fmt::print(
        stderr,
        "bpfvm disasm: --verified needs --jit; --type, --mem-size and --no-budget need --verified\n\n{}",
        disasm_usage);
    return exit_usage;
  }
  const std::string engine = args->value("--engine").value_or("jit");
  const auto arch = jit_arch(engine);
  if (!arch) {
    fmt::print(stderr, "bpfvm disasm: {}\n", arch.error().message);
    return exit_usage;
  }
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

  if (args->flag("--jit")) {
    vm::CompileOptions compile;
    if (verify) {
      auto env = verify_environment(*args, *program);
      if (!env) {
        fmt::print(stderr, "bpfvm disasm: {}\n", env.error().message);
        return exit_usage;
      }
      const auto verdict = verifier::verify(*program, *env);
      if (!verdict.accepted()) {
        fmt::print(stderr, "bpfvm disasm: not verified:\n{}\n", verdict.diagnostic->to_string());
        return exit_rejected;
      }
      compile.proven_accesses = verdict.program->proven_accesses();
      compile.enforce_budget = !args->flag("--no-budget");
    }
    return print_jit(*program, options, *arch, compile);
  }
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
