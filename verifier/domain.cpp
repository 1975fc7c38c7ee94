#include "verifier/domain.hpp"

#include <algorithm>
#include <bit>

#include <fmt/format.h>

namespace bpfvm::verifier {
namespace {

using u64 = std::uint64_t;
using s64 = std::int64_t;
using u32 = std::uint32_t;
using s32 = std::int32_t;

constexpr u64 sign64 = u64{1} << 63;
constexpr u64 high32 = 0xffffffff00000000ull;
constexpr s64 s64_min = std::numeric_limits<s64>::min();
constexpr s64 s64_max = std::numeric_limits<s64>::max();
constexpr u64 u64_max = std::numeric_limits<u64>::max();

Scalar finish(Scalar r) {
  if (!r.normalize()) return Scalar::unknown();
  return r;
}

}  // namespace

Tnum Tnum::range(u64 lo, u64 hi) {
  if (lo > hi) return unknown();
  u64 chi = lo ^ hi;
  if (chi == 0) return constant(lo);
  int bits = 64 - std::countl_zero(chi);
  if (bits >= 64) return unknown();
  u64 delta = (u64{1} << bits) - 1;
  return {lo & ~delta, delta};
}

std::optional<Tnum> Tnum::meet(Tnum o) const {
  if ((value ^ o.value) & ~mask & ~o.mask) return std::nullopt;
  u64 m = mask & o.mask;
  return Tnum{(value | o.value) & ~m, m};
}

Tnum Tnum::join(Tnum o) const {
  u64 m = mask | o.mask | (value ^ o.value);
  return {value & ~m, m};
}

Tnum tnum_add(Tnum a, Tnum b) {
  u64 sm = a.mask + b.mask;
  u64 sv = a.value + b.value;
  u64 sigma = sm + sv;
  u64 chi = sigma ^ sv;
  u64 mu = chi | a.mask | b.mask;
  return {sv & ~mu, mu};
}

Tnum tnum_sub(Tnum a, Tnum b) {
  u64 dv = a.value - b.value;
  u64 alpha = dv + a.mask;
  u64 beta = dv - b.mask;
  u64 chi = alpha ^ beta;
  u64 mu = chi | a.mask | b.mask;
  return {dv & ~mu, mu};
}

Tnum tnum_and(Tnum a, Tnum b) {
  u64 alpha = a.value | a.mask;
  u64 beta = b.value | b.mask;
  u64 v = a.value & b.value;
  return {v, alpha & beta & ~v};
}

Tnum tnum_or(Tnum a, Tnum b) {
  u64 v = a.value | b.value;
  u64 mu = a.mask | b.mask;
  return {v, mu & ~v};
}

Tnum tnum_xor(Tnum a, Tnum b) {
  u64 v = a.value ^ b.value;
  u64 mu = a.mask | b.mask;
  return {v & ~mu, mu};
}

Tnum tnum_mul(Tnum a, Tnum b) {
  if (a.is_const() && b.is_const()) return Tnum::constant(a.value * b.value);
  if ((a.is_const() && a.value == 0) || (b.is_const() && b.value == 0)) return Tnum::constant(0);
  // A product has at least as many trailing zero bits as its factors together.
  int tz = std::countr_zero(a.value | a.mask) + std::countr_zero(b.value | b.mask);
  if (tz >= 64) return Tnum::constant(0);
  return {0, u64_max << tz};
}

Tnum tnum_lsh(Tnum a, unsigned k) { return {a.value << k, a.mask << k}; }
Tnum tnum_rsh(Tnum a, unsigned k) { return {a.value >> k, a.mask >> k}; }
Tnum tnum_arsh(Tnum a, unsigned k) {
  return {static_cast<u64>(static_cast<s64>(a.value) >> k), static_cast<u64>(static_cast<s64>(a.mask) >> k)};
}

Scalar Scalar::constant(u64 v) {
  Scalar s;
  s.bits = Tnum::constant(v);
  s.normalize();
  return s;
}

Scalar Scalar::urange(u64 lo, u64 hi) {
  Scalar s;
  s.umin = lo;
  s.umax = hi;
  return finish(s);
}

Scalar Scalar::srange(s64 lo, s64 hi) {
  Scalar s;
  s.smin = lo;
  s.smax = hi;
  return finish(s);
}

Scalar Scalar::of_width(int width) { return width >= 64 ? unknown() : urange(0, (u64{1} << width) - 1); }

bool Scalar::contains(u64 v) const {
  auto sv = static_cast<s64>(v);
  auto v32 = static_cast<u32>(v);
  return bits.contains(v) && v >= umin && v <= umax && sv >= smin && sv <= smax && v32 >= u32min &&
         v32 <= u32max && static_cast<s32>(v32) >= s32min && static_cast<s32>(v32) <= s32max;
}

bool Scalar::normalize() {
  for (int round = 0; round < 4; ++round) {
    Scalar before = *this;
    // Known bits bound every interval.
    umin = std::max(umin, bits.min());
    umax = std::min(umax, bits.max());
    smin = std::max(smin, static_cast<s64>(bits.value | (bits.mask & sign64)));
    smax = std::min(smax, static_cast<s64>(bits.value | (bits.mask & ~sign64)));
    Tnum t32 = bits.low32();
    u32min = std::max(u32min, static_cast<u32>(t32.value));
    u32max = std::min(u32max, static_cast<u32>(t32.value | t32.mask));
    s32min = std::max(s32min, static_cast<s32>(static_cast<u32>(t32.value | (t32.mask & 0x80000000u))));
    s32max = std::min(s32max, static_cast<s32>(static_cast<u32>(t32.value | (t32.mask & 0x7fffffffu))));
    // Signed and unsigned views agree where the range does not cross the sign boundary.
    if (static_cast<s64>(umin) <= static_cast<s64>(umax)) {
      smin = std::max(smin, static_cast<s64>(umin));
      smax = std::min(smax, static_cast<s64>(umax));
    }
    if (smin >= 0 || smax < 0) {
      umin = std::max(umin, static_cast<u64>(smin));
      umax = std::min(umax, static_cast<u64>(smax));
    }
    if (static_cast<s32>(u32min) <= static_cast<s32>(u32max)) {
      s32min = std::max(s32min, static_cast<s32>(u32min));
      s32max = std::min(s32max, static_cast<s32>(u32max));
    }
    if (s32min >= 0 || s32max < 0) {
      u32min = std::max(u32min, static_cast<u32>(s32min));
      u32max = std::min(u32max, static_cast<u32>(s32max));
    }
    // 64 -> 32: within one 2^32-aligned block the low half moves with the whole.
    auto low_from = [&](u64 lo, u64 hi) {
      if ((lo >> 32) != (hi >> 32)) return;
      auto l = static_cast<u32>(lo), h = static_cast<u32>(hi);
      u32min = std::max(u32min, l);
      u32max = std::min(u32max, h);
      if (static_cast<s32>(l) <= static_cast<s32>(h)) {
        s32min = std::max(s32min, static_cast<s32>(l));
        s32max = std::min(s32max, static_cast<s32>(h));
      }
    };
    low_from(umin, umax);
    low_from(static_cast<u64>(smin), static_cast<u64>(smax));
    // 32 -> 64: with the upper half fixed, the low half's bounds are the value's.
    if ((umin >> 32) == (umax >> 32) && umin <= umax) {
      u64 hi = umin & high32;
      umin = std::max(umin, hi | u32min);
      umax = std::min(umax, hi | u32max);
    }
    if (umin > umax || smin > smax || u32min > u32max || s32min > s32max) return false;
    auto m = bits.meet(Tnum::range(umin, umax));
    if (!m) return false;
    Tnum r32 = Tnum::range(u32min, u32max);
    auto m2 = m->meet(Tnum{r32.value, r32.mask | high32});
    if (!m2) return false;
    bits = *m2;
    if (*this == before) break;
  }
  return true;
}

Scalar Scalar::join(const Scalar& o) const {
  Scalar r;
  r.smin = std::min(smin, o.smin);
  r.smax = std::max(smax, o.smax);
  r.umin = std::min(umin, o.umin);
  r.umax = std::max(umax, o.umax);
  r.s32min = std::min(s32min, o.s32min);
  r.s32max = std::max(s32max, o.s32max);
  r.u32min = std::min(u32min, o.u32min);
  r.u32max = std::max(u32max, o.u32max);
  r.bits = bits.join(o.bits);
  return finish(r);
}

std::optional<Scalar> Scalar::meet(const Scalar& o) const {
  auto bits_both = bits.meet(o.bits);
  if (!bits_both) return std::nullopt;
  Scalar r;
  r.smin = std::max(smin, o.smin);
  r.smax = std::min(smax, o.smax);
  r.umin = std::max(umin, o.umin);
  r.umax = std::min(umax, o.umax);
  r.s32min = std::max(s32min, o.s32min);
  r.s32max = std::min(s32max, o.s32max);
  r.u32min = std::max(u32min, o.u32min);
  r.u32max = std::min(u32max, o.u32max);
  r.bits = *bits_both;
  if (r.smin > r.smax || r.umin > r.umax || r.s32min > r.s32max || r.u32min > r.u32max || !r.normalize())
    return std::nullopt;
  return r;
}

namespace {
constexpr u64 uthresholds[] = {0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 0x7fffffffffffffff, u64_max};
constexpr s64 sthresholds[] = {s64_min, -0x80000000ll, -0x8000ll, -0x80ll,    -1,
                               0,       0x7f,          0x7fff,    0x7fffffff, s64_max};
}  // namespace

void Thresholds::add_bound(std::uint64_t c) {
  for (u64 v : {c - 1, c, c + 1}) {
    u.push_back(v);
    s.push_back(static_cast<s64>(v));
  }
}

void Thresholds::sort() {
  std::sort(u.begin(), u.end());
  u.erase(std::unique(u.begin(), u.end()), u.end());
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
}

namespace {
// The smallest threshold at or above v (`up`), or the largest at or below it, among the type
// limits and `extra` (sorted).
template <typename T, std::size_t N>
T next_threshold(const T (&limits)[N], const std::vector<T>* extra, T v, bool up) {
  T best = up ? *std::find_if(std::begin(limits), std::end(limits), [&](T t) { return t >= v; })
              : *std::find_if(std::rbegin(limits), std::rend(limits), [&](T t) { return t <= v; });
  if (extra == nullptr) return best;
  if (up) {
    auto it = std::lower_bound(extra->begin(), extra->end(), v);
    if (it != extra->end() && *it < best) best = *it;
  } else {
    auto it = std::upper_bound(extra->begin(), extra->end(), v);
    if (it != extra->begin() && *std::prev(it) > best) best = *std::prev(it);
  }
  return best;
}
}  // namespace

Scalar Scalar::widen(const Scalar& n, const Thresholds* extra) const {
  Scalar r = join(n);
  const std::vector<u64>* eu = extra ? &extra->u : nullptr;
  const std::vector<s64>* es = extra ? &extra->s : nullptr;
  if (n.umax > umax) r.umax = next_threshold(uthresholds, eu, n.umax, true);
  if (n.umin < umin) r.umin = next_threshold(uthresholds, eu, n.umin, false);
  if (n.smax > smax) r.smax = next_threshold(sthresholds, es, n.smax, true);
  if (n.smin < smin) r.smin = next_threshold(sthresholds, es, n.smin, false);
  if (n.u32max > u32max || n.u32min < u32min) r.u32min = 0, r.u32max = 0xffffffffu;
  if (n.s32max > s32max || n.s32min < s32min) r.s32min = INT32_MIN, r.s32max = INT32_MAX;
  // Known bits: the low ones both sides know (alignment: a counter that moves by 4 stays a
  // multiple of 4) survive; the rest is forgotten at once, so widening converges quickly.
  if (bits == n.bits) {
    r.bits = bits;
  } else {
    const Tnum j = bits.join(n.bits);
    const u64 low = j.mask == 0 ? u64_max : (j.mask & -j.mask) - 1;  // bits below the lowest unknown one
    r.bits = Tnum{j.value & low, ~low};
  }
  return finish(r);
}

Scalar Scalar::zext32() const {
  Scalar r;
  r.umin = u32min;
  r.umax = u32max;
  r.s32min = s32min;
  r.s32max = s32max;
  r.u32min = u32min;
  r.u32max = u32max;
  r.bits = bits.low32();
  return finish(r);
}

Scalar Scalar::sext32() const {
  Scalar r;
  r.smin = s32min;
  r.smax = s32max;
  r.s32min = s32min;
  r.s32max = s32max;
  r.u32min = u32min;
  r.u32max = u32max;
  Tnum t = bits.low32();
  if (t.mask & 0x80000000u)
    t.mask |= high32;
  else if (t.value & 0x80000000u)
    t.value |= high32;
  r.bits = t;
  return finish(r);
}

Scalar Scalar::sext(int width) const {
  if (width >= 64) return *this;
  if (width == 32) return sext32();
  u64 low = (u64{1} << width) - 1;
  u64 sign = u64{1} << (width - 1);
  if (umax < sign) return *this;  // already a small non-negative value
  Scalar r = srange(-static_cast<s64>(sign), static_cast<s64>(sign) - 1);
  Tnum t{bits.value & low, bits.mask & low};
  if (t.mask & sign)
    t.mask |= ~low;
  else if (t.value & sign)
    t.value |= ~low;
  r.bits = t;
  return finish(r);
}

std::string Scalar::to_string() const {
  if (is_const()) {
    auto v = static_cast<s64>(bits.value);
    return v < 0 && v > -0x10000 ? fmt::format("{}", v) : fmt::format("{:#x}", bits.value);
  }
  std::string out;
  auto add = [&](std::string s) {
    if (!out.empty()) out += ' ';
    out += s;
  };
  if (umin != 0 || umax != u64_max) add(fmt::format("u=[{:#x},{:#x}]", umin, umax));
  if ((smin != s64_min || smax != s64_max) &&
      !(smin >= 0 && static_cast<u64>(smin) == umin && static_cast<u64>(smax) == umax))
    add(fmt::format("s=[{},{}]", smin, smax));
  bool low_implied = umax <= 0xffffffffu;
  if (!low_implied && (u32min != 0 || u32max != 0xffffffffu))
    add(fmt::format("u32=[{:#x},{:#x}]", u32min, u32max));
  if (!low_implied && (s32min != INT32_MIN || s32max != INT32_MAX) &&
      !(s32min >= 0 && static_cast<u32>(s32min) == u32min && static_cast<u32>(s32max) == u32max))
    add(fmt::format("s32=[{},{}]", s32min, s32max));
  if (bits.mask != u64_max && Tnum::range(umin, umax) != bits)
    add(fmt::format("bits={:#x}/{:#x}", bits.value, bits.mask));
  return out.empty() ? "unknown" : out;
}

Scalar scalar_add(const Scalar& a, const Scalar& b) {
  Scalar r;
  s64 lo, hi;
  if (!__builtin_add_overflow(a.smin, b.smin, &lo) && !__builtin_add_overflow(a.smax, b.smax, &hi)) {
    r.smin = lo;
    r.smax = hi;
  }
  u64 uhi;
  if (!__builtin_add_overflow(a.umax, b.umax, &uhi)) {
    r.umin = a.umin + b.umin;
    r.umax = uhi;
  }
  r.bits = tnum_add(a.bits, b.bits);
  return finish(r);
}

Scalar scalar_sub(const Scalar& a, const Scalar& b) {
  Scalar r;
  s64 lo, hi;
  if (!__builtin_sub_overflow(a.smin, b.smax, &lo) && !__builtin_sub_overflow(a.smax, b.smin, &hi)) {
    r.smin = lo;
    r.smax = hi;
  }
  if (a.umin >= b.umax) {
    r.umin = a.umin - b.umax;
    r.umax = a.umax - b.umin;
  }
  r.bits = tnum_sub(a.bits, b.bits);
  return finish(r);
}

Scalar scalar_mul(const Scalar& a, const Scalar& b) {
  Scalar r;
  u64 uhi;
  if (!__builtin_mul_overflow(a.umax, b.umax, &uhi)) {
    r.umin = a.umin * b.umin;
    r.umax = uhi;
  }
  s64 p[4];
  if (!__builtin_mul_overflow(a.smin, b.smin, &p[0]) && !__builtin_mul_overflow(a.smin, b.smax, &p[1]) &&
      !__builtin_mul_overflow(a.smax, b.smin, &p[2]) && !__builtin_mul_overflow(a.smax, b.smax, &p[3])) {
    r.smin = *std::min_element(p, p + 4);
    r.smax = *std::max_element(p, p + 4);
  }
  r.bits = tnum_mul(a.bits, b.bits);
  return finish(r);
}

Scalar scalar_udiv(const Scalar& a, const Scalar& b) {
  if (b.umax == 0) return Scalar::constant(0);
  if (a.is_const() && b.is_const()) return Scalar::constant(a.value() / b.value());
  if (b.umin == 0) return Scalar::urange(0, a.umax);
  return Scalar::urange(a.umin / b.umax, a.umax / b.umin);
}

Scalar scalar_umod(const Scalar& a, const Scalar& b) {
  if (b.umax == 0) return a;
  if (a.is_const() && b.is_const()) return Scalar::constant(a.value() % b.value());
  if (b.umin == 0) return Scalar::urange(0, a.umax);
  if (a.umax < b.umin) return a;
  return Scalar::urange(0, std::min(a.umax, b.umax - 1));
}

Scalar scalar_sdiv(const Scalar& a, const Scalar& b) {
  if (b.is_const()) {
    auto c = static_cast<s64>(b.value());
    if (c == 0) return Scalar::constant(0);
    if (a.is_const()) {
      auto x = static_cast<s64>(a.value());
      if (x == s64_min && c == -1) return Scalar::constant(static_cast<u64>(s64_min));
      return Scalar::constant(static_cast<u64>(x / c));
    }
    if (c > 0) return Scalar::srange(a.smin / c, a.smax / c);
    if (c < -1) return Scalar::srange(a.smax / c, a.smin / c);
  }
  return Scalar::unknown();
}

Scalar scalar_smod(const Scalar& a, const Scalar& b) {
  if (!b.is_const()) return Scalar::unknown();
  auto c = static_cast<s64>(b.value());
  if (c == 0) return a;
  if (a.is_const()) {
    auto x = static_cast<s64>(a.value());
    if (c == -1) return Scalar::constant(0);
    return Scalar::constant(static_cast<u64>(x % c));
  }
  if (c == s64_min) return Scalar::unknown();
  s64 m = (c < 0 ? -c : c) - 1;
  if (a.smin >= 0) return Scalar::srange(0, std::min(a.smax, m));
  if (a.smax <= 0) return Scalar::srange(std::max(a.smin, -m), 0);
  return Scalar::srange(-m, m);
}

Scalar scalar_and(const Scalar& a, const Scalar& b) {
  Scalar r;
  r.bits = tnum_and(a.bits, b.bits);
  r.umax = std::min(a.umax, b.umax);
  if (a.smin >= 0 && b.smin >= 0)
    r.smin = 0, r.smax = std::min(a.smax, b.smax);
  else if (a.smin >= 0)
    r.smin = 0, r.smax = a.smax;
  else if (b.smin >= 0)
    r.smin = 0, r.smax = b.smax;
  return finish(r);
}

Scalar scalar_or(const Scalar& a, const Scalar& b) {
  Scalar r;
  r.bits = tnum_or(a.bits, b.bits);
  r.umin = std::max(a.umin, b.umin);
  return finish(r);
}

Scalar scalar_xor(const Scalar& a, const Scalar& b) {
  Scalar r;
  r.bits = tnum_xor(a.bits, b.bits);
  return finish(r);
}

Scalar scalar_lsh(const Scalar& a, const Scalar& count, int) {
  if (!count.is_const()) return Scalar::unknown();
  auto k = static_cast<unsigned>(count.value());
  if (k == 0) return a;
  Scalar r;
  r.bits = tnum_lsh(a.bits, k);
  if (a.umax <= (u64_max >> k)) {
    r.umin = a.umin << k;
    r.umax = a.umax << k;
  }
  return finish(r);
}

Scalar scalar_rsh(const Scalar& a, const Scalar& count, int width) {
  if (!count.is_const()) return Scalar::urange(a.umin >> std::min<u64>(count.umax, width - 1), a.umax);
  auto k = static_cast<unsigned>(count.value());
  if (k == 0) return a;
  Scalar r;
  r.bits = tnum_rsh(a.bits, k);
  r.umin = a.umin >> k;
  r.umax = a.umax >> k;
  return finish(r);
}

Scalar scalar_arsh(const Scalar& a, const Scalar& count, int) {
  if (!count.is_const()) return Scalar::srange(a.smin < 0 ? a.smin : 0, a.smax >= 0 ? a.smax : -1);
  auto k = static_cast<unsigned>(count.value());
  if (k == 0) return a;
  Scalar r;
  r.bits = tnum_arsh(a.bits, k);
  r.smin = a.smin >> k;
  r.smax = a.smax >> k;
  return finish(r);
}

}  // namespace bpfvm::verifier
