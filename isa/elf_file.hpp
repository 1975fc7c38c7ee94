// Reading the structure of an ELF64 little-endian EM_BPF relocatable object (ET_REL), from the
// ELF specification: header, section headers and names, the symbol table, REL relocations.
// Every offset and size is checked against the bytes before it is read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"

namespace bpfvm::isa::elf {

// Section types, flags, symbol kinds and BPF relocation types used by the loader.
inline constexpr std::uint32_t sht_progbits = 1, sht_symtab = 2, sht_strtab = 3, sht_rela = 4, sht_nobits = 8,
                               sht_rel = 9;
inline constexpr std::uint64_t shf_write = 0x1, shf_alloc = 0x2, shf_execinstr = 0x4;
inline constexpr std::uint8_t stb_local = 0, stb_global = 1, stb_weak = 2;
inline constexpr std::uint8_t stt_notype = 0, stt_object = 1, stt_func = 2, stt_section = 3;
inline constexpr std::uint16_t shn_undef = 0, shn_loreserve = 0xff00, shn_xindex = 0xffff;
inline constexpr std::uint32_t r_bpf_none = 0, r_bpf_64_64 = 1, r_bpf_64_abs64 = 2, r_bpf_64_abs32 = 3,
                               r_bpf_64_nodyld32 = 4, r_bpf_64_32 = 10;

struct Section {
  std::size_t index = 0;
  std::string name;
  std::uint32_t type = 0;
  std::uint64_t flags = 0;
  std::uint64_t size = 0;
  std::uint32_t link = 0;
  std::uint32_t info = 0;
  std::span<const std::uint8_t> data;  // the section's bytes; empty for SHT_NOBITS

  bool executable() const { return type == sht_progbits && (flags & shf_execinstr) != 0; }
};

struct Symbol {
  std::size_t index = 0;
  std::string name;
  std::uint8_t bind = 0;
  std::uint8_t type = 0;
  std::uint16_t section = 0;  // section index, shn_undef, or a reserved index (>= shn_loreserve)
  std::uint64_t value = 0;
  std::uint64_t size = 0;

  // True when `section` names a real section of the file.
  bool defined() const { return section != shn_undef && section < shn_loreserve; }
};

struct Relocation {
  std::size_t index = 0;  // position in its relocation section
  std::uint64_t offset = 0;
  std::uint32_t type = 0;
  std::uint32_t symbol = 0;  // index into File::symbols(), checked
};

class File {
 public:
  // Errors name the section (when there is one) but not the file: the caller adds it.
  static Result<File> parse(std::span<const std::uint8_t> bytes);

  const std::vector<Section>& sections() const { return sections_; }
  const std::vector<Symbol>& symbols() const { return symbols_; }
  const Section* find_section(std::string_view name) const;
  // The REL relocations that apply to `target`, in file order (empty when it has none).
  Result<std::vector<Relocation>> relocations_for(const Section& target) const;

 private:
  std::vector<Section> sections_;
  std::vector<Symbol> symbols_;
  std::size_t symtab_ = 0;  // section index of SHT_SYMTAB, 0 when there is none
};

// "R_BPF_64_64" etc., or "type N".
std::string relocation_type_name(std::uint32_t type);

}  // namespace bpfvm::isa::elf
