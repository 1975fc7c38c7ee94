// The parts of BTF (the .BTF section's type information and the .BTF.ext section's line info)
// that loading a program needs: BTF-defined maps (`.maps`) and source lines per instruction.
// Read from the kernel's BTF format description; every offset is checked before it is read.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"

namespace bpfvm::isa::btf {

// A variable of a BTF data section (DATASEC): its name and type id.
struct Var {
  std::string name;
  std::uint32_t type = 0;
};

class Types {
 public:
  // Errors name what is wrong (type id, offsets) but not the section: the caller adds ".BTF".
  static Result<Types> parse(std::span<const std::uint8_t> bytes);

  // The variables of the DATASEC named `section` (".maps"), in order; empty when there is none.
  std::vector<Var> datasec_vars(std::string_view section) const;
  // The map definition that a `.maps` variable of type `var_type` declares with libbpf's
  // __uint / __type macros (name left empty).
  Result<MapDef> map_definition(std::uint32_t var_type) const;
  // The string at `offset` of the string section (also used by .BTF.ext).
  Result<std::string> string_at(std::uint32_t offset) const;

 private:
  struct Type {
    std::uint32_t name_off = 0;
    std::uint32_t kind = 0;
    std::uint32_t vlen = 0;
    std::uint32_t size_or_type = 0;
    std::size_t extra = 0;  // offset of the kind-specific data within types_
  };
  Result<const Type*> type(std::uint32_t id) const;
  Result<std::uint32_t> skip_modifiers(std::uint32_t id) const;  // typedef, const, volatile, ...
  Result<std::uint64_t> size_of(std::uint32_t id, int depth = 0) const;

  std::vector<Type> types_;  // index = type id; [0] is void
  std::span<const std::uint8_t> type_bytes_;
  std::span<const std::uint8_t> strings_;
};

// One .BTF.ext line-info record: the instruction's byte offset within its section.
struct LineRecord {
  std::uint32_t insn_offset = 0;
  std::string file;
  std::string source;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// .BTF.ext line info by section name (strings resolved through `types`).
Result<std::map<std::string, std::vector<LineRecord>>> parse_line_info(std::span<const std::uint8_t> ext,
                                                                       const Types& types);

}  // namespace bpfvm::isa::btf
