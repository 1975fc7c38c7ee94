#include "isa/error.hpp"

namespace bpfvm {

std::string Error::to_string() const {
  std::string out;
  if (!file.empty()) out += file;
  if (line) out += (out.empty() ? "line " : ":") + std::to_string(*line);
  if (!section.empty()) out += (out.empty() ? "" : ": ") + std::string("section ") + section;
  if (insn) out += (out.empty() ? "" : ": ") + std::string("instruction ") + std::to_string(*insn);
  if (!out.empty()) out += ": ";
  return out + message;
}

}  // namespace bpfvm
