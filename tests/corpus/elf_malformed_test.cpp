// Malformed objects made from a real corpus object (xdp_parser.v4.o): truncated at every length,
// header fields, section headers, symbols, relocations and BTF corrupted one at a time. Each case
// asserts the exact error; random corruption asserts that loading never crashes (the asan preset
// runs this). Where to corrupt comes from llvm-readelf-19 / llvm-objdump-19.
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "isa/elf.hpp"
#include "isa/load.hpp"
#include "tests/corpus/llvm_tools.hpp"

using namespace bpfvm;
using namespace bpfvm::isa;
using namespace bpfvm::test;
namespace fs = std::filesystem;

namespace {

// ELF64 layout (from the ELF specification): the offsets of the fields the cases corrupt.
constexpr std::size_t section_header_size = 64, symbol_size = 24, rel_size = 16;
constexpr std::size_t sh_name = 0, sh_flags = 8, sh_offset = 24, sh_size = 32;
constexpr std::size_t st_name = 0, st_shndx = 6, st_size = 16;
constexpr std::size_t r_offset = 0, r_info = 8;

template <typename T>
void put(std::vector<std::uint8_t>& bytes, std::size_t at, T value) {
  REQUIRE(at + sizeof(T) <= bytes.size());
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

template <typename T>
T get(const std::vector<std::uint8_t>& bytes, std::size_t at) {
  T value{};
  REQUIRE(at + sizeof(T) <= bytes.size());
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  return value;
}

Result<Program> load(const std::vector<std::uint8_t>& bytes,
                     const std::string& selection = "xdp_flow_count") {
  LoadOptions options;
  options.format = InputFormat::elf;
  options.program = selection;
  return load_bytes(bytes, "obj", options);
}

std::string error_of(const std::vector<std::uint8_t>& bytes,
                     const std::string& selection = "xdp_flow_count") {
  auto loaded = load(bytes, selection);
  if (loaded.ok()) return "<loaded>";
  return loaded.error().to_string();
}

struct Fixture {
  fs::path path = fs::path(BPFVM_BINARY_DIR) / "bpf" / "xdp_parser.v4.o";
  std::vector<std::uint8_t> original = read_bytes(path);
  HeaderInfo header = readelf_header(path);
  std::map<std::string, SectionRow> sections = readelf_sections(path);
  std::map<std::string, std::size_t> symbols = readelf_symbol_indices(path);
  std::map<std::string, std::vector<RelocRow>> relocations = objdump_relocations(path);

  std::size_t section_header(const std::string& name) const {
    return header.section_headers_offset + sections.at(name).index * section_header_size;
  }
  std::size_t symbol(const std::string& name) const {
    return sections.at(".symtab").offset + symbols.at(name) * symbol_size;
  }
  std::size_t symbol_count() const { return sections.at(".symtab").size / symbol_size; }
  // The first relocation of xdp with type `type`: its index and file offset.
  std::pair<std::size_t, std::size_t> relocation(const std::string& type) const {
    const auto& list = relocations.at("xdp");
    for (std::size_t i = 0; i < list.size(); ++i)
      if (list[i].type == type) return {i, sections.at(".relxdp").offset + i * rel_size};
    FAIL("no " << type << " relocation in xdp");
    return {};
  }
};

// Read once: Catch2 runs a test case again for each of its SECTIONs.
const Fixture& fixture() {
  static const Fixture f;
  return f;
}

}  // namespace

TEST_CASE("the malformed-object base loads") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  REQUIRE(f.original.size() > 1000);
  REQUIRE(f.header.section_headers_offset + f.header.section_count * section_header_size ==
          f.original.size());
  auto loaded = load(f.original);
  if (!loaded) FAIL(loaded.error().to_string());
}

TEST_CASE("an object truncated at any length fails with the error its length gives") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  auto shoff = f.header.section_headers_offset;
  for (std::size_t n = 0; n < f.original.size(); ++n) {
    std::vector<std::uint8_t> cut(f.original.begin(), f.original.begin() + static_cast<std::ptrdiff_t>(n));
    std::string want;
    if (n < 64)
      want = fmt::format("obj: file is {} bytes, too short for an ELF64 header (64 bytes)", n);
    else if (n < shoff + section_header_size)
      want = fmt::format("obj: section header table at offset {} is past the end of the file ({} bytes)",
                         shoff, n);
    else
      want = fmt::format("obj: {} section headers at offset {} run past the end of the file ({} bytes)",
                         f.header.section_count, shoff, n);
    INFO("length " << n);
    REQUIRE(error_of(cut) == want);
  }
}

TEST_CASE("corrupt ELF header fields are named") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  auto shoff = f.header.section_headers_offset;
  struct Case {
    std::size_t at;
    std::uint64_t value;
    int width;
    std::string error;
  };
  std::vector<Case> cases = {
      {1, 'X', 1, "obj: not an ELF file (bad magic)"},
      {4, 1, 1, "obj: ELF class 1 is not ELF64 (2)"},
      {5, 2, 1, "obj: ELF data encoding 2 is not little-endian (1)"},
      {6, 0, 1, "obj: ELF version 0 is not 1"},
      {16, 2, 2, "obj: ELF type 2 is not a relocatable object (ET_REL, 1): load the output of clang -c"},
      {18, 62, 2, "obj: ELF machine 62 is not BPF (EM_BPF, 247)"},
      {40, 0, 8, "obj: the object has no section headers (e_shoff is 0)"},
      {40, 0xffffffffffffff00ull, 8,
       fmt::format("obj: section header table at offset {} is past the end of the file ({} bytes)",
                   0xffffffffffffff00ull, f.original.size())},
      {58, 40, 2, "obj: section header size 40 is not 64"},
      {60, 0xffff, 2,
       fmt::format("obj: 65535 section headers at offset {} run past the end of the file ({} bytes)", shoff,
                   f.original.size())},
      {62, f.header.section_count + 3, 2,
       fmt::format("obj: section-name table index {} is not a section (the object has {})",
                   f.header.section_count + 3, f.header.section_count)},
      {62, f.sections.at("xdp").index, 2,
       fmt::format("obj: section-name table [{}] is not a string table (type 1)",
                   f.sections.at("xdp").index)},
  };
  for (const auto& c : cases) {
    auto bytes = f.original;
    if (c.width == 1) put<std::uint8_t>(bytes, c.at, static_cast<std::uint8_t>(c.value));
    if (c.width == 2) put<std::uint16_t>(bytes, c.at, static_cast<std::uint16_t>(c.value));
    if (c.width == 8) put<std::uint64_t>(bytes, c.at, c.value);
    INFO("offset " << c.at << " = " << c.value);
    CHECK(error_of(bytes) == c.error);
  }
}

TEST_CASE("corrupt section headers, symbols and code are named with their section") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  auto size = f.original.size();
  const auto& xdp = f.sections.at("xdp");
  const auto& strtab = f.sections.at(".strtab");
  auto bytes = f.original;

  SECTION("section data past the end of the file") {
    put<std::uint64_t>(bytes, f.section_header("xdp") + sh_offset, size);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: section data at offset {} size {} runs past the end of "
                      "the file ({} bytes)",
                      size, xdp.size, size));
  }
  SECTION("section size past the end of the file") {
    put<std::uint64_t>(bytes, f.section_header(".BTF") + sh_size, ~std::uint64_t{0});
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .BTF: section data at offset {} size {} runs past the end of "
                      "the file ({} bytes)",
                      f.sections.at(".BTF").offset, ~std::uint64_t{0}, size));
  }
  SECTION("section name offset outside the name table") {
    put<std::uint32_t>(bytes, f.section_header("xdp") + sh_name, 0xfffff);
    CHECK(error_of(bytes) == fmt::format("obj: section [{}]: name offset 1048575 is outside the string table "
                                         ".strtab ({} bytes)",
                                         xdp.index, strtab.size));
  }
  SECTION("code size that is not whole instructions") {
    put<std::uint64_t>(bytes, f.section_header("xdp") + sh_size, xdp.size - 4);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: code size {} is not a multiple of 8 bytes", xdp.size - 4));
  }
  SECTION("a program section that is not executable: its functions hold no code") {
    put<std::uint64_t>(bytes, f.section_header("xdp") + sh_flags, 2);  // SHF_ALLOC only
    CHECK(error_of(bytes) ==
          "obj: section xdp: function symbol xdp_flow_count is in a section that holds no code");
  }
  SECTION("symbol with a section index out of range") {
    put<std::uint16_t>(bytes, f.symbol("xdp_flow_count") + st_shndx, 0x7000);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .symtab: symbol {} (xdp_flow_count): section index 28672 is "
                      "out of range (the object has {} sections)",
                      f.symbols.at("xdp_flow_count"), f.header.section_count));
  }
  SECTION("symbol name offset out of range") {
    put<std::uint32_t>(bytes, f.symbol("flows") + st_name, 0xffffff);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .symtab: symbol {}: name offset 16777215 is outside the "
                      "string table .strtab ({} bytes)",
                      f.symbols.at("flows"), strtab.size));
  }
  SECTION("function symbol larger than its section") {
    put<std::uint64_t>(bytes, f.symbol("xdp_flow_count") + st_size, 0x100000);
    CHECK(error_of(bytes) == fmt::format("obj: section xdp: function symbol xdp_flow_count at offset 0 size "
                                         "1048576 does not fit the section's {} instructions",
                                         xdp.size / 8));
  }
}

TEST_CASE("corrupt relocations are named with their section, index and instruction") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  const auto& xdp = f.sections.at("xdp");
  auto [index, at] = f.relocation("R_BPF_64_64");
  const auto& row = f.relocations.at("xdp")[index];
  auto pc = row.offset / 8;
  auto bytes = f.original;
  auto info = get<std::uint64_t>(bytes, at + r_info);
  auto what = fmt::format("relocation {} (R_BPF_64_64 against {})", index, row.symbol);

  SECTION("offset outside the section") {
    put<std::uint64_t>(bytes, at + r_offset, 0x100000);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: {}: offset 1048576 is not an instruction of the section "
                      "({} bytes)",
                      what, xdp.size));
  }
  SECTION("offset inside an instruction") {
    put<std::uint64_t>(bytes, at + r_offset, row.offset + 4);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: {}: offset {} is not an instruction of the section ({} "
                      "bytes)",
                      what, row.offset + 4, xdp.size));
  }
  SECTION("lddw relocation on an instruction that is not lddw") {
    put<std::uint64_t>(bytes, at + r_offset, row.offset + 16);  // the instruction after the lddw
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: instruction {}: {}: the instruction is not a whole lddw", pc + 2,
                      what));
  }
  SECTION("call relocation on an instruction that is not a call") {
    put<std::uint64_t>(bytes, at + r_info, (info & ~0xffffffffull) | 10);  // R_BPF_64_32
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: instruction {}: relocation {} (R_BPF_64_32 against {}): "
                      "the instruction is not a call",
                      pc, index, row.symbol));
  }
  SECTION("unknown relocation type") {
    put<std::uint64_t>(bytes, at + r_info, (info & ~0xffffffffull) | 77);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: instruction {}: relocation {} (type 77 against {}): "
                      "unknown relocation type",
                      pc, index, row.symbol));
  }
  SECTION("data relocation on code") {
    put<std::uint64_t>(bytes, at + r_info, (info & ~0xffffffffull) | 2);  // R_BPF_64_ABS64
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: instruction {}: relocation {} (R_BPF_64_ABS64 against "
                      "{}): data relocations do not apply to instructions",
                      pc, index, row.symbol));
  }
  SECTION("function that ends between the two slots of an lddw") {
    put<std::uint64_t>(bytes, f.symbol("xdp_flow_count") + st_size, row.offset + 8);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: instruction {}: function xdp_flow_count ends inside an lddw", pc));
  }
  SECTION("symbol index out of range") {
    put<std::uint64_t>(bytes, at + r_info, (std::uint64_t{0xfffff} << 32) | 1);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .relxdp: relocation {}: symbol index 1048575 is out of range "
                      "(the object has {} symbols)",
                      index, f.symbol_count()));
  }
  SECTION("lddw whose map offset names no map") {
    put<std::int32_t>(bytes, xdp.offset + row.offset + 4, 4);  // imm: 4 bytes into the map
    auto map_offset = [&] {
      for (const auto& s : objdump_symbols(f.path))
        if (s.name == row.symbol) return s.value;
      return ~std::uint64_t{0};
    }();
    CHECK(error_of(bytes) ==
          fmt::format("obj: section xdp: instruction {}: {}: the symbol is in section .maps, which "
                      "holds no map, global data or code at offset {}",
                      pc, what, map_offset + 4));
  }
}

TEST_CASE("corrupt BTF and BTF.ext are named") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  auto btf = f.sections.at(".BTF").offset;
  auto ext = f.sections.at(".BTF.ext").offset;
  auto bytes = f.original;
  // BTF header (linux/btf.h): magic, version, flags, hdr_len, type_off, type_len, str_off, str_len.
  auto hdr_len = get<std::uint32_t>(bytes, btf + 4);
  auto type_off = get<std::uint32_t>(bytes, btf + 8);
  auto str_len = get<std::uint32_t>(bytes, btf + 20);
  // BTF.ext header: magic, version, flags, hdr_len, func_info_off/len, line_info_off/len.
  auto ext_hdr_len = get<std::uint32_t>(bytes, ext + 4);
  auto line_off = get<std::uint32_t>(bytes, ext + 16);
  auto lines = ext + ext_hdr_len + line_off;  // rec_size, then {sec_name_off, num_info, records...}

  SECTION("bad magic") {
    put<std::uint16_t>(bytes, btf, 0);
    CHECK(error_of(bytes) == "obj: section .BTF: bad BTF magic 0x0000");
  }
  SECTION("types past the section's end") {
    put<std::uint32_t>(bytes, btf + 12, 0xffffffff);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .BTF: BTF types at offset {} length 4294967295 run past the "
                      "section's end",
                      type_off));
  }
  SECTION("truncated type") {
    put<std::uint32_t>(bytes, btf + 12, 2);
    CHECK(error_of(bytes) == "obj: section .BTF: BTF type 1 at offset 0 is truncated");
  }
  SECTION("unknown kind") {
    auto info_at = btf + hdr_len + type_off + 4;
    put<std::uint32_t>(bytes, info_at, (get<std::uint32_t>(bytes, info_at) & ~(0x1fu << 24)) | (31u << 24));
    CHECK(error_of(bytes) == "obj: section .BTF: BTF type 1 has unknown kind 31");
  }
  SECTION("BTF.ext bad magic") {
    put<std::uint16_t>(bytes, ext, 0x1234);
    CHECK(error_of(bytes) == "obj: section .BTF.ext: bad BTF.ext magic 0x1234");
  }
  SECTION("BTF.ext line info record size") {
    put<std::uint32_t>(bytes, lines, 8);
    CHECK(error_of(bytes) == "obj: section .BTF.ext: BTF.ext line info record size 8 is below 16");
  }
  SECTION("BTF.ext line info past the section's end") {
    put<std::uint32_t>(bytes, ext + 20, 0xfffffff0);
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .BTF.ext: BTF.ext line info at offset {} length 4294967280 "
                      "runs past the section's end",
                      line_off));
  }
  SECTION("BTF.ext file name outside the string section") {
    put<std::uint32_t>(bytes, lines + 4 + 8 + 4, 0xffffffff);  // first record's file_name_off
    CHECK(error_of(bytes) ==
          fmt::format("obj: section .BTF.ext: BTF string offset 4294967295 is outside the string "
                      "section ({} bytes)",
                      str_len));
  }
  SECTION("BTF.ext without BTF") {
    // Rename .BTF to "license" (another section's name): .BTF.ext has no strings left.
    auto license_name = get<std::uint32_t>(bytes, f.section_header("license") + sh_name);
    put<std::uint32_t>(bytes, f.section_header(".BTF") + sh_name, license_name);
    CHECK(error_of(bytes) == "obj: section .BTF.ext: .BTF.ext without a .BTF section for its strings");
  }
}

TEST_CASE("a .bss larger than the loader allocates is refused") {
  REQUIRE(have_llvm_tools());
  auto path = fs::path(BPFVM_BINARY_DIR) / "bpf" / "globals.v4.o";
  auto bytes = read_bytes(path);
  auto header = readelf_header(path);
  auto bss = readelf_sections(path).at(".bss");
  REQUIRE(bss.type == "NOBITS");
  put<std::uint64_t>(bytes, header.section_headers_offset + bss.index * section_header_size + sh_size,
                     std::uint64_t{1} << 40);
  CHECK(error_of(bytes, "account") ==
        "obj: section .bss: global data of 1099511627776 bytes is larger than 268435456 bytes");
}

TEST_CASE("program selection errors list the candidates") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  CHECK(error_of(f.original, "") ==
        "obj: the object holds 2 programs; select one by section or function name: xdp_flow_count (section "
        "xdp), "
        "xdp_udp_guard (section xdp)");
  CHECK(error_of(f.original, "xdp") ==
        "obj: section xdp holds 2 programs (xdp_flow_count, xdp_udp_guard); select one by function name");
  CHECK(error_of(f.original, "nope") ==
        "obj: no program or section is named 'nope'; the object holds: xdp_flow_count (section xdp), "
        "xdp_udp_guard "
        "(section xdp)");
  CHECK(error_of(f.original, "parse_ports") ==
        "obj: no program or section is named 'parse_ports'; the object holds: xdp_flow_count (section xdp), "
        "xdp_udp_guard (section xdp)");
  CHECK(load(f.original, "xdp_udp_guard").ok());
}

TEST_CASE("randomly corrupted objects never crash the loader") {
  REQUIRE(have_llvm_tools());
  const Fixture& f = fixture();
  // Corrupt the parts the loader reads: the section headers, symbols, relocations, code, BTF.
  std::vector<std::pair<std::size_t, std::size_t>> regions = {
      {f.header.section_headers_offset, f.header.section_count * section_header_size}};
  for (const char* name : {".symtab", ".relxdp", "xdp", ".text", ".BTF", ".BTF.ext", ".strtab", ".maps"})
    regions.emplace_back(f.sections.at(name).offset, f.sections.at(name).size);
  std::mt19937 random(20261124);
  std::size_t loaded = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    auto bytes = f.original;
    auto [start, length] = regions[random() % regions.size()];
    for (int flips = 1 + static_cast<int>(random() % 4); flips > 0; --flips) {
      auto at = start + random() % length;
      bytes[at] = static_cast<std::uint8_t>(random() % 3 == 0 ? 0xff : random());
    }
    auto result = load(bytes);
    if (result.ok()) {
      ++loaded;
    } else {
      ++rejected;
      INFO(result.error().to_string());
      CHECK(result.error().file == "obj");
      CHECK(!result.error().message.empty());
    }
  }
  CHECK(rejected > 0);
  CHECK(loaded + rejected == 3000);
}
