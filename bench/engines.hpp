// The engines the bench driver runs, behind one small interface: load a program once, then run
// it on input memory (the `raw` convention: r1 = memory, r2 = its length). Each engine comes
// three times: checked ("interp"), verified ("interp/v": the program verified as raw with its
// input's size, the accesses the verifier proved run unchecked) and verified without the
// budget ("interp/vu": no instruction counted, vm::CompileOptions::enforce_budget off).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"

namespace bpfvm::bench {

struct EngineRun {
  std::uint64_t r0 = 0;
  std::uint64_t executed = 0;  // BPF instructions executed, 0 when the engine does not count
  std::string trap;            // empty when the run ended at exit
};

// A program compiled for one engine; run() may be called any number of times.
class Loaded {
 public:
  virtual ~Loaded() = default;
  virtual EngineRun run(std::span<std::uint8_t> mem) = 0;
};

struct Engine {
  std::string name;
  // The program and the size of the input every run will pass.
  std::function<Result<std::unique_ptr<Loaded>>(const isa::Program&, std::size_t input_bytes)> load;
  std::string checked_name;  // verified engines: the name of the same engine checked; else ""
  // Verified engines: the verifier's diagnostic when it rejects the program (which load()
  // then refuses); empty when it accepts.
  std::function<std::string(const isa::Program&, std::size_t input_bytes)> rejection;
};

// Every engine built into this bpfvm, in report order.
const std::vector<Engine>& engines();

}  // namespace bpfvm::bench
