// Map semantics from the host side (bpf(2)'s commands): flags, full maps, iteration with
// deletes, LRU eviction, ring buffer wrap and overflow, per-CPU layout.
#include <catch2/catch.hpp>

#include <cstring>
#include <set>
#include <thread>

#include "tests/vm/maps_test_util.hpp"
#include "vm/maps.hpp"

namespace {

using bpfvm::isa::MapType;
using bpfvm::test::map_def;
namespace vm = bpfvm::vm;
namespace e = bpfvm::vm::map_errno;

std::unique_ptr<vm::Map> make(MapType type, std::uint32_t key, std::uint32_t value, std::uint32_t max) {
  auto map = vm::create_map(map_def("m", type, key, value, max));
  INFO((map ? std::string() : map.error().to_string()));
  REQUIRE(map.ok());
  return std::move(map).value();
}

std::uint64_t u64_at(const void* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

TEST_CASE("array: every index exists, NOEXIST fails, delete is invalid", "[maps][array]") {
  auto map = make(MapType::array, 4, 8, 4);
  std::uint32_t key = 2;
  std::uint64_t value = 0x1122, out = 1;
  CHECK(map->host_lookup(&key, &out) == 0);
  CHECK(out == 0);  // zeroed at creation
  CHECK(map->host_update(&key, &value, vm::update_any) == 0);
  CHECK(map->host_update(&key, &value, vm::update_exist) == 0);
  CHECK(map->host_update(&key, &value, vm::update_noexist) == -e::exists);
  CHECK(map->host_update(&key, &value, 7) == -e::inval);
  CHECK(map->host_remove(&key) == -e::inval);
  CHECK(u64_at(map->lookup(&key)) == 0x1122);
  key = 4;
  CHECK(map->host_update(&key, &value, vm::update_any) == -e::too_big);
  CHECK(map->lookup(&key) == nullptr);
  CHECK(map->host_lookup(&key, &out) == -e::noent);

  std::vector<std::uint32_t> keys;
  std::uint32_t next = 0;
  for (int rc = map->next_key(nullptr, &next); rc == 0; rc = map->next_key(&key, &next)) {
    keys.push_back(next);
    key = next;
  }
  CHECK(keys == std::vector<std::uint32_t>{0, 1, 2, 3});
}

TEST_CASE("array: lookup results lie in the map's one region", "[maps][array]") {
  auto map = make(MapType::array, 4, 12, 3);
  auto regions = map->regions();
  REQUIRE(regions.size() == 1);
  CHECK(regions[0].access == vm::Access::read_write);
  for (std::uint32_t k = 0; k < 3; ++k) {
    const auto p = reinterpret_cast<std::uint64_t>(map->lookup(&k));
    CHECK(p >= regions[0].start);
    CHECK(p + 12 <= regions[0].start + regions[0].size);
  }
  CHECK(map->value_address() == regions[0].start);
}

TEST_CASE("global data: initial bytes, .rodata is read-only to programs", "[maps][array]") {
  auto def = map_def(".rodata", MapType::array, 4, 6, 1);
  def.read_only = true;
  def.initial_value = {'h', 'e', 'l', 'l', 'o', 0};
  auto map = vm::create_map(def);
  REQUIRE(map.ok());
  std::uint32_t key = 0;
  CHECK(std::memcmp((*map)->lookup(&key), "hello", 6) == 0);
  CHECK((*map)->regions()[0].access == vm::Access::read);
  const char other[6] = "HELLO";
  CHECK((*map)->update(&key, other, vm::update_any) == -e::perm);  // from a program
  CHECK((*map)->host_update(&key, other, vm::update_any) == 0);    // the host may set it
  CHECK(std::memcmp((*map)->lookup(&key), "HELLO", 6) == 0);
}

TEST_CASE("hash: flags, full map, delete and reinsert", "[maps][hash]") {
  auto map = make(MapType::hash, 8, 8, 4);
  auto& hash = dynamic_cast<vm::HashMap&>(*map);
  std::uint64_t v = 0;
  for (std::uint64_t k = 1; k <= 4; ++k) {
    v = k * 100;
    CHECK(map->host_update(&k, &v, vm::update_noexist) == 0);
  }
  CHECK(hash.size() == 4);
  std::uint64_t k = 5;
  CHECK(map->host_update(&k, &v, vm::update_any) == -e::too_big);
  CHECK(map->host_update(&k, &v, vm::update_exist) == -e::noent);
  k = 2;
  CHECK(map->host_update(&k, &v, vm::update_noexist) == -e::exists);
  v = 222;
  CHECK(map->host_update(&k, &v, vm::update_exist) == 0);  // replacing needs no free entry
  CHECK(map->host_update(&k, &v, vm::update_any) == 0);
  std::uint64_t out = 0;
  CHECK(map->host_lookup(&k, &out) == 0);
  CHECK(out == 222);
  CHECK(map->host_remove(&k) == 0);
  CHECK(map->host_remove(&k) == -e::noent);
  CHECK(map->lookup(&k) == nullptr);
  k = 5;
  CHECK(map->host_update(&k, &v, vm::update_any) == 0);  // room again
  CHECK(hash.size() == 4);
}

TEST_CASE("hash: a replaced value keeps the old pointer's bytes until the slot is reused", "[maps][hash]") {
  auto map = make(MapType::hash, 4, 8, 8);
  std::uint32_t k = 1;
  std::uint64_t v = 10;
  REQUIRE(map->update(&k, &v, vm::update_any) == 0);
  auto* old = static_cast<std::uint64_t*>(map->lookup(&k));
  v = 11;
  REQUIRE(map->update(&k, &v, vm::update_any) == 0);
  CHECK(*old == 10);  // a reader of the old element sees a whole old value
  CHECK(*static_cast<std::uint64_t*>(map->lookup(&k)) == 11);
  auto regions = map->regions();
  const auto p = reinterpret_cast<std::uint64_t>(old);
  CHECK((p >= regions[0].start && p + 8 <= regions[0].start + regions[0].size));
}

TEST_CASE("hash: iteration visits each key once, also when deleting as it goes", "[maps][hash]") {
  auto map = make(MapType::hash, 4, 4, 64);
  for (std::uint32_t k = 0; k < 50; ++k) REQUIRE(map->host_update(&k, &k, vm::update_any) == 0);
  std::set<std::uint32_t> seen;
  std::uint32_t key = 0, next = 0;
  for (int rc = map->next_key(nullptr, &next); rc == 0; rc = map->next_key(&key, &next)) {
    CHECK(seen.insert(next).second);
    key = next;
  }
  CHECK(seen.size() == 50);

  // Delete every element during the walk: ask for the next key, then delete the current one.
  std::size_t visited = 0;
  bool more = map->next_key(nullptr, &key) == 0;
  while (more) {
    more = map->next_key(&key, &next) == 0;
    CHECK(map->host_remove(&key) == 0);
    ++visited;
    key = next;
  }
  CHECK(visited == 50);
  CHECK(map->next_key(nullptr, &next) == -e::noent);
  // A key that is gone restarts the walk at the first key (as in Linux).
  std::uint32_t k = 7;
  REQUIRE(map->host_update(&k, &k, vm::update_any) == 0);
  key = 1000;
  CHECK(map->next_key(&key, &next) == 0);
  CHECK(next == 7);
}

TEST_CASE("lru hash: a full map evicts the least recently used key", "[maps][lru]") {
  auto map = make(MapType::lru_hash, 4, 8, 4);
  std::uint64_t v = 1;
  for (std::uint32_t k = 1; k <= 4; ++k) REQUIRE(map->update(&k, &v, vm::update_noexist) == 0);
  std::uint32_t k = 1;
  REQUIRE(map->lookup(&k) != nullptr);  // 1 was used; 2 is now the least recently used
  k = 5;
  CHECK(map->update(&k, &v, vm::update_noexist) == 0);  // never E2BIG
  CHECK(dynamic_cast<vm::HashMap&>(*map).size() == 4);
  std::uint64_t out = 0;
  for (std::uint32_t key : {1u, 3u, 4u, 5u}) {
    INFO(key);
    CHECK(map->host_lookup(&key, &out) == 0);
  }
  k = 2;
  CHECK(map->host_lookup(&k, &out) == -e::noent);
  // Inserting many more keeps the size at max_entries.
  for (std::uint32_t key = 10; key < 100; ++key) REQUIRE(map->update(&key, &v, vm::update_any) == 0);
  CHECK(dynamic_cast<vm::HashMap&>(*map).size() == 4);
}

TEST_CASE("per-CPU array and hash: each thread writes its own slot; the host sees all", "[maps][percpu]") {
  for (MapType type : {MapType::percpu_array, MapType::percpu_hash, MapType::lru_percpu_hash}) {
    auto map = make(type, 4, 4, 2);
    REQUIRE(map->host_value_size() == 8 * vm::cpu_slots);
    std::uint32_t key = 1;
    int cpus[2] = {-1, -1};
    for (int t = 0; t < 2; ++t) {
      std::thread([&, t] {
        const std::uint32_t v = 100 + static_cast<std::uint32_t>(t);
        REQUIRE(map->update(&key, &v, vm::update_any) == 0);
        cpus[t] = vm::this_cpu();
        CHECK(*static_cast<std::uint32_t*>(map->lookup(&key)) == v);
      }).join();
    }
    REQUIRE(cpus[0] >= 0);
    REQUIRE(cpus[1] >= 0);
    std::vector<std::uint8_t> all(map->host_value_size());
    REQUIRE(map->host_lookup(&key, all.data()) == 0);
    std::uint32_t total = 0;
    for (unsigned cpu = 0; cpu < vm::cpu_slots; ++cpu) {
      std::uint32_t v;
      std::memcpy(&v, all.data() + cpu * 8, 4);
      total += v;
    }
    // A slot freed by a finished thread may be claimed again: both writes land somewhere.
    CHECK(total == (cpus[0] == cpus[1] ? 101u : 201u));
  }
}

TEST_CASE("ring buffer: records in order, wrap with padding, overflow, discard", "[maps][ringbuf]") {
  auto map = make(MapType::ringbuf, 0, 0, 64);
  auto& ring = dynamic_cast<vm::RingBuffer&>(*map);
  std::vector<std::string> got;
  auto take = [&] {
    got.clear();
    return ring.consume([&](std::span<const std::uint8_t> r) { got.emplace_back(r.begin(), r.end()); });
  };
  REQUIRE(ring.output("aaaaaaaa", 8) == 0);           // 16 bytes with its header
  REQUIRE(ring.output("bbbbbbbbbbbbbbbb", 16) == 0);  // 24
  CHECK(take() == 2);
  CHECK(got == std::vector<std::string>{"aaaaaaaa", "bbbbbbbbbbbbbbbb"});
  // Position 40: a 16-byte record ends exactly at 64, the next ones wrap to 0.
  REQUIRE(ring.output("cccccccccccccccc", 16) == 0);
  REQUIRE(ring.output("dddd", 4) == 0);
  REQUIRE(ring.output("eeeeeeeeeeeeeeee", 16) == 0);
  CHECK(ring.pending() == 64);
  CHECK(ring.output("f", 1) == -e::again);  // full
  CHECK(ring.dropped() == 1);
  CHECK(take() == 3);
  CHECK(got == std::vector<std::string>{"cccccccccccccccc", "dddd", "eeeeeeeeeeeeeeee"});
  // Position 40 again: 24 bytes + header do not fit before the end, so a padding record fills
  // 40..64 and the record starts at 0.
  void* p = ring.reserve(24);
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<std::uint64_t>(p) == map->regions()[0].start + 8);
  std::memset(p, 'g', 24);
  CHECK(take() == 0);  // still reserved
  CHECK(ring.commit(p, false));
  CHECK_FALSE(ring.commit(p, false));  // not twice
  CHECK(take() == 1);
  CHECK(got == std::vector<std::string>{std::string(24, 'g')});
  // Discarded records are skipped; a later record waits for an earlier one.
  void* a = ring.reserve(8);
  void* b = ring.reserve(8);
  void* c = ring.reserve(8);
  REQUIRE((a && b && c));
  std::memcpy(c, "cccccccc", 8);
  CHECK(ring.commit(b, true));
  CHECK(ring.commit(c, false));
  CHECK(take() == 0);
  CHECK(ring.commit(a, true));
  CHECK(take() == 1);
  CHECK(got == std::vector<std::string>{"cccccccc"});
  CHECK(ring.reserve(64) == nullptr);  // larger than the buffer with its header
  int not_a_record = 0;
  CHECK_FALSE(ring.commit(&not_a_record, false));
}

TEST_CASE("program array: host sets programs; programs cannot update it", "[maps][prog_array]") {
  auto map = make(MapType::prog_array, 4, 4, 2);
  auto& programs = dynamic_cast<vm::ProgramArray&>(*map);
  CHECK_FALSE(programs.set(2, nullptr).ok());
  std::uint32_t key = 0, value = 0;
  CHECK(map->update(&key, &value, vm::update_any) == -e::inval);
  CHECK(map->host_lookup(&key, &value) == -e::noent);
  CHECK(map->host_remove(&key) == -e::noent);
}

TEST_CASE("map definitions that cannot work are refused with the map's name", "[maps]") {
  auto refused = [](bpfvm::isa::MapDef def, std::string_view text) {
    auto map = vm::create_map(def);
    REQUIRE_FALSE(map.ok());
    INFO(map.error().message);
    CHECK(map.error().message.find(def.name) != std::string::npos);
    CHECK(map.error().message.find(text) != std::string::npos);
  };
  refused(map_def("arr", MapType::array, 8, 4, 1), "4-byte keys");
  refused(map_def("h", MapType::hash, 4, 0, 1), "must be > 0");
  refused(map_def("rb", MapType::ringbuf, 0, 0, 100), "power of two");
  refused(map_def("big", MapType::hash, 8, 1 << 20, 1 << 20), "1 GiB");
  auto odd = map_def("odd", MapType::hash, 4, 4, 1);
  odd.type = 99;
  refused(odd, "not supported");
}

TEST_CASE("map sets share maps by name and refuse a conflicting definition", "[maps]") {
  vm::MapSet set;
  auto a = set.add(map_def("counts", MapType::array, 4, 8, 4));
  auto b = set.add(map_def("counts", MapType::array, 4, 8, 4));
  REQUIRE((a.ok() && b.ok()));
  CHECK(*a == *b);
  auto c = set.add(map_def("counts", MapType::hash, 4, 8, 4));
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message.find("counts") != std::string::npos);
  CHECK(set.map_at(reinterpret_cast<std::uint64_t>(*a)) == *a);
  CHECK(set.map_at(12345) == nullptr);
  vm::RunContext ctx;
  set.attach(ctx);
  set.attach(ctx);  // once only
  CHECK(ctx.regions().size() == 1);
  CHECK(ctx.maps() == &set);
}
