// bpfvm_conformance_plugin: runs one test for the upstream conformance runner
// (github.com/Alan-Jowett/bpf_conformance). Protocol: `plugin [MEM-HEX] [--engine E] [--elf]`,
// the program's bytes in hex on stdin, r0 in hex on stdout and exit 0; on failure a message on
// stderr and a non-zero exit.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "conformance/engines.hpp"
#include "conformance/runner.hpp"
#include "isa/load.hpp"
#include "isa/program.hpp"

namespace {

constexpr const char* usage =
    "usage: bpfvm_conformance_plugin [MEM-HEX] [--engine interp] [--budget N] [--elf] [--verified "
    "[--no-budget]] < PROGRAM-HEX\n"
    "Runs one conformance test as the upstream runner's plugin and prints r0 in hex.\n";

int fail(int code, const std::string& message) {
  fmt::print(stderr, "{}\n", message);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bpfvm;
  std::string engine = "interp";
  std::uint64_t budget = conformance::default_budget;
  bool elf = false;
  bool verified = false;   // verify first, run the verified form
  bool no_budget = false;  // ... counting no instructions
  std::vector<std::uint8_t> memory;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty()) continue;  // the upstream runner splits options on single spaces
    if (i == 1 && a.rfind("--", 0) != 0) {
      auto m = conformance::hex_decode(a);
      if (!m) return fail(64, "memory argument: " + m.error().message);
      memory = std::move(*m);
    } else if (a == "--engine" && i + 1 < argc) {
      engine = argv[++i];
    } else if (a == "--budget" && i + 1 < argc) {
      char* end = nullptr;
      budget = std::strtoull(argv[++i], &end, 0);
      if (*end != '\0' || budget == 0)
        return fail(64, fmt::format("--budget: '{}' is not a positive number", argv[i]));
    } else if (a == "--elf") {
      elf = true;
    } else if (a == "--verified") {
      verified = true;
    } else if (a == "--no-budget") {
      no_budget = true;
    } else if (a == "--help" || a == "-h") {
      fmt::print("{}", usage);
      return 0;
    } else {
      return fail(64, fmt::format("unknown argument '{}'\n{}", a, usage));
    }
  }
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto bytes = conformance::hex_decode(input);
  if (!bytes) return fail(1, "program on stdin: " + bytes.error().message);

  // An object must hold one program (the loader's error lists them when it holds several).
  isa::LoadOptions elf_options;
  elf_options.format = isa::InputFormat::elf;
  auto program =
      elf ? isa::load_bytes(*bytes, "<stdin>", elf_options) : isa::program_from_bytes(*bytes, "main");
  if (!program) return fail(1, program.error().to_string());

  conformance::RunSettings settings;
  settings.engine = engine;
  settings.budget = budget;
  if (no_budget && !verified) return fail(64, "--no-budget needs --verified");
  settings.verified = verified;
  settings.no_budget = no_budget;
  auto result = conformance::run_on_engine(settings, *program, memory);
  if (!result.ok) return fail(1, result.error);
  fmt::print("{:x}\n", result.r0);
  return 0;
}
