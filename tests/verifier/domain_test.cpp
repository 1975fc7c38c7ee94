// The numeric domain against concrete BPF arithmetic: for values drawn from abstract inputs, the
// concrete result must lie in the abstract result (soundness), and exact inputs give exact results.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "verifier/domain.hpp"

using bpfvm::verifier::Scalar;
using bpfvm::verifier::Tnum;
using u64 = std::uint64_t;
using s64 = std::int64_t;

namespace {

// Concrete BPF ALU64 semantics (RFC 9669 section 4.1), written independently of the domain.
u64 concrete(int op, u64 a, u64 b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return b == 0 ? 0 : a / b;
    case 4: return b == 0 ? a : a % b;
    case 5: return a & b;
    case 6: return a | b;
    case 7: return a ^ b;
    case 8: return a << (b & 63);
    case 9: return a >> (b & 63);
    case 10: return static_cast<u64>(static_cast<s64>(a) >> (b & 63));
    case 11: {
      auto x = static_cast<s64>(a), y = static_cast<s64>(b);
      if (y == 0) return 0;
      if (x == INT64_MIN && y == -1) return a;
      return static_cast<u64>(x / y);
    }
    case 12: {
      auto x = static_cast<s64>(a), y = static_cast<s64>(b);
      if (y == 0) return a;
      if (y == -1) return 0;
      return static_cast<u64>(x % y);
    }
  }
  return 0;
}

Scalar abstract(int op, const Scalar& a, const Scalar& b) {
  using namespace bpfvm::verifier;
  Scalar count = scalar_and(b, Scalar::constant(63));
  switch (op) {
    case 0: return scalar_add(a, b);
    case 1: return scalar_sub(a, b);
    case 2: return scalar_mul(a, b);
    case 3: return scalar_udiv(a, b);
    case 4: return scalar_umod(a, b);
    case 5: return scalar_and(a, b);
    case 6: return scalar_or(a, b);
    case 7: return scalar_xor(a, b);
    case 8: return scalar_lsh(a, count, 64);
    case 9: return scalar_rsh(a, count, 64);
    case 10: return scalar_arsh(a, count, 64);
    case 11: return scalar_sdiv(a, b);
    case 12: return scalar_smod(a, b);
  }
  return Scalar::unknown();
}

// An abstract value and concrete members of it.
struct Sample {
  Scalar abs;
  std::vector<u64> members;
};

Sample sample(std::mt19937_64& rng) {
  static const u64 edges[] = {0,
                              1,
                              2,
                              7,
                              8,
                              63,
                              64,
                              255,
                              0x7fffffff,
                              0x80000000,
                              0xffffffff,
                              0x100000000,
                              0x7fffffffffffffff,
                              0x8000000000000000,
                              ~u64{0},
                              ~u64{0} - 1,
                              static_cast<u64>(-64)};
  auto pick = [&] {
    switch (rng() % 4) {
      case 0: return edges[rng() % std::size(edges)];
      case 1: return rng() % 300;
      case 2: return static_cast<u64>(-static_cast<s64>(rng() % 300));
      default: return rng();
    }
  };
  Sample s;
  u64 x = pick(), y = pick();
  switch (rng() % 4) {
    case 0: s.abs = Scalar::constant(x); break;
    case 1: s.abs = Scalar::urange(std::min(x, y), std::max(x, y)); break;
    case 2: s.abs = Scalar::srange(std::min<s64>(x, y), std::max<s64>(x, y)); break;
    default: {
      u64 mask = rng() & rng();
      s.abs = Scalar::unknown();
      s.abs.bits = Tnum{x & ~mask, mask};
      REQUIRE(s.abs.normalize());
    }
  }
  // Members: the bounds and random values that satisfy every view.
  for (u64 v : {s.abs.umin, s.abs.umax, static_cast<u64>(s.abs.smin), static_cast<u64>(s.abs.smax),
                s.abs.bits.value, s.abs.bits.value | s.abs.bits.mask})
    if (s.abs.contains(v)) s.members.push_back(v);
  for (int i = 0; i < 40; ++i) {
    u64 v = (rng() & s.abs.bits.mask) | s.abs.bits.value;
    u64 span = s.abs.umax - s.abs.umin + 1;  // 0 when the range is everything
    if (span && i % 2) v = s.abs.umin + rng() % span;
    if (s.abs.contains(v)) s.members.push_back(v);
  }
  return s;
}

}  // namespace

TEST_CASE("tnum basics", "[verifier][domain]") {
  auto r = Tnum::range(16, 31);
  CHECK(r.value == 16);
  CHECK(r.mask == 15);
  CHECK(Tnum::range(5, 5).is_const());
  CHECK(Tnum::range(0, ~u64{0}).mask == ~u64{0});
  CHECK_FALSE(Tnum::constant(1).meet(Tnum::constant(2)).has_value());
  auto j = Tnum::constant(4).join(Tnum::constant(6));
  CHECK(j.value == 4);
  CHECK(j.mask == 2);
  // 0b1x + 0b01 = 0b11 or 0b100: bits 0..2 become unknown except those the carry cannot reach.
  auto sum = bpfvm::verifier::tnum_add(Tnum{2, 1}, Tnum::constant(1));
  CHECK(sum.contains(3));
  CHECK(sum.contains(4));
}

TEST_CASE("constants fold exactly", "[verifier][domain]") {
  using namespace bpfvm::verifier;
  CHECK(scalar_add(Scalar::constant(40), Scalar::constant(2)).value() == 42);
  CHECK(scalar_sub(Scalar::constant(0), Scalar::constant(1)).value() == ~u64{0});
  CHECK(scalar_mul(Scalar::constant(6), Scalar::constant(7)).value() == 42);
  CHECK(scalar_udiv(Scalar::constant(7), Scalar::constant(0)).value() == 0);
  CHECK(scalar_umod(Scalar::constant(7), Scalar::constant(0)).value() == 7);
  CHECK(scalar_sdiv(Scalar::constant(0x8000000000000000), Scalar::constant(~u64{0})).value() ==
        0x8000000000000000);
  CHECK(scalar_smod(Scalar::constant(0x8000000000000000), Scalar::constant(~u64{0})).value() == 0);
  CHECK(Scalar::constant(0xffffffff80000000).zext32().value() == 0x80000000);
  CHECK(Scalar::constant(0x80000000).sext32().value() == 0xffffffff80000000);
  CHECK(Scalar::constant(0x80).sext(8).value() == ~u64{0} - 127);
  CHECK(Scalar::constant(0x7f).sext(8).value() == 0x7f);
}

TEST_CASE("views tighten each other", "[verifier][domain]") {
  Scalar s = Scalar::urange(0, 255);
  CHECK(s.smin == 0);
  CHECK(s.smax == 255);
  CHECK(s.u32max == 255);
  CHECK(s.bits.mask == 255);
  Scalar t = Scalar::srange(-4, -1);
  CHECK(t.umin == static_cast<u64>(-4));
  CHECK(t.umax == ~u64{0});
  CHECK(t.s32min == -4);
  CHECK(t.s32max == -1);
  Scalar bad = Scalar::urange(10, 20);
  bad.smax = 5;
  CHECK_FALSE(bad.normalize());
}

TEST_CASE("ALU transfer functions are sound", "[verifier][domain]") {
  std::mt19937_64 rng(12345);
  const char* names[] = {"add", "sub", "mul", "div",  "mod",  "and", "or",
                         "xor", "lsh", "rsh", "arsh", "sdiv", "smod"};
  for (int op = 0; op < 13; ++op) {
    for (int round = 0; round < 400; ++round) {
      Sample a = sample(rng), b = sample(rng);
      Scalar r = abstract(op, a.abs, b.abs);
      for (u64 x : a.members)
        for (u64 y : b.members) {
          u64 c = concrete(op, x, y);
          if (!r.contains(c)) {
            INFO(names[op] << " " << x << " " << y << " -> " << c << " not in " << r.to_string() << " from "
                           << a.abs.to_string() << " and " << b.abs.to_string());
            FAIL();
          }
        }
    }
  }
}

TEST_CASE("32-bit views are sound", "[verifier][domain]") {
  std::mt19937_64 rng(777);
  for (int round = 0; round < 2000; ++round) {
    Sample a = sample(rng);
    Scalar z = a.abs.zext32(), s = a.abs.sext32(), b8 = a.abs.sext(8), b16 = a.abs.sext(16);
    for (u64 x : a.members) {
      CHECK(z.contains(x & 0xffffffff));
      CHECK(s.contains(static_cast<u64>(static_cast<s64>(static_cast<std::int32_t>(x)))));
      CHECK(b8.contains(static_cast<u64>(static_cast<s64>(static_cast<std::int8_t>(x)))));
      CHECK(b16.contains(static_cast<u64>(static_cast<s64>(static_cast<std::int16_t>(x)))));
    }
  }
}

TEST_CASE("join contains both and widen contains the join", "[verifier][domain]") {
  std::mt19937_64 rng(99);
  for (int round = 0; round < 2000; ++round) {
    Sample a = sample(rng), b = sample(rng);
    Scalar j = a.abs.join(b.abs);
    Scalar w = a.abs.widen(j);
    for (u64 x : a.members) CHECK((j.contains(x) && w.contains(x)));
    for (u64 x : b.members) CHECK((j.contains(x) && w.contains(x)));
  }
}
