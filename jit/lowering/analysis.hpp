// What a JIT backend needs to know about a program before it emits code, computed once and
// independent of the target processor (the x86-64 and AArch64 backends share it):
//
// - `insns`: every slot decoded through the ISA table (isa::decode / isa::info), with jump and
//   call targets resolved, lddw values resolved (maps through CompileOptions::maps) and helper
//   functions looked up. Refused exactly where the interpreter refuses (same messages).
// - `blocks`: basic blocks. A block starts at a function start, a jump target and after every
//   jump, call and exit; so a block runs whole unless one of its instructions traps. `count` is
//   how many instructions it executes (an lddw is one), which is what a backend subtracts from
//   the budget at the block's entry; `left_after[pc]` is how many of its block's instructions
//   come after pc, so a trap at pc can report `executed` exactly as the interpreter does.
// - `functions`: bpf-to-bpf functions with the BPF registers they write and whether they make
//   calls (a backend saves only the host registers a function uses).
// - `reads[pc]`, `writes[pc]`: the registers the slot reads and writes (uses() and defs()).
// - `live_out[pc]`: BPF registers whose value may still be read after pc (liveness, over each
//   function's control-flow graph). Calls are conservative: a bpf-to-bpf call reads r0-r9;
//   helper calls read r1-r5 and keep them (the interpreter does not clobber them); exit from
//   a called function reads r0-r5, from the entry r0.
// - `frame_derived[pc]`: registers that hold r10 plus or minus something on every path to pc
//   (within the function), also through a spill to a frame slot and a load back; a backend
//   checks such bases against the stack before the regions.
//
// Nothing here emits code or depends on a host; patterns over short windows (patterns.hpp)
// read this analysis.
//
// The fields may grow; existing ones keep their meaning.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "isa/error.hpp"
#include "isa/isa.hpp"
#include "isa/program.hpp"
#include "isa/validate.hpp"
#include "vm/helpers.hpp"
#include "vm/runtime.hpp"

namespace bpfvm::jit::lowering {

// A set of BPF registers: bit i is ri.
using RegSet = std::uint16_t;
constexpr RegSet reg_bit(int r) { return static_cast<RegSet>(1u << r); }
inline constexpr RegSet caller_regs = 0x3f;  // r0-r5
inline constexpr RegSet args_regs = 0x3e;    // r1-r5
inline constexpr RegSet all_regs = 0x3ff;    // r0-r9 (r10 is read-only)

// One instruction slot, decoded. Fields ordered for a 32-byte slot (less memory per compile).
struct Insn {
  isa::Op op = isa::Op::exit;
  std::uint8_t dst = 0;
  std::uint8_t src = 0;
  bool second_slot = false;  // the second half of an lddw: never executed
  std::int16_t off = 0;
  bool proven = false;  // a load, store or atomic the verifier proved in bounds (no check)
  std::int32_t imm = 0;
  std::uint32_t target = 0;       // jumps and call local: the target pc
  std::uint64_t imm64 = 0;        // lddw: the 64-bit value, maps resolved
  vm::HelperFn helper = nullptr;  // call N: the helper

  const isa::OpInfo& info() const { return isa::info(op); }
};

struct Block {
  std::uint32_t first = 0;  // [first, end) of Analysis::insns
  std::uint32_t end = 0;
  std::uint32_t count = 0;  // instructions executed when it runs to its end
  bool loop_head = false;   // the target of a backward jump
};

struct Function {
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  RegSet written = 0;         // registers some instruction of the function writes
  bool local_calls = false;   // makes bpf-to-bpf calls
  bool helper_calls = false;  // calls helpers (call N or callx)
};

namespace detail {

// What build_frame_derived follows: registers holding r10 plus or minus something, and the
// 8-byte slots of the current frame holding such a value (bit i: r10 - 8 * (i + 1)), so that a
// stack pointer spilled and loaded again still counts. Only a hint for the order of checks.
struct FrameFacts {
  RegSet regs = 0;
  std::uint64_t slots = 0;
  friend bool operator==(const FrameFacts&, const FrameFacts&) = default;
  FrameFacts operator&(const FrameFacts& o) const {
    return {static_cast<RegSet>(regs & o.regs), slots & o.slots};
  }
};

// Per block, what the liveness fixpoint works with (and the frame_derived one reads).
struct BlockFlow {
  std::uint32_t to[2] = {0, 0};  // the blocks it continues into
  std::uint32_t successors = 0;  // how many of `to`
  std::uint32_t last = 0;        // its last instruction (an lddw's first slot for its second)
  RegSet gen = 0, kill = 0;      // read before written in the block; written in it
  RegSet live_in = 0, live_out = 0;
};

// Per block, what the frame_derived fixpoint works with: its walk is redone only when what
// enters it changed since the last walk.
struct BlockFrame {
  FrameFacts in, walked_in, out;
};

}  // namespace detail

struct Analysis {
  std::vector<Insn> insns;
  std::vector<Block> blocks;               // in program order
  std::vector<std::uint32_t> block_of;     // per pc
  std::vector<std::uint32_t> left_after;   // per pc: instructions of its block after it
  std::vector<Function> functions;         // functions[0] is the entry
  std::vector<std::uint32_t> function_of;  // per pc
  std::vector<RegSet> reads;               // per pc: uses() (0 for an lddw's second slot)
  std::vector<RegSet> writes;              // per pc: defs() (0 for an lddw's second slot)
  std::vector<RegSet> live_out;            // per pc
  std::vector<RegSet> frame_derived;       // per pc, before it runs
  std::vector<std::uint8_t> jumps_to;      // per pc: how many jumps target it (saturates at 255)

  // analyze()'s working buffers, kept only for their capacity (no meaning after it returns).
  isa::Layout layout;                     // isa::validate()'s
  std::vector<std::uint8_t> leader;       // per pc and one past the end: a block starts there
  std::vector<std::uint32_t> calls;       // pcs of calls, in order
  std::vector<detail::BlockFlow> flow;    // per block
  std::vector<detail::BlockFrame> frame;  // per block

  bool block_start(std::uint32_t pc) const { return blocks[block_of[pc]].first == pc; }
  bool live_after(std::uint32_t pc, int reg) const { return (live_out[pc] & reg_bit(reg)) != 0; }
};

// The registers an instruction reads and writes (calls and exit as described above;
// `in_entry` says whether the instruction belongs to the entry function).
RegSet uses(const Insn& insn, bool in_entry);
RegSet defs(const Insn& insn);

// Validates the program (isa::validate at options.cpu_version) and analyses it.
Result<Analysis> analyze(const isa::Program& program, const vm::HelperRegistry& helpers,
                         const vm::CompileOptions& options);
// The same into `out`, whose vectors keep their capacity: a caller compiling many programs
// reuses one Analysis and does not allocate (and fault in) that memory again each time.
Status analyze(const isa::Program& program, const vm::HelperRegistry& helpers,
               const vm::CompileOptions& options, Analysis& out);

}  // namespace bpfvm::jit::lowering
