// bpfvm run FILE: runs a program on some memory and prints r0, or the trap that stopped it.
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "conformance/data_file.hpp"
#include "conformance/engines.hpp"
#include "isa/disasm.hpp"
#include "isa/load.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/selection.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* run_usage =
    "usage: bpfvm run FILE [--section S | --program P] [--mem HEXFILE | --mem-hex '..'] [--engine E] "
    "[--budget N] "
    "[--trace]\n"
    "\n"
    "Runs the program in FILE with r1 = the memory's address and r2 = its size, and prints r0.\n"
    "FILE is an ELF object, raw instructions, assembly text, or a conformance .data file (its\n"
    "program and its memory).\n"
    "  --section S    the program to run when FILE holds several: a section name (xdp, ...)\n"
    "  --program P    ... or a function name (`bpfvm list FILE` shows both)\n"
    "  --mem FILE     the memory: a file of hex bytes (\"00 01 ff\"), read and written by the program\n"
    "  --mem-hex HEX  the memory as hex bytes on the command line\n"
    "  --engine E     the engine: {}\n"
    "  --budget N     stop with a trap after N instructions (default {})\n"
    "  --trace        print every step: pc, instruction, the registers it changed\n"
    "exit codes: 0 ran to exit, 1 rejected input or a trap, 2 internal error, 64 usage\n";

std::string usage_text() {
  std::string engines;
  for (auto e : conformance::engine_names()) engines += (engines.empty() ? "" : ", ") + std::string(e);
  return fmt::format(fmt::runtime(run_usage), engines, conformance::default_budget);
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Error e{"cannot open the file"};
    e.file = path;
    return e;
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string changes(const std::array<std::uint64_t, 11>& before, const std::array<std::uint64_t, 11>& after) {
  std::string out;
  for (std::size_t r = 0; r < before.size(); ++r)
    if (before[r] != after[r]) out += fmt::format("{}r{} = {:#x}", out.empty() ? "" : ", ", r, after[r]);
  return out;
}

}  // namespace

int cmd_run(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"--mem", "--mem-hex", "--engine", "--budget"};
  add_selection_options(spec);
  spec.flags = {"--trace", "--help", "-h"};
  auto args = Args::parse(argv, spec);
  auto usage_error = [](const std::string& message) {
    fmt::print(stderr, "bpfvm run: {}\n\n{}", message, usage_text());
    return exit_usage;
  };
  if (!args) return usage_error(args.error().message);
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", usage_text());
    return exit_ok;
  }
  if (args->positionals().size() != 1) return usage_error("expected one FILE");
  auto selection = program_selection(*args);
  if (!selection) return usage_error(selection.error().message);
  if (args->value("--mem") && args->value("--mem-hex"))
    return usage_error("--mem and --mem-hex exclude each other");
  auto budget = args->number("--budget", 1, 1LL << 62);
  if (!budget) return usage_error(budget.error().message);
  conformance::RunSettings settings;
  settings.engine = args->value("--engine").value_or("interp");
  bool known = false;
  for (auto e : conformance::engine_names()) known |= e == settings.engine;
  if (!known) return usage_error("unknown engine '" + settings.engine + "'");
  if (*budget) settings.budget = static_cast<std::uint64_t>(**budget);

  const std::string& file = args->positionals()[0];
  auto rejected = [](const Error& e) {
    fmt::print(stderr, "bpfvm run: {}\n", e.to_string());
    return exit_rejected;
  };
  isa::Program program;
  std::vector<std::uint8_t> memory;
  if (file.size() > 5 && file.ends_with(".data")) {
    auto data = conformance::read_data_file(file);
    if (!data) return rejected(data.error());
    if (!data->skip.empty()) return rejected(Error{file + ": " + data->skip});
    program.name = data->name;
    program.insns = std::move(data->insns);
    memory = std::move(data->memory);
  } else {
    isa::LoadOptions load;
    load.program = *selection;
    auto loaded = isa::load_file(file, load);
    if (!loaded) return rejected(loaded.error());
    program = std::move(*loaded);
  }
  if (auto path = args->value("--mem")) {
    auto text = read_text(*path);
    if (!text) return rejected(text.error());
    auto bytes = conformance::hex_decode(*text);
    if (!bytes) return rejected(Error{*path + ": " + bytes.error().message});
    memory = std::move(*bytes);
  } else if (auto hex = args->value("--mem-hex")) {
    auto bytes = conformance::hex_decode(*hex);
    if (!bytes) return rejected(Error{"--mem-hex: " + bytes.error().message});
    memory = std::move(*bytes);
  }

  // A step is printed when the next one starts (or the run ends): only then are its effects known.
  std::optional<std::pair<std::size_t, std::array<std::uint64_t, 11>>> pending;
  auto print_step = [&](const std::array<std::uint64_t, 11>& after) {
    if (!pending) return;
    auto [pc, before] = *pending;
    fmt::print("{:5}: {:<40} {}\n", pc, isa::format_insn(program.insns, pc, isa::Syntax::llvm),
               changes(before, after));
  };
  if (args->flag("--trace")) {
    settings.trace = [&](std::size_t pc, const std::array<std::uint64_t, 11>& regs) {
      print_step(regs);
      pending.emplace(pc, regs);
    };
  }
  auto outcome = conformance::run_program(program, memory, settings);
  if (!outcome.error.empty()) {
    fmt::print(stderr, "bpfvm run: {}\n", outcome.error);
    return exit_rejected;
  }
  print_step(outcome.regs);
  if (outcome.trap) {
    const auto& t = *outcome.trap;
    fmt::print("trap: {}\n", t.message);
    fmt::print("  kind: {}\n  pc: {}\n", t.kind, t.pc);
    if (t.address) fmt::print("  address: {:#x}\n  size: {}\n", *t.address, t.size);
    if (!t.region.empty()) fmt::print("  region: {}\n", t.region);
    return exit_rejected;
  }
  fmt::print("r0 = {:#x} ({})\n", outcome.r0, outcome.r0);
  return exit_ok;
}

}  // namespace bpfvm::cli
