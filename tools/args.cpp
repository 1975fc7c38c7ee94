#include "tools/args.hpp"

#include <cerrno>
#include <cstdlib>

namespace bpfvm::cli {

Result<Args> Args::parse(const std::vector<std::string>& argv, const OptionSpec& spec) {
  Args args;
  bool only_positionals = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const auto& a = argv[i];
    if (only_positionals || a.size() < 2 || a[0] != '-' || (a[1] != '-' && a.size() != 2)) {
      args.positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    auto eq = a.find('=');
    auto name = a.substr(0, eq);
    if (spec.flags.count(name)) {
      if (eq != std::string::npos) return Error{"option " + name + " takes no value"};
      args.flags_.insert(name);
    } else if (spec.with_value.count(name)) {
      std::string v;
      if (eq != std::string::npos) {
        v = a.substr(eq + 1);
      } else if (i + 1 < argv.size()) {
        v = argv[++i];
      } else {
        return Error{"option " + name + " needs a value"};
      }
      if (args.values_.count(name) && !spec.repeatable.count(name))
        return Error{"option " + name + " is given more than once"};
      args.values_.emplace(name, v);
    } else {
      return Error{"unknown option " + name};
    }
  }
  return args;
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Args::values(const std::string& name) const {
  std::vector<std::string> out;
  for (auto [it, end] = values_.equal_range(name); it != end; ++it) out.push_back(it->second);
  return out;
}

Result<std::optional<long long>> Args::number(const std::string& name, long long min, long long max) const {
  auto v = value(name);
  if (!v) return std::optional<long long>{};
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 0);
  if (v->empty() || *end != '\0' || errno == ERANGE || n < min || n > max)
    return Error{"option " + name + ": '" + *v + "' is not a number from " + std::to_string(min) + " to " +
                 std::to_string(max)};
  return std::optional<long long>{n};
}

}  // namespace bpfvm::cli
