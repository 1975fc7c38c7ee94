// The engines the bench driver runs, behind one small interface: load a program once, then run
// it on input memory (the `raw` convention: r1 = memory, r2 = its length).
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
  std::string_view name;
  std::function<Result<std::unique_ptr<Loaded>>(const isa::Program&)> load;
};

// Every engine built into this bpfvm, in report order.
const std::vector<Engine>& engines();

}  // namespace bpfvm::bench
