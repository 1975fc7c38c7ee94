// Code size of the AArch64 JIT: compiles each program given (raw .bin, assembly or ELF, as
// isa::load_file reads them; a directory means every .bin in it) with the a64 code generator,
// which runs on any host, and prints bytes of emitted code per BPF instruction:
//   build/release/tests/jit/a64_code_size build/release/bench/programs
// "inline" counts the code of the instructions themselves; "total" adds the entry and exit, the
// out-of-line check and trap paths and the budget-exhaustion paths (cold code).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "isa/load.hpp"
#include "jit/a64/codegen.hpp"

namespace fs = std::filesystem;
using namespace bpfvm;

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const auto& entry : fs::directory_iterator(p))
        if (entry.path().extension() == ".bin") files.push_back(entry.path());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) {
    fmt::print(stderr, "usage: a64_code_size FILE|DIR...\n");
    return 64;
  }
  std::sort(files.begin(), files.end());
  fmt::print("{:<18} {:>6} {:>9} {:>9} {:>9} {:>9}\n", "program", "insns", "inline B", "B/insn", "total B",
             "B/insn");
  double log_inline = 0, log_total = 0;
  std::size_t insns = 0, inline_bytes = 0, total_bytes = 0;
  int failures = 0;
  for (const fs::path& file : files) {
    auto program = isa::load_file(file.string());
    if (!program) {
      fmt::print(stderr, "{}\n", program.error().to_string());
      ++failures;
      continue;
    }
    auto code = jit::a64::generate(*program, vm::HelperRegistry::conformance(), {}, {});
    if (!code) {
      fmt::print(stderr, "{}: {}\n", file.string(), code.error().to_string());
      ++failures;
      continue;
    }
    const double n = static_cast<double>(code->insn_count);
    const double in = static_cast<double>(code->body_bytes) / n;
    const double all = static_cast<double>(code->code.size()) / n;
    fmt::print("{:<18} {:>6} {:>9} {:>9.2f} {:>9} {:>9.2f}\n", file.stem().string(), code->insn_count,
               code->body_bytes, in, code->code.size(), all);
    log_inline += std::log(in);
    log_total += std::log(all);
    insns += code->insn_count;
    inline_bytes += code->body_bytes;
    total_bytes += code->code.size();
  }
  const auto count = static_cast<double>(files.size() - static_cast<std::size_t>(failures));
  if (count > 0) {
    fmt::print("{:<18} {:>6} {:>9} {:>9.2f} {:>9} {:>9.2f}\n", "all", insns, inline_bytes,
               static_cast<double>(inline_bytes) / static_cast<double>(insns), total_bytes,
               static_cast<double>(total_bytes) / static_cast<double>(insns));
    fmt::print("{:<18} {:>6} {:>9} {:>9.2f} {:>9} {:>9.2f}\n", "geomean", "", "",
               std::exp(log_inline / count), "", std::exp(log_total / count));
  }
  return failures == 0 ? 0 : 1;
}
