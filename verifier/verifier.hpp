// The verifier: abstract interpretation that proves a program safe for an environment.
// Accepted programs become VerifiedPrograms (only this module can make one); rejected ones get
// one Diagnostic naming the instruction, the failed check and the registers involved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "isa/program.hpp"
#include "verifier/environment.hpp"

namespace bpfvm::verifier {

struct Options {
  // Instruction visits over the whole analysis before it gives up ("too complex").
  std::size_t max_visits = 2'000'000;
  // A loop must be proven to run at most this many iterations each time it is entered.
  std::size_t max_loop_iterations = std::size_t{1} << 24;
  // Iterations followed one by one before the analysis switches to widening (and then needs a
  // register that moves by a bounded step toward a bound every iteration).
  std::size_t unroll_iterations = 1024;
  // Instruction visits one loop may spend on following iterations before widening takes over.
  std::size_t unroll_visits = std::size_t{1} << 16;
  int max_call_depth = 8;  // frames, the entry function included
  // Bytes of stack over a whole call chain (each frame has 512).
  std::uint32_t max_total_stack = 8 * 512;
  int cpu_version = 4;
  // Keep the joined abstract state before each instruction (for `verify -v`).
  bool record_invariants = false;
};

// What failed, where, and the state that made it fail.
struct Diagnostic {
  std::size_t insn = 0;                // instruction index
  std::string insn_text;               // the instruction, disassembled
  std::string check;                   // short name of the failed check, e.g. "mem_bounds"
  std::string message;                 // the sentence a person reads
  std::vector<std::string> registers;  // "r1 = packet(off=14, range=10)" for each register involved
  std::string function;                // the function the instruction belongs to
  std::optional<isa::LineInfo> line;   // from .BTF.ext when present

  // Several lines: "instruction 12: r0 = *(u32 *)(r1 + 10): ..." then registers and source.
  std::string to_string() const;
  Error to_error() const;
};

// Where memory instructions may go, as proven (for the engines).
enum class AccessRegion : std::uint8_t {
  none = 0,
  stack = 1,
  ctx = 2,
  packet = 4,
  map_value = 8,
  memory = 16
};

struct InsnFacts {
  bool reached = false;      // some path reaches it; every check on it holds on every path
  std::uint8_t regions = 0;  // AccessRegion bits a load, store or atomic here may touch
};

class VerifiedProgram {
 public:
  const isa::Program& program() const { return program_; }
  const Environment& environment() const { return env_; }
  std::span<const InsnFacts> facts() const { return facts_; }
  // Per pc: a load, store or atomic the analysis reached, so proven in bounds (what
  // vm::CompileOptions::proven_accesses takes).
  std::vector<bool> proven_accesses() const;
  // Bytes of stack each function uses (indexed like program().functions), and the most any
  // call chain uses.
  std::span<const std::uint32_t> stack_depth() const { return stack_depth_; }
  std::uint32_t max_stack_total() const { return max_stack_total_; }

 private:
  friend class Analyzer;
  VerifiedProgram(isa::Program p, Environment e) : program_(std::move(p)), env_(std::move(e)) {}
  isa::Program program_;
  Environment env_;
  std::vector<InsnFacts> facts_;
  std::vector<std::uint32_t> stack_depth_;
  std::uint32_t max_stack_total_ = 0;
};

struct VerifyResult {
  std::optional<VerifiedProgram> program;  // set when accepted
  std::optional<Diagnostic> diagnostic;    // set when rejected
  std::size_t visits = 0;                  // instruction visits the analysis made
  // With Options::record_invariants: one line per instruction, the state before it ("" when
  // unreached).
  std::vector<std::string> invariants;

  bool accepted() const { return program.has_value(); }
};

// One instruction as the diagnostics print it.
std::string describe_insn(const isa::Program& program, std::size_t pc);

// Structural validation first (isa::validate), then the analysis.
VerifyResult verify(isa::Program program, const Environment& env, const Options& options = {});

}  // namespace bpfvm::verifier
