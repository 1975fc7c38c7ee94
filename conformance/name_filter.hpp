// The runner's file-name filters (ECMAScript regexes searched in the file name, as upstream).
// Their own file: g++ 12 reports false maybe-uninitialized warnings inside <regex> under the
// sanitizers, and only this file needs that warning off.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "isa/error.hpp"

namespace bpfvm::conformance {

class NameFilter {
 public:
  // A regex that does not compile is an Error naming it.
  static Result<NameFilter> make(const std::optional<std::string>& include,
                                 const std::optional<std::string>& exclude);
  ~NameFilter();
  NameFilter(NameFilter&&) noexcept;
  NameFilter& operator=(NameFilter&&) noexcept;

  // Why `name` is filtered out, or nothing when it runs.
  std::optional<std::string> skip_reason(const std::string& name) const;

 private:
  struct Regexes;
  explicit NameFilter(std::unique_ptr<Regexes> r);
  std::unique_ptr<Regexes> regexes_;
};

}  // namespace bpfvm::conformance
