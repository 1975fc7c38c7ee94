// The conformance runner: reads `.data` files, filters them like the upstream runner
// (CPU version, groups, file-name regexes), runs each on an Executor and reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "conformance/data_file.hpp"
#include "isa/error.hpp"

namespace bpfvm::conformance {

// What running one test produced: r0, or an error text (a trap, a rejected program, a plugin
// that exited non-zero: its output).
struct Execution {
  bool ok = false;
  std::uint64_t r0 = 0;
  std::string error;   // compared with a test's expected error
  std::string detail;  // context for a failure report, e.g. "plugin exited with 1"
};

using Executor = std::function<Execution(const DataFile&)>;

// Every group; the upstream runner's default leaves out callx and packet.
inline constexpr GroupSet all_groups = (GroupSet{1} << isa::group_count) - 1;

// A group name as the upstream runner reads it: base64, divmul64 and atomic64 include their
// 32-bit group.
Result<GroupSet> parse_group(std::string_view name);
// "v1".."v4".
Result<int> parse_cpu_version(std::string_view text);

struct Options {
  int cpu_version = 4;
  GroupSet groups = all_groups;
  std::optional<std::string> include_regex;  // searched in the file name
  std::optional<std::string> exclude_regex;
};

enum class Verdict { pass, fail, skip };

struct TestResult {
  std::string name;
  Verdict verdict = Verdict::fail;
  std::string reason;  // why it failed or was skipped
};

struct Summary {
  int passed = 0, failed = 0, skipped = 0;
  std::vector<TestResult> results;
};

// The `.data` files of a directory (sorted by name), or the file itself.
Result<std::vector<std::string>> collect_tests(const std::string& path);

// Runs one test file: the verdict and why.
TestResult run_test(const std::string& path, const Executor& executor, const Options& options);

// Runs every file, printing "PASS name", "FAIL name: reason", "SKIP name: reason" per test to
// `out` (when not null) and "N passed, N failed, N skipped" at the end. Regexes that do not
// compile are an Error.
Result<Summary> run_tests(const std::vector<std::string>& paths, const Executor& executor,
                          const Options& options, std::FILE* out);

// The data directory: the source tree's ../shared/bpf_conformance/tests when present, else
// $BPF_CONFORMANCE_DIR; empty when neither exists.
std::string default_data_dir();

// Runs tests out of process through a plugin speaking the upstream runner's protocol:
// `plugin [mem-hex] [options...]`, program hex on stdin, r0 in hex on stdout. A plugin that
// runs longer than `timeout` is killed and the test fails. Sets SIGPIPE to ignored in this
// process (a plugin may exit without reading its input).
Executor plugin_executor(std::string plugin, std::vector<std::string> options,
                         std::chrono::milliseconds timeout);

// The upstream runner's hex form of bytes: two lowercase hex digits and two spaces each.
std::string hex_encode(std::span<const std::uint8_t> bytes);
// Its inverse: whitespace-separated hex bytes.
Result<std::vector<std::uint8_t>> hex_decode(std::string_view text);

// Splits plugin options as the upstream runner does: on single spaces, empty pieces dropped.
std::vector<std::string> split_plugin_options(std::string_view options);

}  // namespace bpfvm::conformance
