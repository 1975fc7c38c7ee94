// Traps, budget, call depth, regions, helpers and threads.
#include <array>
#include <cstdint>
#include <thread>
#include <vector>

#include "tests/vm/vm_test_util.hpp"
#include "vm/interpreter.hpp"

using bpfvm::test::run_text;
namespace vm = bpfvm::vm;

namespace {
std::uint64_t addr(const void* p) { return reinterpret_cast<std::uint64_t>(p); }
}  // namespace

TEST_CASE("a load past the input traps with pc, address, size and region", "[vm][trap]") {
  std::array<std::uint8_t, 8> mem{};
  const vm::RunResult result = run_text("r0 = 0\nr0 = *(u32 *)(r1 + 6)\nexit", mem);
  REQUIRE(result.trap.has_value());
  CHECK(result.trap->kind == vm::TrapKind::out_of_bounds);
  CHECK(result.trap->pc == 1);
  CHECK(result.trap->address == addr(mem.data()) + 6);
  CHECK(result.trap->size == 4);
  CHECK(result.trap->region == "input");
  CHECK(result.executed == 2);
}

TEST_CASE("a null dereference and a stack underflow trap", "[vm][trap]") {
  const vm::RunResult null = run_text("r1 = 0\nr0 = *(u64 *)(r1 + 0)\nexit");
  REQUIRE(null.trap.has_value());
  CHECK(null.trap->kind == vm::TrapKind::out_of_bounds);
  CHECK(null.trap->address == 0);
  CHECK(null.trap->size == 8);

  const vm::RunResult below = run_text("r0 = *(u64 *)(r10 - 520)\nexit");
  REQUIRE(below.trap.has_value());
  CHECK(below.trap->kind == vm::TrapKind::out_of_bounds);
  CHECK(below.trap->pc == 0);
  CHECK(below.trap->region == "stack");
  CHECK(below.regs[10] - below.trap->address == 520);

  const vm::RunResult above = run_text("*(u8 *)(r10 + 0) = 1\nexit");
  REQUIRE(above.trap.has_value());
  CHECK(above.trap->kind == vm::TrapKind::out_of_bounds);
}

TEST_CASE("a store into a read-only region is a permission trap", "[vm][trap]") {
  std::array<std::uint8_t, 8> ctx{1, 2, 3, 4, 5, 6, 7, 8};
  bpfvm::Vm vm;
  auto exe = bpfvm::test::compile_or_fail(vm, "r0 = *(u8 *)(r1 + 7)\n*(u8 *)(r1 + 7) = 0\nexit");
  const vm::RunResult result = bpfvm::run_with_context(*exe, ctx.data(), ctx.size(), vm::Access::read);
  REQUIRE(result.trap.has_value());
  CHECK(result.trap->kind == vm::TrapKind::permission);
  CHECK(result.trap->pc == 1);
  CHECK(result.trap->address == addr(ctx.data()) + 7);
  CHECK(result.trap->size == 1);
  CHECK(result.trap->region == "context");
  CHECK(result.regs[0] == 8);
  CHECK(ctx[7] == 8);
}

TEST_CASE("embedder regions are reachable; others are not", "[vm][trap]") {
  static std::array<std::uint8_t, 16> extra{};
  extra[4] = 99;
  bpfvm::Vm vm;
  auto exe = bpfvm::test::compile_or_fail(vm, "r0 = *(u8 *)(r1 + 4)\nexit");
  bpfvm::RunOptions options;
  options.regions.push_back({addr(extra.data()), extra.size(), vm::Access::read, "extra"});
  CHECK(bpfvm::run_with_context(*exe, extra.data(), 0, vm::Access::read, options).r0 == 99);
  const vm::RunResult outside = bpfvm::run_with_context(*exe, extra.data(), 0, vm::Access::read);
  REQUIRE(outside.trap.has_value());
  CHECK(outside.trap->kind == vm::TrapKind::out_of_bounds);
}

TEST_CASE("the budget stops an endless loop", "[vm][budget]") {
  bpfvm::RunOptions options;
  options.budget = 1000;
  const vm::RunResult result = run_text("r0 = 0\nloop:\nr0 += 1\ngoto loop\nexit", {}, options);
  REQUIRE(result.trap.has_value());
  CHECK(result.trap->kind == vm::TrapKind::budget_exhausted);
  CHECK(result.executed == 1000);
  CHECK(result.regs[0] == 500);  // 1 mov, 499 (add, goto) pairs, one more add; its goto is refused
  CHECK(result.trap->pc == 2);

  options.budget = 3;  // exactly enough
  const vm::RunResult exact = run_text("r0 = 1\nr0 += 1\nexit", {}, options);
  CHECK_FALSE(exact.trap.has_value());
  CHECK(exact.r0 == 2);
  CHECK(exact.executed == 3);
}

TEST_CASE("call depth: 8 frames by default, configurable", "[vm][call]") {
  // Recursion on r1 levels below the entry: r1 = N makes N nested calls.
  const char* text = R"(
call f
exit
f:
if r1 == 0 goto done
r1 -= 1
call f
done:
r0 = 7
exit
)";
  auto with = [&](std::uint64_t nested_below_f, int max_depth) {
    bpfvm::Vm vm;
    auto exe = bpfvm::test::compile_or_fail(vm, text);
    vm::RunContext ctx;
    ctx.set_args({nested_below_f, 0, 0, 0, 0});
    ctx.set_max_call_depth(max_depth);
    return exe->run(ctx);
  };
  // Frames used: entry + f + nested_below_f.
  CHECK_FALSE(with(6, 8).trap.has_value());
  const vm::RunResult deep = with(7, 8);
  REQUIRE(deep.trap.has_value());
  CHECK(deep.trap->kind == vm::TrapKind::call_depth);
  CHECK(deep.trap->pc == 4);
  CHECK_FALSE(with(7, 9).trap.has_value());
  CHECK(with(0, 1).trap->kind == vm::TrapKind::call_depth);
}

TEST_CASE("callx to a value that names no helper traps", "[vm][trap]") {
  const vm::RunResult result = run_text("r2 = 12345\ncallx r2\nexit");
  REQUIRE(result.trap.has_value());
  CHECK(result.trap->kind == vm::TrapKind::bad_call_target);
  CHECK(result.trap->pc == 1);
  CHECK(result.trap->address == 12345);
}

namespace {
std::uint64_t failing_helper(std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                             vm::RunContext* ctx) {
  if (r1 == 0) ctx->fail("r1 must not be 0");
  return r1 * 2;
}
std::uint64_t user_helper(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          vm::RunContext* ctx) {
  return *static_cast<std::uint64_t*>(ctx->user());
}
}  // namespace

TEST_CASE("helpers: registry by id and name, failure, user pointer", "[vm][helpers]") {
  vm::HelperRegistry registry;
  REQUIRE(registry.add(100, "twice", failing_helper).ok());
  REQUIRE(registry.add(101, "user", user_helper).ok());
  CHECK_FALSE(registry.add(102, "twice", failing_helper).ok());  // name taken by 100
  CHECK_FALSE(registry.add(103, "none", nullptr).ok());
  REQUIRE(registry.find(100) != nullptr);
  CHECK(registry.find(100)->name == "twice");
  REQUIRE(registry.find("user") != nullptr);
  CHECK(registry.find("user")->id == 101);
  CHECK(registry.find(5) == nullptr);
  CHECK(vm::HelperRegistry::conformance().find(5) != nullptr);

  bpfvm::Vm vmx;
  vmx.helpers() = registry;
  auto exe = bpfvm::test::compile_or_fail(vmx, "call 100\nr6 = r0\ncall 101\nr0 += r6\nexit");
  std::uint64_t user_value = 1000;
  vm::RunContext ctx;
  ctx.set_user(&user_value);
  ctx.set_args({21, 0, 0, 0, 0});
  const vm::RunResult ok = exe->run(ctx);
  REQUIRE_FALSE(ok.trap.has_value());
  CHECK(ok.r0 == 1042);

  ctx.set_args({0, 0, 0, 0, 0});
  const vm::RunResult failed = exe->run(ctx);
  REQUIRE(failed.trap.has_value());
  CHECK(failed.trap->kind == vm::TrapKind::helper_error);
  CHECK(failed.trap->pc == 0);
  CHECK(failed.trap->detail == "r1 must not be 0");
}

TEST_CASE("compile errors name the instruction", "[vm][load]") {
  bpfvm::Vm vm;
  REQUIRE(vm.load(bpfvm::test::assemble_or_fail("r0 = 0\ncall 9999\nexit")).ok());
  auto unknown = vm.compile();
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().insn == 1);

  bpfvm::isa::Program program = bpfvm::test::assemble_or_fail("r1 = 0 ll\nr0 = 0\nexit");
  program.insns[0].set_src(5);  // lddw map_idx 0, no maps configured
  REQUIRE(vm.load(program).ok());
  auto no_maps = vm.compile();
  REQUIRE_FALSE(no_maps.ok());
  CHECK(no_maps.error().insn == 0);
  CHECK(no_maps.error().message.find("no maps") != std::string::npos);

  vm::CompileOptions options;
  std::array<std::uint8_t, 8> value{};
  options.maps.push_back({0x1000, addr(value.data())});
  auto with_map = vm.compile(bpfvm::Engine::interpreter, options);
  REQUIRE(with_map.ok());
  const vm::RunResult result = bpfvm::run(*with_map.value(), {});
  CHECK(result.regs[1] == 0x1000);
}

TEST_CASE("threads share one compiled program", "[vm][threads]") {
  bpfvm::Vm vm;
  auto exe = bpfvm::test::compile_or_fail(vm, R"(
r0 = 0
r2 = *(u64 *)(r1 + 0)
loop:
r0 += r2
*(u64 *)(r10 - 8) = r0
r0 = *(u64 *)(r10 - 8)
r2 -= 1
if r2 != 0 goto loop
exit
)");
  constexpr int thread_count = 4;
  std::array<std::uint64_t, thread_count> results{};
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::uint64_t n = 1000 + static_cast<std::uint64_t>(t);
        const vm::RunResult r = bpfvm::run(*exe, {reinterpret_cast<std::uint8_t*>(&n), sizeof n});
        results[static_cast<std::size_t>(t)] = r.trap ? 0 : r.r0;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < thread_count; ++t) {
    const std::uint64_t n = 1000 + static_cast<std::uint64_t>(t);
    CHECK(results[static_cast<std::size_t>(t)] == n * (n + 1) / 2);
  }
}

TEST_CASE("trace sees every instruction with the registers before it", "[vm][trace]") {
  std::vector<std::pair<std::size_t, std::uint64_t>> steps;
  bpfvm::RunOptions options;
  options.trace = [&](std::size_t pc, const vm::Registers& regs) { steps.emplace_back(pc, regs[0]); };
  const vm::RunResult result = run_text("r0 = 3\nr0 += 4\nexit", {}, options);
  CHECK(result.r0 == 7);
  REQUIRE(steps.size() == 3);
  CHECK(steps[0] == std::pair<std::size_t, std::uint64_t>{0, 0});
  CHECK(steps[1] == std::pair<std::size_t, std::uint64_t>{1, 3});
  CHECK(steps[2] == std::pair<std::size_t, std::uint64_t>{2, 7});
}

namespace {
std::array<std::uint64_t, 2> helper_buffer{0x1111, 0x2222};
// Hands the program a read-only buffer at run time.
std::uint64_t lend_buffer(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                          vm::RunContext* ctx) {
  ctx->add_region({addr(helper_buffer.data()), sizeof helper_buffer, vm::Access::read, "lent"});
  return addr(helper_buffer.data());
}
}  // namespace

TEST_CASE("a helper can hand out a region during the run", "[vm][helpers]") {
  bpfvm::Vm vmx;
  REQUIRE(vmx.add_helper(200, "lend", lend_buffer).ok());
  auto exe =
      bpfvm::test::compile_or_fail(vmx, "call 200\nr1 = *(u64 *)(r0 + 8)\n*(u64 *)(r0 + 0) = r1\nexit");
  const vm::RunResult result = bpfvm::run(*exe, {});
  REQUIRE(result.trap.has_value());
  CHECK(result.regs[1] == 0x2222);  // the read succeeded
  CHECK(result.trap->kind == vm::TrapKind::permission);
  CHECK(result.trap->pc == 2);
  CHECK(result.trap->region == "lent");
  CHECK(helper_buffer[0] == 0x1111);
}

TEST_CASE("lddw map_idx_value adds its offset to the map's value address", "[vm][load]") {
  bpfvm::isa::Program program = bpfvm::test::assemble_or_fail("r0 = 0 ll\nexit");
  program.insns[0].set_src(6);  // map_idx_value: map 1, offset 24
  program.insns[0].imm = 1;
  program.insns[1].imm = 24;
  bpfvm::Vm vmx;
  REQUIRE(vmx.load(program).ok());
  vm::CompileOptions options;
  options.maps = {{0x100, 0x200}, {0x300, 0x4000}};
  auto exe = vmx.compile(bpfvm::Engine::interpreter, options);
  REQUIRE(exe.ok());
  CHECK(bpfvm::run(*exe.value(), {}).r0 == 0x4000 + 24);
}
