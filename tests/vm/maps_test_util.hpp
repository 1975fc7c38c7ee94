// Programs that use maps, written as assembly: `MAP(n)` in an lddw stands for map n of the
// program (lddw map_idx), `MAPVALUE(n, off)` for byte `off` of map n's value (map_idx_value).
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/bpfvm.hpp"
#include "isa/asm.hpp"

namespace bpfvm::test {

inline constexpr std::uint64_t map_marker = 0x6d61700000000000ull;        // "map" then the index
inline constexpr std::uint64_t map_value_marker = 0x76616c0000000000ull;  // "val", index << 16 | offset

inline std::string map_ref(unsigned index) { return fmt::format("{:#x}", map_marker + index); }
inline std::string map_value_ref(unsigned index, unsigned offset) {
  return fmt::format("{:#x}", map_value_marker + (std::uint64_t{index} << 16) + offset);
}

inline isa::MapDef map_def(std::string name, isa::MapType type, std::uint32_t key_size,
                           std::uint32_t value_size, std::uint32_t max_entries) {
  isa::MapDef def;
  def.name = std::move(name);
  def.type = static_cast<std::uint32_t>(type);
  def.key_size = key_size;
  def.value_size = value_size;
  def.max_entries = max_entries;
  return def;
}

// Assembles `text` and turns the marked lddw's into map references to `maps`.
inline isa::Program program_with_maps(const std::string& text, std::vector<isa::MapDef> maps) {
  auto program = isa::assemble(text, isa::Syntax::llvm, "<test>");
  INFO((program ? std::string() : program.error().to_string()));
  REQUIRE(program.ok());
  auto& insns = program->insns;
  for (std::size_t pc = 0; pc + 1 < insns.size(); ++pc) {
    const auto op = isa::decode(insns[pc]);
    if (!op || isa::info(*op).kind != isa::Kind::lddw) continue;
    const std::uint64_t value = isa::lddw_value(insns[pc], insns[pc + 1]);
    if ((value & 0xffffff0000000000ull) == map_marker) {
      insns[pc].set_src(5);  // map_idx
      insns[pc].imm = static_cast<std::int32_t>(value & 0xffff);
      insns[pc + 1].imm = 0;
    } else if ((value & 0xffffff0000000000ull) == map_value_marker) {
      insns[pc].set_src(6);  // map_idx_value
      insns[pc].imm = static_cast<std::int32_t>((value >> 16) & 0xffff);
      insns[pc + 1].imm = static_cast<std::int32_t>(value & 0xffff);
    }
    ++pc;
  }
  program->maps = std::move(maps);
  return std::move(program).value();
}

// A Vm with the Linux helpers and the program loaded; compile() binds its maps.
inline std::shared_ptr<const vm::Executable> compile_with_maps(Vm& vm, const std::string& text,
                                                               std::vector<isa::MapDef> maps) {
  REQUIRE(vm.add_linux_helpers().ok());
  REQUIRE(vm.load(program_with_maps(text, std::move(maps))).ok());
  auto exe = vm.compile();
  INFO((exe ? std::string() : exe.error().to_string()));
  REQUIRE(exe.ok());
  return exe.value();
}

inline std::uint64_t as_errno(int e) { return static_cast<std::uint64_t>(static_cast<std::int64_t>(-e)); }

}  // namespace bpfvm::test
