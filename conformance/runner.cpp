#include "conformance/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "conformance/name_filter.hpp"

extern char** environ;

namespace bpfvm::conformance {

Result<GroupSet> parse_group(std::string_view name) {
  auto g = isa::group_from_string(name);
  if (!g) {
    std::string known;
    for (int i = 0; i < isa::group_count; ++i)
      known += (i ? ", " : "") + std::string(isa::to_string(static_cast<isa::Group>(i)));
    return Error{"unknown group '" + std::string(name) + "' (groups: " + known + ")"};
  }
  GroupSet set = group_bit(*g);
  if (*g == isa::Group::base64) set |= group_bit(isa::Group::base32);
  if (*g == isa::Group::divmul64) set |= group_bit(isa::Group::divmul32);
  if (*g == isa::Group::atomic64) set |= group_bit(isa::Group::atomic32);
  return set;
}

Result<int> parse_cpu_version(std::string_view text) {
  if (text.size() == 2 && text[0] == 'v' && text[1] >= '1' && text[1] <= '4') return text[1] - '0';
  return Error{"unknown CPU version '" + std::string(text) + "' (v1, v2, v3 or v4)"};
}

Result<std::vector<std::string>> collect_tests(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return std::vector<std::string>{path};
  if (!fs::is_directory(path, ec)) {
    Error e{"no such file or directory"};
    e.file = path;
    return e;
  }
  std::vector<std::string> files;
  for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->path().extension() == ".data") files.push_back(it->path().string());
  if (ec) {
    Error e{"cannot read the directory: " + ec.message()};
    e.file = path;
    return e;
  }
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

TestResult run_parsed(TestResult r, const DataFile& data, const Executor& executor, const Options& options) {
  if (!data.skip.empty()) {
    r.verdict = Verdict::skip;
    r.reason = data.skip;
    return r;
  }
  auto needs = requirements(data.insns);
  if (needs.cpu_version > options.cpu_version) {
    r.verdict = Verdict::skip;
    r.reason = fmt::format("needs CPU v{}", needs.cpu_version);
    return r;
  }
  if (GroupSet missing = needs.groups & ~options.groups) {
    std::string names;
    for (int i = 0; i < isa::group_count; ++i)
      if (missing & (GroupSet{1} << i))
        names += (names.empty() ? "" : ",") + std::string(isa::to_string(static_cast<isa::Group>(i)));
    r.verdict = Verdict::skip;
    r.reason = "needs group " + names;
    return r;
  }
  Execution e = executor(data);
  if (!e.ok) {
    if (!data.error.empty() && e.error == data.error) {
      r.verdict = Verdict::pass;
    } else {
      r.reason = e.detail.empty() ? e.error : e.detail + ": " + e.error;
      if (!data.error.empty()) r.reason += fmt::format(" (expected error '{}')", data.error);
    }
    return r;
  }
  if (!data.result) {
    r.reason = fmt::format("returned {:#x}, expected error '{}'", e.r0, data.error);
  } else if (e.r0 != *data.result) {
    r.reason = fmt::format("r0 = {:#x}, expected {:#x}", e.r0, *data.result);
  } else {
    r.verdict = Verdict::pass;
  }
  return r;
}

}  // namespace

TestResult run_test(const std::string& path, const Executor& executor, const Options& options) {
  TestResult r;
  r.name = base_name(path);
  auto data = read_data_file(path);
  if (!data) {
    r.reason = data.error().to_string();
    return r;
  }
  return run_parsed(std::move(r), *data, executor, options);
}

Result<Summary> run_tests(const std::vector<std::string>& paths, const Executor& executor,
                          const Options& options, std::FILE* out) {
  auto filter = NameFilter::make(options.include_regex, options.exclude_regex);
  if (!filter) return filter.error();
  Summary summary;
  for (const auto& path : paths) {
    TestResult r;
    std::string name = base_name(path);
    if (auto why = filter->skip_reason(name)) {
      r = {name, Verdict::skip, *why};
    } else {
      r = run_test(path, executor, options);
    }
    switch (r.verdict) {
      case Verdict::pass: ++summary.passed; break;
      case Verdict::fail: ++summary.failed; break;
      case Verdict::skip: ++summary.skipped; break;
    }
    if (out) {
      static constexpr const char* words[] = {"PASS", "FAIL", "SKIP"};
      fmt::print(out, "{} {}{}{}\n", words[static_cast<int>(r.verdict)], r.name, r.reason.empty() ? "" : ": ",
                 r.reason);
    }
    summary.results.push_back(std::move(r));
  }
  if (out)
    fmt::print(out, "{} passed, {} failed, {} skipped\n", summary.passed, summary.failed, summary.skipped);
  return summary;
}

std::string default_data_dir() {
  std::error_code ec;
#ifdef BPFVM_CONFORMANCE_DIR
  if (std::filesystem::is_directory(BPFVM_CONFORMANCE_DIR, ec)) return BPFVM_CONFORMANCE_DIR;
#endif
  if (const char* env = std::getenv("BPF_CONFORMANCE_DIR");
      env && *env && std::filesystem::is_directory(env, ec))
    return env;
  return {};
}

std::string hex_encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 4);
  for (auto b : bytes) out += fmt::format("{:02x}  ", b);
  return out;
}

Result<std::vector<std::uint8_t>> hex_decode(std::string_view text) {
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view t = text.substr(start, i - start);
    unsigned v = 0;
    bool good = t.size() <= 2;
    for (char c : t) {
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                          : -1;
      if (d < 0) good = false;
      v = v * 16 + static_cast<unsigned>(d);
    }
    if (!good) return Error{fmt::format("'{}' at offset {} is not a hex byte", t, start)};
    out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

std::vector<std::string> split_plugin_options(std::string_view options) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= options.size()) {
    auto sp = options.find(' ', pos);
    if (sp == std::string_view::npos) sp = options.size();
    if (sp > pos) out.emplace_back(options.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void close(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

Execution run_process(const std::string& program, const std::vector<std::string>& args,
                      const std::string& input, std::chrono::milliseconds timeout) {
  Execution e;
  Pipe in, out, err;
  if (::pipe2(in.fd, O_CLOEXEC) || ::pipe2(out.fd, O_CLOEXEC) || ::pipe2(err.fd, O_CLOEXEC)) {
    e.error = std::string("pipe: ") + std::strerror(errno);
    return e;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The runner ignores SIGPIPE (a plugin may exit without reading its stdin); the plugin gets
  // the default back.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    e.error = fmt::format("cannot start {}: {}", program, std::strerror(rc));
    return e;
  }
  in.close(0);
  out.close(1);
  err.close(1);
  // Feed stdin and drain stdout/stderr together so that no pipe fills up and blocks the plugin.
  ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
  std::string stdout_text, stderr_text;
  std::size_t written = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3] = {{in.fd[1], POLLOUT, 0}, {out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
    int n = ::poll(fds, 3, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t w = ::write(in.fd[1], input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) written = input.size();  // the plugin closed its stdin
      if (written == input.size()) in.close(1);
    }
    for (int i = 1; i < 3; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 1 ? stdout_text : stderr_text).append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        (i == 1 ? out : err).close(0);
      }
    }
  }
  in.close(1);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto strip = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  };
  if (timed_out) {
    e.error = fmt::format("timed out after {} ms", timeout.count());
    return e;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string text = strip(stdout_text).empty() ? strip(stderr_text) : strip(stdout_text);
    // An expected error text is compared with the plugin's own output, as upstream does.
    e.error = text;
    e.detail = WIFEXITED(status) ? fmt::format("plugin exited with {}", WEXITSTATUS(status))
                                 : fmt::format("plugin killed by signal {}", WTERMSIG(status));
    return e;
  }
  // Parsed as upstream does (strtoull base 16: leading blanks and 0x allowed, stops at the
  // first non-hex character), but an output without any hex digit is an error.
  std::string text = strip(stdout_text);
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(begin, &end, 16);
  if (end == begin || errno == ERANGE) {
    e.error = fmt::format("plugin printed no hex number: '{}'", text);
    return e;
  }
  e.ok = true;
  e.r0 = v;
  return e;
}

}  // namespace

Executor plugin_executor(std::string plugin, std::vector<std::string> options,
                         std::chrono::milliseconds timeout) {
  ::signal(SIGPIPE, SIG_IGN);
  return [plugin = std::move(plugin), options = std::move(options), timeout](const DataFile& data) {
    std::vector<std::string> args;
    if (!data.memory.empty()) args.push_back(hex_encode(data.memory));
    args.insert(args.end(), options.begin(), options.end());
    std::vector<std::uint8_t> bytes(data.insns.size() * sizeof(isa::Insn));
    if (!bytes.empty()) std::memcpy(bytes.data(), data.insns.data(), bytes.size());
    return run_process(plugin, args, hex_encode(bytes) + "\n", timeout);
  };
}

}  // namespace bpfvm::conformance
