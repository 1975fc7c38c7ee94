// The input memory of the commands that run a program (`bpfvm run`, `bpfvm bench`), spelled the
// same in both: `--mem FILE` (hex bytes "00 01 ff" in a file) or `--mem-hex HEX`.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "conformance/runner.hpp"
#include "isa/error.hpp"
#include "tools/args.hpp"

namespace bpfvm::cli {

inline void add_memory_options(OptionSpec& spec) {
  spec.with_value.insert("--mem");
  spec.with_value.insert("--mem-hex");
}

// The bytes --mem or --mem-hex give, or nothing when neither is there. Errors name the file
// or the option.
inline Result<std::optional<std::vector<std::uint8_t>>> memory_option(const Args& args) {
  if (args.value("--mem") && args.value("--mem-hex")) return Error("--mem and --mem-hex exclude each other");
  if (auto path = args.value("--mem")) {
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      Error e{"cannot open the file"};
      e.file = *path;
      return e;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto bytes = conformance::hex_decode(text.str());
    if (!bytes) return Error{*path + ": " + bytes.error().message};
    return std::optional<std::vector<std::uint8_t>>(std::move(*bytes));
  }
  if (auto hex = args.value("--mem-hex")) {
    auto bytes = conformance::hex_decode(*hex);
    if (!bytes) return Error{"--mem-hex: " + bytes.error().message};
    return std::optional<std::vector<std::uint8_t>>(std::move(*bytes));
  }
  return std::optional<std::vector<std::uint8_t>>();
}

}  // namespace bpfvm::cli
