// Loading programs from ELF64 EM_BPF relocatable objects as clang emits them: program sections,
// .text subprograms, relocations, legacy and BTF maps, global data and .BTF.ext line info.
// docs/PROGRAM.md describes what is read and how relocations are resolved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"

namespace bpfvm::isa {

// A program of an object: each global function in an executable section other than .text.
struct ObjectProgram {
  std::string section;
  std::string name;
  std::size_t insns = 0;  // its own instructions (without the .text subprograms it calls)
};

struct ObjectInfo {
  std::vector<ObjectProgram> programs;
  // Every map of the object, in the order (and so with the indices) that loaded programs use:
  // legacy `maps`, BTF `.maps`, then global-data sections.
  std::vector<MapDef> maps;
};

// What an object holds. `file` names the input in errors.
Result<ObjectInfo> read_object(std::span<const std::uint8_t> bytes, const std::string& file);

// The programs of an object (section, function name, instruction count).
Result<std::vector<ObjectProgram>> list_programs(std::span<const std::uint8_t> bytes,
                                                 const std::string& file);

// One program, linked: the .text subprograms it calls appended, relocations resolved (see
// program.hpp), line info attached. `selection` is a function name or a section name; empty
// selects the only program. Not validated yet (load_bytes does that).
Result<Program> load_object(std::span<const std::uint8_t> bytes, const std::string& file,
                            const std::string& selection);

}  // namespace bpfvm::isa
