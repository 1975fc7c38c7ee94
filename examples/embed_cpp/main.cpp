// Embedding bpfvm from C++: assemble a program, give it a helper, compile it once, run it on
// input memory from several threads, and read r0 or the trap; then verify it and run the
// verified form, which leaves out the checks the verifier proved unnecessary.
#include <array>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"

namespace {

// Helper 1000: r0 = r1 * r2.
std::uint64_t multiply(std::uint64_t a, std::uint64_t b, std::uint64_t, std::uint64_t, std::uint64_t,
                       bpfvm::vm::RunContext*) {
  return a * b;
}

// Sums the input bytes (r1 = address, r2 = length), then multiplies the sum by 3 via the helper.
constexpr const char* program_text = R"(
r0 = 0
r3 = r1
r3 += r2
loop:
if r1 >= r3 goto done
r4 = *(u8 *)(r1 + 0)
r0 += r4
r1 += 1
goto loop
done:
r1 = r0
r2 = 3
call 1000
exit
)";

}  // namespace

int main() {
  auto program = bpfvm::isa::assemble(program_text, bpfvm::isa::Syntax::llvm, "embed_cpp");
  if (!program) {
    std::fprintf(stderr, "%s\n", program.error().to_string().c_str());
    return 1;
  }
  bpfvm::Vm vm;
  if (auto s = vm.load(std::move(program).value()); !s) return 1;
  if (auto s = vm.add_helper(1000, "multiply", multiply); !s) {
    std::fprintf(stderr, "%s\n", s.error().to_string().c_str());
    return 1;
  }
  auto exe = vm.compile(bpfvm::Engine::interpreter);
  if (!exe) {
    std::fprintf(stderr, "%s\n", exe.error().to_string().c_str());
    return 1;
  }

  // One compiled program, several threads, each run with its own memory.
  std::array<std::uint64_t, 4> results{};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::uint8_t> input(100, static_cast<std::uint8_t>(t + 1));
      const bpfvm::vm::RunResult r = bpfvm::run(*exe.value(), input);
      results[t] = r.trap ? 0 : r.r0;
    });
  }
  for (auto& th : threads) th.join();
  for (std::size_t t = 0; t < results.size(); ++t) {
    if (results[t] != 300 * (t + 1)) {
      std::fprintf(stderr, "thread %zu: r0 = %llu\n", t, static_cast<unsigned long long>(results[t]));
      return 1;
    }
  }

  // Verified: described to the verifier (100-byte inputs, and what helper 1000 takes and
  // returns), the program is proven to stay inside its input, so its verified form runs without
  // the per-access checks. A run on another input size is refused before it starts.
  bpfvm::verifier::Environment env = bpfvm::verifier::raw_environment(100);
  bpfvm::isa::HelperPrototype multiply_prototype;
  multiply_prototype.id = 1000;
  multiply_prototype.name = "multiply";
  multiply_prototype.args = {bpfvm::isa::ArgKind::scalar, bpfvm::isa::ArgKind::scalar};
  if (auto s = env.helpers.add(multiply_prototype); !s) return 1;
  bpfvm::verifier::VerifyResult verdict = vm.verify(env);
  if (!verdict.accepted()) {
    std::fprintf(stderr, "%s\n", verdict.diagnostic->to_string().c_str());
    return 1;
  }
  auto verified = vm.compile(bpfvm::Engine::interpreter, *verdict.program);
  if (!verified) return 1;
  std::vector<std::uint8_t> hundred(100, 2), fifty(50, 2);
  const bpfvm::vm::RunResult fast = bpfvm::run(*verified.value(), hundred);
  if (fast.trap || fast.r0 != 600) return 1;
  const bpfvm::vm::RunResult refused = bpfvm::run(*verified.value(), fifty);
  if (!refused.trap || refused.trap->kind != bpfvm::vm::TrapKind::entry_mismatch) return 1;
  std::printf("verified: r0 = %llu; on 50 bytes: %s\n", static_cast<unsigned long long>(fast.r0),
              refused.trap->message().c_str());

  // A run that reads past its input stops with a trap, not a crash.
  std::array<std::uint8_t, 4> small{};
  auto bad = bpfvm::isa::assemble("r0 = *(u64 *)(r1 + 0)\nexit", bpfvm::isa::Syntax::llvm, "bad");
  if (!bad || !vm.load(std::move(bad).value())) return 1;
  auto bad_exe = vm.compile();
  if (!bad_exe) return 1;
  const bpfvm::vm::RunResult trapped = bpfvm::run(*bad_exe.value(), small);
  if (!trapped.trap) return 1;
  std::printf("trap: %s\n", trapped.trap->message().c_str());
  std::printf("embed_cpp: ok\n");
  return 0;
}
