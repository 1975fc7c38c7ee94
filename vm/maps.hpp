// Maps in user space, with Linux's semantics: array, hash, per-CPU array and hash, LRU hash
// (and LRU per-CPU hash), ring buffer and program array. Global data sections are one-entry
// arrays. See docs/MAPS.md.
//
// Threads: every operation is safe while programs run on several threads at once. Memory rule:
// a map's values live in one arena allocated when the map is created and freed only with the
// map, so a value pointer a program got from a lookup stays inside the map's region for the
// whole run, even if the element is deleted meanwhile. A deleted hash slot goes to the back of a
// FIFO free list, so it is reused as late as possible; a program still holding the old pointer
// then sees the new element's bytes (as with Linux's preallocated hash maps).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::vm {

// Errors, returned negated as Linux's helpers and bpf(2) do.
namespace map_errno {
inline constexpr int perm = 1;     // EPERM: a write to a read-only map (.rodata) from a program
inline constexpr int noent = 2;    // ENOENT: no such key
inline constexpr int too_big = 7;  // E2BIG: the map is full, or the index is past max_entries
inline constexpr int again = 11;   // EAGAIN: the ring buffer is full
inline constexpr int nomem = 12;   // ENOMEM: no spare slot for a replacement
inline constexpr int exists = 17;  // EEXIST: BPF_NOEXIST and the key is there
inline constexpr int inval = 22;   // EINVAL: bad flags, or an operation the map type lacks
}  // namespace map_errno

// Update flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST).
inline constexpr std::uint64_t update_any = 0;
inline constexpr std::uint64_t update_noexist = 1;
inline constexpr std::uint64_t update_exist = 2;

// Per-CPU maps keep one value per "CPU". In user space a CPU is a thread: a thread that uses a
// per-CPU value or asks for its processor id claims one of `cpu_slots` slots and keeps it until
// it exits, so no two threads running at once share a slot.
inline constexpr unsigned cpu_slots = 64;
// This thread's slot, claimed on first use; -1 when all slots are held by live threads.
int this_cpu();

class Map {
 public:
  explicit Map(isa::MapDef def) : def_(std::move(def)) {}
  virtual ~Map();
  Map(const Map&) = delete;
  Map& operator=(const Map&) = delete;

  const isa::MapDef& def() const { return def_; }
  const std::string& name() const { return def_.name; }
  isa::MapType type() const { return static_cast<isa::MapType>(def_.type); }
  // Bytes of a value as the host reads and writes it: value_size, or for per-CPU maps
  // cpu_slots values of value_size rounded up to 8 (Linux's layout for bpf(2)).
  std::size_t host_value_size() const;

  // Memory programs may touch through this map (value arenas, ring buffer data).
  virtual std::vector<Region> regions() const { return {}; }
  // For lddw map_idx_value: the address of the first value (0 when the map has no such value).
  virtual std::uint64_t value_address() const { return 0; }

  // Program side (the helpers). A lookup returns the value (this CPU's for per-CPU maps) or
  // nullptr; update takes one value of value_size.
  virtual void* lookup(const void* key) = 0;
  virtual int update(const void* key, const void* value, std::uint64_t flags) = 0;
  virtual int remove(const void* key) = 0;

  // Host side (bpf(2)'s map commands): values are host_value_size() bytes.
  virtual int host_lookup(const void* key, void* value) const = 0;
  virtual int host_update(const void* key, const void* value, std::uint64_t flags) = 0;
  int host_remove(const void* key) { return remove(key); }
  // The key after `key` (the first key when `key` is null or not in the map), or -ENOENT at
  // the end. Deleting the current key while iterating is fine: ask for the next one first.
  virtual int next_key(const void* key, void* next) const = 0;

 protected:
  isa::MapDef def_;
};

// An allocation that is never moved: value arenas and ring buffer data, 64-byte aligned.
class Arena {
 public:
  explicit Arena(std::size_t size);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY: u32 keys 0..max_entries-1, all present, zeroed at
// creation; updates copy in place; delete is -EINVAL. Global data: an array of one entry.
class ArrayMap final : public Map {
 public:
  explicit ArrayMap(isa::MapDef def);
  std::vector<Region> regions() const override;
  std::uint64_t value_address() const override { return reinterpret_cast<std::uint64_t>(arena_.data()); }
  void* lookup(const void* key) override;
  int update(const void* key, const void* value, std::uint64_t flags) override;
  int remove(const void* key) override;
  int host_lookup(const void* key, void* value) const override;
  int host_update(const void* key, const void* value, std::uint64_t flags) override;
  int next_key(const void* key, void* next) const override;

 private:
  std::uint8_t* slot(std::uint32_t index, unsigned cpu) const;
  bool per_cpu_;
  std::size_t stride_;  // value_size rounded up to 8
  Arena arena_;
};

// BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH: chained buckets over preallocated
// slots. Buckets are guarded by striped mutexes; the free list by its own. A BPF-side update of
// an existing key in a non-per-CPU map fills a spare slot and swaps it in (readers of the old
// pointer keep the old value), as Linux does; per-CPU values are updated in place.
// LRU maps evict when full with the CLOCK approximation of LRU (lookups set a reference bit;
// the sweep clears it once before it evicts), where Linux approximates LRU with per-CPU lists.
class HashMap final : public Map {
 public:
  explicit HashMap(isa::MapDef def);
  std::vector<Region> regions() const override;
  void* lookup(const void* key) override;
  int update(const void* key, const void* value, std::uint64_t flags) override;
  int remove(const void* key) override;
  int host_lookup(const void* key, void* value) const override;
  int host_update(const void* key, const void* value, std::uint64_t flags) override;
  int next_key(const void* key, void* next) const override;
  std::size_t size() const { return count_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint32_t none = 0xffffffff;
  static constexpr std::size_t stripes = 64;

  std::uint32_t hash(const void* key) const;
  std::mutex& lock_of(std::uint32_t bucket) const { return locks_[bucket % stripes]; }
  // The slot holding `key` in `bucket` (its lock held), or none.
  std::uint32_t find(std::uint32_t bucket, std::uint32_t h, const void* key) const;
  std::uint8_t* value_of(std::uint32_t slot, unsigned cpu) const;
  std::uint8_t* key_of(std::uint32_t slot) const { return keys_.get() + std::size_t{slot} * def_.key_size; }
  std::uint32_t take_slot();  // from the free list, evicting first in LRU maps; none if empty
  void give_slot(std::uint32_t slot);
  bool evict_one();
  // `host`: `value` holds every CPU's value (bpf(2)); otherwise one value, this CPU's.
  int upsert(const void* key, const void* value, std::uint64_t flags, bool host);
  void write_value(std::uint32_t slot, const void* value, bool host, bool fresh);

  bool per_cpu_;
  bool lru_;
  std::size_t stride_;
  std::uint32_t bucket_mask_;
  std::uint32_t slot_count_;
  std::unique_ptr<std::uint8_t[]> keys_;
  std::vector<std::uint32_t> next_;     // chain links (under the bucket's lock)
  std::vector<std::uint32_t> buckets_;  // first slot of each chain (under its lock)
  // Read by the LRU sweep without the bucket lock, hence atomic.
  std::unique_ptr<std::atomic<std::uint32_t>[]> hashes_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> used_;  // linked into a bucket
  std::unique_ptr<std::atomic<std::uint8_t>[]> referenced_;
  mutable std::unique_ptr<std::mutex[]> locks_;
  Arena arena_;
  std::atomic<std::size_t> count_{0};
  std::mutex free_mutex_;
  std::vector<std::uint32_t> free_;  // FIFO ring of free slots
  std::size_t free_head_ = 0, free_count_ = 0;
  std::mutex evict_mutex_;
  std::uint32_t clock_hand_ = 0;
};

// BPF_MAP_TYPE_RINGBUF: max_entries bytes of data (a power of two, at least 16). Records are an
// 8-byte header (length, busy and discard bits) and the data rounded up to 8. A record that
// would cross the end is preceded by a discarded padding record up to the end, so every
// record is contiguous (Linux maps the data twice instead). Producers take a mutex; the host
// consumes in order and stops at the first record still reserved.
class RingBuffer final : public Map {
 public:
  explicit RingBuffer(isa::MapDef def);
  std::vector<Region> regions() const override;
  void* lookup(const void*) override { return nullptr; }
  int update(const void*, const void*, std::uint64_t) override { return -map_errno::inval; }
  int remove(const void*) override { return -map_errno::inval; }
  int host_lookup(const void*, void*) const override { return -map_errno::inval; }
  int host_update(const void*, const void*, std::uint64_t) override { return -map_errno::inval; }
  int next_key(const void*, void*) const override { return -map_errno::inval; }

  // bpf_ringbuf_reserve: a record of `size` bytes, or nullptr when it does not fit.
  void* reserve(std::uint64_t size);
  // bpf_ringbuf_submit / discard of a pointer reserve() returned; false if it is not one.
  bool commit(void* sample, bool discard);
  // bpf_ringbuf_output: reserve, copy, submit. 0, or -EAGAIN when it does not fit.
  int output(const void* data, std::uint64_t size);
  // Host: hands each submitted record to `fn` in order; returns how many. Records discarded
  // are skipped.
  std::size_t consume(const std::function<void(std::span<const std::uint8_t>)>& fn);
  // Bytes reserved and not yet consumed; records refused because the buffer was full.
  std::uint64_t pending() const;
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::uint64_t mask_;
  Arena data_;
  std::mutex producer_mutex_;
  std::atomic<std::uint64_t> producer_{0};
  std::atomic<std::uint64_t> consumer_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

// BPF_MAP_TYPE_PROG_ARRAY: u32 index → compiled program, for bpf_tail_call. The host fills it
// (set/clear); programs only tail-call through it. Its programs must run with the same MapSet.
// The array does not keep its programs alive (they keep the MapSet, and so the array, alive):
// the host owns them, and a slot whose program is gone is empty.
class ProgramArray final : public Map {
 public:
  explicit ProgramArray(isa::MapDef def) : Map(std::move(def)), programs_(def_.max_entries) {}
  void* lookup(const void*) override { return nullptr; }
  int update(const void*, const void*, std::uint64_t) override { return -map_errno::inval; }
  int remove(const void* key) override;
  int host_lookup(const void* key, void* value) const override;
  int host_update(const void*, const void*, std::uint64_t) override { return -map_errno::inval; }
  int next_key(const void* key, void* next) const override;

  Status set(std::uint32_t index, std::shared_ptr<const Executable> program);
  std::shared_ptr<const Executable> get(std::uint32_t index) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<const Executable>> programs_;
};

// Creates the map a definition describes; an Error names the map and what is wrong.
Result<std::unique_ptr<Map>> create_map(const isa::MapDef& def);

// The maps of one or more programs, by name. Programs compiled against the same MapSet share
// its maps (as programs of one ELF object share theirs). Create every map before runs start.
class MapSet {
 public:
  // Creates the map, or returns the existing one of that name when its definition matches.
  Result<Map*> add(const isa::MapDef& def);
  Map* find(std::string_view name) const;
  std::span<const std::unique_ptr<Map>> all() const { return maps_; }
  // The map at `address` if it is one of this set's, else nullptr (helpers check their map arguments).
  Map* map_at(std::uint64_t address) const;

  // Creates (or finds) the program's maps and returns what lddw map_idx / map_idx_value load.
  Result<std::vector<MapAddress>> bind(const isa::Program& program);
  // Lets a run use these maps: their regions join the context's, and the helpers accept them.
  void attach(RunContext& ctx) const;

 private:
  std::vector<std::unique_ptr<Map>> maps_;
};

// The value bytes of a map element, for printing (`bpfvm run --dump-maps`).
std::string describe_map(const Map& map);

}  // namespace bpfvm::vm
