#include "bench/engines.hpp"

namespace bpfvm::bench {

const std::vector<Engine>& engines() {
  static const std::vector<Engine> all = {};
  return all;
}

}  // namespace bpfvm::bench
