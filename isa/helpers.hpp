// Helper function prototypes: what each argument register must hold and what r0 holds after
// the call. One description serves the verifier (to check a call) and the runtime (to make it).
// The built-in table lists common Linux helpers under their kernel ids (enum bpf_func_id);
// embedders add their own to a HelperSet.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"

namespace bpfvm::isa {

inline constexpr int helper_arg_count = 5;  // r1..r5

enum class ArgKind : std::uint8_t {
  none,                      // the argument is not used (and need not be initialised)
  anything,                  // any initialised value, scalar or pointer
  scalar,                    // an initialised scalar
  const_map_ptr,             // a map (lddw of a map reference)
  map_key,                   // readable memory of the map's key_size (map: the preceding const_map_ptr)
  map_value,                 // readable memory of the map's value_size
  uninit_map_value,          // writable memory of the map's value_size, initialised by the helper
  mem,                       // readable memory; its size is the next argument
  mem_or_null,               // like mem, or the scalar 0
  uninit_mem,                // writable memory, initialised by the helper; its size is the next argument
  const_size,                // size of the preceding memory argument: a bounded scalar > 0
  const_size_or_zero,        // size of the preceding memory argument: a bounded scalar >= 0
  const_alloc_size_or_zero,  // a known scalar: the size of the memory r0 points to after the call
  ctx,                       // the context pointer, unmodified
  stack_or_null,             // a pointer to the stack, or the scalar 0 (callback context)
  func,                      // a bpf-to-bpf function (callback)
  alloc_mem,                 // memory returned by a helper with ReturnKind::alloc_mem_or_null (released)
};

enum class ReturnKind : std::uint8_t {
  integer,            // r0 is a scalar
  none,               // r0 is undefined after the call
  map_value_or_null,  // r0 points to a value of the map argument, or is 0
  alloc_mem_or_null,  // r0 points to memory of the const_alloc_size_or_zero argument's size, or is 0
};

struct HelperPrototype {
  std::uint32_t id = 0;
  std::string name;
  ReturnKind ret = ReturnKind::integer;
  std::array<ArgKind, helper_arg_count> args{};
  // The helper may move or resize packet data, so every packet pointer is stale after it.
  bool changes_packet = false;
  // The callback (ArgKind::func) is called with (u32 index, the stack_or_null argument).
  bool calls_callback = false;

  // How many leading arguments are used.
  int arg_count() const;
};

std::string_view to_string(ArgKind);
std::string_view to_string(ReturnKind);

// The built-in Linux helpers, sorted by id.
std::span<const HelperPrototype> linux_helpers();

// A set of helpers an environment offers: the built-ins, some of them, or the embedder's own.
class HelperSet {
 public:
  HelperSet() = default;
  // Every built-in Linux helper.
  static HelperSet linux_builtin();

  // Adds or replaces (same id) a prototype. Fails when the name belongs to another id, or the
  // prototype is malformed (a size argument that follows no memory argument, a map key/value
  // with no map before it).
  Status add(HelperPrototype proto);
  const HelperPrototype* find(std::uint32_t id) const;
  const HelperPrototype* find(std::string_view name) const;
  std::span<const HelperPrototype> all() const { return helpers_; }

 private:
  std::vector<HelperPrototype> helpers_;  // sorted by id
};

}  // namespace bpfvm::isa
