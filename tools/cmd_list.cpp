// bpfvm list FILE: the programs, maps and global data of an object.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "isa/load.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/json.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* list_usage =
    "usage: bpfvm list FILE [--json]\n"
    "\n"
    "Lists what FILE holds: its programs (section, function name, instructions of its own, without\n"
    "the .text functions it calls), its maps (name, type, key and value size, entries, flags) and its\n"
    "global data (.data, .rodata, .bss sections: size, read-only). Raw instructions and assembly text\n"
    "hold one program. Select a program for disasm, verify or run with --section or --program.\n"
    "  --json   one JSON object: {\"file\", \"programs\": [{section, name, insns}], \"maps\": [{name,\n"
    "           type, type_id, key_size, value_size, max_entries, flags}], \"global_data\": [{section,\n"
    "           size, read_only}]}\n"
    "exit codes: 0 listed, 1 FILE could not be read, 64 usage\n";

// Linux's name for a map type number (enum bpf_map_type), or the number.
std::string map_type_name(std::uint32_t type) {
  const std::string_view name = isa::map_type_name(type);
  return name.empty() ? fmt::format("type {}", type) : std::string(name);
}

// Global data is a map named after its section (".data", ".rodata.str1.1", ...).
bool is_global_data(const isa::MapDef& map) { return map.name.starts_with("."); }

// Rows of cells printed as left-aligned columns, two spaces apart, under a title.
void print_table(const std::string& title, const std::vector<std::vector<std::string>>& rows) {
  fmt::print("{}:\n", title);
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i)
      line += i + 1 == row.size() ? "  " + row[i] : fmt::format("  {:<{}}", row[i], width[i]);
    fmt::print("{}\n", line);
  }
}

}  // namespace

int cmd_list(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.flags = {"--json", "--help", "-h"};
  auto args = Args::parse(argv, spec);
  if (!args) {
    fmt::print(stderr, "bpfvm list: {}\n\n{}", args.error().message, list_usage);
    return exit_usage;
  }
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", list_usage);
    return exit_ok;
  }
  if (args->positionals().size() != 1) {
    fmt::print(stderr, "bpfvm list: expected one FILE\n\n{}", list_usage);
    return exit_usage;
  }
  const std::string& file = args->positionals()[0];
  auto object = isa::inspect_file(file);
  if (!object) {
    fmt::print(stderr, "bpfvm list: {}\n", object.error().to_string());
    return exit_rejected;
  }

  if (args->flag("--json")) {
    std::string out = fmt::format("{{\"file\":{},\"programs\":[", json_string(file));
    for (std::size_t i = 0; i < object->programs.size(); ++i) {
      const auto& p = object->programs[i];
      out += fmt::format("{}{{\"section\":{},\"name\":{},\"insns\":{}}}", i ? "," : "",
                         json_string(p.section), json_string(p.name), p.insns);
    }
    std::string maps, globals;
    for (const auto& m : object->maps) {
      if (is_global_data(m)) {
        globals += fmt::format("{}{{\"section\":{},\"size\":{},\"read_only\":{}}}",
                               globals.empty() ? "" : ",", json_string(m.name), m.value_size, m.read_only);
      } else {
        maps += fmt::format(
            "{}{{\"name\":{},\"type\":{},\"type_id\":{},\"key_size\":{},\"value_size\":{},\"max_entries\":{},"
            "\"flags\":{}}}",
            maps.empty() ? "" : ",", json_string(m.name), json_string(map_type_name(m.type)), m.type,
            m.key_size, m.value_size, m.max_entries, m.flags);
      }
    }
    fmt::print("{}],\"maps\":[{}],\"global_data\":[{}]}}\n", out, maps, globals);
    return exit_ok;
  }

  std::vector<std::vector<std::string>> programs{{"section", "name", "insns"}};
  for (const auto& p : object->programs)
    programs.push_back({p.section.empty() ? "-" : p.section, p.name, std::to_string(p.insns)});
  print_table("programs", programs);
  std::vector<std::vector<std::string>> maps{{"name", "type", "key", "value", "entries", "flags"}};
  std::vector<std::vector<std::string>> globals{{"section", "size", "access"}};
  for (const auto& m : object->maps) {
    if (is_global_data(m))
      globals.push_back({m.name, std::to_string(m.value_size), m.read_only ? "read-only" : "read-write"});
    else
      maps.push_back({m.name, map_type_name(m.type), std::to_string(m.key_size), std::to_string(m.value_size),
                      std::to_string(m.max_entries), fmt::format("{:#x}", m.flags)});
  }
  if (maps.size() > 1) print_table("maps", maps);
  if (globals.size() > 1) print_table("global data", globals);
  return exit_ok;
}

}  // namespace bpfvm::cli
