// Program types: what r1 holds at entry, the context's layout and access rules, and which helpers
// exist. Built in: raw (the conformance model), xdp, socket_filter, sched_cls; embedders describe
// their own with the same structure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/helpers.hpp"

namespace bpfvm::verifier {

// What a context field holds when it is read.
enum class FieldKind : std::uint8_t {
  scalar,       // a number
  packet,       // pointer to the first byte of packet data
  packet_end,   // pointer one past the last byte of packet data
  packet_meta,  // pointer to the metadata in front of the packet data
  region,       // pointer to an embedder region (Environment::regions[region])
};

struct CtxField {
  std::string name;
  std::uint32_t offset = 0;
  std::uint32_t size = 4;  // bytes; pointer fields must be read whole
  FieldKind kind = FieldKind::scalar;
  bool writable = false;     // scalar fields only: the program may store this size into it
  std::uint32_t region = 0;  // FieldKind::region: index into Environment::regions
};

// Memory the embedder exposes through a context pointer field.
struct Region {
  std::string name;
  std::uint64_t size = 0;
  bool writable = false;
};

struct Environment {
  std::string name;
  // Entry: r1 is the context (ctx_size bytes described by `fields`), or, when `raw_memory` is
  // set, r1 points to input memory and r2 holds its length (the conformance model).
  std::uint32_t ctx_size = 0;
  std::vector<CtxField> fields;
  std::vector<Region> regions;
  bool raw_memory = false;
  // raw: the memory's exact size; nothing means unknown (then r2 is the only bound). Size 0
  // means no memory: r1 = 0 and r2 = 0, as the conformance runner passes them.
  std::optional<std::uint64_t> raw_memory_size;
  bool packet_writable = false;
  // Legacy ld_abs/ld_ind packet loads (the context must be in r6).
  bool legacy_packet_loads = false;
  // Pointers may become numbers (stored to memory, returned, compared with scalars). The
  // sandbox stays safe either way; this hides addresses from programs that must not see them.
  bool allow_pointer_leaks = false;
  // r0 at the program's exit must be a number, whatever allow_pointer_leaks says: the result
  // should not depend on where memory happens to be.
  bool scalar_return = true;
  // `callx` on a register holding a known number calls the helper with that id (conformance).
  bool callx_helper_ids = false;
  isa::HelperSet helpers;

  // The context field that contains [offset, offset + size), if any.
  const CtxField* field_at(std::uint32_t offset, std::uint32_t size) const;
};

// raw: r1 = input memory of `mem_size` bytes (unknown when nothing), r2 = its length. Helpers:
// the Linux set, with helper 5 taking one argument as the conformance suite's helper does.
Environment raw_environment(std::optional<std::uint64_t> mem_size);
Environment xdp_environment();
Environment socket_filter_environment();
Environment sched_cls_environment();

// By name: raw, xdp, socket_filter, sched_cls (raw with an unknown size).
Result<Environment> environment_by_name(std::string_view name, std::optional<std::uint64_t> mem_size = {});

// Checks an embedder's environment: fields inside the context, not overlapping, pointer fields
// 4 or 8 bytes and read-only, region indices valid.
Status check_environment(const Environment& env);

}  // namespace bpfvm::verifier
