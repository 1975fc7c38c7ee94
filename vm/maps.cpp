#include "vm/maps.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace bpfvm::vm {
namespace {

constexpr std::size_t round8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

std::uint32_t load_u32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The per-CPU slots held by live threads, one bit each.
std::atomic<std::uint64_t> cpu_mask{0};

struct CpuSlot {
  int id = -1;
  ~CpuSlot() {
    if (id >= 0) cpu_mask.fetch_and(~(std::uint64_t{1} << id));
  }
};
thread_local CpuSlot cpu_slot;

static_assert(cpu_slots == 64, "cpu_mask has one bit per slot");

std::string_view type_name(std::uint32_t type) {
  const std::string_view name = isa::map_type_name(type);
  return name.empty() ? "unknown" : name;
}

bool is_per_cpu(std::uint32_t type) {
  const auto t = static_cast<isa::MapType>(type);
  return t == isa::MapType::percpu_array || t == isa::MapType::percpu_hash ||
         t == isa::MapType::lru_percpu_hash;
}

// Ring buffer record header: the length in the low bits, then these flags (as in Linux).
constexpr std::uint32_t ringbuf_busy = 1u << 31;
constexpr std::uint32_t ringbuf_discard = 1u << 30;
constexpr std::uint32_t ringbuf_length_mask = ringbuf_discard - 1;

std::uint32_t* header_at(std::uint8_t* p) { return reinterpret_cast<std::uint32_t*>(p); }

}  // namespace

int this_cpu() {
  if (cpu_slot.id >= 0) return cpu_slot.id;
  std::uint64_t mask = cpu_mask.load();
  while (~mask != 0) {
    const int bit = std::countr_one(mask);
    if (cpu_mask.compare_exchange_weak(mask, mask | (std::uint64_t{1} << bit))) {
      cpu_slot.id = bit;
      return bit;
    }
  }
  return -1;
}

Map::~Map() = default;

std::size_t Map::host_value_size() const {
  return is_per_cpu(def_.type) ? round8(def_.value_size) * cpu_slots : def_.value_size;
}

Arena::Arena(std::size_t size) : size_(size) {
  const std::size_t bytes = size == 0 ? 64 : (size + 63) & ~std::size_t{63};
  data_ = static_cast<std::uint8_t*>(std::aligned_alloc(64, bytes));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, bytes);
}

Arena::~Arena() { std::free(data_); }

// ---- array --------------------------------------------------------------------------------

ArrayMap::ArrayMap(isa::MapDef def)
    : Map(std::move(def)),
      per_cpu_(is_per_cpu(def_.type)),
      stride_(round8(def_.value_size)),
      arena_(std::size_t{def_.max_entries} * stride_ * (per_cpu_ ? cpu_slots : 1)) {
  if (!def_.initial_value.empty())
    std::memcpy(arena_.data(), def_.initial_value.data(),
                std::min<std::size_t>(def_.initial_value.size(), stride_));
}

std::vector<Region> ArrayMap::regions() const {
  return {Region{reinterpret_cast<std::uint64_t>(arena_.data()), arena_.size(),
                 def_.read_only ? Access::read : Access::read_write, def_.name}};
}

std::uint8_t* ArrayMap::slot(std::uint32_t index, unsigned cpu) const {
  return arena_.data() + (std::size_t{index} * (per_cpu_ ? cpu_slots : 1) + cpu) * stride_;
}

void* ArrayMap::lookup(const void* key) {
  const std::uint32_t index = load_u32(key);
  if (index >= def_.max_entries) return nullptr;
  const int cpu = per_cpu_ ? this_cpu() : 0;
  return cpu < 0 ? nullptr : slot(index, static_cast<unsigned>(cpu));
}

int ArrayMap::update(const void* key, const void* value, std::uint64_t flags) {
  if (flags > update_exist) return -map_errno::inval;
  const std::uint32_t index = load_u32(key);
  if (index >= def_.max_entries) return -map_errno::too_big;
  if (flags == update_noexist) return -map_errno::exists;  // every element exists
  if (def_.read_only) return -map_errno::perm;
  const int cpu = per_cpu_ ? this_cpu() : 0;
  if (cpu < 0) return -map_errno::nomem;
  std::memcpy(slot(index, static_cast<unsigned>(cpu)), value, def_.value_size);
  return 0;
}

int ArrayMap::remove(const void*) { return -map_errno::inval; }

int ArrayMap::host_lookup(const void* key, void* value) const {
  const std::uint32_t index = load_u32(key);
  if (index >= def_.max_entries) return -map_errno::noent;
  if (!per_cpu_) {
    std::memcpy(value, slot(index, 0), def_.value_size);
  } else {
    for (unsigned cpu = 0; cpu < cpu_slots; ++cpu)
      std::memcpy(static_cast<std::uint8_t*>(value) + cpu * stride_, slot(index, cpu), stride_);
  }
  return 0;
}

int ArrayMap::host_update(const void* key, const void* value, std::uint64_t flags) {
  if (flags > update_exist) return -map_errno::inval;
  const std::uint32_t index = load_u32(key);
  if (index >= def_.max_entries) return -map_errno::too_big;
  if (flags == update_noexist) return -map_errno::exists;
  if (!per_cpu_) {
    std::memcpy(slot(index, 0), value, def_.value_size);
  } else {
    for (unsigned cpu = 0; cpu < cpu_slots; ++cpu)
      std::memcpy(slot(index, cpu), static_cast<const std::uint8_t*>(value) + cpu * stride_, def_.value_size);
  }
  return 0;
}

int ArrayMap::next_key(const void* key, void* next) const {
  std::uint32_t index = key == nullptr ? 0xffffffff : load_u32(key);
  if (index >= def_.max_entries) {
    index = 0;
  } else if (index + 1 == def_.max_entries) {
    return -map_errno::noent;
  } else {
    ++index;
  }
  std::memcpy(next, &index, sizeof index);
  return 0;
}

// ---- hash ---------------------------------------------------------------------------------

HashMap::HashMap(isa::MapDef def)
    : Map(std::move(def)),
      per_cpu_(is_per_cpu(def_.type)),
      lru_(type() == isa::MapType::lru_hash || type() == isa::MapType::lru_percpu_hash),
      stride_(round8(def_.value_size)),
      bucket_mask_(static_cast<std::uint32_t>(std::bit_ceil(def_.max_entries)) - 1),
      slot_count_(def_.max_entries + cpu_slots),  // spares for replacements in flight
      keys_(std::make_unique<std::uint8_t[]>(std::size_t{slot_count_} * def_.key_size)),
      next_(slot_count_, none),
      buckets_(std::size_t{bucket_mask_} + 1, none),
      hashes_(std::make_unique<std::atomic<std::uint32_t>[]>(slot_count_)),
      used_(std::make_unique<std::atomic<std::uint8_t>[]>(slot_count_)),
      referenced_(std::make_unique<std::atomic<std::uint8_t>[]>(slot_count_)),
      locks_(std::make_unique<std::mutex[]>(stripes)),
      arena_(std::size_t{slot_count_} * stride_ * (per_cpu_ ? cpu_slots : 1)),
      free_(slot_count_) {
  for (std::uint32_t s = 0; s < slot_count_; ++s) free_[s] = s;
  free_count_ = slot_count_;
}

std::vector<Region> HashMap::regions() const {
  return {
      Region{reinterpret_cast<std::uint64_t>(arena_.data()), arena_.size(), Access::read_write, def_.name}};
}

std::uint32_t HashMap::hash(const void* key) const {
  // A multiply-xorshift mix over 8-byte words.
  const auto* p = static_cast<const std::uint8_t*>(key);
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ def_.key_size;
  std::size_t n = def_.key_size;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
  }
  h ^= h >> 29;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  return static_cast<std::uint32_t>(h);
}

std::uint32_t HashMap::find(std::uint32_t bucket, std::uint32_t h, const void* key) const {
  for (std::uint32_t s = buckets_[bucket]; s != none; s = next_[s]) {
    if (hashes_[s].load(std::memory_order_relaxed) == h && std::memcmp(key_of(s), key, def_.key_size) == 0)
      return s;
  }
  return none;
}

std::uint8_t* HashMap::value_of(std::uint32_t slot, unsigned cpu) const {
  return arena_.data() + (std::size_t{slot} * (per_cpu_ ? cpu_slots : 1) + cpu) * stride_;
}

std::uint32_t HashMap::take_slot() {
  if (lru_) {
    while (count_.load() >= def_.max_entries && evict_one()) {
    }
  }
  std::lock_guard lock(free_mutex_);
  if (free_count_ == 0) return none;
  const std::uint32_t s = free_[free_head_];
  free_head_ = (free_head_ + 1) % slot_count_;
  --free_count_;
  return s;
}

void HashMap::give_slot(std::uint32_t slot) {
  std::lock_guard lock(free_mutex_);
  free_[(free_head_ + free_count_) % slot_count_] = slot;
  ++free_count_;
}

bool HashMap::evict_one() {
  std::lock_guard evict(evict_mutex_);
  for (std::uint32_t n = 0; n < 2 * slot_count_; ++n) {
    const std::uint32_t s = clock_hand_;
    clock_hand_ = (clock_hand_ + 1) % slot_count_;
    if (used_[s].load() == 0) continue;
    if (referenced_[s].exchange(0) != 0) continue;  // a second chance
    const std::uint32_t h = hashes_[s].load();
    const std::uint32_t b = h & bucket_mask_;
    std::lock_guard lock(lock_of(b));
    if (used_[s].load() == 0 || hashes_[s].load() != h) continue;
    for (std::uint32_t* link = &buckets_[b]; *link != none; link = &next_[*link]) {
      if (*link == s) {
        *link = next_[s];
        used_[s].store(0);
        count_.fetch_sub(1);
        give_slot(s);
        return true;
      }
    }
  }
  return false;
}

void* HashMap::lookup(const void* key) {
  const std::uint32_t h = hash(key);
  std::uint32_t s;
  {
    std::lock_guard lock(lock_of(h & bucket_mask_));
    s = find(h & bucket_mask_, h, key);
  }
  if (s == none) return nullptr;
  if (lru_ && referenced_[s].load(std::memory_order_relaxed) == 0)
    referenced_[s].store(1, std::memory_order_relaxed);
  const int cpu = per_cpu_ ? this_cpu() : 0;
  return cpu < 0 ? nullptr : value_of(s, static_cast<unsigned>(cpu));
}

void HashMap::write_value(std::uint32_t slot, const void* value, bool host, bool fresh) {
  const auto* bytes = static_cast<const std::uint8_t*>(value);
  if (!per_cpu_) {
    std::memcpy(value_of(slot, 0), bytes, def_.value_size);
  } else if (host) {
    for (unsigned cpu = 0; cpu < cpu_slots; ++cpu)
      std::memcpy(value_of(slot, cpu), bytes + cpu * stride_, def_.value_size);
  } else {
    const auto mine = static_cast<unsigned>(this_cpu());
    for (unsigned cpu = 0; cpu < cpu_slots; ++cpu) {
      if (cpu == mine)
        std::memcpy(value_of(slot, cpu), bytes, def_.value_size);
      else if (fresh)
        std::memset(value_of(slot, cpu), 0, stride_);
    }
  }
}

int HashMap::upsert(const void* key, const void* value, std::uint64_t flags, bool host) {
  if (flags > update_exist) return -map_errno::inval;
  if (per_cpu_ && !host && this_cpu() < 0) return -map_errno::nomem;
  const std::uint32_t h = hash(key);
  const std::uint32_t b = h & bucket_mask_;
  {
    std::lock_guard lock(lock_of(b));
    const std::uint32_t s = find(b, h, key);
    if (s != none && flags == update_noexist) return -map_errno::exists;
    if (s == none && flags == update_exist) return -map_errno::noent;
    if (s != none && per_cpu_) {  // per-CPU values change in place
      write_value(s, value, host, false);
      return 0;
    }
  }
  // A new element, or a replacement: fill a free slot outside the bucket lock, then link it.
  const std::uint32_t fresh = take_slot();
  if (fresh == none) return lru_ ? -map_errno::nomem : -map_errno::too_big;
  std::memcpy(key_of(fresh), key, def_.key_size);
  hashes_[fresh].store(h);
  referenced_[fresh].store(0);
  write_value(fresh, value, host, true);

  std::uint32_t old = none;
  {
    std::lock_guard lock(lock_of(b));
    std::uint32_t* link = &buckets_[b];
    while (*link != none &&
           !(hashes_[*link].load() == h && std::memcmp(key_of(*link), key, def_.key_size) == 0))
      link = &next_[*link];
    old = *link;
    int error = 0;
    if (old != none && flags == update_noexist) error = -map_errno::exists;
    if (old == none && flags == update_exist) error = -map_errno::noent;
    if (old == none && error == 0 && !lru_ && count_.fetch_add(1) >= def_.max_entries) {
      count_.fetch_sub(1);
      error = -map_errno::too_big;
    }
    if (error != 0) {
      give_slot(fresh);
      return error;
    }
    if (old == none) {
      if (lru_) count_.fetch_add(1);
      next_[fresh] = buckets_[b];
      buckets_[b] = fresh;
    } else if (per_cpu_) {  // raced with another insert of this key: update it in place
      write_value(old, value, host, false);
      give_slot(fresh);
      return 0;
    } else {
      next_[fresh] = next_[old];
      *link = fresh;
      used_[old].store(0);
    }
    used_[fresh].store(1);
  }
  if (old != none) give_slot(old);
  return 0;
}

int HashMap::update(const void* key, const void* value, std::uint64_t flags) {
  return upsert(key, value, flags, false);
}

int HashMap::host_update(const void* key, const void* value, std::uint64_t flags) {
  return upsert(key, value, flags, true);
}

int HashMap::remove(const void* key) {
  const std::uint32_t h = hash(key);
  const std::uint32_t b = h & bucket_mask_;
  std::uint32_t s = none;
  {
    std::lock_guard lock(lock_of(b));
    for (std::uint32_t* link = &buckets_[b]; *link != none; link = &next_[*link]) {
      if (hashes_[*link].load() == h && std::memcmp(key_of(*link), key, def_.key_size) == 0) {
        s = *link;
        *link = next_[s];
        used_[s].store(0);
        count_.fetch_sub(1);
        break;
      }
    }
  }
  if (s == none) return -map_errno::noent;
  give_slot(s);
  return 0;
}

int HashMap::host_lookup(const void* key, void* value) const {
  const std::uint32_t h = hash(key);
  std::lock_guard lock(lock_of(h & bucket_mask_));
  const std::uint32_t s = find(h & bucket_mask_, h, key);
  if (s == none) return -map_errno::noent;
  if (!per_cpu_) {
    std::memcpy(value, value_of(s, 0), def_.value_size);
  } else {
    for (unsigned cpu = 0; cpu < cpu_slots; ++cpu)
      std::memcpy(static_cast<std::uint8_t*>(value) + cpu * stride_, value_of(s, cpu), stride_);
  }
  return 0;
}

int HashMap::next_key(const void* key, void* next) const {
  std::uint32_t start = 0;
  if (key != nullptr) {
    const std::uint32_t h = hash(key);
    const std::uint32_t b = h & bucket_mask_;
    std::lock_guard lock(lock_of(b));
    const std::uint32_t s = find(b, h, key);
    if (s != none) {
      if (next_[s] != none) {
        std::memcpy(next, key_of(next_[s]), def_.key_size);
        return 0;
      }
      start = b + 1;
    }
  }
  for (std::size_t b = start; b <= bucket_mask_; ++b) {
    std::lock_guard lock(lock_of(static_cast<std::uint32_t>(b)));
    if (buckets_[b] != none) {
      std::memcpy(next, key_of(buckets_[b]), def_.key_size);
      return 0;
    }
  }
  return -map_errno::noent;
}

// ---- ring buffer --------------------------------------------------------------------------

RingBuffer::RingBuffer(isa::MapDef def)
    : Map(std::move(def)), mask_(def_.max_entries - 1), data_(def_.max_entries) {}

std::vector<Region> RingBuffer::regions() const {
  return {Region{reinterpret_cast<std::uint64_t>(data_.data()), data_.size(), Access::read_write, def_.name}};
}

void* RingBuffer::reserve(std::uint64_t size) {
  const std::uint64_t capacity = mask_ + 1;
  if (size > ringbuf_length_mask || round8(size + 8) > capacity) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  const std::uint64_t total = round8(size + 8);
  std::lock_guard lock(producer_mutex_);
  const std::uint64_t prod = producer_.load(std::memory_order_relaxed);
  const std::uint64_t cons = consumer_.load(std::memory_order_acquire);
  const std::uint64_t pos = prod & mask_;
  const std::uint64_t pad = pos + total > capacity ? capacity - pos : 0;
  if (prod + pad + total - cons > capacity) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (pad != 0)
    __atomic_store_n(header_at(data_.data() + pos), static_cast<std::uint32_t>(pad - 8) | ringbuf_discard,
                     __ATOMIC_RELEASE);
  std::uint8_t* record = data_.data() + ((prod + pad) & mask_);
  __atomic_store_n(header_at(record), static_cast<std::uint32_t>(size) | ringbuf_busy, __ATOMIC_RELEASE);
  __atomic_store_n(header_at(record + 4), std::uint32_t{0}, __ATOMIC_RELAXED);
  producer_.store(prod + pad + total, std::memory_order_release);
  return record + 8;
}

bool RingBuffer::commit(void* sample, bool discard) {
  const auto addr = reinterpret_cast<std::uint64_t>(sample);
  const auto base = reinterpret_cast<std::uint64_t>(data_.data());
  if (addr < base + 8 || addr >= base + mask_ + 1 || (addr - base) % 8 != 0) return false;
  std::uint32_t* header = header_at(static_cast<std::uint8_t*>(sample) - 8);
  const std::uint32_t h = __atomic_load_n(header, __ATOMIC_ACQUIRE);
  if ((h & ringbuf_busy) == 0) return false;
  __atomic_store_n(header, (h & ~ringbuf_busy) | (discard ? ringbuf_discard : 0), __ATOMIC_RELEASE);
  return true;
}

int RingBuffer::output(const void* data, std::uint64_t size) {
  void* record = reserve(size);
  if (record == nullptr) return -map_errno::again;
  if (size != 0) std::memcpy(record, data, size);
  commit(record, false);
  return 0;
}

std::size_t RingBuffer::consume(const std::function<void(std::span<const std::uint8_t>)>& fn) {
  std::size_t n = 0;
  std::uint64_t cons = consumer_.load(std::memory_order_acquire);
  const std::uint64_t prod = producer_.load(std::memory_order_acquire);
  while (cons < prod) {
    std::uint8_t* record = data_.data() + (cons & mask_);
    const std::uint32_t h = __atomic_load_n(header_at(record), __ATOMIC_ACQUIRE);
    if ((h & ringbuf_busy) != 0) break;
    const std::uint64_t length = h & ringbuf_length_mask;
    const std::uint64_t total = round8(length + 8);
    // A program can overwrite headers; never read past what was produced or the data's end.
    if (total > prod - cons || (cons & mask_) + total > mask_ + 1) break;
    if ((h & ringbuf_discard) == 0) {
      fn({record + 8, static_cast<std::size_t>(length)});
      ++n;
    }
    cons += total;
    consumer_.store(cons, std::memory_order_release);
  }
  return n;
}

std::uint64_t RingBuffer::pending() const {
  return producer_.load(std::memory_order_acquire) - consumer_.load(std::memory_order_acquire);
}

// ---- program array ------------------------------------------------------------------------

Status ProgramArray::set(std::uint32_t index, std::shared_ptr<const Executable> program) {
  if (index >= def_.max_entries)
    return Error(
        fmt::format("program array '{}': index {} is past its {} entries", name(), index, def_.max_entries));
  std::lock_guard lock(mutex_);
  programs_[index] = std::move(program);
  return {};
}

std::shared_ptr<const Executable> ProgramArray::get(std::uint32_t index) const {
  if (index >= def_.max_entries) return nullptr;
  std::lock_guard lock(mutex_);
  return programs_[index].lock();
}

int ProgramArray::remove(const void* key) {
  const std::uint32_t index = load_u32(key);
  if (index >= def_.max_entries) return -map_errno::inval;
  std::lock_guard lock(mutex_);
  if (programs_[index].expired()) return -map_errno::noent;
  programs_[index].reset();
  return 0;
}

int ProgramArray::host_lookup(const void* key, void* value) const {
  const std::uint32_t index = load_u32(key);
  if (!get(index)) return -map_errno::noent;
  const std::uint32_t one = 1;  // Linux gives the program's id; here: "a program is set"
  std::memcpy(value, &one, sizeof one);
  return 0;
}

int ProgramArray::next_key(const void* key, void* next) const {
  std::uint32_t index = key == nullptr ? 0xffffffff : load_u32(key);
  index = index >= def_.max_entries ? 0 : index + 1;
  if (index >= def_.max_entries) return -map_errno::noent;
  std::memcpy(next, &index, sizeof index);
  return 0;
}

// ---- creation and sets --------------------------------------------------------------------

Result<std::unique_ptr<Map>> create_map(const isa::MapDef& def) {
  auto fail = [&](const std::string& why) {
    return Error(fmt::format("map '{}' ({} {}): {}", def.name, type_name(def.type), def.type, why));
  };
  constexpr std::uint64_t max_bytes = std::uint64_t{1} << 30;
  const std::uint64_t copies = is_per_cpu(def.type) ? cpu_slots : 1;
  const std::uint64_t value_bytes = std::uint64_t{def.max_entries} * round8(def.value_size) * copies;
  switch (static_cast<isa::MapType>(def.type)) {
    case isa::MapType::array:
    case isa::MapType::percpu_array:
      if (def.key_size != 4)
        return fail(fmt::format("key_size is {}, arrays take 4-byte keys", def.key_size));
      if (def.value_size == 0 || def.max_entries == 0) return fail("value_size and max_entries must be > 0");
      if (value_bytes > max_bytes) return fail("needs more than 1 GiB");
      return std::unique_ptr<Map>(std::make_unique<ArrayMap>(def));
    case isa::MapType::hash:
    case isa::MapType::percpu_hash:
    case isa::MapType::lru_hash:
    case isa::MapType::lru_percpu_hash:
      if (def.key_size == 0 || def.value_size == 0 || def.max_entries == 0)
        return fail("key_size, value_size and max_entries must be > 0");
      if (def.max_entries > (1u << 28) ||
          value_bytes + std::uint64_t{def.max_entries} * def.key_size > max_bytes)
        return fail("needs more than 1 GiB");
      return std::unique_ptr<Map>(std::make_unique<HashMap>(def));
    case isa::MapType::ringbuf:
      if (def.max_entries < 16 || !std::has_single_bit(def.max_entries) || def.max_entries > max_bytes)
        return fail(fmt::format("max_entries {} must be a power of two from 16 to 1 GiB", def.max_entries));
      if (def.key_size != 0 || def.value_size != 0) return fail("ring buffers have no key or value size");
      return std::unique_ptr<Map>(std::make_unique<RingBuffer>(def));
    case isa::MapType::prog_array:
      if (def.key_size != 4 || def.value_size != 4) return fail("program arrays take 4-byte keys and values");
      if (def.max_entries == 0 || def.max_entries > (1u << 20)) return fail("max_entries must be 1 to 2^20");
      return std::unique_ptr<Map>(std::make_unique<ProgramArray>(def));
  }
  return fail(
      "this map type is not supported (hash, array, prog_array, percpu_hash, percpu_array, lru_hash, "
      "lru_percpu_hash, ringbuf)");
}

Result<Map*> MapSet::add(const isa::MapDef& def) {
  if (Map* existing = find(def.name)) {
    const isa::MapDef& d = existing->def();
    if (d.type != def.type || d.key_size != def.key_size || d.value_size != def.value_size ||
        d.max_entries != def.max_entries || d.read_only != def.read_only)
      return Error(fmt::format("map '{}' already exists with another definition", def.name));
    return existing;
  }
  auto map = create_map(def);
  if (!map) return map.error();
  maps_.push_back(std::move(map).value());
  return maps_.back().get();
}

Map* MapSet::find(std::string_view name) const {
  for (const auto& m : maps_)
    if (m->name() == name) return m.get();
  return nullptr;
}

Map* MapSet::map_at(std::uint64_t address) const {
  for (const auto& m : maps_)
    if (reinterpret_cast<std::uint64_t>(m.get()) == address) return m.get();
  return nullptr;
}

Result<std::vector<MapAddress>> MapSet::bind(const isa::Program& program) {
  std::vector<MapAddress> addresses;
  for (const isa::MapDef& def : program.maps) {
    auto map = add(def);
    if (!map) {
      Error e = map.error();
      if (e.section.empty()) e.section = program.section;
      return e;
    }
    addresses.push_back({reinterpret_cast<std::uint64_t>(*map), (*map)->value_address()});
  }
  return addresses;
}

void MapSet::attach(RunContext& ctx) const {
  if (ctx.maps() == this) return;
  ctx.set_maps(this);
  for (const auto& m : maps_)
    for (const Region& r : m->regions()) ctx.add_region(r);
}

std::string describe_map(const Map& map) {
  const isa::MapDef& d = map.def();
  std::string out = fmt::format("map {}: {}, key {} B, value {} B, max_entries {}\n", d.name,
                                type_name(d.type), d.key_size, d.value_size, d.max_entries);
  auto hex = [](const std::uint8_t* p, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += fmt::format("{}{:02x}", i ? " " : "", p[i]);
    return s;
  };
  if (const auto* ring = dynamic_cast<const RingBuffer*>(&map)) {
    out += fmt::format("  {} bytes not consumed, {} records dropped\n", ring->pending(), ring->dropped());
    return out;
  }
  const bool per_cpu = is_per_cpu(d.type);
  const bool array = map.type() == isa::MapType::array || map.type() == isa::MapType::percpu_array;
  const std::size_t stride = round8(d.value_size);
  std::vector<std::uint8_t> key(d.key_size), next(d.key_size), value(map.host_value_size());
  std::size_t shown = 0, zero = 0;
  for (int rc = map.next_key(nullptr, next.data()); rc == 0; rc = map.next_key(key.data(), next.data())) {
    key = next;
    if (map.host_lookup(key.data(), value.data()) != 0) continue;
    std::string text;
    if (!per_cpu) {
      text = hex(value.data(), d.value_size);
    } else {
      for (unsigned cpu = 0; cpu < cpu_slots; ++cpu) {
        const std::uint8_t* v = value.data() + cpu * stride;
        if (std::any_of(v, v + d.value_size, [](std::uint8_t b) { return b != 0; }))
          text += fmt::format("{}cpu{}: {}", text.empty() ? "" : "; ", cpu, hex(v, d.value_size));
      }
    }
    const bool all_zero = per_cpu ? text.empty()
                                  : std::all_of(value.begin(), value.begin() + d.value_size,
                                                [](std::uint8_t b) { return b == 0; });
    if (array && all_zero) {
      ++zero;
      continue;
    }
    out += fmt::format("  {} => {}\n", hex(key.data(), key.size()), text.empty() ? "(all cpus zero)" : text);
    ++shown;
  }
  if (zero != 0) out += fmt::format("  ({} more entries, all zero)\n", zero);
  if (shown == 0 && zero == 0) out += "  (empty)\n";
  return out;
}

}  // namespace bpfvm::vm
