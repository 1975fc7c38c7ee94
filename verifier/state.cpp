// Lattice operations on abstract states: ids, joins, widening, printing.
#include "verifier/state_ops.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>

namespace bpfvm::verifier::detail {
namespace {

bool uses_id(const Reg& r) {
  switch (r.kind) {
    case RegKind::packet: return r.id != packet_base_id;
    case RegKind::packet_meta: return r.id != meta_base_id;
    case RegKind::scalar:
    case RegKind::map_value:
    case RegKind::mem: return r.id != 0;
    default: return false;
  }
}

constexpr std::uint32_t null_side = 0xffffffffu;

// Builds the ids of a joined state from pairs of ids of the two inputs.
struct IdJoin {
  const State& a;
  const State& b;
  State& out;
  std::uint32_t next = first_free_id;
  std::map<std::tuple<int, std::uint32_t, std::uint32_t, std::int64_t>,
           std::pair<std::uint32_t, std::int64_t>>
      groups;

  std::uint32_t plain(int tag, std::uint32_t ia, std::uint32_t ib) {
    auto [it, fresh] = groups.try_emplace({tag, ia, ib, 0}, next, 0);
    if (fresh) ++next;
    return it->second.first;
  }

  // Scalars related in both inputs (same ids, the same difference of deltas) stay related.
  void scalar_id(Reg& r, const Reg& x, const Reg& y) {
    r.id = 0;
    r.delta = 0;
    if (!x.id || !y.id) return;
    auto [it, fresh] = groups.try_emplace({0, x.id, y.id, x.delta - y.delta}, next, x.delta);
    if (fresh) ++next;
    r.id = it->second.first;
    r.delta = x.delta - it->second.second;
  }

  Reg packet(const Reg& x, const Reg& y) {
    Reg r = x;
    r.val = x.val.join(y.val);
    std::uint32_t base = x.kind == RegKind::packet ? packet_base_id : meta_base_id;
    if (x.id == base && y.id == base && x.delta == y.delta) return r;
    auto key = std::make_tuple(x.kind == RegKind::packet ? 1 : 2, x.id, y.id, x.delta - y.delta);
    auto it = groups.find(key);
    if (it == groups.end()) {
      // The new variable is this register's offset; its range holds in both inputs.
      std::uint32_t id = next++;
      std::int64_t ra = range_of(a, x.id), rb = range_of(b, y.id);
      std::int64_t rr = (ra == no_range || rb == no_range) ? no_range : std::min(ra - x.delta, rb - y.delta);
      if (rr != no_range) set_range(out, id, rr);
      it = groups.emplace(key, std::make_pair(id, x.delta)).first;
    }
    r.id = it->second.first;
    r.delta = x.delta - it->second.second;
    return r;
  }

  // Loop progress survives a join when both sides count from the same head value.
  static void join_progress(Reg& r, const Reg& x, const Reg& y) {
    if (x.tag && x.tag == y.tag && x.origin == y.origin &&
        (x.step_width == y.step_width || !x.step_width || !y.step_width)) {
      r.step_width = std::max(x.step_width, y.step_width);
      r.step_lo = std::min(x.step_lo, y.step_lo);
      r.step_hi = std::max(x.step_hi, y.step_hi);
    } else {
      clear_step(r);
    }
  }

  Reg reg(const Reg& x, const Reg& y) {
    auto same_region = [&] { return x.region == y.region && x.size == y.size && x.writable == y.writable; };
    if (x.kind == y.kind) {
      Reg r = x;
      switch (x.kind) {
        case RegKind::uninit:
        case RegKind::packet_end: return x;
        case RegKind::scalar:
          r.val = x.val.join(y.val);
          r.is_len = x.is_len && y.is_len;
          scalar_id(r, x, y);
          join_progress(r, x, y);
          return r;
        case RegKind::ctx: r.val = x.val.join(y.val); return r;
        case RegKind::stack:
          if (x.region != y.region) return Reg::unusable(Why::merged, 0);
          r.val = x.val.join(y.val);
          join_progress(r, x, y);
          return r;
        case RegKind::packet:
        case RegKind::packet_meta: return packet(x, y);
        case RegKind::map_value:
        case RegKind::mem:
          if (!same_region() || x.allocated != y.allocated) return Reg::unusable(Why::merged, 0);
          r.val = x.val.join(y.val);
          r.nullable = x.nullable || y.nullable;
          r.id = (x.id || y.id) ? plain(3, x.id, y.id) : 0;
          join_progress(r, x, y);
          return r;
        case RegKind::map_ptr:
        case RegKind::func: return x.region == y.region ? x : Reg::unusable(Why::merged, 0);
      }
    }
    // A pointer on one path and null on the other: a pointer that may be null.
    auto nullable_of = [&](const Reg& p, const Reg& z, bool p_first) -> Reg {
      if ((p.kind != RegKind::map_value && p.kind != RegKind::mem) || z.kind != RegKind::scalar ||
          !z.val.is_const() || z.val.value() != 0)
        return Reg::unusable(Why::merged, 0);
      Reg r = p;
      r.nullable = true;
      clear_step(r);
      r.id = p_first ? plain(3, p.id, null_side) : plain(3, null_side, p.id);
      return r;
    };
    if (x.kind == RegKind::uninit) return x;
    if (y.kind == RegKind::uninit) return y;
    if (x.is_pointer()) return nullable_of(x, y, true);
    if (y.is_pointer()) return nullable_of(y, x, false);
    return Reg::unusable(Why::merged, 0);
  }
};

template <typename F>
void for_each_reg(State& s, F&& f) {
  for (auto& r : s.regs) f(r);
  for (auto& fr : s.frames) {
    for (auto& r : fr.saved) f(r);
    for (auto& [slot, r] : fr.spills) f(r);
  }
}

}  // namespace

void clear_step(Reg& r) { r.tag = 0, r.origin = -1, r.step_width = 0, r.step_lo = r.step_hi = 0; }

bool tracks_progress(RegKind k) {
  return k == RegKind::scalar || k == RegKind::stack || k == RegKind::map_value || k == RegKind::mem;
}

void set_progress(State& s, std::uint32_t tag, const std::vector<std::uint32_t>& active) {
  for (int i = 0; i < isa::frame_pointer; ++i) {
    Reg& r = s.regs[i];
    if (!tracks_progress(r.kind) || std::find(active.begin(), active.end(), r.tag) != active.end()) continue;
    r.tag = tag;
    r.origin = static_cast<std::int8_t>(i);
    r.step_width = 0;
    r.step_lo = r.step_hi = 0;
  }
}

void clear_progress(State& s, std::uint32_t tag) {
  for_each_reg(s, [&](Reg& r) {
    if (r.tag == tag) r.tag = 0, r.origin = -1, r.step_width = 0, r.step_lo = r.step_hi = 0;
  });
}

std::int64_t range_of(const State& s, std::uint32_t id) {
  auto it = std::lower_bound(s.ranges.begin(), s.ranges.end(), id,
                             [](auto& p, std::uint32_t v) { return p.first < v; });
  if (it != s.ranges.end() && it->first == id) return it->second;
  return (id == packet_base_id || id == meta_base_id) ? 0 : no_range;
}

void set_range(State& s, std::uint32_t id, std::int64_t r) {
  auto it = std::lower_bound(s.ranges.begin(), s.ranges.end(), id,
                             [](auto& p, std::uint32_t v) { return p.first < v; });
  if (it != s.ranges.end() && it->first == id)
    it->second = r;
  else
    s.ranges.insert(it, {id, r});
}

void raise_range(State& s, std::uint32_t id, std::int64_t r) {
  if (r > range_of(s, id)) set_range(s, id, r);
}

std::uint32_t fresh_id(const State& s) {
  std::uint32_t m = first_free_id;
  auto see = [&](const Reg& r) {
    if (uses_id(r)) m = std::max(m, r.id + 1);
  };
  for (auto& r : s.regs) see(r);
  for (auto& fr : s.frames) {
    for (auto& r : fr.saved) see(r);
    for (auto& [slot, r] : fr.spills) see(r);
  }
  for (auto& [id, r] : s.ranges) m = std::max(m, id + 1);
  for (auto id : s.refs) m = std::max(m, id + 1);
  return m;
}

void canonicalize(State& s) {
  // A scalar id alone in the state relates nothing.
  std::map<std::uint32_t, int> scalar_uses;
  for_each_reg(s, [&](Reg& r) {
    if (r.kind == RegKind::scalar && r.id) ++scalar_uses[r.id];
  });
  // The first register of a group (in this fixed order) has delta 0.
  std::map<std::uint32_t, std::int64_t> base_delta;
  for_each_reg(s, [&](Reg& r) {
    if (r.kind != RegKind::scalar) return;
    if (r.id && scalar_uses[r.id] < 2) r.id = 0;
    if (!r.id) {
      r.delta = 0;
      return;
    }
    auto [it, fresh] = base_delta.try_emplace(r.id, r.delta);
    r.delta = static_cast<std::int64_t>(static_cast<std::uint64_t>(r.delta) -
                                        static_cast<std::uint64_t>(it->second));
  });
  std::map<std::uint32_t, std::uint32_t> map;
  std::uint32_t next = first_free_id;
  for_each_reg(s, [&](Reg& r) {
    if (!uses_id(r)) return;
    auto [it, fresh] = map.try_emplace(r.id, next);
    if (fresh) ++next;
    r.id = it->second;
  });
  std::vector<std::pair<std::uint32_t, std::int64_t>> ranges;
  for (auto& [id, r] : s.ranges) {
    if (id == packet_base_id || id == meta_base_id) {
      if (r > 0) ranges.emplace_back(id, r);
      continue;
    }
    auto it = map.find(id);
    if (it != map.end() && r != no_range) ranges.emplace_back(it->second, r);
  }
  std::sort(ranges.begin(), ranges.end());
  s.ranges = std::move(ranges);
  // References no register holds any more keep a number of their own (they are leaks).
  for (auto& id : s.refs) {
    auto [it, fresh] = map.try_emplace(id, next);
    if (fresh) ++next;
    id = it->second;
  }
  std::sort(s.refs.begin(), s.refs.end());
  s.refs.erase(std::unique(s.refs.begin(), s.refs.end()), s.refs.end());
}

State join(const State& a, const State& b, bool allow_leaks) {
  State out;
  out.frames.resize(a.frames.size());
  IdJoin ids{a, b, out, first_free_id, {}};
  for (int i = 0; i < isa::register_count; ++i) out.regs[i] = ids.reg(a.regs[i], b.regs[i]);
  for (std::size_t f = 0; f < a.frames.size() && f < b.frames.size(); ++f) {
    const Frame& fa = a.frames[f];
    const Frame& fb = b.frames[f];
    Frame& fo = out.frames[f];
    fo.function = fa.function;
    fo.callback = fa.callback;
    for (int i = 0; i < 4; ++i) fo.saved[i] = ids.reg(fa.saved[i], fb.saved[i]);
    for (int i = 0; i < isa::stack_frame_size; ++i) {
      auto x = fa.bytes[i], y = fb.bytes[i];
      fo.bytes[i] = (x == byte_uninit || y == byte_uninit) ? std::uint8_t{byte_uninit}
                                                           : (x == y ? x : std::uint8_t{byte_misc});
    }
    auto find = [](const Frame& fr, std::uint16_t slot) -> const Reg* {
      for (auto& [s, r] : fr.spills)
        if (s == slot) return &r;
      return nullptr;
    };
    auto demote = [&](std::uint16_t slot, const Reg* spilled) {
      // A slot that held a register on one path and plain bytes on the other keeps only its
      // initialisation; the bytes of a pointer are not readable where pointers must not leak.
      bool poison = spilled && spilled->is_pointer() && !allow_leaks;
      for (int k = 0; k < 8; ++k) {
        auto& byte = fo.bytes[slot * 8 + k];
        if (byte == byte_spill) byte = byte_misc;
        if (poison) byte = byte_uninit;
      }
    };
    // Which bytes of a slot a spill covers (all 8, or those of a narrow scalar store).
    auto spill_mask = [](const Frame& fr, std::uint16_t slot) {
      unsigned mask = 0;
      for (int k = 0; k < 8; ++k)
        if (fr.bytes[slot * 8 + k] == byte_spill) mask |= 1u << k;
      return mask;
    };
    for (auto& [slot, ra] : fa.spills) {
      const Reg* rb = find(fb, slot);
      if (!rb || spill_mask(fa, slot) != spill_mask(fb, slot) ||
          spill_mask(fo, slot) != spill_mask(fa, slot)) {
        demote(slot, &ra);
        if (rb) demote(slot, rb);
        continue;
      }
      Reg j = ids.reg(ra, *rb);
      if (j.kind == RegKind::uninit) {
        for (int k = 0; k < 8; ++k) fo.bytes[slot * 8 + k] = byte_uninit;
        continue;
      }
      fo.spills.emplace_back(slot, j);
    }
    for (auto& [slot, rb] : fb.spills)
      if (!find(fa, slot)) demote(slot, &rb);
  }
  // Outstanding references of either input, under the ids their registers got.
  for (int side = 0; side < 2; ++side)
    for (auto id : side ? b.refs : a.refs) {
      std::uint32_t mapped = 0;
      for (auto& [key, val] : ids.groups)
        if (std::get<0>(key) == 3 && (side ? std::get<2>(key) : std::get<1>(key)) == id) mapped = val.first;
      out.refs.push_back(mapped ? mapped : ids.next++);
    }
  // The base ranges hold in both inputs.
  for (std::uint32_t base : {packet_base_id, meta_base_id}) {
    std::int64_t r = std::min(range_of(a, base), range_of(b, base));
    if (r > 0) set_range(out, base, r);
  }
  canonicalize(out);
  return out;
}

State widen(const State& old, const State& joined, const Thresholds* extra) {
  State out = joined;
  // Loop progress whose step keeps growing is dropped, like a bound that keeps moving.
  auto widen_progress = [](Reg& r, const Reg& o) {
    if (r.tag && (r.tag != o.tag || r.step_lo < o.step_lo || r.step_hi > o.step_hi))
      r.tag = 0, r.origin = -1, r.step_width = 0, r.step_lo = r.step_hi = 0;
  };
  for (int i = 0; i < isa::register_count; ++i) {
    auto& r = out.regs[i];
    const auto& o = old.regs[i];
    if (r.kind == o.kind && r.kind != RegKind::uninit) r.val = o.val.widen(r.val, extra);
    widen_progress(r, o);
  }
  for (std::size_t f = 0; f < out.frames.size() && f < old.frames.size(); ++f) {
    for (auto& [slot, r] : out.frames[f].spills)
      for (auto& [s2, o] : old.frames[f].spills)
        if (s2 == slot && o.kind == r.kind) r.val = o.val.widen(r.val, extra), widen_progress(r, o);
    for (int i = 0; i < 4; ++i)
      if (out.frames[f].saved[i].kind == old.frames[f].saved[i].kind)
        out.frames[f].saved[i].val = old.frames[f].saved[i].val.widen(out.frames[f].saved[i].val, extra);
  }
  // A packet range that shrank may shrink forever: forget it.
  for (auto& [id, r] : out.ranges)
    if (r < range_of(old, id)) r = no_range;
  std::erase_if(out.ranges, [](auto& p) { return p.second == no_range; });
  return out;
}

namespace {
struct Hasher {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void add(std::uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0x100000001b3ull;
  }
  void add(const Scalar& v) {
    add(static_cast<std::uint64_t>(v.smin));
    add(static_cast<std::uint64_t>(v.smax));
    add(v.umin);
    add(v.umax);
    add((std::uint64_t{static_cast<std::uint32_t>(v.s32min)} << 32) | static_cast<std::uint32_t>(v.s32max));
    add((std::uint64_t{v.u32min} << 32) | v.u32max);
    add(v.bits.value);
    add(v.bits.mask);
  }
  void add(const Reg& r) {
    add(static_cast<std::uint64_t>(r.kind) | (std::uint64_t{r.nullable} << 8) |
        (std::uint64_t{r.is_len} << 9) | (std::uint64_t{r.writable} << 10) |
        (std::uint64_t{r.allocated} << 11) | (std::uint64_t{r.region} << 32));
    add(r.id);
    add(static_cast<std::uint64_t>(r.delta));
    add(r.size);
    add(r.val);
    add(r.tag | (std::uint64_t{static_cast<std::uint8_t>(r.origin)} << 32) |
        (std::uint64_t{r.step_width} << 40));
    add(static_cast<std::uint64_t>(r.step_lo));
    add(static_cast<std::uint64_t>(r.step_hi));
  }
};
}  // namespace

std::uint64_t state_hash(const State& s) {
  Hasher h;
  for (const auto& r : s.regs) h.add(r);
  for (const auto& f : s.frames) {
    for (std::size_t i = 0; i < f.bytes.size(); i += 8) {
      std::uint64_t w = 0;
      for (int k = 0; k < 8; ++k) w = (w << 8) | f.bytes[i + k];
      h.add(w);
    }
    for (const auto& [slot, r] : f.spills) {
      h.add(slot);
      h.add(r);
    }
    for (const auto& r : f.saved) h.add(r);
    h.add(f.function);
  }
  for (const auto& [id, r] : s.ranges) {
    h.add(id);
    h.add(static_cast<std::uint64_t>(r));
  }
  for (auto id : s.refs) h.add(id);
  return h.h;
}

std::string offset_text(const Scalar& v) {
  if (v.is_const()) return fmt::format("{}", static_cast<std::int64_t>(v.value()));
  return fmt::format("[{},{}]", v.smin, v.smax);
}

std::string reg_text(const Reg& r, const State& s, const RegNames& names) {
  std::string id = r.id && uses_id(r) ? fmt::format(" id={}", r.id) : "";
  switch (r.kind) {
    case RegKind::uninit: return "uninit";
    case RegKind::scalar:
      return fmt::format("scalar({}{}{})", r.val.to_string(), r.is_len ? " =len" : "", id);
    case RegKind::ctx: return fmt::format("ctx(off={})", offset_text(r.val));
    case RegKind::stack: return fmt::format("fp{}(off={})", r.region, offset_text(r.val));
    case RegKind::packet:
    case RegKind::packet_meta: {
      std::int64_t range = range_of(s, r.id);
      return fmt::format("{}(off={}{}{}, range={})", r.kind == RegKind::packet ? "pkt" : "pkt_meta",
                         offset_text(r.val), id,
                         r.delta && uses_id(r) ? fmt::format(" delta={}", r.delta) : "",
                         range == no_range ? std::string("0")
                                           : fmt::format("{}", std::max<std::int64_t>(0, range - r.delta)));
    }
    case RegKind::packet_end: return "pkt_end";
    case RegKind::map_value:
      return fmt::format("map_value{}({}, off={}, size={}{})", r.nullable ? "_or_null" : "",
                         names.map(r.region), offset_text(r.val), r.size, id);
    case RegKind::map_ptr: return fmt::format("map_ptr({})", names.map(r.region));
    case RegKind::mem:
      return fmt::format("mem{}(off={}, size={}{}{})", r.nullable ? "_or_null" : "", offset_text(r.val),
                         r.size, r.writable ? "" : ", read-only", id);
    case RegKind::func: return fmt::format("func({})", names.function(r.region));
  }
  return "?";
}

std::string state_text(const State& s, const RegNames& names) {
  std::string out;
  for (int i = 0; i < isa::register_count; ++i) {
    if (s.regs[i].kind == RegKind::uninit) continue;
    if (!out.empty()) out += ' ';
    out += fmt::format("r{}={}", i, reg_text(s.regs[i], s, names));
  }
  if (s.frames.empty()) return out;
  const Frame& fr = s.frames.back();
  int i = 0;
  while (i < isa::stack_frame_size) {
    if (fr.bytes[i] == byte_spill) {
      int slot = i / 8;
      for (auto& [sl, r] : fr.spills)
        if (sl == slot) out += fmt::format(" [fp{}]={}", i - isa::stack_frame_size, reg_text(r, s, names));
      i = (slot + 1) * 8;
      continue;
    }
    if (fr.bytes[i] == byte_misc) {
      int j = i;
      while (j < isa::stack_frame_size && fr.bytes[j] == byte_misc) ++j;
      out += fmt::format(" [fp{}..fp{})=scalar", i - isa::stack_frame_size, j - isa::stack_frame_size);
      i = j;
      continue;
    }
    ++i;
  }
  return out;
}

}  // namespace bpfvm::verifier::detail
