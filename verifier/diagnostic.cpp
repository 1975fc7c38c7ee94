#include <fmt/format.h>

#include "verifier/verifier.hpp"

namespace bpfvm::verifier {

std::string Diagnostic::to_string() const {
  std::string out = fmt::format("instruction {}", insn);
  if (!insn_text.empty()) out += fmt::format(": {}", insn_text);
  out += fmt::format("\n  error [{}]: {}", check, message);
  for (const auto& r : registers) out += fmt::format("\n  {}", r);
  if (!function.empty()) out += fmt::format("\n  in function {}", function);
  if (line) out += fmt::format("\n  at {}:{}:{}: {}", line->file, line->line, line->column, line->source);
  return out;
}

Error Diagnostic::to_error() const {
  Error e(fmt::format("[{}] {}{}", check, message, insn_text.empty() ? "" : fmt::format(" ({})", insn_text)));
  e.insn = insn;
  return e;
}

}  // namespace bpfvm::verifier
