// The runner's filters and verdicts with executors whose answers the test chooses, and the
// out-of-process mode against a stand-in plugin that records what it was sent.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "conformance/runner.hpp"

using namespace bpfvm;
using namespace bpfvm::conformance;
namespace fs = std::filesystem;

namespace {

// A fresh directory with the given .data files.
fs::path make_dir(const std::string& tag, const std::vector<std::pair<std::string, std::string>>& files) {
  fs::path dir = fs::temp_directory_path() / ("bpfvm_conformance_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (auto& [name, text] : files) std::ofstream(dir / name) << text;
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// r0 = 7: mov64 r0, 7 (0xb7) ; exit.
const char* seven = "-- raw\n0x00000007000000b7\n0x95\n-- result\n7\n";
// sdiv64 r0, 1 (v4, divmul64) ; exit.
const char* v4_test = "-- raw\n0x0000000100010037\n0x95\n-- result\n0\n";
// callx r2 (0x8d, callx group); exit.
const char* callx_test = "-- raw\n0x000000000000028d\n0x95\n-- result\n0\n";

Executor answer(std::uint64_t r0) {
  return [r0](const DataFile&) { return Execution{true, r0, "", ""}; };
}

}  // namespace

TEST_CASE("groups and CPU versions parse as the upstream runner reads them") {
  CHECK(*parse_group("base64") == (group_bit(isa::Group::base64) | group_bit(isa::Group::base32)));
  CHECK(*parse_group("atomic64") == (group_bit(isa::Group::atomic64) | group_bit(isa::Group::atomic32)));
  CHECK(*parse_group("divmul64") == (group_bit(isa::Group::divmul64) | group_bit(isa::Group::divmul32)));
  CHECK(*parse_group("callx") == group_bit(isa::Group::callx));
  CHECK_FALSE(parse_group("nope").ok());
  CHECK(*parse_cpu_version("v3") == 3);
  CHECK_FALSE(parse_cpu_version("v5").ok());
  CHECK_FALSE(parse_cpu_version("4").ok());
}

TEST_CASE("verdicts, filters and the summary line") {
  auto dir = make_dir("filters", {{"a-seven.data", seven},
                                  {"b-v4.data", v4_test},
                                  {"c-callx.data", callx_test},
                                  {"d-unknown.data", "-- asm\nexit\n-- what\n"},
                                  {"notdata.txt", seven}});
  auto files = collect_tests(dir.string());
  REQUIRE(files.ok());
  REQUIRE(files->size() == 4);  // sorted, only .data
  CHECK(fs::path((*files)[0]).filename() == "a-seven.data");

  Options all;
  auto s = run_tests(*files, answer(7), all, nullptr);
  REQUIRE(s.ok());
  CHECK(s->passed == 1);  // only a-seven expects 7
  CHECK(s->failed == 2);
  CHECK(s->skipped == 1);
  CHECK(s->results[1].reason == "r0 = 0x7, expected 0x0");
  CHECK(s->results[3].reason.find("unknown section header") != std::string::npos);

  Options v3;
  v3.cpu_version = 3;
  s = run_tests(*files, answer(7), v3, nullptr);
  CHECK(s->results[0].verdict == Verdict::pass);
  CHECK(s->results[1].verdict == Verdict::skip);
  CHECK(s->results[1].reason == "needs CPU v4");

  Options no_callx;
  no_callx.groups = all_groups & ~*parse_group("callx");
  s = run_tests(*files, answer(0), no_callx, nullptr);
  CHECK(s->results[2].verdict == Verdict::skip);
  CHECK(s->results[2].reason == "needs group callx");

  Options no_divmul;
  no_divmul.groups = all_groups & ~*parse_group("divmul64");
  s = run_tests(*files, answer(0), no_divmul, nullptr);
  CHECK(s->results[1].reason == "needs group divmul64");

  Options regex;
  regex.include_regex = "seven|callx";
  regex.exclude_regex = "^c-";
  s = run_tests(*files, answer(7), regex, nullptr);
  CHECK(s->passed == 1);
  CHECK(s->skipped == 3);
  CHECK(s->results[1].reason == "not matched by the include regex");
  CHECK(s->results[2].reason == "matched by the exclude regex");

  Options bad;
  bad.include_regex = "(";
  CHECK_FALSE(run_tests(*files, answer(7), bad, nullptr).ok());

  // The printed report: one line per test, then the summary alone on the last line.
  auto out_path = dir / "out.txt";
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  REQUIRE(out);
  run_tests(*files, answer(7), all, out);
  std::fclose(out);
  CHECK(slurp(out_path) ==
        "PASS a-seven.data\n"
        "FAIL b-v4.data: r0 = 0x7, expected 0x0\n"
        "FAIL c-callx.data: r0 = 0x7, expected 0x0\n"
        "SKIP d-unknown.data: unknown section header '-- what' at line 3\n"
        "1 passed, 2 failed, 1 skipped\n");
  fs::remove_all(dir);
}

TEST_CASE("expected errors") {
  auto dir = make_dir("errors", {{"e.data", "-- raw\n0x95\n-- error\nboom\n"}});
  auto files = collect_tests(dir.string());
  auto fail_with = [](std::string text) {
    return [text](const DataFile&) { return Execution{false, 0, text, ""}; };
  };
  CHECK(run_tests(*files, fail_with("boom"), {}, nullptr)->passed == 1);
  CHECK(run_tests(*files, fail_with("bang"), {}, nullptr)->failed == 1);
  CHECK(run_tests(*files, answer(0), {}, nullptr)->failed == 1);
  fs::remove_all(dir);
}

TEST_CASE("hex encoding is the upstream runner's") {
  std::vector<std::uint8_t> bytes{0x00, 0x0a, 0xff};
  CHECK(hex_encode(bytes) == "00  0a  ff  ");
  CHECK(*hex_decode("00  0a  ff  \n") == bytes);
  CHECK(*hex_decode("") == std::vector<std::uint8_t>{});
  CHECK_FALSE(hex_decode("0g").ok());
  CHECK_FALSE(hex_decode("100").ok());
  CHECK(split_plugin_options("--engine interp") == std::vector<std::string>{"--engine", "interp"});
  CHECK(split_plugin_options("") == std::vector<std::string>{});
}

TEST_CASE("out of process: the plugin gets the upstream runner's arguments and stdin") {
  auto dir =
      make_dir("plugin", {{"mem.data", "-- raw\n0x00000007000000b7\n0x95\n-- mem\n01 ab\n-- result\n0x2a\n"},
                          {"nomem.data", seven}});
  // A stand-in plugin: records its arguments (one per line) and its stdin, answers 0x2a.
  auto script = dir / "plugin.sh";
  std::ofstream(script) << "#!/bin/sh\n"
                           "d=$(dirname \"$0\")\n"
                           "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > \"$d/args.$$\"\n"
                           "cat > \"$d/stdin.$$\"\n"
                           "mv \"$d/args.$$\" \"$d/args\"; mv \"$d/stdin.$$\" \"$d/stdin\"\n"
                           "echo 0x2a\n";
  fs::permissions(script, fs::perms::owner_all);
  auto exec =
      plugin_executor(script.string(), split_plugin_options("--engine interp"), std::chrono::seconds(20));

  auto r = run_test((dir / "mem.data").string(), exec, {});
  CHECK(r.verdict == Verdict::pass);
  CHECK(slurp(dir / "args") == "[01  ab  ]\n[--engine]\n[interp]\n");
  CHECK(slurp(dir / "stdin") == "b7  00  00  00  07  00  00  00  95  00  00  00  00  00  00  00  \n");

  r = run_test((dir / "nomem.data").string(), exec, {});
  CHECK(r.verdict == Verdict::fail);  // 0x2a is not 7
  CHECK(slurp(dir / "args") == "[--engine]\n[interp]\n");
  fs::remove_all(dir);
}

TEST_CASE("out of process: failures, bad output and timeouts") {
  auto dir = make_dir("plugin_fail", {{"t.data", seven}});
  auto run_script = [&](const std::string& body,
                        std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto script = dir / "p.sh";
    std::ofstream(script) << "#!/bin/sh\ncat >/dev/null\n" << body;
    fs::permissions(script, fs::perms::owner_all);
    return run_test((dir / "t.data").string(), plugin_executor(script.string(), {}, timeout), {});
  };
  auto r = run_script("echo 'trap: division' >&2\nexit 3\n");
  CHECK(r.verdict == Verdict::fail);
  CHECK(r.reason == "plugin exited with 3: trap: division");
  r = run_script("echo '7'\n");  // hex without 0x
  CHECK(r.verdict == Verdict::pass);
  r = run_script("echo 'xyz'\n");
  CHECK(r.reason == "plugin printed no hex number: 'xyz'");
  r = run_script("sleep 5\necho 7\n", std::chrono::milliseconds(200));
  CHECK(r.reason == "timed out after 200 ms");
  auto missing = run_test((dir / "t.data").string(),
                          plugin_executor((dir / "none").string(), {}, std::chrono::seconds(5)), {});
  CHECK(missing.verdict == Verdict::fail);
  fs::remove_all(dir);
}
