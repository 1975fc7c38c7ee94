#include "tests/jit/random_program.hpp"

#include <climits>
#include <random>
#include <string>

#include "isa/isa.hpp"

namespace bpfvm::test {
namespace {

using isa::Kind;
using isa::Op;
using isa::Operation;
using isa::Source;

constexpr int mem_base = 6, loop_reg = 7, addr_reg = 8;
constexpr int data_regs[] = {0, 1, 2, 3, 4, 5, 9};

// An instruction of form `op`, its distinguishing field filled from the table.
isa::Insn make(Op op, int dst = 0, int src = 0, std::int16_t off = 0, std::int32_t imm = 0) {
  const isa::OpInfo& row = isa::info(op);
  isa::Insn in;
  in.opcode = row.opcode;
  in.set_dst(dst);
  in.set_src(src);
  in.off = off;
  in.imm = imm;
  switch (row.disc) {
    case isa::Disc::off: in.off = static_cast<std::int16_t>(row.disc_value); break;
    case isa::Disc::imm: in.imm = row.disc_value; break;
    case isa::Disc::src: in.set_src(row.disc_value); break;
    case isa::Disc::none: break;
  }
  return in;
}

std::vector<Op> ops_of(Kind kind) {
  std::vector<Op> out;
  for (const isa::OpInfo& row : isa::op_table)
    if (row.kind == kind) out.push_back(row.id);
  return out;
}

class Generator {
 public:
  Generator(std::uint64_t seed, const RandomProgramOptions& options) : rng_(seed), opt_(options) {
    alu_ = ops_of(Kind::alu);
    loads_ = ops_of(Kind::load);
    stores_ = ops_of(Kind::store);
    atomics_ = ops_of(Kind::atomic);
    legacy_ = ops_of(Kind::legacy);
    for (Op op : ops_of(Kind::jump))
      if (isa::info(op).operation != Operation::ja) conds_.push_back(op);
  }

  RandomProgram generate() {
    RandomProgram out;
    out.memory.resize(opt_.memory_size);
    for (auto& b : out.memory) b = static_cast<std::uint8_t>(rng_());
    // Which function calls itself without bound (sometimes none).
    recursive_ = opt_.functions > 0 && chance(80) ? 1 + below(opt_.functions) : -1;
    std::vector<std::uint32_t> starts;
    for (int f = 0; f <= opt_.functions; ++f) {
      starts.push_back(static_cast<std::uint32_t>(code_.size()));
      function(f);
    }
    // Call fix-ups: imm = target - pc - 1.
    for (auto [pc, f] : calls_)
      code_[pc].imm =
          static_cast<std::int32_t>(starts[static_cast<std::size_t>(f)]) - static_cast<std::int32_t>(pc) - 1;
    out.program.name = "random";
    out.program.insns = std::move(code_);
    for (std::size_t f = 0; f < starts.size(); ++f) {
      const auto end =
          f + 1 < starts.size() ? starts[f + 1] : static_cast<std::uint32_t>(out.program.insns.size());
      out.program.functions.push_back({f == 0 ? "random" : "f" + std::to_string(f), starts[f], end});
    }
    return out;
  }

 private:
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  int below(int n) { return static_cast<int>(below(static_cast<std::uint64_t>(n))); }
  bool chance(int per_mille) { return below(1000) < per_mille; }
  int data_reg() { return data_regs[below(static_cast<int>(std::size(data_regs)))]; }

  std::int32_t imm() {
    static constexpr std::int32_t edges[] = {0,  1,  -1,      2,       7,       31,   32,
                                             63, 64, INT_MIN, INT_MAX, 0x10000, -0x80};
    if (chance(400)) return edges[below(static_cast<int>(std::size(edges)))];
    if (chance(500)) return static_cast<std::int32_t>(below(256)) - 128;
    return static_cast<std::int32_t>(rng_());
  }
  std::uint64_t imm64() {
    static constexpr std::uint64_t edges[] = {0,
                                              1,
                                              ~0ull,
                                              0x8000000000000000ull,
                                              0x7fffffffffffffffull,
                                              0xffffffffull,
                                              0x80000000ull,
                                              0x100000000ull};
    if (chance(400)) return edges[below(static_cast<int>(std::size(edges)))];
    return rng_();
  }

  void emit(const isa::Insn& in) { code_.push_back(in); }
  void lddw(int dst, std::uint64_t v) {
    emit(make(Op::lddw_imm64, dst, 0, 0, static_cast<std::int32_t>(static_cast<std::uint32_t>(v))));
    isa::Insn second;
    second.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v >> 32));
    emit(second);
  }

  void function(int f) {
    if (f == 0) emit(make(Op::mov64_reg, mem_base, 1));
    // Data registers start as constants (r1 and r2 held the memory's address and size).
    for (int r : data_regs) {
      if (f > 0 && r != 0 && chance(500)) continue;  // some arguments flow in from the caller
      if (chance(300))
        lddw(r, imm64());
      else
        emit(make(Op::mov64_imm, r, 0, 0, imm()));
    }
    if (f == recursive_) calls_.push_back({code_.size(), f}), emit(make(Op::call_local));
    body(opt_.body_length, f, true);
    emit(make(Op::exit));
  }

  // Straight-line code with forward branches inside it, and loops (when `loops`).
  void body(int length, int f, bool loops) {
    std::vector<std::size_t> jumps;   // pcs of forward branches to resolve inside this body
    std::vector<std::size_t> starts;  // pcs where an instruction starts (valid targets)
    for (int i = 0; i < length; ++i) {
      starts.push_back(code_.size());
      const int pick = below(100);
      if (pick < 40) {
        alu();
      } else if (pick < 55) {
        load();
      } else if (pick < 65) {
        store();
      } else if (pick < 70) {
        atomic();
      } else if (pick < 72) {
        legacy();
      } else if (pick < 84) {
        const Op op = conds_[below(static_cast<int>(conds_.size()))];
        const bool reg = isa::info(op).source == Source::reg;
        if (chance(300)) {
          // A conditional move: skip one mov (the JITs may fuse the pair).
          emit(make(op, data_reg(), reg ? data_reg() : 0, 1, reg ? 0 : imm()));
          const bool mov_reg = chance(500);
          emit(make(mov_reg ? Op::mov64_reg : Op::mov64_imm, data_reg(), mov_reg ? data_reg() : 0, 0,
                    mov_reg ? 0 : imm()));
        } else if (chance(150)) {
          jumps.push_back(code_.size());
          emit(make(Op::ja));
        } else {
          jumps.push_back(code_.size());
          emit(make(op, data_reg(), reg ? data_reg() : 0, 0, reg ? 0 : imm()));
        }
      } else if (pick < 87 && loops) {
        loop(f);
      } else if (pick < 91 && f < opt_.functions) {
        calls_.push_back({code_.size(), f + 1 + below(opt_.functions - f)});
        emit(make(Op::call_local));
      } else if (pick < 95 && !opt_.helpers.empty()) {
        helper();
      } else {
        lddw(data_reg(), imm64());
      }
    }
    starts.push_back(code_.size());  // the end of the body is a target too
    for (std::size_t pc : jumps) {
      std::vector<std::size_t> later;
      for (std::size_t s : starts)
        if (s > pc) later.push_back(s);
      const std::size_t t = later[below(static_cast<int>(later.size()))];
      code_[pc].off = static_cast<std::int16_t>(t - pc - 1);
    }
  }

  void loop(int f) {
    emit(make(Op::mov64_imm, loop_reg, 0, 0, 1 + below(6)));
    const std::size_t head = code_.size();
    body(2 + below(8), f, false);
    emit(make(Op::sub64_imm, loop_reg, 0, 0, 1));
    if (chance(500)) {
      // The other common shape: leave when done, else an unconditional jump back.
      emit(make(Op::jeq64_imm, loop_reg, 0, 1, 0));
      const std::size_t back = code_.size();
      emit(make(
          Op::ja, 0, 0,
          static_cast<std::int16_t>(static_cast<std::int64_t>(head) - static_cast<std::int64_t>(back) - 1)));
      return;
    }
    const std::size_t latch = code_.size();
    emit(make(
        Op::jne64_imm, loop_reg, 0,
        static_cast<std::int16_t>(static_cast<std::int64_t>(head) - static_cast<std::int64_t>(latch) - 1)));
  }

  void alu() {
    const Op op = alu_[below(static_cast<int>(alu_.size()))];
    const bool reg = isa::info(op).source == Source::reg;
    const Operation o = isa::info(op).operation;
    const bool unary =
        o == Operation::neg || o == Operation::le || o == Operation::be || o == Operation::bswap;
    if (unary) {
      emit(make(op, data_reg()));
    } else if (o == Operation::movsx) {
      emit(make(op, data_reg(), data_reg()));
    } else {
      emit(make(op, data_reg(), reg ? data_reg() : 0, 0, reg ? 0 : imm()));
    }
  }

  // Puts an address for a `size`-byte access into r8 and returns the offset to use with it.
  // Mostly inside the memory or the stack frame, sometimes data-dependent, sometimes outside.
  std::int16_t address(int size, int& base) {
    const bool outside = chance(opt_.outside_per_mille);
    const int kind = below(10);
    if (kind < 3) {  // the stack: r10 with a constant offset
      base = isa::frame_pointer;
      const int slots = isa::stack_frame_size / size;
      if (outside) return static_cast<std::int16_t>(chance(500) ? 0 : -isa::stack_frame_size - size);
      return static_cast<std::int16_t>(-size * (1 + below(slots)));
    }
    base = addr_reg;
    if (kind < 4) {  // into the stack through r8, sometimes into the caller's frame
      emit(make(Op::mov64_reg, addr_reg, isa::frame_pointer));
      emit(make(Op::add64_imm, addr_reg, 0, 0,
                -isa::stack_frame_size + size * below(isa::stack_frame_size / size)));
      return outside ? static_cast<std::int16_t>(isa::stack_frame_size * 9) : 0;
    }
    const auto mask = static_cast<std::int32_t>(opt_.memory_size - 1) & ~(size - 1);
    if (kind < 7) {  // data-dependent, inside
      emit(make(Op::mov64_reg, addr_reg, data_reg()));
      emit(make(Op::band64_imm, addr_reg, 0, 0, mask));
      emit(make(Op::add64_reg, addr_reg, mem_base));
      return outside ? static_cast<std::int16_t>(opt_.memory_size) : 0;
    }
    emit(make(Op::mov64_reg, addr_reg, mem_base));
    if (outside)
      return static_cast<std::int16_t>(chance(500) ? -size : static_cast<int>(opt_.memory_size) - size + 1);
    return static_cast<std::int16_t>(size * below(static_cast<int>(opt_.memory_size) / size));
  }

  void load() {
    const Op op = loads_[below(static_cast<int>(loads_.size()))];
    int base = 0;
    const std::int16_t off = address(isa::info(op).width / 8, base);
    emit(make(op, data_reg(), base, off));
  }

  void store() {
    const Op op = stores_[below(static_cast<int>(stores_.size()))];
    int base = 0;
    const std::int16_t off = address(isa::info(op).width / 8, base);
    const bool reg = isa::info(op).source == Source::reg;
    emit(make(op, base, reg ? data_reg() : 0, off, reg ? 0 : imm()));
  }

  void atomic() {
    const Op op = atomics_[below(static_cast<int>(atomics_.size()))];
    int base = 0;
    const std::int16_t off = address(isa::info(op).width / 8, base);
    emit(make(op, base, data_reg(), off));
  }

  void legacy() {
    const Op op = legacy_[below(static_cast<int>(legacy_.size()))];
    const int size = isa::info(op).width / 8;
    const auto in = static_cast<std::int32_t>(below(static_cast<int>(opt_.memory_size) - size + 1));
    if (isa::info(op).operation == Operation::abs) {
      emit(make(op, 0, 0, 0,
                chance(opt_.outside_per_mille) ? static_cast<std::int32_t>(opt_.memory_size) : in));
    } else {
      // The index register: a small data-dependent value, or a raw one (mostly outside).
      const int r = data_reg();
      if (!chance(opt_.outside_per_mille)) emit(make(Op::band64_imm, r, 0, 0, 15));
      emit(make(op, 0, r, 0, in / 2));
    }
  }

  void helper() {
    const std::uint32_t id = opt_.helpers[below(static_cast<int>(opt_.helpers.size()))];
    if (chance(700)) {
      emit(make(Op::call_helper, 0, 0, 0, static_cast<std::int32_t>(id)));
      return;
    }
    const int r = data_reg();
    emit(make(Op::mov64_imm, r, 0, 0, chance(30) ? 1000 + below(10) : static_cast<std::int32_t>(id)));
    emit(make(Op::callx, r));
  }

  std::mt19937_64 rng_;
  RandomProgramOptions opt_;
  std::vector<Op> alu_, loads_, stores_, atomics_, legacy_, conds_;
  std::vector<isa::Insn> code_;
  std::vector<std::pair<std::size_t, int>> calls_;  // call-local pcs and their function
  int recursive_ = -1;
};

}  // namespace

RandomProgram random_program(std::uint64_t seed, const RandomProgramOptions& options) {
  return Generator(seed, options).generate();
}

}  // namespace bpfvm::test
