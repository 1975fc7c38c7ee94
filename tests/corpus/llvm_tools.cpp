#include "tests/corpus/llvm_tools.hpp"

#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>

namespace bpfvm::test {
namespace {

bool is_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The number after `label` on its line of `text` ("Start of section headers:  19568 (bytes ...").
std::uint64_t field(const std::string& text, const std::string& label) {
  auto at = text.find(label);
  if (at == std::string::npos) return ~std::uint64_t{0};
  return std::stoull(text.substr(at + label.size()));
}

}  // namespace

std::string run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool have_llvm_tools() {
  return std::system("llvm-objdump-19 --version > /dev/null 2>&1") == 0 &&
         std::system("llvm-readelf-19 --version > /dev/null 2>&1") == 0;
}

HeaderInfo readelf_header(const std::filesystem::path& object) {
  auto text = run(fmt::format("llvm-readelf-19 -h '{}'", object.string()));
  return {field(text, "Start of section headers:"), field(text, "Number of section headers:"),
          field(text, "Section header string table index:")};
}

std::map<std::string, SectionRow> readelf_sections(const std::filesystem::path& object) {
  std::map<std::string, SectionRow> out;
  for (const auto& line : lines_of(run(fmt::format("llvm-readelf-19 -S --wide '{}'", object.string())))) {
    // "  [ 4] xdp  PROGBITS  0000000000000000 000070 000188 00  AX  0   0  8"
    auto open = line.find("  [");
    auto close = line.find("] ");
    if (open != 0 || close == std::string::npos) continue;
    SectionRow s;
    try {
      s.index = std::stoull(line.substr(3, close - 3));
    } catch (...) {
      continue;  // the "[Nr]" title line
    }
    std::istringstream in(line.substr(close + 2));
    std::string address, es;
    in >> s.name >> s.type >> address >> std::hex >> s.offset >> s.size >> es;
    if (s.index == 0) continue;
    std::string first;
    in >> first;
    // Flags are letters; a section without flags goes straight to the link number.
    s.flags = std::isalpha(static_cast<unsigned char>(first[0])) ? first : "";
    out[s.name] = s;
  }
  return out;
}

std::map<std::string, std::size_t> readelf_symbol_indices(const std::filesystem::path& object) {
  std::map<std::string, std::size_t> out;
  for (const auto& line : lines_of(run(fmt::format("llvm-readelf-19 -s '{}'", object.string())))) {
    // "    14: 0000000000000000  1048 FUNC    GLOBAL DEFAULT     3 xdp_flow_count"
    std::istringstream in(line);
    std::string num, value, size, type, bind, vis, ndx, name;
    if (!(in >> num >> value >> size >> type >> bind >> vis >> ndx >> name) || num.back() != ':') continue;
    try {
      out.emplace(name, std::stoull(num));
    } catch (...) {
    }
  }
  return out;
}

std::vector<SymbolRow> objdump_symbols(const std::filesystem::path& object) {
  std::vector<SymbolRow> out;
  for (const auto& line : lines_of(run(fmt::format("llvm-objdump-19 -t '{}'", object.string())))) {
    // "0000000000000318 g     F xdp\t0000000000000048 log_drops"
    auto tab = line.find('\t');
    if (line.size() < 26 || tab == std::string::npos || line[16] != ' ' || !is_hex(line.substr(0, 16)))
      continue;
    SymbolRow s;
    s.value = std::stoull(line.substr(0, 16), nullptr, 16);
    s.bind = line[17];
    s.type = line[23];
    s.section = line.substr(25, tab - 25);
    s.size = std::stoull(line.substr(tab + 1, 16), nullptr, 16);
    s.name = line.substr(tab + 18);
    out.push_back(s);
  }
  return out;
}

std::map<std::string, std::vector<RelocRow>> objdump_relocations(const std::filesystem::path& object) {
  std::map<std::string, std::vector<RelocRow>> out;
  std::string current;
  for (const auto& line : lines_of(run(fmt::format("llvm-objdump-19 -r '{}'", object.string())))) {
    if (line.starts_with("RELOCATION RECORDS FOR [")) {
      current = line.substr(24, line.size() - 26);
      continue;
    }
    std::istringstream in(line);
    RelocRow r;
    std::string offset;
    if (!(in >> offset >> r.type >> r.symbol) || offset.size() != 16 || !is_hex(offset)) continue;
    r.offset = std::stoull(offset, nullptr, 16);
    out[current].push_back(r);
  }
  return out;
}

}  // namespace bpfvm::test
