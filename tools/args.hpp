// A small command-line parser shared by the CLI's subcommands: `--name value`, `--name=value`,
// boolean `--flag`, and positionals. Errors are values so every subcommand reports them the
// same way (exit code 64).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "isa/error.hpp"

namespace bpfvm::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_rejected = 1;
inline constexpr int exit_internal = 2;
inline constexpr int exit_usage = 64;

struct OptionSpec {
  std::set<std::string> with_value;  // e.g. "--section"
  std::set<std::string> flags;       // e.g. "--json"
  std::set<std::string> repeatable;  // options (with value) that may appear more than once
};

class Args {
 public:
  static Result<Args> parse(const std::vector<std::string>& argv, const OptionSpec& spec);

  bool flag(const std::string& name) const { return flags_.count(name) != 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::vector<std::string> values(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  // A numeric option; an Error names the option when the text is not a number in range.
  Result<std::optional<long long>> number(const std::string& name, long long min, long long max) const;

 private:
  std::set<std::string> flags_;
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

}  // namespace bpfvm::cli
