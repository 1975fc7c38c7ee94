// bpfvm bench FILE: times one program on every engine, checked, verified and verified without
// the budget, side by side in one run (the forms interleaved, so the machine's noise spreads
// over all of them), and checks that they agree.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/bpfvm.hpp"
#include "isa/load.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/memory_options.hpp"
#include "tools/selection.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* bench_usage =
    "usage: bpfvm bench FILE [--section S | --program P] [--mem HEXFILE | --mem-hex HEX | --mem-size N]\n"
    "                   [--engine E]... [--reps N]\n"
    "\n"
    "Times the program in FILE (raw: r1 = the memory, r2 = its size) on every engine of this\n"
    "build, each three ways: checked (NAME), verified for this memory's size with the proven\n"
    "accesses unchecked (NAME/v) and verified without the budget (NAME/vu). Prints per form the\n"
    "median time per run, the instructions it executed and the time per instruction, and its\n"
    "time over the fastest form's. Every form must give the first checked run's r0 and memory.\n"
    "  --mem FILE     the memory: a file of hex bytes (\"00 01 ff\")\n"
    "  --mem-hex HEX  the memory as hex bytes on the command line\n"
    "  --mem-size N   N bytes of memory, byte i holding i mod 251 (default: no memory)\n"
    "  --engine E     only this engine (interp, jit-x64, jit-a64; repeatable)\n"
    "  --reps N       timed samples per form (default 11), each at least 2 ms of runs\n"
    "The memory is set before each form's first run only: a program that writes it sees its own\n"
    "writes in later runs.\n"
    "exit codes: 0 timed, 1 FILE not loaded, a trap, or forms that disagree, 64 usage\n";

struct Form {
  std::string name;
  std::shared_ptr<const vm::Executable> exe;
  std::vector<std::uint8_t> memory;
  std::uint64_t executed = 0;
  std::uint64_t batch = 1;  // runs per timed sample
  std::vector<double> ns;   // per run, one entry per sample
};

double run_batch(Form& f) {
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < f.batch; ++i) (void)run(*f.exe, f.memory);
  const auto stop = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(stop - start).count();
}

}  // namespace

int cmd_bench(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"--engine", "--reps", "--mem-size"};
  spec.repeatable = {"--engine"};
  add_memory_options(spec);
  add_selection_options(spec);
  spec.flags = {"--help", "-h"};
  auto args = Args::parse(argv, spec);
  auto usage_error = [](const std::string& message) {
    fmt::print(stderr, "bpfvm bench: {}\n\n{}", message, bench_usage);
    return exit_usage;
  };
  if (!args) return usage_error(args.error().message);
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", bench_usage);
    return exit_ok;
  }
  if (args->positionals().size() != 1) return usage_error("expected one FILE");
  auto selection = program_selection(*args);
  if (!selection) return usage_error(selection.error().message);
  auto reps = args->number("--reps", 1, 1000);
  if (!reps) return usage_error(reps.error().message);
  auto mem_size = args->number("--mem-size", 0, 1LL << 30);
  if (!mem_size) return usage_error(mem_size.error().message);
  if (*mem_size && (args->value("--mem") || args->value("--mem-hex")))
    return usage_error("--mem-size excludes --mem and --mem-hex");
  std::vector<Engine> engines;
  for (const std::string& name : args->values("--engine")) {
    const auto e = engine_from_string(name);
    if (!e || !engine_available(*e)) return usage_error("no engine '" + name + "' in this build");
    engines.push_back(*e);
  }
  if (engines.empty())
    for (Engine e : {Engine::interpreter, Engine::jit_x64, Engine::jit_a64})
      if (engine_available(e)) engines.push_back(e);

  auto rejected = [](const Error& e) {
    fmt::print(stderr, "bpfvm bench: {}\n", e.to_string());
    return exit_rejected;
  };
  std::vector<std::uint8_t> memory;
  auto given = memory_option(*args);
  if (!given) return rejected(given.error());
  if (*given) memory = std::move(**given);
  if (*mem_size) {
    memory.resize(static_cast<std::size_t>(**mem_size));
    for (std::size_t i = 0; i < memory.size(); ++i) memory[i] = static_cast<std::uint8_t>(i % 251);
  }
  isa::LoadOptions load;
  load.program = *selection;
  auto program = isa::load_file(args->positionals()[0], load);
  if (!program) return rejected(program.error());
  Vm vm;
  if (Status s = vm.load(std::move(*program)); !s) return rejected(s.error());
  const auto verdict = vm.verify(verifier::raw_environment(memory.size()));
  if (!verdict.accepted())
    fmt::print("not verified, so checked only: {}\n", verdict.diagnostic->to_error().to_string());

  std::vector<Form> forms;
  for (Engine engine : engines) {
    const std::string name(to_string(engine));
    auto checked = vm.compile(engine);
    if (!checked) return rejected(checked.error());
    forms.push_back(Form{name, *checked, memory, 0, 1, {}});
    if (!verdict.accepted()) continue;
    for (bool budget : {true, false}) {
      vm::CompileOptions options;
      options.enforce_budget = budget;
      auto exe = vm.compile(engine, *verdict.program, options);
      if (!exe) return rejected(exe.error());
      forms.push_back(Form{name + (budget ? "/v" : "/vu"), *exe, memory, 0, 1, {}});
    }
  }

  // The first run of each form: the reference is the first checked run's result and memory.
  vm::RunResult reference;
  std::vector<std::uint8_t> reference_memory;
  for (std::size_t i = 0; i < forms.size(); ++i) {
    Form& f = forms[i];
    const vm::RunResult r = run(*f.exe, f.memory);
    if (r.trap) return rejected(Error{f.name + ": " + r.trap->message()});
    f.executed = r.executed;
    if (i == 0) {
      reference = r;
      reference_memory = f.memory;
    } else if (r.r0 != reference.r0 || f.memory != reference_memory) {
      return rejected(
          Error{fmt::format("{} disagrees with {}: r0 {:#x} against {:#x}{}", f.name, forms[0].name, r.r0,
                            reference.r0, f.memory != reference_memory ? ", and the memory differs" : "")});
    }
  }
  // Calibrate each form to at least 2 ms per sample, then sample the forms in turn.
  for (Form& f : forms)
    while (run_batch(f) < 2e6 && f.batch < (std::uint64_t{1} << 30)) f.batch *= 2;
  const int samples = *reps ? static_cast<int>(**reps) : 11;
  for (int s = 0; s < samples; ++s)
    for (Form& f : forms) f.ns.push_back(run_batch(f) / static_cast<double>(f.batch));
  double fastest = 0;
  for (Form& f : forms) {
    std::sort(f.ns.begin(), f.ns.end());
    const double median = f.ns[f.ns.size() / 2];
    if (fastest == 0 || median < fastest) fastest = median;
  }
  fmt::print("r0 = {:#x}, {} bytes of memory, median of {} samples\n", reference.r0, memory.size(), samples);
  fmt::print("{:<12} {:>12} {:>10} {:>8} {:>8}\n", "form", "ns/run", "executed", "ns/insn", "vs best");
  for (const Form& f : forms) {
    const double median = f.ns[f.ns.size() / 2];
    const std::string per =
        f.executed ? fmt::format("{:.2f}", median / static_cast<double>(f.executed)) : std::string("-");
    fmt::print("{:<12} {:>12.1f} {:>10} {:>8} {:>7.2f}x\n", f.name, median,
               f.executed ? fmt::format("{}", f.executed) : std::string("-"), per, median / fastest);
  }
  return exit_ok;
}

}  // namespace bpfvm::cli
