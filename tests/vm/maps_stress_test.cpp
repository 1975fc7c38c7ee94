// N threads run one compiled program against shared maps while the host churns a hash map;
// every count adds up exactly afterwards. Built in the tsan preset too, to catch data races.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/vm/maps_test_util.hpp"
#include "vm/maps.hpp"

namespace {

using bpfvm::isa::MapType;
using bpfvm::test::map_def;
using bpfvm::test::map_ref;
namespace vm = bpfvm::vm;

// r1 = input: u32 key. Counts the run in an array (atomically), in a per-CPU array (plainly:
// no other thread uses this CPU slot), under `key` in a hash (inserted on first sight, then
// atomically), and emits an 8-byte event.
std::string stress_program() {
  return fmt::format(R"(
    r6 = *(u32 *)(r1 + 0)
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = {0} ll
    call 1
    if r0 == 0 goto fail
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    r2 = r10
    r2 += -4
    r1 = {1} ll
    call 1
    if r0 == 0 goto fail
    r1 = *(u64 *)(r0 + 0)
    r1 += 1
    *(u64 *)(r0 + 0) = r1
    *(u32 *)(r10 - 8) = r6
    r2 = r10
    r2 += -8
    r1 = {2} ll
    call 1
    if r0 != 0 goto count
    *(u64 *)(r10 - 16) = 0
    r2 = r10
    r2 += -8
    r3 = r10
    r3 += -16
    r4 = 1
    r1 = {2} ll
    call 2
    r2 = r10
    r2 += -8
    r1 = {2} ll
    call 1
    if r0 == 0 goto fail
  count:
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    *(u64 *)(r10 - 16) = r6
    r2 = r10
    r2 += -16
    r1 = {3} ll
    r3 = 8
    r4 = 0
    call 130
    exit
  fail:
    r0 = -1
    exit
  )",
                     map_ref(0), map_ref(1), map_ref(2), map_ref(3));
}

}  // namespace

TEST_CASE("threads share maps: counts add up exactly", "[maps][stress]") {
  constexpr int threads = 4;
  constexpr int runs = 3000;
  constexpr std::uint32_t keys = 8;
  bpfvm::Vm vmx;
  auto exe = bpfvm::test::compile_with_maps(
      vmx, stress_program(),
      {map_def("total", MapType::array, 4, 8, 1), map_def("percpu", MapType::percpu_array, 4, 8, 1),
       map_def("per_key", MapType::hash, 4, 8, 64), map_def("events", MapType::ringbuf, 0, 0, 1 << 20)});
  vm::Map* per_key = vmx.maps()->find("per_key");
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  // The host inserts and deletes other keys meanwhile, recycling slots under the programs.
  std::thread churn([&] {
    std::uint32_t k = 1000;
    while (!done.load()) {
      std::uint64_t v = k;
      if (per_key->host_update(&k, &v, vm::update_noexist) != 0 || per_key->host_remove(&k) != 0) ++failures;
      k = 1000 + (k + 1) % 16;
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < runs; ++i) {
        std::uint32_t key = static_cast<std::uint32_t>(t * runs + i) % keys;
        vm::RunResult r = bpfvm::run(*exe, {reinterpret_cast<std::uint8_t*>(&key), sizeof key});
        if (r.trap || r.r0 != 0) ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  churn.join();
  CHECK(failures.load() == 0);

  std::uint32_t zero = 0;
  std::uint64_t total = 0;
  REQUIRE(vmx.maps()->find("total")->host_lookup(&zero, &total) == 0);
  CHECK(total == threads * runs);

  vm::Map* percpu = vmx.maps()->find("percpu");
  std::vector<std::uint8_t> all(percpu->host_value_size());
  REQUIRE(percpu->host_lookup(&zero, all.data()) == 0);
  std::uint64_t sum = 0;
  for (unsigned cpu = 0; cpu < vm::cpu_slots; ++cpu) {
    std::uint64_t v;
    std::memcpy(&v, all.data() + cpu * 8, 8);
    sum += v;
  }
  CHECK(sum == threads * runs);

  std::uint64_t by_key = 0;
  for (std::uint32_t k = 0; k < keys; ++k) {
    std::uint64_t v = 0;
    REQUIRE(per_key->host_lookup(&k, &v) == 0);
    by_key += v;
  }
  CHECK(by_key == threads * runs);
  CHECK(dynamic_cast<vm::HashMap&>(*per_key).size() == keys);

  auto* events = dynamic_cast<vm::RingBuffer*>(vmx.maps()->find("events"));
  std::array<std::uint64_t, keys> seen{};
  const std::size_t records = events->consume([&](std::span<const std::uint8_t> rec) {
    std::uint64_t k;
    std::memcpy(&k, rec.data(), 8);
    if (k < keys) ++seen[k];
  });
  CHECK(records == threads * runs);
  CHECK(events->dropped() == 0);
  for (std::uint32_t k = 0; k < keys; ++k) CHECK(seen[k] == threads * runs / keys);
}

TEST_CASE("threads on an LRU map: the size never passes max_entries", "[maps][stress][lru]") {
  auto map = vm::create_map(map_def("lru", MapType::lru_hash, 4, 8, 32));
  REQUIRE(map.ok());
  auto& lru = dynamic_cast<vm::HashMap&>(**map);
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      for (std::uint32_t i = 0; i < 2000; ++i) {
        std::uint32_t k = static_cast<std::uint32_t>(t) * 100000 + i;
        std::uint64_t v = i;
        if ((*map)->update(&k, &v, vm::update_any) != 0) ++failures;
        if (i % 3 == 0) (void)(*map)->lookup(&k);
        if (lru.size() > 32 + vm::cpu_slots) ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(failures.load() == 0);
  CHECK(lru.size() <= 32);
}
