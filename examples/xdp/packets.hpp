// Synthetic traffic for the XDP examples, their tests and benchmarks: a deterministic mix of
// IPv4 TCP / UDP / ICMP, IPv6 UDP and ARP frames, each described by a PacketSpec so tests can
// compute what a program should do without asking the program; and a pcap writer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace bpfvm::examples {

enum class Kind { ipv4, ipv6, arp };

struct PacketSpec {
  Kind kind = Kind::ipv4;
  std::uint32_t source = 0;       // IPv4 address, host byte order (10.0.0.x)
  std::uint32_t destination = 0;  // IPv4 address, host byte order
  std::uint8_t protocol = 0;      // 6 TCP, 17 UDP, 1 ICMP (IPv6: next header)
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::size_t length = 0;  // frame bytes
};

inline void put16(std::vector<std::uint8_t>& f, std::size_t at, std::uint16_t v) {
  f[at] = static_cast<std::uint8_t>(v >> 8);
  f[at + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(std::vector<std::uint8_t>& f, std::size_t at, std::uint32_t v) {
  put16(f, at, static_cast<std::uint16_t>(v >> 16));
  put16(f, at + 2, static_cast<std::uint16_t>(v));
}

// The frame a spec describes (checksums left zero: no example reads them).
inline std::vector<std::uint8_t> build_frame(const PacketSpec& p) {
  std::vector<std::uint8_t> f(p.length, 0);
  for (int i = 0; i < 6; ++i)
    f[static_cast<std::size_t>(i)] = 0x02, f[6 + static_cast<std::size_t>(i)] = 0x04;
  const bool ports = p.protocol == 6 || p.protocol == 17;
  switch (p.kind) {
    case Kind::arp: put16(f, 12, 0x0806); break;
    case Kind::ipv4: {
      put16(f, 12, 0x0800);
      f[14] = 0x45;
      put16(f, 16, static_cast<std::uint16_t>(p.length - 14));
      f[22] = 64;
      f[23] = p.protocol;
      put32(f, 26, p.source);
      put32(f, 30, p.destination);
      if (ports) put16(f, 34, p.source_port), put16(f, 36, p.destination_port);
      if (p.protocol == 6) f[46] = 0x50;  // TCP data offset 5
      break;
    }
    case Kind::ipv6: {
      put16(f, 12, 0x86dd);
      f[14] = 0x60;
      put16(f, 18, static_cast<std::uint16_t>(p.length - 54));
      f[20] = p.protocol;
      f[21] = 64;
      put32(f, 34, p.source);
      put32(f, 50, p.destination);
      if (ports) put16(f, 54, p.source_port), put16(f, 56, p.destination_port);
      break;
    }
  }
  return f;
}

// `count` packets: sources 10.0.0.1 to 10.0.0.64, ports among 22, 23, 53, 80, 443, 8080.
inline std::vector<PacketSpec> generate_traffic(std::size_t count, std::uint64_t seed = 1) {
  static constexpr std::uint16_t ports[] = {22, 23, 53, 80, 443, 8080};
  std::vector<PacketSpec> out;
  out.reserve(count);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (std::size_t i = 0; i < count; ++i) {
    PacketSpec p;
    const std::uint64_t r = next();
    const unsigned pick = static_cast<unsigned>(r % 100);
    p.kind = pick < 85 ? Kind::ipv4 : pick < 95 ? Kind::ipv6 : Kind::arp;
    p.source = 0x0a000001u + static_cast<std::uint32_t>((r >> 8) % 64);
    p.destination = 0x0a000101u + static_cast<std::uint32_t>((r >> 16) % 8);
    const unsigned proto = static_cast<unsigned>((r >> 24) % 10);
    p.protocol = proto < 5 ? 6 : proto < 9 ? 17 : 1;
    p.source_port = static_cast<std::uint16_t>(1024 + (r >> 32) % 60000);
    p.destination_port = ports[(r >> 48) % 6];
    const std::size_t header = p.kind == Kind::ipv6 ? 62 : p.kind == Kind::ipv4 ? 54 : 42;
    p.length = header + static_cast<std::size_t>((r >> 40) % 200);
    if (p.kind == Kind::arp) p.protocol = 0;
    out.push_back(p);
  }
  return out;
}

// Writes a classic pcap file (microsecond timestamps, Ethernet). False when it cannot.
inline bool write_pcap(const std::string& path, const std::vector<std::vector<std::uint8_t>>& frames) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  auto u32 = [f](std::uint32_t v) {
    const unsigned char b[4] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8),
                                static_cast<unsigned char>(v >> 16), static_cast<unsigned char>(v >> 24)};
    std::fwrite(b, 1, 4, f);
  };
  u32(0xa1b2c3d4);
  u32(2 | (4u << 16));  // version 2.4
  u32(0);               // timezone
  u32(0);               // accuracy
  u32(65535);           // snaplen
  u32(1);               // Ethernet
  std::uint32_t t = 0;
  for (const auto& frame : frames) {
    u32(1700000000 + t / 1000000);
    u32(t % 1000000);
    u32(static_cast<std::uint32_t>(frame.size()));
    u32(static_cast<std::uint32_t>(frame.size()));
    std::fwrite(frame.data(), 1, frame.size(), f);
    t += 10;
  }
  return std::fclose(f) == 0;
}

}  // namespace bpfvm::examples
