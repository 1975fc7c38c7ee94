// bpfvm: check, run and inspect eBPF programs.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tools/args.hpp"
#include "tools/commands.hpp"

namespace {

struct Command {
  std::string_view name;
  int (*fn)(const std::vector<std::string>&);
  std::string_view summary;
};

constexpr Command commands[] = {
#define BPFVM_COMMAND(name, fn, summary) {#name, bpfvm::cli::fn, summary},
#include "tools/commands.def"
#undef BPFVM_COMMAND
};

void usage(std::FILE* out) {
  fmt::print(out, "usage: bpfvm COMMAND [ARGS...]\n\ncommands:\n");
  for (auto& c : commands) fmt::print(out, "  {:<12} {}\n", c.name, c.summary);
  fmt::print(out,
             "\n`bpfvm COMMAND --help` describes a command.\n"
             "exit codes: 0 ok, 1 rejected input, 2 internal error, 64 usage\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return bpfvm::cli::exit_usage;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return bpfvm::cli::exit_ok;
  }
  for (auto& c : commands) {
    if (c.name != name) continue;
    try {
      return c.fn(std::vector<std::string>(argv + 2, argv + argc));
    } catch (const std::exception& e) {
      fmt::print(stderr, "bpfvm {}: internal error: {}\n", name, e.what());
      return bpfvm::cli::exit_internal;
    }
  }
  fmt::print(stderr, "bpfvm: unknown command '{}'\n\n", name);
  usage(stderr);
  return bpfvm::cli::exit_usage;
}
