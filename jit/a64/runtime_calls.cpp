#include "jit/a64/runtime_calls.hpp"

#include <cstring>
#include <limits>
#include <string>

#include "isa/isa.hpp"

namespace bpfvm::jit::a64 {
namespace {

constexpr bool allows(vm::Access have, vm::Access need) {
  return (static_cast<unsigned>(have) & static_cast<unsigned>(need)) == static_cast<unsigned>(need);
}

void record(State* state, vm::TrapKind kind, std::uint64_t addr, std::uint32_t size, std::string region,
            std::string detail = {}) {
  *state->trap = vm::Trap{kind, 0, addr, size, std::move(region), std::move(detail)};
  state->trap_code = static_cast<std::uint64_t>(TrapCode::recorded);
}

// Caches region `index` for the access kinds it allows, when a hit in it is exactly what the
// slow path would answer: no earlier region overlaps it (the first region containing an access
// decides), and its addresses are far from the top of the address space (so that addr - lo
// cannot wrap into the accepted range).
void cache_region(State* state, std::size_t index) {
  const auto regions = state->ctx->regions();
  const vm::Region& r = regions[index];
  if (r.size >= (std::uint64_t{1} << 62) || r.start >= (std::uint64_t{1} << 62)) return;
  for (std::size_t j = 0; j < index; ++j) {
    const vm::Region& e = regions[j];
    if (e.start < r.start + r.size && r.start < e.start + e.size) return;
  }
  static constexpr vm::Access kinds[access_kinds] = {vm::Access::read, vm::Access::write,
                                                     vm::Access::read_write};
  for (int k = 0; k < access_kinds; ++k) {
    if (!allows(r.access, kinds[k])) continue;
    for (int s = 0; s < access_sizes; ++s) {
      const std::uint64_t size = std::uint64_t{1} << s;
      state->cache[k][s] = {r.start, r.size >= size ? r.size - size + 1 : 0};
    }
  }
}

// The interpreter's region walk: allowed, a permission trap, or an out-of-bounds trap naming the
// region hit or nearest (the stack when the miss is within a frame of it).
bool check_regions(State* state, std::uint64_t addr, std::uint32_t size, vm::Access need, std::uint64_t r10) {
  const std::uint64_t end = addr + size;
  const auto regions = state->ctx->regions();
  const vm::Region* near = nullptr;
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const vm::Region& r = regions[i];
    if (addr >= r.start && end >= addr && end <= r.start + r.size) {
      if (allows(r.access, need)) {
        cache_region(state, i);
        return true;
      }
      record(state, vm::TrapKind::permission, addr, size, std::string(r.name));
      return false;
    }
    if (addr >= r.start && addr < r.start + r.size)
      near = &r;
    else if (near == nullptr && end > r.start && addr < r.start)
      near = &r;
  }
  const std::uint64_t stack_lo = r10 - isa::stack_frame_size;
  if (near == nullptr && addr >= stack_lo - isa::stack_frame_size &&
      addr < state->stack_hi + isa::stack_frame_size) {
    record(state, vm::TrapKind::out_of_bounds, addr, size, "stack");
    return false;
  }
  record(state, vm::TrapKind::out_of_bounds, addr, size, near ? std::string(near->name) : std::string());
  return false;
}

std::uint64_t after_helper(State* state, std::uint64_t result) {
  // A helper may have lent or withdrawn regions.
  clear_region_caches(*state);
  if (state->ctx->failure())
    record(state, vm::TrapKind::helper_error, 0, 0, {}, *state->ctx->failure());
  else if (state->ctx->tail_call_pending())
    state->trap_code = static_cast<std::uint64_t>(TrapCode::tail_call);
  return result;
}

}  // namespace

void clear_region_caches(State& state) { std::memset(state.cache, 0, sizeof state.cache); }

std::uint64_t check_access(State* state, std::uint64_t addr, std::uint64_t packed, std::uint64_t r10) {
  const auto size = static_cast<std::uint32_t>(packed & 0xff);
  const auto need = static_cast<vm::Access>(packed >> 8);
  const std::uint64_t stack_lo = r10 - isa::stack_frame_size;
  if (addr >= stack_lo && addr + size <= state->stack_hi && addr + size > addr) return 1;
  return check_regions(state, addr, size, need, r10) ? 1 : 0;
}

std::uint64_t legacy_load(State* state, std::uint64_t offset, std::uint64_t size, std::uint64_t r10) {
  const auto regions = state->ctx->regions();
  const std::uint64_t addr = (regions.empty() ? 0 : regions[0].start) + offset;
  const auto bytes = static_cast<std::uint32_t>(size);
  if (regions.empty()) {
    record(state, vm::TrapKind::out_of_bounds, addr, bytes, {});
    return 0;
  }
  if (!check_regions(state, addr, bytes, vm::Access::read, r10)) return 0;
  std::uint64_t v = 0;
  const auto* p = reinterpret_cast<const std::uint8_t*>(static_cast<std::uintptr_t>(addr));
  for (std::uint32_t i = 0; i < bytes; ++i) v = v << 8 | p[i];  // network byte order
  state->loaded = v;
  return 1;
}

std::uint64_t call_helper(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                          std::uint64_t r5, State* state, vm::HelperFn fn) {
  return after_helper(state, fn(r1, r2, r3, r4, r5, state->ctx));
}

std::uint64_t call_indirect(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                            std::uint64_t r5, State* state, std::uint64_t target, std::uint64_t r0) {
  const vm::Helper* h = target <= std::numeric_limits<std::uint32_t>::max()
                            ? state->helpers->find(static_cast<std::uint32_t>(target))
                            : nullptr;
  if (h == nullptr) {
    record(state, vm::TrapKind::bad_call_target, target, 0, {});
    return r0;
  }
  return after_helper(state, h->fn(r1, r2, r3, r4, r5, state->ctx));
}

RuntimeCalls RuntimeCalls::host() {
  RuntimeCalls c;
  c.check_access = reinterpret_cast<std::uint64_t>(&a64::check_access);
  c.legacy_load = reinterpret_cast<std::uint64_t>(&a64::legacy_load);
  c.call_helper = reinterpret_cast<std::uint64_t>(&a64::call_helper);
  c.call_indirect = reinterpret_cast<std::uint64_t>(&a64::call_indirect);
  return c;
}

}  // namespace bpfvm::jit::a64
