// What LLVM's own tools say about an object: llvm-readelf-19 and llvm-objdump-19 output, parsed
// at test time. The corpus tests compare the loader with these, never with its own output.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace bpfvm::test {

std::string run(const std::string& command);  // its standard output
std::vector<std::string> lines_of(const std::string& text);
std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path);
bool have_llvm_tools();  // llvm-objdump-19 and llvm-readelf-19

// `llvm-readelf-19 -h`: the fields the malformed-object tests need.
struct HeaderInfo {
  std::uint64_t section_headers_offset = 0;
  std::uint64_t section_count = 0;
  std::uint64_t names_index = 0;
};
HeaderInfo readelf_header(const std::filesystem::path& object);

// One row of `llvm-readelf-19 -S --wide`.
struct SectionRow {
  std::size_t index = 0;
  std::string name, type, flags;
  std::uint64_t offset = 0, size = 0;
};
std::map<std::string, SectionRow> readelf_sections(const std::filesystem::path& object);

// `llvm-readelf-19 -s`: symbol table index by name (the first symbol of that name).
std::map<std::string, std::size_t> readelf_symbol_indices(const std::filesystem::path& object);

// One row of `llvm-objdump-19 -t`.
struct SymbolRow {
  std::uint64_t value = 0, size = 0;
  char bind = ' ', type = ' ';  // 'l'/'g', 'F'/'O'/' '
  std::string section, name;
};
std::vector<SymbolRow> objdump_symbols(const std::filesystem::path& object);

// `llvm-objdump-19 -r`, by the section the relocations apply to, in file order.
struct RelocRow {
  std::uint64_t offset = 0;
  std::string type, symbol;
};
std::map<std::string, std::vector<RelocRow>> objdump_relocations(const std::filesystem::path& object);

}  // namespace bpfvm::test
