#include "api/entry_contract.hpp"

#include <cstring>

#include <fmt/format.h>

namespace bpfvm {
namespace {

bool allows(vm::Access have, vm::Access need) {
  return (static_cast<unsigned>(have) & static_cast<unsigned>(need)) == static_cast<unsigned>(need);
}

// True when one of the run's regions holds [start, start + size) and allows `need`.
bool covered(const vm::RunContext& ctx, std::uint64_t start, std::uint64_t size, vm::Access need) {
  if (start + size < start) return false;
  for (const vm::Region& r : ctx.regions())
    if (start >= r.start && start + size <= r.start + r.size && allows(r.access, need)) return true;
  return false;
}

std::string_view access_text(vm::Access a) {
  return a == vm::Access::read ? "readable" : a == vm::Access::write ? "writable" : "readable and writable";
}

bool is_packet_field(verifier::FieldKind k) {
  return k == verifier::FieldKind::packet || k == verifier::FieldKind::packet_end ||
         k == verifier::FieldKind::packet_meta;
}

}  // namespace

Result<EntryContract> EntryContract::of(const verifier::Environment& env) {
  EntryContract c;
  if (env.raw_memory) {
    if (!env.raw_memory_size) {
      c.entry_ = Entry::length_memory;
    } else {
      c.entry_ = *env.raw_memory_size == 0 ? Entry::no_memory : Entry::sized_memory;
      c.bytes_ = *env.raw_memory_size;
    }
    return c;
  }
  c.entry_ = Entry::context;
  c.bytes_ = env.ctx_size;
  bool writable = false;
  for (const verifier::CtxField& f : env.fields) {
    writable = writable || f.writable;
    if (f.kind == verifier::FieldKind::region) {
      const verifier::Region& r = env.regions.at(f.region);
      c.region_fields_.push_back(
          {f.offset, f.size, r.size, r.writable ? vm::Access::read_write : vm::Access::read, r.name});
    } else if (is_packet_field(f.kind)) {
      // Packet pointers are only as good as whoever fills the fields: a vm::PacketContext of the
      // program type, with the layout of bpfvm's built-in environment of that name.
      const auto kind = vm::context_kind(env.name);
      auto builtin = verifier::environment_by_name(env.name);
      const verifier::CtxField* same = builtin ? builtin->field_at(f.offset, f.size) : nullptr;
      if (!kind || !same || same->kind != f.kind || same->offset != f.offset || same->size != f.size)
        return Error(fmt::format(
            "environment '{}': packet field '{}' at offset {} is not where a {} packet context keeps it, "
            "so no run can match what was verified",
            env.name, f.name, f.offset, kind ? env.name : "built-in"));
      c.packet_ = kind;
      c.packet_type_ = env.name;
    }
  }
  c.context_access_ = writable ? vm::Access::read_write : vm::Access::read;
  return c;
}

std::string EntryContract::mismatch(const vm::RunContext& ctx) const {
  const std::uint64_t r1 = ctx.args()[0], r2 = ctx.args()[1];
  switch (entry_) {
    case Entry::no_memory:
      if (r1 != 0 || r2 != 0)
        return fmt::format("verified with no input memory (r1 = 0, r2 = 0), run with r1 = {:#x}, r2 = {}", r1,
                           r2);
      return {};
    case Entry::sized_memory:
      if (r2 != bytes_) return fmt::format("verified for {} bytes of input memory, run with {}", bytes_, r2);
      if (!covered(ctx, r1, bytes_, vm::Access::read_write))
        return fmt::format(
            "r1 = {:#x} is not the start of {} readable and writable bytes of the run's regions", r1, bytes_);
      return {};
    case Entry::length_memory:
      if (r2 != 0 && !covered(ctx, r1, r2, vm::Access::read_write))
        return fmt::format(
            "r1 = {:#x}, r2 = {}: the run's regions hold no {} readable and writable bytes there", r1, r2,
            r2);
      return {};
    case Entry::context: break;
  }
  if (!covered(ctx, r1, bytes_, context_access_))
    return fmt::format("r1 = {:#x} is not the start of a {}-byte {} context in the run's regions", r1, bytes_,
                       access_text(context_access_));
  if (packet_ &&
      (ctx.packet() == nullptr || ctx.packet()->kind() != *packet_ || ctx.packet()->address() != r1))
    return fmt::format("the program was verified for {} packets: run it on a packet context of that type",
                       packet_type_);
  for (const RegionField& f : region_fields_) {
    std::uint64_t value = 0;
    std::memcpy(&value, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(r1 + f.offset)), f.size);
    if (!covered(ctx, value, f.bytes, f.access))
      return fmt::format("context field at offset {} = {:#x} does not point to {} {} bytes (region '{}')",
                         f.offset, value, f.bytes, access_text(f.access), f.name);
  }
  return {};
}

}  // namespace bpfvm
