// Compile time per BPF instruction: the bench suite's programs (their .text, as the driver
// loads them) laid end to end until the program has at least 10,000 instructions, compiled by
// every engine of this build; prints the median over the runs in ns per instruction, of the
// thread's CPU time (the machine may be shared) and of the wall clock. Each JIT is also timed
// compiling the same program unchecked: every access taken as proven and no budget, the code a
// verified compile emits when the verifier proves everything (and what uBPF and rbpf emit for
// any program), so that figure compares with theirs.
//   build/release/bench/bpfvm_compile_time [--runs N] [--engine E]...
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "api/bpfvm.hpp"
#include "isa/program.hpp"
#ifdef BPFVM_JIT_X64
#include "jit/x64/backend.hpp"
#endif
#ifdef BPFVM_JIT_A64
#include "jit/a64/backend.hpp"
#endif

namespace {

constexpr std::string_view programs[] = {
#define BPFVM_BENCH_PROGRAM(name, bytes, fill) #name,
#include "bench_programs.def"
#undef BPFVM_BENCH_PROGRAM
};

constexpr std::size_t min_insns = 10'000;

double cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// The JIT's compile function, called directly for the unchecked compile (Vm::compile refuses
// proven accesses and no budget without the verifier), or null for the interpreter.
bpfvm::EngineFactory jit_factory([[maybe_unused]] bpfvm::Engine engine) {
#ifdef BPFVM_JIT_X64
  if (engine == bpfvm::Engine::jit_x64) return bpfvm::jit::x64::compile;
#endif
#ifdef BPFVM_JIT_A64
  if (engine == bpfvm::Engine::jit_a64) return bpfvm::jit::a64::compile;
#endif
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 51;
  std::vector<bpfvm::Engine> engines;  // empty: every engine of this build
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--engine" && i + 1 < argc && bpfvm::engine_from_string(argv[i + 1])) {
      engines.push_back(*bpfvm::engine_from_string(argv[++i]));
    } else {
      fmt::print(stderr, "usage: bpfvm_compile_time [--runs N] [--engine E]...\n");
      return 64;
    }
  }
  // Each program's code stays one piece (its jumps and calls are relative), so the
  // concatenation is a valid program whose functions are the suite's.
  std::vector<std::uint8_t> code;
  while (code.size() / 8 < min_insns) {
    for (std::string_view name : programs) {
      std::ifstream in(std::string(BPFVM_BENCH_PROGRAM_DIR) + "/" + std::string(name) + ".bin",
                       std::ios::binary);
      if (!in) {
        fmt::print(stderr, "bpfvm_compile_time: cannot read {}.bin\n", name);
        return 2;
      }
      code.insert(code.end(), std::istreambuf_iterator<char>(in), {});
    }
  }
  auto program = bpfvm::isa::program_from_bytes(code, "suite");
  if (!program) {
    fmt::print(stderr, "bpfvm_compile_time: {}\n", program.error().to_string());
    return 2;
  }
  const std::size_t n = program->insns.size();
  bpfvm::Vm vm;
  if (!vm.load(*program)) return 2;
  fmt::print("compile time: {} instructions (the bench programs end to end), median of {} runs\n", n, runs);
  if (engines.empty()) engines = {bpfvm::Engine::interpreter, bpfvm::Engine::jit_x64, bpfvm::Engine::jit_a64};
  // Times `compile` (true when it succeeded) and prints the medians under `label`.
  auto time_compiles = [&](std::string_view label, auto compile) {
    std::vector<double> ns, wall;
    for (int r = 0; r < runs; ++r) {
      const auto start = std::chrono::steady_clock::now();
      const double cpu_start = cpu_ns();
      const bool ok = compile();
      const double cpu_stop = cpu_ns();
      const auto stop = std::chrono::steady_clock::now();
      if (!ok) return false;
      ns.push_back(cpu_stop - cpu_start);
      wall.push_back(std::chrono::duration<double, std::nano>(stop - start).count());
    }
    std::sort(ns.begin(), ns.end());
    std::sort(wall.begin(), wall.end());
    const double cpu = ns[ns.size() / 2], clock = wall[wall.size() / 2];
    fmt::print("{:<18} cpu {:>9.1f} us {:>7.1f} ns/insn   wall {:>9.1f} us {:>7.1f} ns/insn\n", label,
               cpu / 1000, cpu / n, clock / 1000, clock / n);
    return true;
  };
  bpfvm::vm::CompileOptions unchecked;
  unchecked.proven_accesses.assign(n, true);
  unchecked.enforce_budget = false;
  const auto helpers = std::make_shared<const bpfvm::vm::HelperRegistry>(vm.helpers());
  for (bpfvm::Engine engine : engines) {
    if (!bpfvm::engine_available(engine)) continue;
    const std::string name(bpfvm::to_string(engine));
    const bool ok = time_compiles(name, [&] {
      auto exe = vm.compile(engine);
      if (!exe) fmt::print(stderr, "bpfvm_compile_time: {}: {}\n", name, exe.error().to_string());
      return exe.ok();
    });
    if (!ok) return 1;
    const bpfvm::EngineFactory jit = jit_factory(engine);
    if (jit == nullptr) continue;
    const bool unchecked_ok = time_compiles(name + " unchecked", [&] {
      auto exe = jit(*program, helpers, unchecked);
      if (!exe) fmt::print(stderr, "bpfvm_compile_time: {} unchecked: {}\n", name, exe.error().to_string());
      return exe.ok();
    });
    if (!unchecked_ok) return 1;
  }
  return 0;
}
