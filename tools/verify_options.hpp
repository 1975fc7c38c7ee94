// The options of the commands that verify a program (`bpfvm verify`, `bpfvm disasm --jit
// --verified`), spelled the same in both: `--type T` and `--mem-size N`.
#pragma once

#include <optional>
#include <string>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "tools/args.hpp"
#include "verifier/environment.hpp"

namespace bpfvm::cli {

inline void add_verify_options(OptionSpec& spec) {
  spec.with_value.insert("--type");
  spec.with_value.insert("--mem-size");
}

// The program type an ELF section name implies (raw when none).
inline std::string type_for_section(const std::string& section) {
  if (section.rfind("xdp", 0) == 0) return "xdp";
  if (section.rfind("socket", 0) == 0) return "socket_filter";
  if (section.rfind("tc", 0) == 0 || section.rfind("classifier", 0) == 0) return "sched_cls";
  return "raw";
}

// The environment to verify `program` for: --type (default: from its ELF section, else raw) and
// --mem-size (raw: the input's size; default unknown, r2 bounds it). Errors are usage errors.
inline Result<verifier::Environment> verify_environment(const Args& args, const isa::Program& program) {
  auto mem_size = args.number("--mem-size", 0, 1LL << 32);
  if (!mem_size) return mem_size.error();
  std::optional<std::uint64_t> size;
  if (*mem_size) size = static_cast<std::uint64_t>(**mem_size);
  return verifier::environment_by_name(args.value("--type").value_or(type_for_section(program.section)),
                                       size);
}

}  // namespace bpfvm::cli
