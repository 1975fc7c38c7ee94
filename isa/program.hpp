// The program model every loader produces and every engine and the verifier consume.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/isa.hpp"

namespace bpfvm::isa {

// A bpf-to-bpf function: instructions [start, end) of Program::insns.
struct Function {
  std::string name;
  std::uint32_t start = 0;
  std::uint32_t end = 0;
};

// Linux map type numbers (enum bpf_map_type), as ELF map definitions carry them.
enum class MapType : std::uint32_t {
  hash = 1,
  array = 2,
  prog_array = 3,
  percpu_hash = 5,
  percpu_array = 6,
  lru_hash = 9,
  lru_percpu_hash = 10,
  ringbuf = 27,
};
// Linux's name for a map type number ("hash", "lru_hash", ...), or "" for a number not above.
std::string_view map_type_name(std::uint32_t type);

// A map the program refers to. Global data sections (.data, .rodata, .bss) are single-entry
// array maps whose value is the section's bytes.
struct MapDef {
  std::string name;
  std::uint32_t type = 0;  // MapType value; unknown numbers are kept for the runtime to refuse
  std::uint32_t key_size = 0;
  std::uint32_t value_size = 0;
  std::uint32_t max_entries = 0;
  std::uint32_t flags = 0;
  bool read_only = false;                   // .rodata
  std::vector<std::uint8_t> initial_value;  // global data: the section's initial bytes
};

// Where an instruction came from in the C source (.BTF.ext line info).
struct LineInfo {
  std::uint32_t insn = 0;
  std::string file;
  std::string source;  // the source line's text
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// Map and global-data references are resolved by the loaders: an lddw that refers to a map
// has source kind map_idx (imm = index into `maps`), one that refers into a map's value has
// map_idx_value (imm = map index, the second slot's imm = byte offset), as libbpf would
// hand them to the kernel.
struct Program {
  std::string name;     // entry function name, or a name the loader chose
  std::string section;  // ELF section, when loaded from an object
  std::vector<Insn> insns;
  std::vector<Function> functions;  // functions[0] is the entry; sorted by start
  std::vector<MapDef> maps;
  std::vector<LineInfo> lines;  // sorted by insn

  // The function that contains instruction `pc`, or nullptr.
  const Function* function_at(std::size_t pc) const;
  // The line info for `pc`, if any.
  const LineInfo* line_at(std::size_t pc) const;
};

// Builds a one-function Program from raw instruction bytes (a multiple of 8, little-endian).
Result<Program> program_from_bytes(std::span<const std::uint8_t> bytes, std::string name = "main");

// A copy with the name, instructions and functions only: what an engine keeps to run the program
// again (its maps come through vm::CompileOptions), without line info or map definitions,
// which an ELF program may have many of.
Program instructions_only(const Program& program);

// The program's bytes as they sit in memory.
std::vector<std::uint8_t> program_bytes(const Program& program);

}  // namespace bpfvm::isa
