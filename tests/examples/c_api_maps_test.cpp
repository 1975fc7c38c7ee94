// The C API's maps and packet runs (api/bpfvm.h) on the xdp_firewall example: fill the
// blocklist, change a .rodata setting, run packets, read the maps back, iterate.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include "api/bpfvm.h"
#include "examples/xdp/packets.hpp"

namespace {

std::vector<std::uint8_t> tcp_frame(std::uint32_t source, std::uint16_t port) {
  bpfvm::examples::PacketSpec p;
  p.source = source;
  p.destination = 0x0a000101;
  p.protocol = 6;
  p.source_port = 40000;
  p.destination_port = port;
  p.length = 60;
  return bpfvm::examples::build_frame(p);
}

int run(bpfvm_program* p, const std::vector<std::uint8_t>& frame) {
  bpfvm_result r;
  REQUIRE(bpfvm_run_packet(p, "xdp", frame.data(), frame.size(), &r) == BPFVM_OK);
  return static_cast<int>(r.r0);
}

}  // namespace

TEST_CASE("C API: maps of an ELF object, read and written around packet runs", "[examples][c_api]") {
  bpfvm_program* p = bpfvm_create();
  REQUIRE(p);
  const std::string path = std::string(BPFVM_EXAMPLES_BPF_DIR) + "/xdp_firewall.v4.o";
  REQUIRE(bpfvm_load_file(p, path.c_str(), nullptr) == BPFVM_OK);
  std::uint32_t key = 0;
  CHECK(bpfvm_map_lookup(p, "blocklist", &key, &key) == -22);  // no maps yet
  REQUIRE(bpfvm_add_linux_helpers(p) == BPFVM_OK);
  REQUIRE(bpfvm_create_maps(p) == BPFVM_OK);
  REQUIRE(bpfvm_map_count(p) == 3);
  bool rodata = false;
  for (size_t i = 0; i < bpfvm_map_count(p); ++i) {
    bpfvm_map_info info;
    REQUIRE(bpfvm_map_info_at(p, i, &info) == BPFVM_OK);
    if (std::string(info.name) == "blocklist") {
      CHECK(info.type == 1);
      CHECK(info.key_size == 4);
      CHECK(info.value_bytes == 8);
      CHECK(info.max_entries == 1024);
    }
    rodata |= std::string(info.name) == ".rodata";
  }
  REQUIRE(rodata);
  bpfvm_map_info none;
  CHECK(bpfvm_map_info_at(p, 3, &none) == BPFVM_ERR_ARGUMENT);

  // Block 10.0.0.9, and port 8080 instead of 23 (the .rodata constant, set before compiling).
  const std::uint32_t blocked = htonl(0x0a000009);
  const std::uint64_t zero = 0;
  CHECK(bpfvm_map_update(p, "blocklist", &blocked, &zero, 1) == 0);
  CHECK(bpfvm_map_update(p, "blocklist", &blocked, &zero, 1) == -17);  // BPF_NOEXIST
  const std::uint16_t port = 8080;
  CHECK(bpfvm_map_update(p, ".rodata", &key, &port, 0) == 0);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);

  CHECK(run(p, tcp_frame(0x0a000009, 80)) == 1);  // XDP_DROP: blocked source
  CHECK(run(p, tcp_frame(0x0a000009, 443)) == 1);
  CHECK(run(p, tcp_frame(0x0a000001, 8080)) == 1);  // blocked port
  CHECK(run(p, tcp_frame(0x0a000001, 23)) == 2);    // XDP_PASS: 23 is no longer blocked
  std::uint64_t hits = 0;
  CHECK(bpfvm_map_lookup(p, "blocklist", &blocked, &hits) == 0);
  CHECK(hits == 2);
  std::uint64_t passed = 0, dropped = 0;
  std::uint32_t index = 0;
  CHECK(bpfvm_map_lookup(p, "verdicts", &index, &passed) == 0);
  index = 1;
  CHECK(bpfvm_map_lookup(p, "verdicts", &index, &dropped) == 0);
  CHECK(passed == 1);
  CHECK(dropped == 3);

  // Iterate the blocklist, then delete.
  std::uint32_t next = 0;
  CHECK(bpfvm_map_next_key(p, "blocklist", nullptr, &next) == 0);
  CHECK(next == blocked);
  CHECK(bpfvm_map_next_key(p, "blocklist", &next, &next) == -2);
  CHECK(bpfvm_map_delete(p, "blocklist", &blocked) == 0);
  CHECK(bpfvm_map_delete(p, "blocklist", &blocked) == -2);
  CHECK(run(p, tcp_frame(0x0a000009, 80)) == 2);
  CHECK(bpfvm_map_lookup(p, "nope", &key, &hits) == -22);
  CHECK(bpfvm_ringbuf_consume(p, "blocklist", nullptr, nullptr) == -22);

  bpfvm_result r;
  CHECK(bpfvm_run_packet(p, "token_ring", nullptr, 0, &r) == BPFVM_ERR_ARGUMENT);
  bpfvm_destroy(p);
}
