// The conformance suite's `.data` test files (format: bpf_conformance/README.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/isa.hpp"

namespace bpfvm::conformance {

struct DataFile {
  std::string name;                     // the file name, used in messages and regex filters
  std::string asm_text;                 // the `-- asm` section as the assembler sees it (comments removed)
  std::vector<isa::Insn> insns;         // from `-- raw` when present, else assembled from `-- asm`
  std::vector<std::uint8_t> memory;     // `-- mem`
  std::optional<std::uint64_t> result;  // `-- result`
  std::string error;                    // `-- error`: the expected error text, empty when none
  // Non-empty when the suite skips the file (unknown header, no result and no error, no
  // instructions); the other fields are then meaningless.
  std::string skip;
};

// Parses `.data` text. `name` is used in messages. Text that cannot be read (bad numbers, an
// assembly error) is an Error naming the line; what the suite skips sets DataFile::skip.
Result<DataFile> parse_data(std::string_view text, const std::string& name);
Result<DataFile> read_data_file(const std::string& path);

// Bits of isa::Group, as a set.
using GroupSet = std::uint32_t;
constexpr GroupSet group_bit(isa::Group g) { return GroupSet{1} << static_cast<unsigned>(g); }

// What a program needs from the runtime: the highest min_cpu and every group of its
// instructions. Slots that decode to no form count for nothing (as upstream).
struct Requirements {
  int cpu_version = 1;
  GroupSet groups = 0;
};
Requirements requirements(std::span<const isa::Insn> insns);

}  // namespace bpfvm::conformance
