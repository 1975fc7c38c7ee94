#include "isa/isa.hpp"

#include <cstdint>

namespace bpfvm::isa {
namespace {

using detail::forms;

constexpr bool table_is_consistent() {
  for (std::size_t i = 0; i < op_table.size(); ++i) {
    const OpInfo& row = op_table[i];
    if (static_cast<std::size_t>(row.id) != i) return false;
    // decode() compares the distinguishing field's bits: the value must fit the field.
    if (row.disc == Disc::off && (row.disc_value < INT16_MIN || row.disc_value > INT16_MAX)) return false;
    if (row.disc == Disc::src && (row.disc_value < 0 || row.disc_value > 15)) return false;
  }
  // Rows sharing an opcode byte agree on the discriminating field and differ in its value.
  for (int b = 0; b < 256; ++b) {
    for (int i = forms.first[b]; i < forms.first[b] + forms.count[b]; ++i) {
      for (int j = i + 1; j < forms.first[b] + forms.count[b]; ++j) {
        const OpInfo& x = info(forms.forms[i].op);
        const OpInfo& y = info(forms.forms[j].op);
        if (x.disc != y.disc || x.disc == Disc::none || x.disc_value == y.disc_value) return false;
      }
    }
  }
  return true;
}
static_assert(table_is_consistent(), "isa/opcodes.def: rows sharing an opcode byte must be distinguishable");

}  // namespace

bool opcode_known(std::uint8_t opcode) { return forms.count[opcode] != 0; }

Disc discriminator_of(std::uint8_t opcode) {
  return forms.count[opcode] ? info(forms.forms[forms.first[opcode]].op).disc : Disc::none;
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
