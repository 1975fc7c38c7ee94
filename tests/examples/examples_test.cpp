// The XDP examples (examples/xdp): each verifies as xdp, then runs on every engine of this build,
// checked and verified (the accesses the verifier proved run unchecked), over generated traffic; verdicts and
// map contents must be what the traffic's description says (computed here from the PacketSpecs, not from a
// run).
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "api/bpfvm.hpp"
#include "examples/xdp/packets.hpp"
#include "verifier/verifier.hpp"

namespace {

using bpfvm::examples::Kind;
using bpfvm::examples::PacketSpec;
namespace vm = bpfvm::vm;

constexpr std::uint32_t xdp_drop = 1, xdp_pass = 2;

std::string object(const std::string& name) {
  return std::string(BPFVM_EXAMPLES_BPF_DIR) + "/" + name + ".v4.o";
}

bpfvm::isa::Program load(const std::string& file, const std::string& program) {
  bpfvm::isa::LoadOptions options;
  options.program = program;
  auto loaded = bpfvm::isa::load_file(object(file), options);
  INFO((loaded ? std::string() : loaded.error().to_string()));
  REQUIRE(loaded.ok());
  auto verdict = bpfvm::verifier::verify(*loaded, bpfvm::verifier::xdp_environment());
  INFO((verdict.diagnostic ? verdict.diagnostic->to_string() : std::string()));
  REQUIRE(verdict.accepted());
  return std::move(loaded).value();
}

// An engine, and whether the program runs as verified (unchecked where the verifier proved it).
struct Mode {
  bpfvm::Engine engine;
  bool verified;
};

std::string to_string(Mode m) {
  return std::string(bpfvm::to_string(m.engine)) + (m.verified ? " verified" : "");
}

std::vector<Mode> engines() {
  std::vector<Mode> out;
  for (auto e : {bpfvm::Engine::interpreter, bpfvm::Engine::jit_x64, bpfvm::Engine::jit_a64})
    if (bpfvm::engine_available(e)) {
      out.push_back({e, false});
      out.push_back({e, true});
    }
  return out;
}

std::shared_ptr<const vm::Executable> compile(bpfvm::Vm& vmx, bpfvm::isa::Program program, Mode mode) {
  REQUIRE(vmx.add_linux_helpers().ok());
  REQUIRE(vmx.load(std::move(program)).ok());
  bpfvm::Result<std::shared_ptr<const vm::Executable>> exe = bpfvm::Error("not compiled");
  if (mode.verified) {
    auto verdict = vmx.verify(bpfvm::verifier::xdp_environment());
    REQUIRE(verdict.accepted());
    exe = vmx.compile(mode.engine, *verdict.program);
  } else {
    exe = vmx.compile(mode.engine);
  }
  INFO((exe ? std::string() : exe.error().to_string()));
  REQUIRE(exe.ok());
  return exe.value();
}

// Runs every packet; returns the verdicts.
std::vector<std::uint64_t> run_traffic(const vm::Executable& exe, const std::vector<PacketSpec>& traffic) {
  auto packet = vm::PacketContext::create(vm::ContextKind::xdp);
  REQUIRE(packet.ok());
  vm::RunContext ctx;
  std::vector<std::uint64_t> verdicts;
  for (const PacketSpec& spec : traffic) {
    REQUIRE((*packet)->set_packet(bpfvm::examples::build_frame(spec)).ok());
    (*packet)->attach(ctx);
    const vm::RunResult r = exe.run(ctx);
    INFO((r.trap ? r.trap->message() : std::string()));
    REQUIRE_FALSE(r.trap.has_value());
    verdicts.push_back(r.r0);
  }
  return verdicts;
}

std::uint64_t u64_in(vm::Map& map, std::uint32_t key) {
  std::uint64_t v = 0;
  REQUIRE(map.host_lookup(&key, &v) == 0);
  return v;
}

bool has_ports(const PacketSpec& p) { return p.protocol == 6 || p.protocol == 17; }

}  // namespace

TEST_CASE("xdp_firewall drops blocked sources and the blocked port", "[examples]") {
  const auto traffic = bpfvm::examples::generate_traffic(3000);
  const std::uint32_t blocked = 0x0a000007;  // 10.0.0.7
  for (Mode engine : engines()) {
    INFO(to_string(engine));
    bpfvm::Vm vmx;
    auto exe = compile(vmx, load("xdp_firewall", "xdp_firewall"), engine);
    vm::Map* blocklist = vmx.maps()->find("blocklist");
    REQUIRE(blocklist != nullptr);
    const std::uint32_t key = htonl(blocked);
    const std::uint64_t zero = 0;
    REQUIRE(blocklist->host_update(&key, &zero, vm::update_noexist) == 0);

    const auto verdicts = run_traffic(*exe, traffic);
    std::uint64_t dropped = 0, by_source = 0;
    for (std::size_t i = 0; i < traffic.size(); ++i) {
      const PacketSpec& p = traffic[i];
      const bool from_blocked = p.kind == Kind::ipv4 && p.source == blocked;
      const bool drop = from_blocked || (p.kind == Kind::ipv4 && has_ports(p) && p.destination_port == 23);
      INFO(i);
      CHECK(verdicts[i] == (drop ? xdp_drop : xdp_pass));
      dropped += drop;
      by_source += from_blocked;
    }
    REQUIRE(by_source > 0);
    std::uint64_t hits = 0;
    REQUIRE(blocklist->host_lookup(&key, &hits) == 0);
    CHECK(hits == by_source);
    vm::Map* counts = vmx.maps()->find("verdicts");
    CHECK(u64_in(*counts, 1) == dropped);
    CHECK(u64_in(*counts, 0) == traffic.size() - dropped);
  }
}

TEST_CASE("proto_counters counts packets and bytes per protocol in a per-CPU array", "[examples]") {
  const auto traffic = bpfvm::examples::generate_traffic(3000, 2);
  std::map<std::uint32_t, std::array<std::uint64_t, 2>> expected;
  for (const PacketSpec& p : traffic) {
    auto& e = expected[p.kind == Kind::arp ? 255u : p.protocol];
    e[0] += 1;
    e[1] += p.length;
  }
  for (Mode engine : engines()) {
    INFO(to_string(engine));
    bpfvm::Vm vmx;
    auto exe = compile(vmx, load("proto_counters", "proto_counters"), engine);
    run_traffic(*exe, traffic);
    vm::Map* protocols = vmx.maps()->find("protocols");
    std::vector<std::uint8_t> all(protocols->host_value_size());
    for (std::uint32_t key = 0; key < 256; ++key) {
      REQUIRE(protocols->host_lookup(&key, all.data()) == 0);
      std::array<std::uint64_t, 2> sum{};
      for (unsigned cpu = 0; cpu < vm::cpu_slots; ++cpu) {
        std::uint64_t v[2];
        std::memcpy(v, all.data() + cpu * 16, 16);
        sum[0] += v[0];
        sum[1] += v[1];
      }
      INFO(key);
      CHECK(sum == expected[key]);
    }
  }
}

TEST_CASE("rate_limiter lets a burst of 5 through per source, then drops", "[examples]") {
  std::vector<PacketSpec> traffic;
  for (int i = 0; i < 40; ++i) {
    PacketSpec p;
    p.source = i < 20 ? 0x0a000001 : 0x0a000002;
    p.destination = 0x0a000101;
    p.protocol = 17;
    p.length = 60;
    traffic.push_back(p);
  }
  for (Mode engine : engines()) {
    INFO(to_string(engine));
    bpfvm::Vm vmx;
    auto exe = compile(vmx, load("rate_limiter", "rate_limiter"), engine);
    // One packet per second refills: the 40 packets take far less than a second.
    const auto verdicts = run_traffic(*exe, traffic);
    for (std::size_t i = 0; i < traffic.size(); ++i) {
      INFO(i);
      CHECK(verdicts[i] == (i % 20 < 5 ? xdp_pass : xdp_drop));
    }
    CHECK(dynamic_cast<vm::HashMap&>(*vmx.maps()->find("buckets")).size() == 2);
  }
}

TEST_CASE("event_producer writes one ring buffer event per IPv4 packet", "[examples]") {
  const auto traffic = bpfvm::examples::generate_traffic(2000, 3);
  for (Mode engine : engines()) {
    INFO(to_string(engine));
    bpfvm::Vm vmx;
    auto exe = compile(vmx, load("event_producer", "event_producer"), engine);
    run_traffic(*exe, traffic);
    auto* events = dynamic_cast<vm::RingBuffer*>(vmx.maps()->find("events"));
    REQUIRE(events != nullptr);
    std::vector<PacketSpec> ipv4;
    for (const PacketSpec& p : traffic)
      if (p.kind == Kind::ipv4) ipv4.push_back(p);
    std::size_t i = 0;
    const std::size_t n = events->consume([&](std::span<const std::uint8_t> record) {
      REQUIRE(record.size() == 16);
      REQUIRE(i < ipv4.size());
      std::uint32_t source, destination;
      std::uint16_t sport, dport, length;
      std::memcpy(&source, record.data(), 4);
      std::memcpy(&destination, record.data() + 4, 4);
      std::memcpy(&sport, record.data() + 8, 2);
      std::memcpy(&dport, record.data() + 10, 2);
      std::memcpy(&length, record.data() + 12, 2);
      const PacketSpec& p = ipv4[i++];
      CHECK(ntohl(source) == p.source);
      CHECK(ntohl(destination) == p.destination);
      CHECK(record[14] == p.protocol);
      CHECK(length == p.length);
      CHECK(sport == (has_ports(p) ? p.source_port : 0));
      CHECK(dport == (has_ports(p) ? p.destination_port : 0));
    });
    CHECK(n == ipv4.size());
    CHECK(u64_in(*vmx.maps()->find("lost"), 0) == 0);
  }
}

TEST_CASE("tail_dispatch hands TCP and UDP to their programs through a program array", "[examples]") {
  const auto traffic = bpfvm::examples::generate_traffic(2000, 4);
  for (Mode engine : engines()) {
    INFO(to_string(engine));
    auto maps = std::make_shared<vm::MapSet>();
    std::map<std::string, std::shared_ptr<const vm::Executable>> programs;
    for (const char* name : {"dispatch", "handle_tcp", "handle_udp"}) {
      bpfvm::Vm vmx;
      vmx.use_maps(maps);
      programs[name] = compile(vmx, load("tail_dispatch", name), engine);
    }
    auto* handlers = dynamic_cast<vm::ProgramArray*>(maps->find("handlers"));
    REQUIRE(handlers != nullptr);
    REQUIRE(handlers->set(6, programs["handle_tcp"]).ok());
    REQUIRE(handlers->set(17, programs["handle_udp"]).ok());
    const auto verdicts = run_traffic(*programs["dispatch"], traffic);
    std::array<std::uint64_t, 3> expected{};
    for (std::size_t i = 0; i < traffic.size(); ++i) {
      const PacketSpec& p = traffic[i];
      const std::uint32_t handler = p.kind != Kind::ipv4 ? 2 : p.protocol == 6 ? 0 : p.protocol == 17 ? 1 : 2;
      ++expected[handler];
      INFO(i);
      CHECK(verdicts[i] == (handler == 1 ? xdp_drop : xdp_pass));
    }
    vm::Map* handled = maps->find("handled");
    for (std::uint32_t k = 0; k < 3; ++k) CHECK(u64_in(*handled, k) == expected[k]);
  }
}
