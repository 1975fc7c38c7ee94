#include "isa/isa.hpp"



namespace bpfvm::isa {
namespace {

// For each opcode byte, the run of rows that share it (rows with one byte are adjacent or not;
// the index lists them all).
struct ByteIndex {
  std::array<std::uint8_t, 256> count{};
  std::array<std::array<std::uint8_t, 12>, 256> rows{};
};

constexpr ByteIndex build_index() {
  ByteIndex index{};
  for (std::size_t i = 0; i < op_table.size(); ++i) {
    auto& row = op_table[i];
    index.rows[row.opcode][index.count[row.opcode]++] = static_cast<std::uint8_t>(i);
  }
  return index;
}

constexpr ByteIndex byte_index = build_index();

constexpr std::int32_t disc_field(Disc disc, const Insn& insn) {
  switch (disc) {
    case Disc::none: return 0;
    case Disc::off: return insn.off;
    case Disc::imm: return insn.imm;
    case Disc::src: return insn.src();
  }
  return 0;
}

constexpr bool table_is_consistent() {
  for (std::size_t i = 0; i < op_table.size(); ++i) {
    if (static_cast<std::size_t>(op_table[i].id) != i) return false;
    
  }
  // Rows sharing an opcode byte agree on the discriminating field and differ in its value.
  for (int b = 0; b < 256; ++b) {
    auto n = byte_index.count[b];
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < n; ++j) {
        auto& x = op_table[byte_index.rows[b][i]];
        auto& y = op_table[byte_index.rows[b][j]];
        if (x.disc != y.disc || x.disc == Disc::none || x.disc_value == y.disc_value) return false;
      }
    }
  }
  return true;
}
static_assert(table_is_consistent(), "isa/opcodes.def: rows sharing an opcode byte must be distinguishable");

}  // namespace

std::optional<Op> decode(const Insn& insn) {
  auto n = byte_index.count[insn.opcode];
  for (int i = 0; i < n; ++i) {
    auto& row = op_table[byte_index.rows[insn.opcode][i]];
    if (disc_field(row.disc, insn) == row.disc_value) return row.id;
  }
  return std::nullopt;
}

bool opcode_known(std::uint8_t opcode) { return byte_index.count[opcode] != 0; }

Disc discriminator_of(std::uint8_t opcode) {
  return byte_index.count[opcode] ? op_table[byte_index.rows[opcode][0]].disc : Disc::none;
}

std::string_view to_string(Kind k) {
  static constexpr std::string_view names[] = {"alu",    "load", "store", "atomic", "lddw",
                                               "legacy", "jump", "call",  "exit"};
  return names[static_cast<std::size_t>(k)];
}

namespace {
constexpr std::string_view group_names[group_count] = {"base32",   "base64",   "divmul32", "divmul64",
                                                       "atomic32", "atomic64", "packet",   "callx"};
}

std::string_view to_string(Group g) { return group_names[static_cast<std::size_t>(g)]; }

std::optional<Group> group_from_string(std::string_view s) {
  for (int i = 0; i < group_count; ++i)
    if (group_names[i] == s) return static_cast<Group>(i);
  return std::nullopt;
}

std::string_view to_string(Operation o) {
  static constexpr std::string_view names[] = {
      "add",     "sub",      "mul",       "div",        "sdiv",      "mod",    "smod",    "or",
      "and",     "xor",      "lsh",       "rsh",        "arsh",      "neg",    "mov",     "movsx",
      "le",      "be",       "bswap",     "load",       "loadsx",    "store",  "abs",     "ind",
      "fetch_add", "fetch_or", "fetch_and", "fetch_xor", "xchg",     "cmpxchg", "imm64",  "map_fd",
      "map_value", "btf_id", "func",      "map_idx",    "map_idx_value", "ja", "jeq",     "jgt",
      "jge",     "jset",     "jne",       "jsgt",       "jsge",      "jlt",    "jle",     "jslt",
      "jsle",    "helper",   "local",     "kfunc",      "callx",     "exit"};
  static_assert(std::size(names) == static_cast<std::size_t>(Operation::exit) + 1);
  return names[static_cast<std::size_t>(o)];
}

}  // namespace bpfvm::isa
