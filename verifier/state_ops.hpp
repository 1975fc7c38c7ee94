// Operations on abstract states (internal): ids and ranges, join, widening, printing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verifier/state.hpp"

namespace bpfvm::verifier::detail {

// The proven range of a packet id (see Reg); no_range when nothing is known.
std::int64_t range_of(const State& s, std::uint32_t id);
void set_range(State& s, std::uint32_t id, std::int64_t r);
void raise_range(State& s, std::uint32_t id, std::int64_t r);
// Registers whose value loop progress follows: numbers, and offsets into a stack frame, a map
// value or a memory block.
bool tracks_progress(RegKind k);
// Forgets a register's loop progress.
void clear_step(Reg& r);
// Starts loop progress `tag` for the registers in r0..r9 that track it and no active loop does.
void set_progress(State& s, std::uint32_t tag, const std::vector<std::uint32_t>& active);
// Ends loop progress `tag` everywhere in the state.
void clear_progress(State& s, std::uint32_t tag);
// An id no register of `s` uses.
std::uint32_t fresh_id(const State& s);
// Renumbers ids in order of first use, so that equal states compare equal.
void canonicalize(State& s);
// A hash of a canonical state (equal states hash equal).
std::uint64_t state_hash(const State& s);
// The least state above both (both have the same frames). The result is canonical.
State join(const State& a, const State& b, bool allow_leaks);
// `joined` (= join(old, newer)) with every scalar bound that moved pushed to a threshold.
State widen(const State& old, const State& joined, const Thresholds* extra = nullptr);

struct RegNames {
  std::function<std::string(std::uint32_t)> map;
  std::function<std::string(std::uint32_t)> function;
};
std::string offset_text(const Scalar& v);
std::string reg_text(const Reg& r, const State& s, const RegNames& names);
std::string state_text(const State& s, const RegNames& names);

}  // namespace bpfvm::verifier::detail
