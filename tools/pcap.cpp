#include "tools/pcap.hpp"

#include <fstream>
#include <iterator>

#include <fmt/format.h>

namespace bpfvm::cli {
namespace {

constexpr std::uint32_t magic_micro = 0xa1b2c3d4;
constexpr std::uint32_t magic_nano = 0xa1b23c4d;
constexpr std::size_t file_header_size = 24;
constexpr std::size_t record_header_size = 16;
constexpr std::uint32_t max_record = 256 * 1024;

std::uint32_t read_u32(const std::uint8_t* p, bool swapped) {
  const std::uint32_t v = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                          static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
  return swapped ? __builtin_bswap32(v) : v;
}

}  // namespace

Result<Capture> read_pcap(const std::string& path) {
  auto fail = [&](std::string message) {
    Error e(std::move(message));
    e.file = path;
    return e;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot open the file");
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
  if (bytes.size() < file_header_size) return fail("not a pcap file: shorter than its 24-byte header");
  const std::uint32_t magic = read_u32(bytes.data(), false);
  bool swapped = false;
  if (magic == __builtin_bswap32(magic_micro) || magic == __builtin_bswap32(magic_nano))
    swapped = true;
  else if (magic != magic_micro && magic != magic_nano)
    return fail(fmt::format(
        "not a pcap file: magic {:#010x} (pcapng is not read; convert with editcap -F pcap)", magic));
  Capture capture;
  capture.link_type = read_u32(bytes.data() + 20, swapped) & 0xffff;
  std::size_t at = file_header_size;
  while (at < bytes.size()) {
    const std::size_t index = capture.packets.size();
    if (bytes.size() - at < record_header_size)
      return fail(fmt::format("packet {} at byte {}: record header cut short", index, at));
    const std::uint32_t length = read_u32(bytes.data() + at + 8, swapped);
    if (length > max_record)
      return fail(fmt::format("packet {} at byte {}: captured length {} is implausible", index, at, length));
    const std::size_t start = at;
    at += record_header_size;
    if (bytes.size() - at < length)
      return fail(fmt::format("packet {} at byte {}: {} bytes announced, {} left", index, start, length,
                              bytes.size() - at));
    capture.packets.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                 bytes.begin() + static_cast<std::ptrdiff_t>(at + length));
    at += length;
  }
  return capture;
}

}  // namespace bpfvm::cli
