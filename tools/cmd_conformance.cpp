// bpfvm conformance [DIR|FILE]: runs the conformance suite in process or through a plugin.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "conformance/engines.hpp"
#include "conformance/runner.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* conformance_usage =
    "usage: bpfvm conformance [DIR|FILE] [--engine E] [--cpu-version v1..v4] [--include-groups G...]\n"
    "                         [--exclude-groups G...] [--include-regex R] [--exclude-regex R]\n"
    "                         [--budget N] [--verified [--no-budget]] [--plugin PATH [--plugin-options "
    "'...'] "
    "[--timeout MS]]\n"
    "\n"
    "Runs the conformance suite's .data tests (default: the suite next to the source tree, else\n"
    "$BPF_CONFORMANCE_DIR) and prints one line per test, then 'N passed, N failed, N skipped'.\n"
    "  --engine E           the engine to run on in process: {}\n"
    "  --cpu-version V      skip tests that need a later CPU version (default v4)\n"
    "  --include-groups G   add groups (default: all of base32 base64 divmul32 divmul64 atomic32\n"
    "  --exclude-groups G   atomic64 packet callx); base64, divmul64, atomic64 include their 32-bit group\n"
    "  --include-regex R    run only the tests whose file name matches R\n"
    "  --exclude-regex R    skip the tests whose file name matches R\n"
    "  --budget N           in process: instructions per test (default {})\n"
    "  --verified           in process: verify each test first (raw, its memory's size) and run the\n"
    "                       verified form, the proven accesses unchecked; a rejection fails the test\n"
    "  --no-budget          with --verified: count no instructions (the verifier proved every loop ends)\n"
    "  --plugin PATH        run each test out of process through PATH, which speaks the upstream\n"
    "                       bpf_conformance runner's plugin protocol\n"
    "  --plugin-options S   the plugin's options, split on spaces (e.g. '--engine interp')\n"
    "  --timeout MS         with --plugin: milliseconds per test (default 10000)\n"
    "exit codes: 0 no test failed, 1 some test failed, 64 usage\n";

std::string usage_text() {
  std::string engines;
  for (auto e : conformance::engine_names()) engines += (engines.empty() ? "" : ", ") + std::string(e);
  return fmt::format(fmt::runtime(conformance_usage), engines, conformance::default_budget);
}

// `--include-groups a b c` as the upstream runner takes them: the option consumes every
// following word that names a group.
std::vector<std::string> expand_group_lists(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const auto& a = argv[i];
    if (a != "--include-groups" && a != "--exclude-groups") {
      out.push_back(a);
      continue;
    }
    std::size_t j = i + 1;
    for (; j < argv.size() && (j == i + 1 || conformance::parse_group(argv[j]).ok()); ++j)
      out.push_back(a + "=" + argv[j]);
    if (j == i + 1) out.push_back(a);  // no value: Args::parse reports it
    i = j - 1;
  }
  return out;
}

}  // namespace

int cmd_conformance(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"--engine",        "--cpu-version",   "--include-groups", "--exclude-groups",
                     "--include-regex", "--exclude-regex", "--plugin",         "--plugin-options",
                     "--timeout",       "--budget"};
  spec.repeatable = {"--include-groups", "--exclude-groups"};
  spec.flags = {"--help", "-h", "--verified", "--no-budget"};
  auto args = Args::parse(expand_group_lists(argv), spec);
  auto usage_error = [](const std::string& message) {
    fmt::print(stderr, "bpfvm conformance: {}\n\n{}", message, usage_text());
    return exit_usage;
  };
  if (!args) return usage_error(args.error().message);
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", usage_text());
    return exit_ok;
  }
  if (args->positionals().size() > 1) return usage_error("expected at most one DIR or FILE");

  conformance::Options options;
  if (auto v = args->value("--cpu-version")) {
    auto cpu = conformance::parse_cpu_version(*v);
    if (!cpu) return usage_error(cpu.error().message);
    options.cpu_version = *cpu;
  }
  for (const auto& g : args->values("--include-groups")) {
    auto set = conformance::parse_group(g);
    if (!set) return usage_error(set.error().message);
    options.groups |= *set;
  }
  for (const auto& g : args->values("--exclude-groups")) {
    auto set = conformance::parse_group(g);
    if (!set) return usage_error(set.error().message);
    options.groups &= ~*set;
  }
  options.include_regex = args->value("--include-regex");
  options.exclude_regex = args->value("--exclude-regex");
  auto timeout = args->number("--timeout", 1, 24LL * 3600 * 1000);
  if (!timeout) return usage_error(timeout.error().message);
  auto budget = args->number("--budget", 1, 1LL << 62);
  if (!budget) return usage_error(budget.error().message);

  conformance::Executor executor;
  auto plugin = args->value("--plugin");
  std::string engine = args->value("--engine").value_or("interp");
  if (plugin) {
    if (args->value("--engine") || *budget || args->flag("--verified") || args->flag("--no-budget"))
      return usage_error(
          "--engine, --budget, --verified and --no-budget run in process; with --plugin use "
          "--plugin-options");
    executor = conformance::plugin_executor(
        *plugin, conformance::split_plugin_options(args->value("--plugin-options").value_or("")),
        std::chrono::milliseconds(timeout->value_or(10000)));
  } else {
    if (args->value("--plugin-options") || *timeout)
      return usage_error("--plugin-options and --timeout need --plugin");
    bool known = false;
    for (auto e : conformance::engine_names()) known |= e == engine;
    if (!known) return usage_error("unknown engine '" + engine + "'");
    conformance::RunSettings settings;
    settings.engine = engine;
    settings.budget =
        static_cast<std::uint64_t>(budget->value_or(static_cast<long long>(conformance::default_budget)));
    settings.verified = args->flag("--verified");
    settings.no_budget = args->flag("--no-budget");
    if (settings.no_budget && !settings.verified) return usage_error("--no-budget needs --verified");
    executor = conformance::engine_executor(std::move(settings));
  }

  std::string path = args->positionals().empty() ? conformance::default_data_dir() : args->positionals()[0];
  if (path.empty()) {
    fmt::print(stderr,
               "bpfvm conformance: no test data: pass a DIR or FILE, or set BPF_CONFORMANCE_DIR to the "
               "tests/ folder of github.com/Alan-Jowett/bpf_conformance\n");
    return exit_rejected;
  }
  auto files = conformance::collect_tests(path);
  if (!files) {
    fmt::print(stderr, "bpfvm conformance: {}\n", files.error().to_string());
    return exit_rejected;
  }
  auto summary = conformance::run_tests(*files, executor, options, stdout);
  if (!summary) return usage_error(summary.error().message);
  std::fflush(stdout);
  return summary->failed == 0 ? exit_ok : exit_rejected;
}

}  // namespace bpfvm::cli
