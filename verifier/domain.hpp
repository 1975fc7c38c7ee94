// The numeric domain of the verifier: a 64-bit value known as signed and unsigned intervals,
// the same two intervals for its low 32 bits, and known bits (a tnum). Each part narrows the
// others (normalize), so a fact learned in one view is seen in all of them.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace bpfvm::verifier {

// Known bits: bit i is known to be value's bit i when mask's bit i is 0.
struct Tnum {
  std::uint64_t value = 0;
  std::uint64_t mask = ~std::uint64_t{0};

  static Tnum constant(std::uint64_t v) { return {v, 0}; }
  static Tnum unknown() { return {0, ~std::uint64_t{0}}; }
  // The tightest tnum containing every value of [lo, hi].
  static Tnum range(std::uint64_t lo, std::uint64_t hi);

  bool is_const() const { return mask == 0; }
  std::uint64_t min() const { return value; }
  std::uint64_t max() const { return value | mask; }
  bool contains(std::uint64_t v) const { return (v & ~mask) == value; }
  // Values in both; nothing when they contradict.
  std::optional<Tnum> meet(Tnum o) const;
  Tnum join(Tnum o) const;
  Tnum low32() const { return {value & 0xffffffffu, mask & 0xffffffffu}; }
  friend bool operator==(const Tnum&, const Tnum&) = default;
};

Tnum tnum_add(Tnum a, Tnum b);
Tnum tnum_sub(Tnum a, Tnum b);
Tnum tnum_and(Tnum a, Tnum b);
Tnum tnum_or(Tnum a, Tnum b);
Tnum tnum_xor(Tnum a, Tnum b);
Tnum tnum_mul(Tnum a, Tnum b);
Tnum tnum_lsh(Tnum a, unsigned k);
Tnum tnum_rsh(Tnum a, unsigned k);
Tnum tnum_arsh(Tnum a, unsigned k);

// Extra widening thresholds, sorted: the program's own bounds (constants its loops compare
// against), so that a counter widens to the bound its loop checks instead of a type limit.
struct Thresholds {
  std::vector<std::uint64_t> u;
  std::vector<std::int64_t> s;

  // c - 1, c and c + 1 (as unsigned and as signed): the last value below a bound, the bound,
  // the first past it.
  void add_bound(std::uint64_t c);
  void sort();
};

struct Scalar {
  std::int64_t smin = std::numeric_limits<std::int64_t>::min();
  std::int64_t smax = std::numeric_limits<std::int64_t>::max();
  std::uint64_t umin = 0;
  std::uint64_t umax = std::numeric_limits<std::uint64_t>::max();
  std::int32_t s32min = std::numeric_limits<std::int32_t>::min();
  std::int32_t s32max = std::numeric_limits<std::int32_t>::max();
  std::uint32_t u32min = 0;
  std::uint32_t u32max = std::numeric_limits<std::uint32_t>::max();
  Tnum bits = Tnum::unknown();

  static Scalar unknown() { return {}; }
  static Scalar constant(std::uint64_t v);
  static Scalar urange(std::uint64_t lo, std::uint64_t hi);
  static Scalar srange(std::int64_t lo, std::int64_t hi);
  // Any value that fits `width` bits zero-extended (a load of that width).
  static Scalar of_width(int width);

  bool is_const() const { return bits.is_const(); }
  std::uint64_t value() const { return bits.value; }
  bool contains(std::uint64_t v) const;
  // Tightens every view from the others; false when no value is left (an infeasible path).
  bool normalize();
  Scalar join(const Scalar& o) const;
  // Values in both; nothing when none.
  std::optional<Scalar> meet(const Scalar& o) const;
  // Pushes bounds that grew past the old ones out to the next threshold (loop widening): the
  // type limits, and `extra` when given.
  Scalar widen(const Scalar& newer, const Thresholds* extra = nullptr) const;
  // The value with its upper 32 bits cleared (an ALU32 result).
  Scalar zext32() const;
  // The low 32 bits sign-extended to 64 (the operand of a signed 32-bit operation).
  Scalar sext32() const;
  // The low `width` bits sign-extended (movsx, sign-extending loads).
  Scalar sext(int width) const;
  std::string to_string() const;
  friend bool operator==(const Scalar&, const Scalar&) = default;
};

// 64-bit ALU transfer functions, BPF semantics (division by zero gives 0, modulo by zero leaves
// the dividend, shifts mask their count).
Scalar scalar_add(const Scalar& a, const Scalar& b);
Scalar scalar_sub(const Scalar& a, const Scalar& b);
Scalar scalar_mul(const Scalar& a, const Scalar& b);
Scalar scalar_udiv(const Scalar& a, const Scalar& b);
Scalar scalar_umod(const Scalar& a, const Scalar& b);
Scalar scalar_sdiv(const Scalar& a, const Scalar& b);
Scalar scalar_smod(const Scalar& a, const Scalar& b);
Scalar scalar_and(const Scalar& a, const Scalar& b);
Scalar scalar_or(const Scalar& a, const Scalar& b);
Scalar scalar_xor(const Scalar& a, const Scalar& b);
// Shifts take the count already masked to the operand width when it is known.
Scalar scalar_lsh(const Scalar& a, const Scalar& count, int width);
Scalar scalar_rsh(const Scalar& a, const Scalar& count, int width);
Scalar scalar_arsh(const Scalar& a, const Scalar& count, int width);

}  // namespace bpfvm::verifier
