#include "isa/elf.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "isa/btf.hpp"
#include "isa/elf_file.hpp"

namespace bpfvm::isa {
namespace {

using elf::Relocation;
using elf::Section;
using elf::Symbol;

// The src field value that selects the lddw source kind `operation`, from the ISA table.
constexpr std::uint8_t lddw_source(Operation operation) {
  for (const auto& row : op_table)
    if (row.kind == Kind::lddw && row.operation == operation)
      return static_cast<std::uint8_t>(row.disc_value);
  return 0;
}

constexpr std::uint64_t max_global_data = std::uint64_t{1} << 28;

bool is_global_data(const Section& s) {
  if ((s.flags & elf::shf_alloc) == 0 || (s.flags & elf::shf_execinstr) != 0) return false;
  if (s.type != elf::sht_progbits && s.type != elf::sht_nobits) return false;
  for (std::string_view prefix : {".data", ".rodata", ".bss"})
    if (s.name == prefix || (s.name.starts_with(prefix) && s.name[prefix.size()] == '.')) return true;
  return false;
}

// A function of a code section: instructions [start, end) of that section.
struct Func {
  std::string name;
  std::size_t section = 0;
  std::uint32_t start = 0;
  std::uint32_t end = 0;
  bool program = false;  // a global function outside .text
};

struct CodeSection {
  const Section* section = nullptr;
  std::vector<Insn> insns;
  std::map<std::size_t, Relocation> relocations;  // by instruction index (lddw and call only)
};

Error section_error(const std::string& section, std::string message, std::optional<std::size_t> insn = {}) {
  Error e(std::move(message));
  e.section = section;
  e.insn = insn;
  return e;
}

// Everything read from one object; programs are linked from it on demand.
class Object {
 public:
  static Result<Object> read(std::span<const std::uint8_t> bytes);
  Result<const Func*> select(const std::string& selection) const;
  Result<Program> link(const Func& entry) const;
  std::vector<ObjectProgram> programs() const;
  const std::vector<MapDef>& maps() const { return maps_; }

 private:
  Status read_btf();
  Status read_code();
  Status read_functions();
  Status read_maps();
  Status read_relocations(CodeSection& code);
  const Func* function_at(std::size_t section, std::int64_t index) const;
  std::string describe_programs() const;

  elf::File file_;
  std::optional<btf::Types> btf_;
  std::map<std::string, std::vector<btf::LineRecord>> lines_;
  std::map<std::size_t, CodeSection> code_;  // by section index
  std::vector<Func> funcs_;                  // sorted by section, then start
  std::vector<MapDef> maps_;
  std::map<std::pair<std::size_t, std::uint64_t>, std::uint32_t> map_at_;  // (section, offset) -> map
  std::map<std::size_t, std::uint32_t> data_map_;                          // section -> global-data map
};

Result<Object> Object::read(std::span<const std::uint8_t> bytes) {
  Object o;
  auto file = elf::File::parse(bytes);
  if (!file) return file.error();
  o.file_ = std::move(*file);
  for (auto step : {&Object::read_btf, &Object::read_code, &Object::read_functions, &Object::read_maps}) {
    auto status = (o.*step)();
    if (!status) return status.error();
  }
  // Only code is relocated. Relocations of data and debug sections (addresses in initialised
  // globals, .rel.debug_*, .rel.BTF*) place addresses for debuggers and the kernel's loader;
  // nothing in a Program has an address to put there.
  for (auto& [index, code] : o.code_) {
    auto status = o.read_relocations(code);
    if (!status) return status.error();
  }
  return o;
}

Status Object::read_btf() {
  if (const auto* s = file_.find_section(".BTF")) {
    auto types = btf::Types::parse(s->data);
    if (!types) return section_error(s->name, types.error().message);
    btf_ = std::move(*types);
  }
  if (const auto* s = file_.find_section(".BTF.ext")) {
    if (!btf_) return section_error(s->name, ".BTF.ext without a .BTF section for its strings");
    auto lines = btf::parse_line_info(s->data, *btf_);
    if (!lines) return section_error(s->name, lines.error().message);
    lines_ = std::move(*lines);
  }
  return {};
}

Status Object::read_code() {
  for (const auto& s : file_.sections()) {
    if (!s.executable() || s.size == 0) continue;
    if (s.size % sizeof(Insn) != 0)
      return section_error(s.name, fmt::format("code size {} is not a multiple of 8 bytes", s.size));
    CodeSection code;
    code.section = &s;
    code.insns.resize(s.size / sizeof(Insn));
    std::memcpy(code.insns.data(), s.data.data(), s.size);
    code_.emplace(s.index, std::move(code));
  }
  return {};
}

Status Object::read_functions() {
  for (const auto& sym : file_.symbols()) {
    if (sym.type != elf::stt_func || !sym.defined()) continue;
    auto it = code_.find(sym.section);
    const auto& section = file_.sections()[sym.section];
    if (it == code_.end())
      return section_error(section.name,
                           fmt::format("function symbol {} is in a section that holds no code", sym.name));
    auto n = it->second.insns.size();
    if (sym.value % sizeof(Insn) != 0 || sym.size % sizeof(Insn) != 0 || sym.value / sizeof(Insn) >= n ||
        sym.size / sizeof(Insn) > n - sym.value / sizeof(Insn))
      return section_error(section.name,
                           fmt::format("function symbol {} at offset {} size {} does not fit the "
                                       "section's {} instructions",
                                       sym.name, sym.value, sym.size, n));
    Func f;
    f.name = sym.name;
    f.section = sym.section;
    f.start = static_cast<std::uint32_t>(sym.value / sizeof(Insn));
    f.end = static_cast<std::uint32_t>(f.start + sym.size / sizeof(Insn));
    f.program = section.name != ".text" && (sym.bind == elf::stb_global || sym.bind == elf::stb_weak);
    funcs_.push_back(std::move(f));
  }
  // A code section without function symbols (hand-written assembly) is one function named after
  // it; a program unless it is .text.
  for (const auto& [index, code] : code_) {
    bool has = std::any_of(funcs_.begin(), funcs_.end(), [&](const Func& f) { return f.section == index; });
    if (!has)
      funcs_.push_back({code.section->name, index, 0, static_cast<std::uint32_t>(code.insns.size()),
                        code.section->name != ".text"});
  }
  std::sort(funcs_.begin(), funcs_.end(), [](const Func& a, const Func& b) {
    return std::tie(a.section, a.start) < std::tie(b.section, b.start);
  });
  // A symbol of size 0 reaches to the next function or the section's end.
  for (std::size_t i = 0; i < funcs_.size(); ++i) {
    auto& f = funcs_[i];
    if (f.end > f.start) continue;
    bool next_here = i + 1 < funcs_.size() && funcs_[i + 1].section == f.section;
    f.end = next_here ? funcs_[i + 1].start : static_cast<std::uint32_t>(code_.at(f.section).insns.size());
    if (f.end <= f.start)
      return section_error(
          file_.sections()[f.section].name,
          fmt::format("function {} starts where function {} starts", f.name, funcs_[i + 1].name));
  }
  return {};
}

Status Object::read_maps() {
  // Legacy `maps`: struct bpf_map_def { type, key_size, value_size, max_entries, map_flags } per
  // symbol; every definition has the section size divided by the number of maps (as in libbpf).
  if (const auto* s = file_.find_section("maps"); s && s->type == elf::sht_progbits) {
    std::vector<const Symbol*> syms;
    for (const auto& sym : file_.symbols())
      if (sym.section == s->index && sym.type != elf::stt_section && !sym.name.empty()) syms.push_back(&sym);
    std::sort(syms.begin(), syms.end(), [](auto* a, auto* b) { return a->value < b->value; });
    if (!syms.empty()) {
      auto def_size = s->size / syms.size();
      if (def_size < 16)
        return section_error(s->name,
                             fmt::format("{} map definitions in {} bytes: each needs at least 16 (type, "
                                         "key_size, value_size, max_entries)",
                                         syms.size(), s->size));
      for (const auto* sym : syms) {
        if (sym->value > s->size || def_size > s->size - sym->value)
          return section_error(
              s->name, fmt::format("map {} at offset {} runs past the section's end ({} bytes)", sym->name,
                                   sym->value, s->size));
        auto field = [&](std::size_t i) -> std::uint32_t {
          if ((i + 1) * 4 > def_size) return 0;
          std::uint32_t v;
          std::memcpy(&v, s->data.data() + sym->value + i * 4, 4);
          return v;
        };
        MapDef def{sym->name, field(0), field(1), field(2), field(3), field(4), false, {}};
        map_at_[{s->index, sym->value}] = static_cast<std::uint32_t>(maps_.size());
        maps_.push_back(std::move(def));
      }
    }
  }
  // BTF `.maps`: the DATASEC's variables name the maps; their types say what they are.
  if (const auto* s = file_.find_section(".maps")) {
    if (!btf_) return section_error(s->name, ".maps section without .BTF to describe its maps");
    // In the order of their symbols (the order of the source), as legacy maps.
    std::vector<std::pair<std::uint64_t, MapDef>> defs;
    for (const auto& var : btf_->datasec_vars(".maps")) {
      auto def = btf_->map_definition(var.type);
      if (!def) return section_error(".BTF", fmt::format("map {}: {}", var.name, def.error().message));
      auto sym = std::find_if(file_.symbols().begin(), file_.symbols().end(), [&](const Symbol& sym) {
        return sym.section == s->index && sym.name == var.name;
      });
      if (sym == file_.symbols().end())
        return section_error(s->name, fmt::format("BTF map {} has no symbol in the section", var.name));
      def->name = var.name;
      defs.emplace_back(sym->value, std::move(*def));
    }
    std::stable_sort(defs.begin(), defs.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (auto& [offset, def] : defs) {
      if (!map_at_.emplace(std::pair{s->index, offset}, static_cast<std::uint32_t>(maps_.size())).second)
        return section_error(s->name,
                             fmt::format("BTF maps {} and another share offset {}", def.name, offset));
      maps_.push_back(std::move(def));
    }
  }
  // Global data: one single-entry array per section, its value the section's bytes.
  for (const auto& s : file_.sections()) {
    if (!is_global_data(s) || s.size == 0) continue;
    // .bss takes no room in the file: bound what a corrupt size could make us allocate.
    if (s.size > max_global_data)
      return section_error(
          s.name, fmt::format("global data of {} bytes is larger than {} bytes", s.size, max_global_data));
    MapDef def;
    def.name = s.name;
    def.type = static_cast<std::uint32_t>(MapType::array);
    def.key_size = 4;
    def.value_size = static_cast<std::uint32_t>(s.size);
    def.max_entries = 1;
    def.read_only = s.name.starts_with(".rodata");
    if (s.type == elf::sht_nobits)
      def.initial_value.assign(s.size, 0);
    else
      def.initial_value.assign(s.data.begin(), s.data.end());
    data_map_[s.index] = static_cast<std::uint32_t>(maps_.size());
    maps_.push_back(std::move(def));
  }
  return {};
}

Status Object::read_relocations(CodeSection& code) {
  const auto& s = *code.section;
  auto relocations = file_.relocations_for(s);
  if (!relocations) return relocations.error();
  for (const auto& r : *relocations) {
    const auto& sym = file_.symbols()[r.symbol];
    auto what = fmt::format("relocation {} ({} against {})", r.index, elf::relocation_type_name(r.type),
                            sym.name.empty() ? fmt::format("symbol {}", r.symbol) : sym.name);
    if (r.offset % sizeof(Insn) != 0 || r.offset >= s.size)
      return section_error(
          s.name, fmt::format("{}: offset {} is not an instruction of the section ({} bytes)", what, r.offset,
                              s.size));
    auto pc = static_cast<std::size_t>(r.offset / sizeof(Insn));
    auto op = decode(code.insns[pc]);
    switch (r.type) {
      case elf::r_bpf_none: continue;
      case elf::r_bpf_64_64:
        if (!op || info(*op).kind != Kind::lddw || pc + 1 >= code.insns.size())
          return section_error(s.name, fmt::format("{}: the instruction is not a whole lddw", what), pc);
        break;
      case elf::r_bpf_64_32:
        if (!op || info(*op).kind != Kind::call)
          return section_error(s.name, fmt::format("{}: the instruction is not a call", what), pc);
        break;
      case elf::r_bpf_64_abs64:
      case elf::r_bpf_64_abs32:
      case elf::r_bpf_64_nodyld32:
        return section_error(s.name, fmt::format("{}: data relocations do not apply to instructions", what),
                             pc);
      default: return section_error(s.name, fmt::format("{}: unknown relocation type", what), pc);
    }
    if (!code.relocations.emplace(pc, r).second)
      return section_error(s.name, fmt::format("{}: a second relocation of the same instruction", what), pc);
  }
  return {};
}

const Func* Object::function_at(std::size_t section, std::int64_t index) const {
  for (const auto& f : funcs_)
    if (f.section == section && index >= f.start && index < f.end) return &f;
  return nullptr;
}

std::vector<ObjectProgram> Object::programs() const {
  std::vector<ObjectProgram> out;
  for (const auto& f : funcs_)
    if (f.program) out.push_back({file_.sections()[f.section].name, f.name, f.end - f.start});
  return out;
}

std::string Object::describe_programs() const {
  std::string out;
  for (const auto& p : programs())
    out += fmt::format("{}{} (section {})", out.empty() ? "" : ", ", p.name, p.section);
  return out;
}

Result<const Func*> Object::select(const std::string& selection) const {
  std::vector<const Func*> all;
  for (const auto& f : funcs_)
    if (f.program) all.push_back(&f);
  if (all.empty())
    return Error("the object holds no program (no function in an executable section other than .text)");
  if (selection.empty()) {
    if (all.size() == 1) return all[0];
    return Error(fmt::format("the object holds {} programs; select one by section or function name: {}",
                             all.size(), describe_programs()));
  }
  for (const auto* f : all)
    if (f->name == selection) return f;
  std::vector<const Func*> in_section;
  for (const auto* f : all)
    if (file_.sections()[f->section].name == selection) in_section.push_back(f);
  if (in_section.size() == 1) return in_section[0];
  if (in_section.size() > 1) {
    std::string names;
    for (const auto* f : in_section) names += fmt::format("{}{}", names.empty() ? "" : ", ", f->name);
    return Error(fmt::format("section {} holds {} programs ({}); select one by function name", selection,
                             in_section.size(), names));
  }
  return Error(fmt::format("no program or section is named '{}'; the object holds: {}", selection,
                           describe_programs()));
}

Result<Program> Object::link(const Func& entry) const {
  Program p;
  p.name = entry.name;
  p.section = file_.sections()[entry.section].name;
  p.maps = maps_;

  std::vector<std::pair<const Func*, std::uint32_t>> placed;  // function, its first instruction in p
  auto place = [&](const Func* f) {
    for (const auto& [g, at] : placed)
      if (g == f) return;
    placed.emplace_back(f, static_cast<std::uint32_t>(p.insns.size()));
    const auto& insns = code_.at(f->section).insns;
    p.insns.insert(p.insns.end(), insns.begin() + f->start, insns.begin() + f->end);
  };
  // Calls and function references are fixed once every function they reach has its place.
  struct Fixup {
    std::size_t pc;
    const Func* target;
    std::uint32_t offset;  // within the target function
  };
  std::vector<Fixup> fixups;

  place(&entry);
  for (std::size_t i = 0; i < placed.size(); ++i) {
    const Func& f = *placed[i].first;
    const auto base = placed[i].second;
    const auto& code = code_.at(f.section);
    const auto& section_name = code.section->name;
    for (std::size_t spc = f.start; spc < f.end; ++spc) {
      const std::size_t pc = base + (spc - f.start);
      const Insn insn = p.insns[pc];
      auto op = decode(insn);
      if (!op) continue;  // validation reports it with its index in the program
      const auto& row = info(*op);
      if (row.kind == Kind::lddw && spc + 1 >= f.end)
        return section_error(section_name, fmt::format("function {} ends inside an lddw", f.name), spc);
      auto rel = code.relocations.find(spc);
      // Where a call or function reference lands: a section and an instruction index in it.
      std::optional<std::pair<std::size_t, std::int64_t>> target;
      std::string what;
      if (rel != code.relocations.end()) {
        const auto& r = rel->second;
        const auto& sym = file_.symbols()[r.symbol];
        what = fmt::format("relocation {} ({} against {})", r.index, elf::relocation_type_name(r.type),
                           sym.name);
        if (!sym.defined())
          return section_error(section_name,
                               fmt::format("{}: the symbol is not defined in the object (externs, "
                                           "kfuncs and kconfig are not supported)",
                                           what),
                               spc);
        bool to_code = code_.count(sym.section) != 0;
        if (r.type == elf::r_bpf_64_32) {
          // A call: the symbol's instruction plus imm + 1 (imm is -1 for a global function; for
          // a static one the symbol is its section and imm says where in it).
          if (!to_code || row.operation != Operation::local)
            return section_error(section_name,
                                 fmt::format("{}: a call relocation must name code and sit on a "
                                             "bpf-to-bpf call",
                                             what),
                                 spc);
          target = {sym.section, static_cast<std::int64_t>(sym.value / sizeof(Insn)) + insn.imm + 1};
        } else if (to_code) {
          // lddw of a function's address (callbacks): the symbol plus imm bytes.
          auto bytes = static_cast<std::int64_t>(sym.value) + insn.imm;
          if (bytes % static_cast<std::int64_t>(sizeof(Insn)) != 0)
            return section_error(
                section_name, fmt::format("{}: function address {} is not an instruction", what, bytes), spc);
          p.insns[pc].set_src(lddw_source(Operation::func));
          p.insns[pc + 1].imm = 0;
          target = {sym.section, bytes / static_cast<std::int64_t>(sizeof(Insn))};
        } else if (auto m = map_at_.find({sym.section, sym.value + static_cast<std::uint32_t>(insn.imm)});
                   m != map_at_.end()) {
          p.insns[pc].set_src(lddw_source(Operation::map_idx));
          p.insns[pc].imm = static_cast<std::int32_t>(m->second);
          p.insns[pc + 1].imm = 0;
        } else if (auto d = data_map_.find(sym.section); d != data_map_.end()) {
          // Global data: the symbol's offset plus the addend that clang left in imm.
          auto offset = static_cast<std::int64_t>(sym.value) + insn.imm;
          const auto& map = maps_[d->second];
          if (offset < 0 || offset >= map.value_size)
            return section_error(
                section_name,
                fmt::format("{}: offset {} is outside {} ({} bytes)", what, offset, map.name, map.value_size),
                spc);
          p.insns[pc].set_src(lddw_source(Operation::map_idx_value));
          p.insns[pc].imm = static_cast<std::int32_t>(d->second);
          p.insns[pc + 1].imm = static_cast<std::int32_t>(offset);
        } else {
          return section_error(section_name,
                               fmt::format("{}: the symbol is in section {}, which holds no map, global "
                                           "data or code at offset {}",
                                           what, file_.sections()[sym.section].name,
                                           static_cast<std::int64_t>(sym.value) + insn.imm),
                               spc);
        }
      } else if ((row.kind == Kind::call && row.operation == Operation::local) ||
                 (row.kind == Kind::lddw && row.operation == Operation::func)) {
        // Without a relocation the target is relative, in the same section.
        what = "call";
        target = {f.section, static_cast<std::int64_t>(spc) + insn.imm + 1};
      }
      if (target) {
        const Func* callee = function_at(target->first, target->second);
        if (!callee)
          return section_error(section_name,
                               fmt::format("{}: target instruction {} of section {} is in no function", what,
                                           target->second, file_.sections()[target->first].name),
                               spc);
        place(callee);
        fixups.push_back({pc, callee, static_cast<std::uint32_t>(target->second - callee->start)});
      }
      if (row.kind == Kind::lddw) ++spc;
    }
  }
  for (const auto& fix : fixups) {
    auto at =
        std::find_if(placed.begin(), placed.end(), [&](auto& pl) { return pl.first == fix.target; })->second;
    p.insns[fix.pc].imm = static_cast<std::int32_t>(static_cast<std::int64_t>(at + fix.offset) -
                                                    static_cast<std::int64_t>(fix.pc) - 1);
  }
  for (const auto& [f, at] : placed) {
    p.functions.push_back({f->name, at, at + (f->end - f->start)});
    auto lines = lines_.find(file_.sections()[f->section].name);
    if (lines == lines_.end()) continue;
    for (const auto& l : lines->second) {
      auto index = l.insn_offset / sizeof(Insn);
      if (l.insn_offset % sizeof(Insn) != 0 || index < f->start || index >= f->end) continue;
      p.lines.push_back(
          {static_cast<std::uint32_t>(at + index - f->start), l.file, l.source, l.line, l.column});
    }
  }
  std::stable_sort(p.lines.begin(), p.lines.end(), [](auto& a, auto& b) { return a.insn < b.insn; });
  return p;
}

Result<Object> read_named(std::span<const std::uint8_t> bytes, const std::string& file) {
  auto object = Object::read(bytes);
  if (!object) object.error().file = file;
  return object;
}

}  // namespace

Result<ObjectInfo> read_object(std::span<const std::uint8_t> bytes, const std::string& file) {
  auto object = read_named(bytes, file);
  if (!object) return object.error();
  return ObjectInfo{object->programs(), object->maps()};
}

Result<std::vector<ObjectProgram>> list_programs(std::span<const std::uint8_t> bytes,
                                                 const std::string& file) {
  auto object = read_named(bytes, file);
  if (!object) return object.error();
  return object->programs();
}

Result<Program> load_object(std::span<const std::uint8_t> bytes, const std::string& file,
                            const std::string& selection) {
  auto object = read_named(bytes, file);
  if (!object) return object.error();
  auto entry = object->select(selection);
  if (!entry) {
    entry.error().file = file;
    return entry.error();
  }
  auto program = object->link(**entry);
  if (!program) program.error().file = file;
  return program;
}

}  // namespace bpfvm::isa
