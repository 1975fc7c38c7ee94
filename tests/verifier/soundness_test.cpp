// Soundness: random programs the verifier accepts under `raw` are run by a small reference
// executor over random inputs, with every memory access checked against the input and the stack.
// An accepted program that faults or does not finish is a verifier bug. (The project's
// interpreter takes over as the oracle once it exists; this executor follows RFC 9669 directly.)
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "isa/asm.hpp"
#include "isa/isa.hpp"
#include "isa/validate.hpp"
#include "verifier/verifier.hpp"

using namespace bpfvm;
using isa::Kind;
using isa::Operation;
using u64 = std::uint64_t;
using s64 = std::int64_t;

namespace {

constexpr std::size_t mem_size = 64;

struct Fault {
  std::size_t pc;
  std::string what;
};

class Executor {
 public:
  // raw: r1 = the input. xdp: r1 = a struct xdp_md whose data/data_end/data_meta fields read as
  // pointers into `input`, the packet.
  Executor(const isa::Program& p, std::vector<std::uint8_t> input, std::mt19937_64& rng, bool xdp = false)
      : p_(p), mem_(std::move(input)), stack_(isa::stack_frame_size), rng_(rng), xdp_(xdp) {
    mem_.reserve(mem_.size() + 1);  // a real address even for an empty packet
    data_ = addr(mem_.data());
  }

  // r0 at exit, or the fault.
  std::optional<Fault> run() {
    u64 r[11] = {};
    for (auto& x : r) x = rng_();  // registers the verifier calls uninitialised hold garbage
    r[1] = xdp_ ? addr(ctx_) : addr(mem_.data());
    r[2] = mem_.size();
    r[10] = addr(stack_.data() + stack_.size());
    std::size_t pc = 0;
    for (int steps = 0; steps < 1'000'000; ++steps) {
      if (pc >= p_.insns.size()) return Fault{pc, "ran off the end"};
      const auto& insn = p_.insns[pc];
      auto op = isa::decode(insn);
      if (!op) return Fault{pc, "undecodable"};
      const auto& info = isa::info(*op);
      int d = insn.dst(), s = insn.src();
      int w = info.width;
      switch (info.kind) {
        case Kind::alu: {
          u64 b = info.source == isa::Source::imm
                      ? (w == 32 ? static_cast<std::uint32_t>(insn.imm) : static_cast<u64>(s64{insn.imm}))
                      : r[s];
          r[d] = alu(info, r[d], b);
          break;
        }
        case Kind::jump: {
          if (info.operation == Operation::ja) {
            pc = static_cast<std::size_t>(isa::branch_target(insn, *op, pc));
            continue;
          }
          u64 a = r[d];
          u64 b = info.source == isa::Source::imm ? static_cast<u64>(s64{insn.imm}) : r[s];
          if (w == 32) a = static_cast<std::uint32_t>(a), b = static_cast<std::uint32_t>(b);
          if (taken(info.operation, a, b, w)) {
            pc = static_cast<std::size_t>(isa::branch_target(insn, *op, pc));
            continue;
          }
          break;
        }
        case Kind::load: {
          u64 a = r[s] + static_cast<u64>(s64{insn.off});
          if (xdp_ && a >= addr(ctx_) && a < addr(ctx_) + sizeof(ctx_)) {
            // struct xdp_md: data, data_end, data_meta are pointers; the rest reads as numbers.
            u64 off = a - addr(ctx_);
            if (w != 32 || off % 4) return Fault{pc, "context read the verifier should have refused"};
            u64 end = addr(mem_.data()) + mem_.size();
            r[d] = off == 0 ? data_ : off == 4 ? end : off == 8 ? data_ : ctx_[off / 4];
            break;
          }
          auto* at = access(a, w / 8);
          if (!at) return Fault{pc, "load out of bounds"};
          u64 v = 0;
          std::memcpy(&v, at, w / 8);
          if (info.operation == Operation::loadsx) v = sext(v, w);
          r[d] = v;
          break;
        }
        case Kind::store: {
          auto* at = access(r[d] + static_cast<u64>(s64{insn.off}), w / 8);
          if (!at) return Fault{pc, "store out of bounds"};
          u64 v = info.source == isa::Source::imm ? static_cast<u64>(s64{insn.imm}) : r[s];
          std::memcpy(at, &v, w / 8);
          break;
        }
        case Kind::atomic: {
          auto* at = access(r[d] + static_cast<u64>(s64{insn.off}), w / 8);
          if (!at) return Fault{pc, "atomic out of bounds"};
          u64 old = 0;
          std::memcpy(&old, at, w / 8);
          u64 src = w == 32 ? static_cast<std::uint32_t>(r[s]) : r[s];
          u64 nv = old;
          switch (info.operation) {
            case Operation::add:
            case Operation::fetch_add: nv = old + src; break;
            case Operation::bor:
            case Operation::fetch_bor: nv = old | src; break;
            case Operation::band:
            case Operation::fetch_band: nv = old & src; break;
            case Operation::bxor:
            case Operation::fetch_bxor: nv = old ^ src; break;
            case Operation::xchg: nv = src; break;
            case Operation::cmpxchg: {
              u64 expect = w == 32 ? static_cast<std::uint32_t>(r[0]) : r[0];
              if (expect == old) nv = src;
              r[0] = old;
              break;
            }
            default: return Fault{pc, "unknown atomic"};
          }
          std::memcpy(at, &nv, w / 8);
          if (info.operation != Operation::add && info.operation != Operation::bor &&
              info.operation != Operation::band && info.operation != Operation::bxor &&
              info.operation != Operation::cmpxchg)
            r[s] = old;
          break;
        }
        case Kind::lddw:
          r[d] = isa::lddw_value(insn, p_.insns[pc + 1]);
          pc += 2;
          continue;
        case Kind::call: {
          if (info.operation != Operation::helper) return Fault{pc, "unexpected call kind"};
          switch (insn.imm) {
            case 4: {  // probe_read(dst, size, src): fills dst
              auto* at = r[2] ? access(r[1], static_cast<int>(r[2])) : nullptr;
              if (r[2] && !at) return Fault{pc, "probe_read destination out of bounds"};
              if (at) std::memset(at, 0, r[2]);
              r[0] = 0;
              break;
            }
            case 5: r[0] = xdp_ ? rng_() : r[1]; break;  // raw: the conformance suite's helper 5
            case 6:
              if (!access(r[1], static_cast<int>(r[2]))) return Fault{pc, "trace_printk reads out of bounds"};
              r[0] = 0;
              break;
            case 7: r[0] = static_cast<std::uint32_t>(rng_()); break;
            case 1:  // map_lookup_elem: the map's one value, or null
              if (!access(r[2], 4)) return Fault{pc, "map key out of bounds"};
              r[0] = rng_() % 3 ? addr(value_.data()) : 0;
              break;
            case 44: {  // xdp_adjust_head(ctx, delta): data moves within the buffer
              u64 nd = data_ + r[2];
              u64 lo = addr(mem_.data()), hi = lo + mem_.size();
              if (xdp_ && nd >= lo && nd <= hi) {
                data_ = nd;
                r[0] = 0;
              } else {
                r[0] = static_cast<u64>(-22);
              }
              break;
            }
            case 8: r[0] = 0; break;
            default: return Fault{pc, "helper the test does not model"};
          }
          for (int i = 1; i <= 5; ++i) r[i] = rng_();
          break;
        }
        case Kind::exit: return std::nullopt;
        case Kind::legacy: return Fault{pc, "legacy packet load accepted under raw"};
      }
      ++pc;
    }
    return Fault{pc, "did not finish within 1,000,000 instructions"};
  }

 private:
  static u64 addr(const void* p) { return reinterpret_cast<u64>(p); }

  std::uint8_t* access(u64 a, int size) {
    for (auto* region : {&mem_, &stack_, &value_}) {
      u64 lo = addr(region->data()), hi = lo + region->size();
      if (size > 0 && a >= lo && a <= hi && static_cast<u64>(size) <= hi - a)
        return region->data() + (a - lo);
    }
    return nullptr;
  }

  static u64 sext(u64 v, int width) {
    if (width >= 64) return v;
    u64 sign = u64{1} << (width - 1);
    v &= (sign << 1) - 1;
    return (v ^ sign) - sign;
  }

  static u64 bswap(u64 v, int width) {
    u64 out = 0;
    for (int i = 0; i < width / 8; ++i) out = (out << 8) | ((v >> (8 * i)) & 0xff);
    return out;
  }

  static u64 alu(const isa::OpInfo& info, u64 a, u64 b) {
    int w = info.width;
    bool w32 = w == 32 && info.operation != Operation::le && info.operation != Operation::be &&
               info.operation != Operation::bswap;
    if (w32) a = static_cast<std::uint32_t>(a), b = static_cast<std::uint32_t>(b);
    unsigned mask = w32 ? 31 : 63;
    auto sa = w32 ? static_cast<s64>(static_cast<std::int32_t>(a)) : static_cast<s64>(a);
    auto sb = w32 ? static_cast<s64>(static_cast<std::int32_t>(b)) : static_cast<s64>(b);
    u64 v = 0;
    switch (info.operation) {
      case Operation::add: v = a + b; break;
      case Operation::sub: v = a - b; break;
      case Operation::mul: v = a * b; break;
      case Operation::div: v = b ? a / b : 0; break;
      case Operation::mod: v = b ? a % b : a; break;
      case Operation::sdiv:
        v = sb == 0 ? 0 : (sb == -1 ? static_cast<u64>(0) - static_cast<u64>(sa) : static_cast<u64>(sa / sb));
        break;
      case Operation::smod: v = sb == 0 ? a : (sb == -1 ? 0 : static_cast<u64>(sa % sb)); break;
      case Operation::bor: v = a | b; break;
      case Operation::band: v = a & b; break;
      case Operation::bxor: v = a ^ b; break;
      case Operation::lsh: v = a << (b & mask); break;
      case Operation::rsh: v = a >> (b & mask); break;
      case Operation::arsh: v = static_cast<u64>(sa >> (b & mask)); break;
      case Operation::neg: v = static_cast<u64>(0) - a; break;
      case Operation::mov: v = b; break;
      case Operation::movsx: v = sext(b, info.ext_width); break;
      case Operation::le: return w == 64 ? a : a & ((u64{1} << w) - 1);
      case Operation::be:
      case Operation::bswap: return bswap(a, w);
      default: break;
    }
    return w32 ? static_cast<std::uint32_t>(v) : v;
  }

  static bool taken(Operation o, u64 a, u64 b, int w) {
    s64 sa = w == 32 ? static_cast<std::int32_t>(a) : static_cast<s64>(a);
    s64 sb = w == 32 ? static_cast<std::int32_t>(b) : static_cast<s64>(b);
    switch (o) {
      case Operation::jeq: return a == b;
      case Operation::jne: return a != b;
      case Operation::jgt: return a > b;
      case Operation::jge: return a >= b;
      case Operation::jlt: return a < b;
      case Operation::jle: return a <= b;
      case Operation::jsgt: return sa > sb;
      case Operation::jsge: return sa >= sb;
      case Operation::jslt: return sa < sb;
      case Operation::jsle: return sa <= sb;
      case Operation::jset: return (a & b) != 0;
      default: return false;
    }
  }

  const isa::Program& p_;
  std::vector<std::uint8_t> mem_;
  std::vector<std::uint8_t> stack_;
  std::mt19937_64& rng_;
  bool xdp_ = false;
  u64 data_ = 0;
  std::vector<std::uint8_t> value_ = std::vector<std::uint8_t>(16);  // the value of map 0
  std::uint32_t ctx_[6] = {1, 2, 3, 4, 5, 6};
};

// Programs biased towards the checks: input and stack accesses at small offsets, short jumps,
// masks and comparisons that sometimes bound an index and sometimes do not.
isa::Program random_program(std::mt19937_64& rng) {
  std::vector<isa::Insn> insns;
  auto add = [&](isa::Op op, int dst, int src, int off, std::int32_t imm) {
    const auto& row = isa::info(op);
    isa::Insn x;
    x.opcode = row.opcode;
    x.set_dst(dst);
    x.set_src(src);
    x.off = static_cast<std::int16_t>(off);
    x.imm = imm;
    switch (row.disc) {
      case isa::Disc::off: x.off = static_cast<std::int16_t>(row.disc_value); break;
      case isa::Disc::imm: x.imm = row.disc_value; break;
      case isa::Disc::src: x.set_src(row.disc_value); break;
      case isa::Disc::none: break;
    }
    insns.push_back(x);
    if (row.kind == Kind::lddw) insns.push_back(isa::Insn{});
  };
  for (int r : {0, 3, 4, 5, 6, 7, 8, 9})
    add(isa::Op::mov64_imm, r, 0, 0, static_cast<std::int32_t>(rng() % 70));
  std::size_t n = 10 + rng() % 30;
  while (insns.size() < n) {
    const auto& row = isa::op_table[rng() % isa::op_table.size()];
    int dst = 3 + static_cast<int>(rng() % 7);
    int src = static_cast<int>(rng() % 10);
    int base = rng() % 2 ? 10 : (rng() % 3 ? 1 : dst);
    std::int32_t imm =
        rng() % 3 ? static_cast<std::int32_t>(rng() % 80) - 8 : static_cast<std::int32_t>(rng());
    switch (row.kind) {
      case Kind::alu:
        if (row.source == isa::Source::imm)
          add(row.id, dst, 0, 0, imm);
        else
          add(row.id, dst, src, 0, 0);
        break;
      case Kind::load:
        add(row.id, dst, base,
            base == 10 ? -8 * static_cast<int>(1 + rng() % 8) : static_cast<int>(rng() % 72), 0);
        break;
      case Kind::store:
        add(row.id, base, row.source == isa::Source::imm ? 0 : src,
            base == 10 ? -8 * static_cast<int>(1 + rng() % 8) : static_cast<int>(rng() % 72),
            row.source == isa::Source::imm ? imm : 0);
        break;
      case Kind::atomic:
        add(row.id, base, dst,
            base == 10 ? -8 * static_cast<int>(1 + rng() % 8) : 8 * static_cast<int>(rng() % 9), 0);
        break;
      case Kind::jump:
        if (row.id == isa::Op::ja)
          add(row.id, 0, 0, static_cast<int>(rng() % 4), 0);
        else if (row.id == isa::Op::ja32)
          add(row.id, 0, 0, 0, static_cast<std::int32_t>(rng() % 4));
        else if (row.source == isa::Source::imm)
          add(row.id, dst, 0, static_cast<int>(rng() % 7) - 2, imm);
        else
          add(row.id, dst, src, static_cast<int>(rng() % 7) - 2, 0);
        break;
      case Kind::call:
        if (row.operation == Operation::helper)
          add(row.id, 0, 0, 0, 4 + static_cast<std::int32_t>(rng() % 5));
        break;
      case Kind::lddw:
        if (row.operation == Operation::imm64) add(row.id, dst, 0, 0, imm);
        break;
      default: break;
    }
  }
  add(isa::Op::mov64_imm, 0, 0, 0, 0);
  add(isa::Op::exit, 0, 0, 0, 0);
  isa::Program p;
  p.name = "random";
  p.insns = std::move(insns);
  return p;
}

// XDP programs built from the idioms packet code uses: bounds checks of data plus a constant
// against data_end in all their forms, loads through data and through derived pointers,
// variable offsets from packet bytes, copies and spills of packet pointers, and
// xdp_adjust_head, which moves the packet under the program.
isa::Program random_xdp_program(std::mt19937_64& rng) {
  std::vector<isa::Insn> insns;
  auto add = [&](isa::Op op, int dst, int src, int off, std::int32_t imm) {
    const auto& row = isa::info(op);
    isa::Insn x;
    x.opcode = row.opcode;
    x.set_dst(dst);
    x.set_src(src);
    x.off = static_cast<std::int16_t>(off);
    x.imm = imm;
    if (row.disc == isa::Disc::src) x.set_src(row.disc_value);
    insns.push_back(x);
    if (row.kind == Kind::lddw) insns.push_back(isa::Insn{});
  };
  auto small = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  add(isa::Op::mov64_reg, 6, 1, 0, 0);
  add(isa::Op::ldxw, 2, 6, 0, 0);  // data
  add(isa::Op::ldxw, 3, 6, 4, 0);  // data_end
  for (int r : {0, 4, 5, 7, 8, 9}) add(isa::Op::mov64_imm, r, 0, 0, small(20));
  std::size_t n = 12 + rng() % 30;
  const isa::Op checks[] = {isa::Op::jgt64_reg, isa::Op::jge64_reg, isa::Op::jlt64_reg, isa::Op::jle64_reg};
  const isa::Op loads[] = {isa::Op::ldxb, isa::Op::ldxh, isa::Op::ldxw, isa::Op::ldxdw};
  int ptrs[] = {2, 4, 5};  // registers that may hold packet pointers
  while (insns.size() < n) {
    int p = ptrs[rng() % 3];
    int v = 7 + small(3);
    switch (rng() % 13) {
      case 0:
      case 1: {  // p = data + k; if p <op> end goto +j (either operand order)
        add(isa::Op::mov64_reg, p, 2, 0, 0);
        add(isa::Op::add64_imm, p, 0, 0, small(40));
        auto op = checks[rng() % 4];
        if (rng() % 2)
          add(op, p, 3, small(4), 0);
        else
          add(op, 3, p, small(4), 0);
        break;
      }
      case 2:
      case 3:
      case 4: add(loads[rng() % 4], v, rng() % 2 ? 2 : p, small(40) - 4, 0); break;
      case 5:  // a variable offset from a packet byte
        add(isa::Op::band64_imm, v, 0, 0, rng() % 2 ? 15 : 63);
        add(isa::Op::mov64_reg, p, 2, 0, 0);
        add(isa::Op::add64_reg, p, v, 0, 0);
        break;
      case 6: add(isa::Op::add64_imm, p, 0, 0, small(20) - 4); break;
      case 7:  // spill and fill a pointer
        add(isa::Op::stxdw, 10, p, -8 * (1 + small(4)), 0);
        add(isa::Op::ldxdw, ptrs[rng() % 3], 10, -8 * (1 + small(4)), 0);
        break;
      case 8: add(isa::Op::stb, rng() % 2 ? 2 : p, 0, small(40) - 4, small(256)); break;
      case 9:  // the packet moves: every pointer must be reloaded
        add(isa::Op::mov64_reg, 1, 6, 0, 0);
        add(isa::Op::mov64_imm, 2, 0, 0, small(16) - 8);
        add(isa::Op::call_helper, 0, 0, 0, 44);
        if (rng() % 4) {
          add(isa::Op::ldxw, 2, 6, 0, 0);
          add(isa::Op::ldxw, 3, 6, 4, 0);
        }
        break;
      case 10: add(isa::Op::ja, 0, 0, small(3), 0); break;
      case 11: {  // look up map 0; use the value with or without a null check
        add(isa::Op::stw, 10, 0, -4, small(4));
        add(isa::Op::lddw_map_idx, 1, 0, 0, 0);
        add(isa::Op::mov64_reg, 2, 10, 0, 0);
        add(isa::Op::add64_imm, 2, 0, 0, -4);
        add(isa::Op::call_helper, 0, 0, 0, 1);
        if (rng() % 4) add(isa::Op::jeq64_imm, 0, 0, 1 + small(2), 0);
        if (rng() % 2)
          add(loads[rng() % 4], v, 0, small(20), 0);
        else
          add(isa::Op::stb, 0, 0, small(20), 1);
        add(isa::Op::mov64_imm, 0, 0, 0, 0);
        break;
      }
      default: add(isa::Op::jeq64_imm, v, 0, small(5) - 3, small(4)); break;
    }
  }
  add(isa::Op::mov64_imm, 0, 0, 0, 2);
  add(isa::Op::exit, 0, 0, 0, 0);
  isa::Program prog;
  prog.name = "random_xdp";
  prog.insns = std::move(insns);
  isa::MapDef m;
  m.name = "m";
  m.type = static_cast<std::uint32_t>(isa::MapType::array);
  m.key_size = 4;
  m.value_size = 16;
  m.max_entries = 4;
  prog.maps.push_back(m);
  return prog;
}

// Counter loops that end when the counter equals a bound (`for (i = s; i != b; i += k)`): the
// start from the input or a constant; the bound a constant, the start plus a constant, or an input
// value unrelated to it; steps of either sign that may step over the bound; sometimes a path that
// skips the test, a bound that moves, and reads at the counter (masked or not). A third run
// inside an outer loop of 2 to 4 iterations, which enters the counter loop again after it was
// widened; there the start and the bound may come from the outer counter.
isa::Program random_counter_loop(std::mt19937_64& rng) {
  auto pick = [&](unsigned n) { return static_cast<int>(rng() % n); };
  auto num = [](long v) { return std::to_string(v); };
  const bool nested = pick(3) == 0;
  std::string text = "  mov %r0, 0\n";
  if (nested) text += "  mov %r6, 0\nouter:\n";
  text += "  ldxb %r7, [%r1+" + num(pick(8)) + "]\n  and %r7, 1\n";
  if (nested && pick(2))
    text += "  mov %r3, %r6\n";
  else if (pick(3))
    text += std::string(pick(2) ? "  ldxb" : "  ldxh") + " %r3, [%r1+" + num(pick(8)) + "]\n";
  else
    text += "  mov %r3, " + num(pick(200)) + "\n";
  // Short loops are followed iteration by iteration; longer ones need the exit test's proof.
  const long distance = pick(2) ? pick(1200) - 300 : 1000 + pick(8000);
  switch (pick(nested ? 4 : 3)) {
    case 0: text += "  mov %r2, %r3\n  add %r2, " + num(distance) + "\n"; break;
    case 3: text += "  mov %r2, %r6\n  add %r2, " + num(distance) + "\n"; break;
    case 1:
      text += "  ldxb %r2, [%r1+" + num(pick(8)) + "]\n  or %r2, " + num(pick(2) ? 0x100 : 0) + "\n";
      text += "  add %r2, " + num(distance) + "\n";
      break;
    default: text += "  mov %r2, " + num(distance + 300) + "\n"; break;
  }
  const int steps[] = {1, 1, -1, 2, -2, 3};
  const int step = steps[pick(6)];
  text += "top:\n";
  if (pick(2)) {  // a read at the counter, masked into the input or not
    text += "  mov %r4, %r3\n";
    if (pick(3)) text += "  and %r4, 63\n";
    text += "  mov %r5, %r1\n  add %r5, %r4\n  ldxb %r6, [%r5+0]\n  add %r0, %r6\n";
  }
  if (pick(8) == 0) text += "  jeq %r7, 0, top\n";
  text += "  add %r3, " + num(step) + "\n";
  if (pick(8) == 0) text += "  add %r2, %r7\n";
  if (pick(2))
    text += pick(2) ? "  jne %r3, %r2, top\n" : "  jne %r2, %r3, top\n";
  else
    text += "  jeq %r3, %r2, out\n  ja top\nout:\n";
  if (nested) text += "  add %r6, 1\n  jlt %r6, " + num(2 + pick(3)) + ", outer\n";
  text += "  exit\n";
  auto p = isa::assemble(text, isa::Syntax::conformance, "<counter loop>");
  REQUIRE(p.ok());
  return std::move(p).value();
}

// Runs a program the verifier accepted under `raw` on eight inputs (all zeros, all ones, six
// random) in the reference executor; fails the test, listing the program, at the first fault.
// Returns how many runs it made.
std::size_t run_on_raw_inputs(const isa::Program& p, const verifier::VerifiedProgram& verified,
                              std::mt19937_64& rng) {
  for (int k = 0; k < 8; ++k) {
    std::vector<std::uint8_t> input(mem_size);
    for (auto& b : input) b = static_cast<std::uint8_t>(k < 2 ? (k ? 0xff : 0) : rng());
    Executor ex(verified.program(), input, rng);
    if (auto fault = ex.run()) {
      std::ostringstream text;
      for (std::size_t pc = 0; pc < p.insns.size(); ++pc)
        text << pc << ": " << verifier::describe_insn(p, pc) << "\n";
      FAIL("accepted program faults at " << fault->pc << ": " << fault->what << "\n" << text.str());
    }
  }
  return 8;
}

}  // namespace

TEST_CASE("accepted counter loops with equality exits end and stay in bounds", "[verifier][soundness]") {
  std::mt19937_64 rng(2718);
  verifier::Options o;
  o.max_visits = 100'000;
  // See below: accepted loops must end well within the executor's 1,000,000 instructions.
  o.max_loop_iterations = std::size_t{1} << 14;
  auto env = verifier::raw_environment(mem_size);
  const char* env_count = std::getenv("BPFVM_SOUNDNESS_PROGRAMS");
  long count = (env_count ? std::atol(env_count) : 5000) / 10;
  std::size_t accepted = 0, runs = 0;
  for (long i = 0; i < count; ++i) {
    auto p = random_counter_loop(rng);
    // Every other program is verified with little unrolling, so that short loops (and the
    // outer loops around them) are widened too and their exit tests must prove them.
    o.unroll_iterations = i % 2 ? 4 : verifier::Options{}.unroll_iterations;
    auto r = verifier::verify(p, env, o);
    if (!r.accepted()) continue;
    ++accepted;
    runs += run_on_raw_inputs(p, *r.program, rng);
  }
  WARN("counter loops: " << count << " programs, " << accepted << " accepted, " << runs
                         << " runs, no faults");
  CHECK(accepted * 10 > static_cast<std::size_t>(count));
}

TEST_CASE("accepted random xdp programs never touch memory outside the packet", "[verifier][soundness]") {
  std::mt19937_64 rng(4242);
  verifier::Options o;
  o.max_visits = 100'000;
  // The executor calls a run of 1,000,000 instructions a runaway: accepted loops must end well
  // before that (the default bound, 2^24 iterations, lets a terminating loop run longer).
  o.max_loop_iterations = std::size_t{1} << 14;
  auto env = verifier::xdp_environment();
  const char* env_count = std::getenv("BPFVM_SOUNDNESS_PROGRAMS");
  long count = env_count ? std::atol(env_count) : 5000;
  std::size_t accepted = 0, runs = 0;
  for (long i = 0; i < count; ++i) {
    auto p = random_xdp_program(rng);
    auto r = verifier::verify(p, env, o);
    if (!r.accepted()) continue;
    ++accepted;
    for (int k = 0; k < 12; ++k) {
      std::vector<std::uint8_t> packet(k < 4 ? static_cast<std::size_t>(k) * 5 : rng() % 72);
      for (auto& b : packet) b = static_cast<std::uint8_t>(rng());
      Executor ex(r.program->program(), packet, rng, true);
      ++runs;
      if (auto fault = ex.run()) {
        std::ostringstream text;
        for (std::size_t pc = 0; pc < p.insns.size(); ++pc)
          text << pc << ": " << verifier::describe_insn(p, pc) << "\n";
        FAIL("accepted program faults at " << fault->pc << " (packet of " << packet.size()
                                           << " bytes): " << fault->what << "\n"
                                           << text.str());
      }
    }
  }
  WARN("xdp soundness: " << count << " programs, " << accepted << " accepted, " << runs
                         << " runs, no faults");
  CHECK(accepted * 20 > static_cast<std::size_t>(count));
}

TEST_CASE("accepted random programs never fault", "[verifier][soundness]") {
  std::mt19937_64 rng(31337);
  verifier::Options o;
  o.max_visits = 100'000;
  // The executor calls a run of 1,000,000 instructions a runaway: accepted loops must end well
  // before that (the default bound, 2^24 iterations, lets a terminating loop run longer).
  o.max_loop_iterations = std::size_t{1} << 14;
  auto env = verifier::raw_environment(mem_size);
  std::size_t programs = 0, accepted = 0, runs = 0;
  // BPFVM_SOUNDNESS_PROGRAMS sets a longer run; CI runs the default.
  const char* env_count = std::getenv("BPFVM_SOUNDNESS_PROGRAMS");
  long count = env_count ? std::atol(env_count) : 5000;
  for (long i = 0; i < count; ++i) {
    auto p = random_program(rng);
    ++programs;
    auto r = verifier::verify(p, env, o);
    if (!r.accepted()) continue;
    ++accepted;
    runs += run_on_raw_inputs(p, *r.program, rng);
  }
  WARN("soundness: " << programs << " programs, " << accepted << " accepted, " << runs << " runs, no faults");
  CHECK(accepted * 20 > programs);
}
