// The program selection that every command loading a file takes, spelled the same everywhere:
// `--section S` or `--program NAME` (either accepts a section or a function name; see
// isa::LoadOptions::program).
#pragma once

#include <string>

#include "isa/error.hpp"
#include "tools/args.hpp"

namespace bpfvm::cli {

inline void add_selection_options(OptionSpec& spec) {
  spec.with_value.insert("--section");
  spec.with_value.insert("--program");
}

// The selection for isa::LoadOptions::program ("" when none was given).
inline Result<std::string> program_selection(const Args& args) {
  auto section = args.value("--section"), program = args.value("--program");
  if (section && program) return Error("--section and --program exclude each other");
  return section ? *section : program.value_or("");
}

}  // namespace bpfvm::cli
