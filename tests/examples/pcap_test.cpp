// The CLI's pcap reader (tools/pcap.hpp) against captures written here: both byte orders,
// nanosecond magic, and files cut short or announcing implausible lengths.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "examples/xdp/packets.hpp"
#include "tools/pcap.hpp"

namespace {

std::string temp_path(const std::string& name) { return std::string(BPFVM_TEST_TMP_DIR) + "/" + name; }

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::vector<std::uint8_t> out;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) out.push_back(static_cast<std::uint8_t>(c));
  std::fclose(f);
  return out;
}

// A big-endian copy of a little-endian capture: every 32-bit header field swapped.
std::vector<std::uint8_t> swapped(const std::vector<std::uint8_t>& le) {
  std::vector<std::uint8_t> be = le;
  auto swap_at = [&](std::size_t at) {
    std::swap(be[at], be[at + 3]);
    std::swap(be[at + 1], be[at + 2]);
  };
  for (std::size_t at = 0; at < 24; at += 4) swap_at(at);
  be[4] = 0, be[5] = 2, be[6] = 0, be[7] = 4;  // version fields are two u16s
  std::size_t at = 24;
  while (at < le.size()) {
    const std::uint32_t length = le[at + 8] | le[at + 9] << 8 | le[at + 10] << 16 | le[at + 11] << 24;
    for (std::size_t f = 0; f < 16; f += 4) swap_at(at + f);
    at += 16 + length;
  }
  return be;
}

}  // namespace

TEST_CASE("pcap: packets in order, either byte order", "[pcap]") {
  std::vector<std::vector<std::uint8_t>> frames;
  for (const auto& spec : bpfvm::examples::generate_traffic(50))
    frames.push_back(bpfvm::examples::build_frame(spec));
  const std::string le = temp_path("le.pcap");
  REQUIRE(bpfvm::examples::write_pcap(le, frames));
  auto capture = bpfvm::cli::read_pcap(le);
  REQUIRE(capture.ok());
  CHECK(capture->link_type == 1);
  CHECK(capture->packets == frames);

  const std::string be = temp_path("be.pcap");
  write_bytes(be, swapped(read_bytes(le)));
  auto big = bpfvm::cli::read_pcap(be);
  INFO((big ? std::string() : big.error().to_string()));
  REQUIRE(big.ok());
  CHECK(big->packets == frames);
}

TEST_CASE("pcap: damaged files are errors naming the file and the packet", "[pcap]") {
  std::vector<std::vector<std::uint8_t>> frames{std::vector<std::uint8_t>(60, 1),
                                                std::vector<std::uint8_t>(70, 2)};
  const std::string good = temp_path("good.pcap");
  REQUIRE(bpfvm::examples::write_pcap(good, frames));
  const std::vector<std::uint8_t> bytes = read_bytes(good);

  auto error_of = [](const std::string& path) {
    auto r = bpfvm::cli::read_pcap(path);
    REQUIRE_FALSE(r.ok());
    return r.error().to_string();
  };
  // Records: 24-byte file header, then 16-byte record headers; packet 1's record starts at 100.
  const std::string cut = temp_path("cut.pcap");
  write_bytes(cut, {bytes.begin(), bytes.end() - 10});
  CHECK(error_of(cut).find("cut.pcap") != std::string::npos);
  CHECK(error_of(cut).find("packet 1 at byte 100: 70 bytes announced, 60 left") != std::string::npos);
  write_bytes(cut, {bytes.begin(), bytes.begin() + 100 + 16});
  CHECK(error_of(cut).find("packet 1 at byte 100: 70 bytes announced, 0 left") != std::string::npos);
  write_bytes(cut, {bytes.begin(), bytes.begin() + 100 + 5});
  CHECK(error_of(cut).find("packet 1 at byte 100: record header cut short") != std::string::npos);

  std::vector<std::uint8_t> huge = bytes;
  huge[24 + 8 + 3] = 0x7f;  // first record's captured length: about 2 GiB
  write_bytes(cut, huge);
  CHECK(error_of(cut).find("packet 0 at byte 24: captured length") != std::string::npos);

  write_bytes(cut, {bytes.begin(), bytes.begin() + 10});
  CHECK(error_of(cut).find("shorter than its 24-byte header") != std::string::npos);
  std::vector<std::uint8_t> ng = bytes;
  ng[0] = 0x0a, ng[1] = 0x0d, ng[2] = 0x0d, ng[3] = 0x0a;
  write_bytes(cut, ng);
  CHECK(error_of(cut).find("pcapng is not read") != std::string::npos);
  CHECK(error_of(temp_path("none.pcap")).find("cannot open the file") != std::string::npos);

  // Nanosecond captures read the same.
  std::vector<std::uint8_t> nano = bytes;
  nano[0] = 0x4d, nano[1] = 0x3c;
  write_bytes(cut, nano);
  auto capture = bpfvm::cli::read_pcap(cut);
  REQUIRE(capture.ok());
  CHECK(capture->packets == frames);
}
