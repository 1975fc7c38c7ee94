// A small reader for classic pcap captures (libpcap's file format, either byte order, micro- or
// nanosecond timestamps), enough for `bpfvm run --pcap`: the packets' bytes in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "isa/error.hpp"

namespace bpfvm::cli {

struct Capture {
  std::uint32_t link_type = 0;  // 1: Ethernet
  std::vector<std::vector<std::uint8_t>> packets;
};

// Errors name the file and the packet (index and byte offset) that is cut short or too large.
Result<Capture> read_pcap(const std::string& path);

}  // namespace bpfvm::cli
