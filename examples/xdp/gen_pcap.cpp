// gen_pcap FILE [COUNT]: writes COUNT (default 100000) synthetic frames (packets.hpp) as a pcap
// capture, for `bpfvm run --type xdp --pcap FILE` and the examples' tests.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "examples/xdp/packets.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: gen_pcap FILE [COUNT]\n");
    return 64;
  }
  const std::size_t count = argc == 3 ? std::strtoull(argv[2], nullptr, 10) : 100000;
  std::vector<std::vector<std::uint8_t>> frames;
  for (const auto& spec : bpfvm::examples::generate_traffic(count))
    frames.push_back(bpfvm::examples::build_frame(spec));
  if (!bpfvm::examples::write_pcap(argv[1], frames)) {
    std::fprintf(stderr, "gen_pcap: cannot write %s\n", argv[1]);
    return 1;
  }
  std::printf("gen_pcap: %zu packets in %s\n", count, argv[1]);
  return 0;
}
