// bpfvm_bench: runs every benchmark program natively (scalar and vectorised builds of the same C
// source) and on every engine, checks that each engine's r0 and memory equal the native run's,
// and reports ns per run, each engine's ratio to native-scalar and the geometric mean of ratios.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "bench/engines.hpp"
#include "isa/program.hpp"
#include "isa/validate.hpp"
#include "tools/args.hpp"

namespace {

using bpfvm::Error;
using bpfvm::Result;
using bpfvm::bench::Engine;
using bpfvm::bench::EngineRun;
using bpfvm::bench::Loaded;
namespace cli = bpfvm::cli;

using NativeFn = std::uint64_t (*)(void*, std::uint64_t);

enum class Fill { random, packets };

struct ProgramSpec {
  std::string_view name;
  std::size_t input_bytes;
  Fill fill;
  NativeFn native_scalar;
  NativeFn native_vector;
};

}  // namespace

#define BPFVM_BENCH_PROGRAM(name, bytes, fill)                               \
  extern "C" std::uint64_t bench_native_scalar_##name(void*, std::uint64_t); \
  extern "C" std::uint64_t bench_native_vector_##name(void*, std::uint64_t);
#include "bench_programs.def"
#undef BPFVM_BENCH_PROGRAM

namespace {

constexpr ProgramSpec programs[] = {
#define BPFVM_BENCH_PROGRAM(name, bytes, fill) \
  {#name, bytes, Fill::fill, bench_native_scalar_##name, bench_native_vector_##name},
#include "bench_programs.def"
#undef BPFVM_BENCH_PROGRAM
};

// ---- Inputs -----------------------------------------------------------------------------------

// xorshift64* (Marsaglia's xorshift with Vigna's multiplier): a fixed, documented stream so any
// runtime given the same seed gets the same bytes.
class Xorshift64Star {
 public:
  explicit Xorshift64Star(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1DULL;
  }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() >> 32) % n; }

 private:
  std::uint64_t state_;
};

constexpr std::uint64_t input_seed = 0x9E3779B97F4A7C15ULL;

void fill_random(std::span<std::uint8_t> out) {
  Xorshift64Star rng(input_seed);
  for (std::size_t i = 0; i < out.size(); i += 8) {
    std::uint64_t v = rng.next();
    for (std::size_t k = 0; k < 8 && i + k < out.size(); ++k)
      out[i + k] = static_cast<std::uint8_t>(v >> (8 * k));
  }
}

void put_be16(std::vector<std::uint8_t>& f, std::size_t at, std::uint16_t v) {
  f[at] = static_cast<std::uint8_t>(v >> 8);
  f[at + 1] = static_cast<std::uint8_t>(v);
}

// One synthetic Ethernet frame: mostly IPv4 (some behind an 802.1Q tag, some with options) over
// TCP, UDP or ICMP, plus some IPv6 and ARP frames the parser skips, and a few truncated frames.
std::vector<std::uint8_t> make_frame(Xorshift64Star& rng) {
  std::uint32_t kind = rng.below(100);
  bool vlan = kind >= 75 && kind < 85;
  std::uint16_t ethertype = kind < 85 ? 0x0800 : kind < 95 ? 0x86dd : 0x0806;
  std::uint32_t ihl = rng.below(4) == 0 ? 6 : 5;
  std::uint32_t proto_pick = rng.below(10);
  std::uint8_t proto = proto_pick < 6 ? 6 : proto_pick < 9 ? 17 : 1;
  std::size_t l4 = proto == 6 ? 20 : 8;
  std::size_t payload = rng.below(96);
  std::size_t l2 = 14 + (vlan ? 4 : 0);
  std::size_t ip_len = ihl * 4 + l4 + payload;
  std::vector<std::uint8_t> f(l2 + ip_len);
  for (auto& b : f) b = static_cast<std::uint8_t>(rng.next());
  if (vlan) {
    put_be16(f, 12, 0x8100);
    put_be16(f, 16, ethertype);
  } else {
    put_be16(f, 12, ethertype);
  }
  if (ethertype == 0x0800) {
    f[l2] = static_cast<std::uint8_t>(0x40 | ihl);
    put_be16(f, l2 + 2, static_cast<std::uint16_t>(ip_len));
    f[l2 + 9] = proto;
    if (proto == 6) f[l2 + ihl * 4 + 13] = rng.below(4) == 0 ? 0x02 : 0x10;  // SYN or ACK
  }
  if (rng.below(50) == 0) f.resize(l2 + 10);  // truncated inside the IP header
  return f;
}

// Records of [u16 little-endian frame length][frame], each padded to a multiple of 4 bytes so
// the IP header after a 14-byte Ethernet header is 4-byte aligned, ended by a zero length.
void fill_packets(std::span<std::uint8_t> out) {
  std::fill(out.begin(), out.end(), 0);
  Xorshift64Star rng(input_seed);
  std::size_t off = 0;
  for (;;) {
    auto frame = make_frame(rng);
    std::size_t record = (2 + frame.size() + 3) & ~std::size_t{3};
    if (off + record + 2 > out.size()) break;
    out[off] = static_cast<std::uint8_t>(frame.size());
    out[off + 1] = static_cast<std::uint8_t>(frame.size() >> 8);
    std::copy(frame.begin(), frame.end(), out.begin() + static_cast<std::ptrdiff_t>(off + 2));
    off += record;
  }
}

std::vector<std::uint8_t> make_input(const ProgramSpec& p) {
  // 8-byte aligned storage: programs read the input as arrays of u16/u32/u64.
  std::vector<std::uint8_t> input(p.input_bytes);
  if (p.fill == Fill::random) fill_random(input);
  if (p.fill == Fill::packets) fill_packets(input);
  return input;
}

// An input buffer whose start is 8-byte aligned whatever the allocator does.
class Memory {
 public:
  explicit Memory(const std::vector<std::uint8_t>& bytes)
      : words_((bytes.size() + 7) / 8), size_(bytes.size()) {
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<std::uint8_t*>(words_.data()));
  }
  std::span<std::uint8_t> span() { return {reinterpret_cast<std::uint8_t*>(words_.data()), size_}; }

 private:
  std::vector<std::uint64_t> words_;
  std::size_t size_;
};

// ---- Timing -----------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> only;  // program names to run; empty: all
  int reps = 11;
  int rounds = 1;
  bool quick = false;
  bool json = false;
  std::string program_dir = BPFVM_BENCH_PROGRAM_DIR;
  std::vector<std::string> engines;  // empty: all
  std::chrono::nanoseconds min_sample{std::chrono::milliseconds(2)};
  // --expect-rejected: the programs the verifier is known to reject; any other rejection, or
  // one of these verifying, fails the run (so the list stays true).
  std::optional<std::vector<std::string>> expect_rejected;
};

// Something timed: a closure doing one run on its own copy of the input.
struct Timed {
  Timed(std::string n, std::function<void()> r) : name(std::move(n)), run(std::move(r)) {}
  std::string name;
  std::function<void()> run;
  std::uint64_t iters = 1;            // runs per sample, so that a sample lasts at least min_sample
  std::vector<double> samples;        // this round's
  std::vector<double> round_medians;  // one per finished round
};

double sample_ns(Timed& t) {
  auto start = Clock::now();
  for (std::uint64_t i = 0; i < t.iters; ++i) t.run();
  auto ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  return ns / static_cast<double>(t.iters);
}

void calibrate(Timed& t, std::chrono::nanoseconds min_sample) {
  t.run();  // warm caches and branch predictors
  for (;;) {
    auto start = Clock::now();
    for (std::uint64_t i = 0; i < t.iters; ++i) t.run();
    if (Clock::now() - start >= min_sample || t.iters >= (1u << 30)) break;
    t.iters *= 2;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Samples every variant in turn, rep after rep, so that noise from the other tenants of this
// machine spreads over all of them instead of landing on whichever ran at a bad moment. With
// several rounds, each round takes its own median and the lowest one is kept: a round that a
// busy neighbour slowed down entirely cannot raise the figure.
void measure(std::vector<Timed>& variants, const Options& o) {
  for (auto& t : variants) calibrate(t, o.min_sample);
  for (int round = 0; round < o.rounds; ++round) {
    for (auto& t : variants) t.samples.clear();
    for (int r = 0; r < o.reps; ++r)
      for (auto& t : variants) t.samples.push_back(sample_ns(t));
    for (auto& t : variants) t.round_medians.push_back(median(t.samples));
  }
}

double reported_ns(const Timed& t) {
  return *std::min_element(t.round_medians.begin(), t.round_medians.end());
}

// ---- Running one program ----------------------------------------------------------------------

struct EngineResult {
  std::string name;
  std::optional<double> ns;  // absent when the engine failed or disagreed
  std::uint64_t executed = 0;
  std::string problem;
  std::string rejected;   // a verified engine the verifier refused the program to (no run)
  bool verified = false;  // a verified engine (NAME/v)
};

struct ProgramResult {
  std::string name;
  std::size_t input_bytes = 0;
  std::size_t bpf_insns = 0;
  std::uint64_t r0 = 0;
  double native_scalar_ns = 0;
  double native_vector_ns = 0;
  std::vector<EngineResult> engines;
};

Result<bpfvm::isa::Program> load_program(const ProgramSpec& p, const Options& o) {
  std::string path = o.program_dir + "/" + std::string(p.name) + ".bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open (build the bpfvm_bench_programs target)"};
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto program = bpfvm::isa::program_from_bytes(bytes, std::string(p.name));
  if (!program) {
    program.error().file = path;
    return program.error();
  }
  if (auto st = bpfvm::isa::validate(*program); !st) {
    Error e = st.error();
    e.file = path;
    return e;
  }
  return program;
}

bool selected(const Engine& e, const Options& o) {
  return o.engines.empty() || std::find(o.engines.begin(), o.engines.end(), e.name) != o.engines.end();
}

Result<ProgramResult> run_program(const ProgramSpec& p, const Options& o) {
  auto program = load_program(p, o);
  if (!program) return program.error();
  ProgramResult res;
  res.name = p.name;
  res.input_bytes = p.input_bytes;
  res.bpf_insns = program->insns.size();
  auto input = make_input(p);

  // The reference: r0 and the memory after a native-scalar run.
  Memory ref_mem(input);
  res.r0 = p.native_scalar(ref_mem.span().data(), ref_mem.span().size());
  std::vector<std::uint8_t> ref_after(ref_mem.span().begin(), ref_mem.span().end());

  Memory vec_mem(input);
  if (std::uint64_t v = p.native_vector(vec_mem.span().data(), vec_mem.span().size()); v != res.r0)
    return Error{
        fmt::format("{}: native builds disagree: scalar r0 {:#x}, vector r0 {:#x}", p.name, res.r0, v)};

  std::vector<Timed> timed;
  timed.emplace_back("native-scalar", [&] { p.native_scalar(ref_mem.span().data(), ref_mem.span().size()); });
  timed.emplace_back("native-vector", [&] { p.native_vector(vec_mem.span().data(), vec_mem.span().size()); });

  std::vector<std::unique_ptr<Loaded>> loaded;
  std::vector<std::unique_ptr<Memory>> mems;
  std::vector<std::size_t> timed_engine;  // index into res.engines of timed[2 + k]
  for (const Engine& e : bpfvm::bench::engines()) {
    if (!selected(e, o)) continue;
    EngineResult er;
    er.name = std::string(e.name);
    er.verified = !e.checked_name.empty();
    if (e.rejection) er.rejected = e.rejection(*program, input.size());
    if (!er.rejected.empty()) {
      res.engines.push_back(std::move(er));
      continue;
    }
    auto l = e.load(*program, input.size());
    if (!l) {
      er.problem = "load failed: " + l.error().to_string();
      res.engines.push_back(std::move(er));
      continue;
    }
    auto mem = std::make_unique<Memory>(input);
    EngineRun first = (*l)->run(mem->span());
    if (!first.trap.empty()) {
      er.problem = "trapped: " + first.trap;
    } else if (first.r0 != res.r0) {
      er.problem = fmt::format("r0 {:#x} differs from native {:#x}", first.r0, res.r0);
    } else if (!std::equal(ref_after.begin(), ref_after.end(), mem->span().begin())) {
      er.problem = "memory after the run differs from native";
    }
    er.executed = first.executed;
    res.engines.push_back(std::move(er));
    if (!res.engines.back().problem.empty()) continue;
    Loaded* run = l->get();
    Memory* m = mem.get();
    timed.emplace_back(std::string(e.name), [run, m] { run->run(m->span()); });
    timed_engine.push_back(res.engines.size() - 1);
    loaded.push_back(std::move(*l));
    mems.push_back(std::move(mem));
  }

  if (o.quick) return res;
  measure(timed, o);
  res.native_scalar_ns = reported_ns(timed[0]);
  res.native_vector_ns = reported_ns(timed[1]);
  for (std::size_t k = 0; k < timed_engine.size(); ++k)
    res.engines[timed_engine[k]].ns = reported_ns(timed[2 + k]);
  return res;
}

// ---- Reports ----------------------------------------------------------------------------------

std::string machine_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  return "unknown CPU";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::vector<std::string> engine_names(const std::vector<ProgramResult>& results) {
  std::vector<std::string> names;
  for (auto& r : results)
    for (auto& e : r.engines)
      if (std::find(names.begin(), names.end(), e.name) == names.end()) names.push_back(e.name);
  return names;
}

const EngineResult* find_engine(const ProgramResult& r, const std::string& name) {
  for (auto& e : r.engines)
    if (e.name == name) return &e;
  return nullptr;
}

std::optional<double> ratio(const ProgramResult& r, const EngineResult& e) {
  if (!e.ns || r.native_scalar_ns <= 0) return std::nullopt;
  return *e.ns / r.native_scalar_ns;
}

std::optional<double> ns_per_insn(const EngineResult& e) {
  if (!e.ns || e.executed == 0) return std::nullopt;
  return *e.ns / static_cast<double>(e.executed);
}

// The geometric mean of an engine's ratios over the programs where it ran and agreed.
std::optional<double> geomean(const std::vector<ProgramResult>& results, const std::string& engine) {
  double log_sum = 0;
  int n = 0;
  for (auto& r : results)
    if (auto* e = find_engine(r, engine))
      if (auto x = ratio(r, *e)) {
        log_sum += std::log(*x);
        ++n;
      }
  if (n == 0) return std::nullopt;
  return std::exp(log_sum / n);
}

// A verified engine over the whole suite: its ratio where the verifier accepted the program,
// the same engine checked where it rejected it (how the suite would run verifying when it can).
std::optional<double> suite_geomean(const std::vector<ProgramResult>& results, const Engine& verified) {
  if (verified.checked_name.empty()) return std::nullopt;
  double log_sum = 0;
  std::size_t n = 0;
  for (auto& r : results) {
    const EngineResult* v = find_engine(r, verified.name);
    const EngineResult* c = find_engine(r, verified.checked_name);
    const EngineResult* used = v && v->rejected.empty() ? v : c;
    if (!used || !v) continue;
    const auto x = ratio(r, *used);
    if (!x) return std::nullopt;  // a failed run: no suite figure
    log_sum += std::log(*x);
    ++n;
  }
  if (n == 0) return std::nullopt;
  return std::exp(log_sum / static_cast<double>(n));
}

// How much faster a verified engine ran than the same engine checked: the geometric mean over
// the programs where both ran of checked ns / verified ns.
std::optional<double> verified_speedup(const std::vector<ProgramResult>& results, const Engine& verified) {
  if (verified.checked_name.empty()) return std::nullopt;
  double log_sum = 0;
  int n = 0;
  for (auto& r : results) {
    const EngineResult* v = find_engine(r, verified.name);
    const EngineResult* c = find_engine(r, verified.checked_name);
    if (v && c && v->ns && c->ns && *v->ns > 0) {
      log_sum += std::log(*c->ns / *v->ns);
      ++n;
    }
  }
  if (n == 0) return std::nullopt;
  return std::exp(log_sum / n);
}

void print_table(const std::vector<ProgramResult>& results) {
  auto names = engine_names(results);
  fmt::print("bpfvm bench: {} ({} cores), {}\n", machine_name(), std::thread::hardware_concurrency(),
             utc_now());
  fmt::print("{:<16} {:>6} {:>12} {:>12}", "program", "insns", "scalar ns", "vector ns");
  for (auto& n : names) fmt::print(" {:>12} {:>7} {:>8}", n + " ns", "ratio", "ns/insn");
  fmt::print("\n");
  for (auto& r : results) {
    fmt::print("{:<16} {:>6} {:>12.0f} {:>12.0f}", r.name, r.bpf_insns, r.native_scalar_ns,
               r.native_vector_ns);
    for (auto& n : names) {
      auto* e = find_engine(r, n);
      if (!e || !e->ns) {
        fmt::print(" {:>12} {:>7} {:>8}", "-", "-", "-");
        continue;
      }
      auto per = ns_per_insn(*e);
      fmt::print(" {:>12.0f} {:>6.2f}x {:>8}", *e->ns, *ratio(r, *e),
                 per ? fmt::format("{:.2f}", *per) : "-");
    }
    fmt::print("\n");
  }
  fmt::print("{:<16} {:>6} {:>12} {:>12}", "geomean", "", "", "");
  for (auto& n : names) {
    auto g = geomean(results, n);
    fmt::print(" {:>12} {:>8} {:>8}", "", g ? fmt::format("{:.2f}x", *g) : "-", "");
  }
  fmt::print("\n");
  std::string speedups;
  for (const Engine& e : bpfvm::bench::engines())
    if (auto x = verified_speedup(results, e)) speedups += fmt::format("  {} {:.2f}x", e.name, *x);
  if (!speedups.empty())
    fmt::print(
        "X/v: verified as raw, proven accesses unchecked; X/vu: the same without the budget (no\n"
        "instruction counted). Over X checked (geomean):{}\n",
        speedups);
  std::string suite;
  for (const Engine& e : bpfvm::bench::engines())
    if (auto x = suite_geomean(results, e)) suite += fmt::format("  {} {:.2f}x", e.name, *x);
  if (!suite.empty())
    fmt::print("Every program, verified where the verifier accepts it, else checked (geomean):{}\n", suite);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", c);
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string json_number(std::optional<double> v) { return v ? fmt::format("{:.3f}", *v) : "null"; }

void print_json(const std::vector<ProgramResult>& results, const Options& o) {
  auto names = engine_names(results);
  fmt::print(
      "{{\n  \"machine\": {},\n  \"cores\": {},\n  \"date\": {},\n  \"reps\": {},\n  \"rounds\": {},\n  "
      "\"programs\": [\n",
      json_string(machine_name()), std::thread::hardware_concurrency(), json_string(utc_now()), o.reps,
      o.rounds);
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    fmt::print(
        "    {{\"name\": {}, \"input_bytes\": {}, \"bpf_insns\": {}, \"r0\": \"{:#x}\", "
        "\"native_scalar_ns\": {}, "
        "\"native_vector_ns\": {}, \"engines\": {{",
        json_string(r.name), r.input_bytes, r.bpf_insns, r.r0, json_number(r.native_scalar_ns),
        json_number(r.native_vector_ns));
    for (std::size_t k = 0; k < r.engines.size(); ++k) {
      auto& e = r.engines[k];
      fmt::print(
          "{}{}: {{\"ns\": {}, \"ratio\": {}, \"executed_insns\": {}, \"ns_per_insn\": {}, \"problem\": {}, "
          "\"rejected\": {}}}",
          k ? ", " : "", json_string(e.name), json_number(e.ns), json_number(ratio(r, e)), e.executed,
          json_number(ns_per_insn(e)), e.problem.empty() ? "null" : json_string(e.problem),
          e.rejected.empty() ? "null" : json_string(e.rejected));
    }
    fmt::print("}}}}{}\n", i + 1 < results.size() ? "," : "");
  }
  fmt::print("  ],\n  \"geomean\": {{");
  for (std::size_t k = 0; k < names.size(); ++k)
    fmt::print("{}{}: {}", k ? ", " : "", json_string(names[k]), json_number(geomean(results, names[k])));
  fmt::print("}},\n  \"verified_speedup\": {{");
  const char* sep = "";
  for (const Engine& e : bpfvm::bench::engines())
    if (auto x = verified_speedup(results, e)) {
      fmt::print("{}{}: {}", sep, json_string(e.name), json_number(x));
      sep = ", ";
    }
  fmt::print("}},\n  \"suite_geomean\": {{");
  sep = "";
  for (const Engine& e : bpfvm::bench::engines())
    if (auto x = suite_geomean(results, e)) {
      fmt::print("{}{}: {}", sep, json_string(e.name), json_number(x));
      sep = ", ";
    }
  fmt::print("}}\n}}\n");
}

constexpr std::string_view usage_text =
    "usage: bpfvm_bench [--only NAME[,NAME...]] [--reps N] [--rounds N] [--engine NAME]...\n"
    "                   [--json] [--quick] [--expect-rejected NAME[,NAME...]] [--programs DIR]\n"
    "                   [--write-inputs DIR] [--list]\n"
    "Runs each benchmark program natively (clang -O2, scalar and vectorised) and on every engine,\n"
    "checks that every engine's r0 and memory equal the native run's, and prints ns per run, the\n"
    "ratio to native-scalar and ns per executed BPF instruction, then the geometric mean of ratios.\n"
    "Each engine runs checked (NAME), verified (NAME/v: verified as raw with the input's size,\n"
    "the accesses the verifier proved left unchecked) and verified without the budget (NAME/vu:\n"
    "no instruction counted). The last lines give each verified form over checked, and over every\n"
    "program: verified where the verifier accepts it, else the same engine checked.\n"
    "  --quick            check agreement only (one run each, no timing): the CI test\n"
    "  --expect-rejected NAME[,NAME]  the programs the verifier rejects: any other rejection, or\n"
    "                     one of these verifying, fails the run\n"
    "  --reps N           timed samples per variant and round, interleaved (default 11)\n"
    "  --rounds N         repeat the sampling N times and report the lowest round median\n"
    "                     (default 1: the median of the reps)\n"
    "  --write-inputs DIR write each program's input as DIR/NAME.mem, for other runtimes\n"
    "exit codes: 0 all engines agree, 1 an engine failed or disagreed, 2 internal error, 64 usage\n";

bool selected(const Options& o, std::string_view name) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
}

int write_inputs(const std::string& dir, const Options& o) {
  for (auto& p : programs) {
    if (!selected(o, p.name)) continue;
    auto input = make_input(p);
    std::string path = dir + "/" + std::string(p.name) + ".mem";
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
    if (!out) {
      fmt::print(stderr, "bpfvm_bench: cannot write {}\n", path);
      return cli::exit_internal;
    }
  }
  return cli::exit_ok;
}

int run(const std::vector<std::string>& argv) {
  cli::OptionSpec spec;
  spec.with_value = {"--only",     "--reps",         "--rounds",         "--engine",
                     "--programs", "--write-inputs", "--expect-rejected"};
  spec.flags = {"--json", "--quick", "--list", "--help"};
  spec.repeatable = {"--engine"};
  auto args = cli::Args::parse(argv, spec);
  if (!args) {
    fmt::print(stderr, "bpfvm_bench: {}\n{}", args.error().message, usage_text);
    return cli::exit_usage;
  }
  if (args->flag("--help")) {
    fmt::print("{}", usage_text);
    return cli::exit_ok;
  }
  if (!args->positionals().empty()) {
    fmt::print(stderr, "bpfvm_bench: unexpected argument '{}'\n{}", args->positionals()[0], usage_text);
    return cli::exit_usage;
  }
  Options o;
  // A comma-separated list of program names.
  auto names_of = [&](const char* flag) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> out;
    const std::string names = *args->value(flag);
    for (std::size_t start = 0; start <= names.size();) {
      auto comma = names.find(',', start);
      if (comma == std::string::npos) comma = names.size();
      auto name = names.substr(start, comma - start);
      if (std::none_of(std::begin(programs), std::end(programs), [&](auto& p) { return p.name == name; })) {
        fmt::print(stderr, "bpfvm_bench: {}: unknown program '{}'\n", flag, name);
        return std::nullopt;
      }
      out.push_back(name);
      start = comma + 1;
    }
    return out;
  };
  if (args->value("--only")) {
    auto only = names_of("--only");
    if (!only) return cli::exit_usage;
    o.only = std::move(*only);
  }
  if (args->value("--expect-rejected")) {
    o.expect_rejected = names_of("--expect-rejected");
    if (!o.expect_rejected) return cli::exit_usage;
  }
  auto reps = args->number("--reps", 1, 1001);
  if (!reps) {
    fmt::print(stderr, "bpfvm_bench: {}\n", reps.error().message);
    return cli::exit_usage;
  }
  if (*reps) o.reps = static_cast<int>(**reps);
  auto rounds = args->number("--rounds", 1, 101);
  if (!rounds) {
    fmt::print(stderr, "bpfvm_bench: {}\n", rounds.error().message);
    return cli::exit_usage;
  }
  if (*rounds) o.rounds = static_cast<int>(**rounds);
  o.quick = args->flag("--quick");
  o.json = args->flag("--json");
  if (auto d = args->value("--programs")) o.program_dir = *d;
  o.engines = args->values("--engine");
  for (auto& name : o.engines) {
    auto& all = bpfvm::bench::engines();
    if (std::none_of(all.begin(), all.end(), [&](const Engine& e) { return e.name == name; })) {
      fmt::print(stderr, "bpfvm_bench: unknown engine '{}'\n", name);
      return cli::exit_usage;
    }
  }
  if (args->flag("--list")) {
    for (auto& p : programs) fmt::print("{}\n", p.name);
    for (auto& e : bpfvm::bench::engines()) fmt::print("engine {}\n", e.name);
    return cli::exit_ok;
  }
  if (auto dir = args->value("--write-inputs")) return write_inputs(*dir, o);

  std::vector<ProgramResult> results;
  bool failed = false;
  for (auto& p : programs) {
    if (!selected(o, p.name)) continue;
    if (!o.json) fmt::print(stderr, "{} ...\n", p.name);
    auto r = run_program(p, o);
    if (!r) {
      fmt::print(stderr, "bpfvm_bench: {}\n", r.error().to_string());
      return cli::exit_internal;
    }
    for (auto& e : r->engines) {
      if (!e.rejected.empty())
        fmt::print(stderr, "bpfvm_bench: NOT VERIFIED: {} on {}: {}\n", p.name, e.name, e.rejected);
      if (o.expect_rejected && e.verified) {
        const bool expected = std::find(o.expect_rejected->begin(), o.expect_rejected->end(), p.name) !=
                              o.expect_rejected->end();
        if (expected != !e.rejected.empty()) {
          fmt::print(stderr, "bpfvm_bench: {} on {}: {}\n", p.name, e.name,
                     expected ? "verified, but --expect-rejected lists it"
                              : "rejected, and --expect-rejected does not list it");
          failed = true;
        }
      }
      if (!e.problem.empty()) {
        fmt::print(stderr, "bpfvm_bench: MISMATCH: {} on {}: {}\n", p.name, e.name, e.problem);
        failed = true;
      }
    }
    results.push_back(std::move(*r));
  }
  if (o.quick) {
    std::size_t checks = 0;
    for (auto& r : results)
      for (auto& e : r.engines) checks += e.rejected.empty();
    fmt::print("{} programs, {} engine runs checked against native: {}\n", results.size(), checks,
               failed ? "FAILED (see above)" : "all agree");
  } else if (o.json) {
    print_json(results, o);
  } else {
    print_table(results);
  }
  return failed ? cli::exit_rejected : cli::exit_ok;
}

}  // namespace

int main(int argc, char** argv) { return run(std::vector<std::string>(argv + 1, argv + argc)); }
