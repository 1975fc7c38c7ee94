#pragma once

#include <string>
#include <vector>

namespace bpfvm::cli {

#define BPFVM_COMMAND(name, fn, summary) int fn(const std::vector<std::string>& args);
#include "tools/commands.def"
#undef BPFVM_COMMAND

}  // namespace bpfvm::cli
