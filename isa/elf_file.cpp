#include "isa/elf_file.hpp"

#include <fmt/format.h>

#include "isa/le_bytes.hpp"

namespace bpfvm::isa::elf {
namespace {

constexpr std::size_t header_size = 64, section_header_size = 64, symbol_size = 24, rel_size = 16;
constexpr std::uint16_t et_rel = 1, em_bpf = 247;
constexpr std::uint8_t elfclass64 = 2, elfdata2lsb = 1, ev_current = 1;

Error error_in(const std::string& section, std::string message) {
  Error e(std::move(message));
  e.section = section;
  return e;
}

// The NUL-terminated string at `offset` of a string table section.
Result<std::string> string_at(const Section& table, std::uint64_t offset, const std::string& what) {
  if (offset >= table.data.size())
    return Error(fmt::format("{}: name offset {} is outside the string table {} ({} bytes)", what, offset,
                             table.name.empty() ? fmt::format("[{}]", table.index) : table.name,
                             table.data.size()));
  auto rest = table.data.subspan(offset);
  for (std::size_t i = 0; i < rest.size(); ++i)
    if (rest[i] == 0) return std::string(reinterpret_cast<const char*>(rest.data()), i);
  return Error(fmt::format("{}: name at offset {} of the string table {} is not NUL-terminated", what, offset,
                           table.name));
}

}  // namespace

std::string relocation_type_name(std::uint32_t type) {
  switch (type) {
    case r_bpf_none: return "R_BPF_NONE";
    case r_bpf_64_64: return "R_BPF_64_64";
    case r_bpf_64_abs64: return "R_BPF_64_ABS64";
    case r_bpf_64_abs32: return "R_BPF_64_ABS32";
    case r_bpf_64_nodyld32: return "R_BPF_64_NODYLD32";
    case r_bpf_64_32: return "R_BPF_64_32";
    default: return fmt::format("type {}", type);
  }
}

Result<File> File::parse(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < header_size)
    return Error(
        fmt::format("file is {} bytes, too short for an ELF64 header ({} bytes)", bytes.size(), header_size));
  if (bytes[0] != 0x7f || bytes[1] != 'E' || bytes[2] != 'L' || bytes[3] != 'F')
    return Error("not an ELF file (bad magic)");
  if (bytes[4] != elfclass64) return Error(fmt::format("ELF class {} is not ELF64 (2)", bytes[4]));
  if (bytes[5] != elfdata2lsb)
    return Error(fmt::format("ELF data encoding {} is not little-endian (1)", bytes[5]));
  if (bytes[6] != ev_current) return Error(fmt::format("ELF version {} is not 1", bytes[6]));
  auto type = le::u16(bytes, 16);
  if (type != et_rel)
    return Error(fmt::format(
        "ELF type {} is not a relocatable object (ET_REL, 1): load the output of clang -c", type));
  auto machine = le::u16(bytes, 18);
  if (machine != em_bpf) return Error(fmt::format("ELF machine {} is not BPF (EM_BPF, 247)", machine));

  auto shoff = le::u64(bytes, 40);
  auto shentsize = le::u16(bytes, 58);
  std::uint64_t shnum = le::u16(bytes, 60);
  std::uint32_t shstrndx = le::u16(bytes, 62);
  if (shoff == 0) return Error("the object has no section headers (e_shoff is 0)");
  if (shentsize != section_header_size)
    return Error(fmt::format("section header size {} is not {}", shentsize, section_header_size));
  if (!le::fits(bytes, shoff, section_header_size))
    return Error(fmt::format("section header table at offset {} is past the end of the file ({} bytes)",
                             shoff, bytes.size()));
  // Large counts live in section 0 (ELF extended numbering).
  if (shnum == 0) shnum = le::u64(bytes, shoff + 32);
  if (shstrndx == shn_xindex) shstrndx = le::u32(bytes, shoff + 40);
  if (shnum > bytes.size() / section_header_size || !le::fits(bytes, shoff, shnum * section_header_size))
    return Error(fmt::format("{} section headers at offset {} run past the end of the file ({} bytes)", shnum,
                             shoff, bytes.size()));

  File file;
  file.sections_.resize(shnum);
  std::vector<std::uint64_t> offsets(shnum);
  for (std::size_t i = 0; i < shnum; ++i) {
    auto h = shoff + i * section_header_size;
    auto& s = file.sections_[i];
    s.index = i;
    s.type = le::u32(bytes, h + 4);
    s.flags = le::u64(bytes, h + 8);
    offsets[i] = le::u64(bytes, h + 24);
    s.size = le::u64(bytes, h + 32);
    s.link = le::u32(bytes, h + 40);
    s.info = le::u32(bytes, h + 44);
  }
  // Section data, the name table's first so that later errors can name their section.
  auto attach_data = [&](Section& s) -> Status {
    if (s.index == 0 || s.type == sht_nobits) return {};
    if (!le::fits(bytes, offsets[s.index], s.size))
      return error_in(
          s.name.empty() ? fmt::format("[{}]", s.index) : s.name,
          fmt::format("section data at offset {} size {} runs past the end of the file ({} bytes)",
                      offsets[s.index], s.size, bytes.size()));
    s.data = bytes.subspan(offsets[s.index], s.size);
    return {};
  };
  if (shstrndx == 0 || shstrndx >= shnum)
    return Error(
        fmt::format("section-name table index {} is not a section (the object has {})", shstrndx, shnum));
  auto& names = file.sections_[shstrndx];
  if (names.type != sht_strtab)
    return Error(
        fmt::format("section-name table [{}] is not a string table (type {})", shstrndx, names.type));
  if (auto status = attach_data(names); !status) return status.error();
  for (std::size_t i = 1; i < shnum; ++i) {
    auto name =
        string_at(names, le::u32(bytes, shoff + i * section_header_size), fmt::format("section [{}]", i));
    if (!name) return name.error();
    file.sections_[i].name = std::move(*name);
  }
  for (auto& s : file.sections_)
    if (auto status = attach_data(s); !status) return status.error();

  // The symbol table (one per object; clang always writes it, a hand-made object may not).
  for (const auto& s : file.sections_) {
    if (s.type != sht_symtab) continue;
    if (file.symtab_ != 0) return error_in(s.name, "a second symbol table (SHT_SYMTAB)");
    file.symtab_ = s.index;
  }
  if (file.symtab_ != 0) {
    const auto& symtab = file.sections_[file.symtab_];
    if (symtab.size % symbol_size != 0)
      return error_in(symtab.name,
                      fmt::format("symbol table size {} is not a multiple of {}", symtab.size, symbol_size));
    if (symtab.link == 0 || symtab.link >= shnum || file.sections_[symtab.link].type != sht_strtab)
      return error_in(symtab.name,
                      fmt::format("symbol table's string table index {} is not a string table", symtab.link));
    const auto& strings = file.sections_[symtab.link];
    auto count = symtab.size / symbol_size;
    file.symbols_.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      auto d = symtab.data.subspan(i * symbol_size, symbol_size);
      auto& sym = file.symbols_[i];
      sym.index = i;
      auto name = string_at(strings, le::u32(d, 0), fmt::format("symbol {}", i));
      if (!name) return error_in(symtab.name, name.error().message);
      sym.name = std::move(*name);
      sym.bind = d[4] >> 4;
      sym.type = d[4] & 0xf;
      sym.section = le::u16(d, 6);
      sym.value = le::u64(d, 8);
      sym.size = le::u64(d, 16);
      if (sym.section == shn_xindex)
        return error_in(symtab.name,
                        fmt::format("symbol {} ({}): extended section indices (SHN_XINDEX) are not "
                                    "supported",
                                    i, sym.name));
      if (sym.defined() && sym.section >= shnum)
        return error_in(symtab.name,
                        fmt::format("symbol {} ({}): section index {} is out of range (the object "
                                    "has {} sections)",
                                    i, sym.name, sym.section, shnum));
    }
  }
  return file;
}

const Section* File::find_section(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.index != 0 && s.name == name) return &s;
  return nullptr;
}

Result<std::vector<Relocation>> File::relocations_for(const Section& target) const {
  std::vector<Relocation> out;
  for (const auto& s : sections_) {
    if ((s.type != sht_rel && s.type != sht_rela) || s.info != target.index) continue;
    if (s.type == sht_rela)
      return error_in(s.name, "RELA relocations (with addends) are not produced for BPF and not supported");
    if (s.link != symtab_ || symtab_ == 0)
      return error_in(
          s.name, fmt::format("relocation section's symbol table index {} is not the symbol table", s.link));
    if (s.size % rel_size != 0)
      return error_in(s.name,
                      fmt::format("relocation section size {} is not a multiple of {}", s.size, rel_size));
    for (std::size_t i = 0; i < s.size / rel_size; ++i) {
      Relocation r;
      r.index = i;
      r.offset = le::u64(s.data, i * rel_size);
      auto info = le::u64(s.data, i * rel_size + 8);
      r.type = static_cast<std::uint32_t>(info);
      r.symbol = static_cast<std::uint32_t>(info >> 32);
      if (r.symbol >= symbols_.size())
        return error_in(s.name,
                        fmt::format("relocation {}: symbol index {} is out of range (the object has {} "
                                    "symbols)",
                                    i, r.symbol, symbols_.size()));
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace bpfvm::isa::elf
