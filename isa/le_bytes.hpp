// Little-endian field reads from a byte span, for the object-file readers (ELF, BTF). Callers
// check that the field lies inside the span first (fits()); the reads do not repeat the check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace bpfvm::isa::le {

// True when [offset, offset + size) lies inside `bytes` (no overflow on huge values).
constexpr bool fits(std::span<const std::uint8_t> bytes, std::uint64_t offset, std::uint64_t size) {
  return offset <= bytes.size() && size <= bytes.size() - offset;
}

constexpr std::uint64_t read(std::span<const std::uint8_t> bytes, std::size_t offset, int width) {
  std::uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | bytes[offset + static_cast<std::size_t>(i)];
  return v;
}
constexpr std::uint16_t u16(std::span<const std::uint8_t> b, std::size_t off) {
  return static_cast<std::uint16_t>(read(b, off, 2));
}
constexpr std::uint32_t u32(std::span<const std::uint8_t> b, std::size_t off) {
  return static_cast<std::uint32_t>(read(b, off, 4));
}
constexpr std::uint64_t u64(std::span<const std::uint8_t> b, std::size_t off) { return read(b, off, 8); }

}  // namespace bpfvm::isa::le
