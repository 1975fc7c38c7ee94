// Random valid BPF programs for differential testing (an engine against the interpreter).
//
// A program runs with r1 = its memory and r2 = the memory's size (bpfvm::run). It uses every
// instruction form of CPU v4: ALU at both widths with immediates biased to the edge values
// (0, -1, INT_MIN...), byte swaps, sign extension, loads, stores and atomics of every size on
// the input memory and the stack, legacy packet loads, forward branches of every condition,
// bounded loops, bpf-to-bpf calls (and sometimes unbounded recursion, which must trap with
// call_depth), helper calls by id and through callx (sometimes to an id that names no helper).
// A few accesses aim outside every region on purpose, so traps are compared too.
//
// Register roles keep results independent of where the memory happens to be mapped (two
// engines run on two copies): r6 holds the memory's address and r8 addresses computed from r6
// or r10; neither is ever read as data or stored. r7 counts loop iterations. Data lives in r0-r5
// and r9.
#pragma once

#include <cstdint>
#include <vector>

#include "isa/program.hpp"

namespace bpfvm::test {

struct RandomProgramOptions {
  int body_length = 48;                // instructions per function body, roughly
  int functions = 2;                   // functions besides the entry
  std::vector<std::uint32_t> helpers;  // helper ids to call (call N and callx); empty: none
  std::uint32_t memory_size = 256;     // a power of two, at least 64
  int outside_per_mille = 15;          // memory accesses aimed outside every region
};

struct RandomProgram {
  isa::Program program;
  std::vector<std::uint8_t> memory;  // initial contents
};

RandomProgram random_program(std::uint64_t seed, const RandomProgramOptions& options = {});

}  // namespace bpfvm::test
