#include "conformance/name_filter.hpp"

#include <regex>

namespace bpfvm::conformance {

struct NameFilter::Regexes {
  std::optional<std::regex> include, exclude;
};

NameFilter::NameFilter(std::unique_ptr<Regexes> r) : regexes_(std::move(r)) {}
NameFilter::~NameFilter() = default;
NameFilter::NameFilter(NameFilter&&) noexcept = default;
NameFilter& NameFilter::operator=(NameFilter&&) noexcept = default;

Result<NameFilter> NameFilter::make(const std::optional<std::string>& include,
                                    const std::optional<std::string>& exclude) {
  auto r = std::make_unique<Regexes>();
  for (auto [text, out] : {std::pair{&include, &r->include}, std::pair{&exclude, &r->exclude}}) {
    if (!*text) continue;
    try {
      out->emplace(**text);
    } catch (const std::regex_error& e) {
      return Error{"bad regex '" + **text + "': " + e.what()};
    }
  }
  return NameFilter(std::move(r));
}

std::optional<std::string> NameFilter::skip_reason(const std::string& name) const {
  if (regexes_->include && !std::regex_search(name, *regexes_->include))
    return "not matched by the include regex";
  if (regexes_->exclude && std::regex_search(name, *regexes_->exclude)) return "matched by the exclude regex";
  return std::nullopt;
}

}  // namespace bpfvm::conformance
