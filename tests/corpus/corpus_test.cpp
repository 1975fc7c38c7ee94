// The BPF C corpus (tests/corpus/*.c, compiled by clang-19 at -mcpu=v3 and v4): every object
// loads; its programs, relocations, maps, global data and line info agree with what LLVM's own
// tools (llvm-objdump-19, llvm-readelf-19) and the C source say; the verifier accepts every
// program (the known false rejections below are asserted as such, so a fix shows up here).
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "isa/asm.hpp"
#include "isa/disasm.hpp"
#include "isa/elf.hpp"
#include "isa/load.hpp"
#include "tests/corpus/llvm_tools.hpp"
#include "verifier/verifier.hpp"

using namespace bpfvm;
using namespace bpfvm::isa;
using namespace bpfvm::test;
namespace fs = std::filesystem;

namespace {

struct DeclaredMap {
  std::string name;
  MapType type;
  std::uint32_t key_size, value_size, max_entries, flags;
};

// The maps as the C sources declare them (BPF_F_NO_PREALLOC is 1).
const std::map<std::string, std::vector<DeclaredMap>> declared_maps = {
    {"xdp_parser",
     {{"flows", MapType::hash, 16, 16, 4096, 0}, {"proto_packets", MapType::percpu_array, 4, 8, 256, 0}}},
    {"maps",
     {{"legacy_hash", MapType::hash, 4, 8, 1024, 0},
      {"legacy_array", MapType::array, 4, 16, 64, 0},
      {"legacy_percpu", MapType::percpu_hash, 8, 8, 128, 1},
      {"legacy_lru", MapType::lru_hash, 4, 4, 512, 0},
      {"events", MapType::ringbuf, 0, 0, 1 << 16, 0},
      {"jump_table", MapType::prog_array, 4, 4, 8, 0},
      {"recent", MapType::lru_percpu_hash, 8, 16, 2048, 0},
      {"seq", MapType::percpu_array, 4, 8, 4, 0}}},
};

std::string program_type(const std::string& section) {
  if (section.starts_with("xdp")) return "xdp";
  if (section.starts_with("socket")) return "socket_filter";
  return "sched_cls";
}

struct CorpusObject {
  std::string stem;  // C file name without .c
  fs::path source, object;
};

std::vector<CorpusObject> corpus() {
  std::vector<CorpusObject> out;
  for (const auto& e : fs::directory_iterator(fs::path(BPFVM_SOURCE_DIR) / "tests" / "corpus")) {
    if (e.path().extension() != ".c") continue;
    for (const char* cpu : {"v3", "v4"}) {
      auto stem = e.path().stem().string();
      out.push_back({stem, e.path(), fs::path(BPFVM_BINARY_DIR) / "bpf" / fmt::format("{}.{}.o", stem, cpu)});
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.object < b.object; });
  return out;
}

// The function (by symbol) that starts at `offset` of `section`.
const SymbolRow* function_at(const std::vector<SymbolRow>& symbols, const std::string& section,
                             std::uint64_t offset) {
  for (const auto& s : symbols)
    if (s.type == 'F' && s.section == section && s.value == offset) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("corpus objects exist for every C file at v3 and v4") {
  auto objects = corpus();
  REQUIRE(objects.size() >= 10);
  for (const auto& c : objects) {
    INFO(c.object.string());
    CHECK(fs::exists(c.object));
  }
}

TEST_CASE(
    "corpus programs are the global functions of executable sections, as llvm-objdump-19 -t lists them") {
  REQUIRE(have_llvm_tools());
  for (const auto& c : corpus()) {
    INFO(c.object.string());
    auto sections = readelf_sections(c.object);
    std::vector<std::tuple<std::string, std::string, std::size_t>> expected, ours;
    for (const auto& s : objdump_symbols(c.object))
      if (s.type == 'F' && s.bind == 'g' && s.section != ".text" &&
          sections[s.section].flags.find('X') != std::string::npos)
        expected.emplace_back(s.section, s.name, s.size / 8);
    auto bytes = read_bytes(c.object);
    auto listed = list_programs(bytes, c.object.string());
    REQUIRE(listed.ok());
    for (const auto& p : *listed) ours.emplace_back(p.section, p.name, p.insns);
    std::sort(expected.begin(), expected.end());
    std::sort(ours.begin(), ours.end());
    CHECK(!expected.empty());
    CHECK(ours == expected);
  }
}

TEST_CASE("corpus relocations resolve to the maps, data and functions llvm-objdump-19 -r names") {
  REQUIRE(have_llvm_tools());
  std::size_t checked = 0;
  for (const auto& c : corpus()) {
    auto bytes = read_bytes(c.object);
    auto symbols = objdump_symbols(c.object);
    auto sections = readelf_sections(c.object);
    auto relocations = objdump_relocations(c.object);
    auto listed = list_programs(bytes, c.object.string());
    REQUIRE(listed.ok());
    for (const auto& entry : *listed) {
      INFO(c.object.string() << " program " << entry.name);
      LoadOptions options;
      options.program = entry.name;
      auto program = load_bytes(bytes, c.object.string(), options);
      if (!program) FAIL(program.error().to_string());
      CHECK(program->name == entry.name);
      CHECK(program->section == entry.section);
      const SymbolRow* self = nullptr;
      for (const auto& s : symbols)
        if (s.name == entry.name) self = &s;
      REQUIRE(self);
      const auto& section = sections.at(entry.section);
      for (const auto& r : relocations[entry.section]) {
        if (r.offset < self->value || r.offset >= self->value + self->size) continue;
        std::size_t pc = (r.offset - self->value) / 8;
        INFO("relocation at section offset " << r.offset << " " << r.type << " " << r.symbol);
        Insn original;
        std::memcpy(&original, bytes.data() + section.offset + r.offset, sizeof(Insn));
        const Insn& insn = program->insns.at(pc);
        auto op = decode(insn);
        REQUIRE(op);
        const auto& row = info(*op);
        // The symbol's row; section symbols (static data, .text) are listed by section name.
        const SymbolRow* sym = nullptr;
        for (const auto& s : symbols)
          if (s.name == r.symbol) sym = &s;
        REQUIRE(sym);
        if (r.type == "R_BPF_64_32") {
          // Target: the symbol's instruction + imm + 1 (libbpf's rule); it must land on the
          // start of the function with that offset in LLVM's symbol table.
          auto target_offset = sym->value + static_cast<std::uint64_t>((original.imm + 1) * 8);
          const auto* callee = function_at(symbols, sym->section, target_offset);
          REQUIRE(callee);
          REQUIRE(row.operation == Operation::local);
          auto target = static_cast<std::size_t>(static_cast<std::int64_t>(pc) + 1 + insn.imm);
          const auto* f = program->function_at(target);
          REQUIRE(f);
          CHECK(f->start == target);
          CHECK(f->name == callee->name);
        } else if (r.type == "R_BPF_64_64" && sections[sym->section].flags.find('X') != std::string::npos) {
          auto target_offset = sym->value + static_cast<std::uint64_t>(original.imm);
          const auto* callee = function_at(symbols, sym->section, target_offset);
          REQUIRE(callee);
          CHECK(row.operation == Operation::func);
          const auto* f =
              program->function_at(static_cast<std::size_t>(static_cast<std::int64_t>(pc) + 1 + insn.imm));
          REQUIRE(f);
          CHECK(f->name == callee->name);
        } else if (r.type == "R_BPF_64_64" && (sym->section == "maps" || sym->section == ".maps")) {
          CHECK(row.operation == Operation::map_idx);
          REQUIRE(static_cast<std::size_t>(insn.imm) < program->maps.size());
          CHECK(program->maps[static_cast<std::size_t>(insn.imm)].name == r.symbol);
        } else if (r.type == "R_BPF_64_64") {
          // Global data: the map named after the section, at the symbol's offset plus imm.
          CHECK(row.operation == Operation::map_idx_value);
          REQUIRE(static_cast<std::size_t>(insn.imm) < program->maps.size());
          CHECK(program->maps[static_cast<std::size_t>(insn.imm)].name == sym->section);
          CHECK(static_cast<std::uint64_t>(program->insns.at(pc + 1).imm) == sym->value + original.imm);
        } else {
          FAIL("unexpected relocation type in code");
        }
        ++checked;
      }
    }
  }
  CHECK(checked > 40);
}

TEST_CASE("corpus maps are what the C source declares") {
  for (const auto& c : corpus()) {
    auto it = declared_maps.find(c.stem);
    if (it == declared_maps.end()) continue;
    INFO(c.object.string());
    auto bytes = read_bytes(c.object);
    auto object = read_object(bytes, c.object.string());
    REQUIRE(object.ok());
    std::size_t named = 0;
    for (const auto& m : object->maps) named += !m.name.starts_with(".");
    CHECK(named == it->second.size());
    for (const auto& want : it->second) {
      INFO("map " << want.name);
      auto m = std::find_if(object->maps.begin(), object->maps.end(),
                            [&](auto& m) { return m.name == want.name; });
      REQUIRE(m != object->maps.end());
      CHECK(m->type == static_cast<std::uint32_t>(want.type));
      CHECK(m->key_size == want.key_size);
      CHECK(m->value_size == want.value_size);
      CHECK(m->max_entries == want.max_entries);
      CHECK(m->flags == want.flags);
      CHECK_FALSE(m->read_only);
    }
  }
}

TEST_CASE("corpus global data: one map per data section, with the bytes and values of the source") {
  REQUIRE(have_llvm_tools());
  for (const auto& c : corpus()) {
    INFO(c.object.string());
    auto bytes = read_bytes(c.object);
    auto object = read_object(bytes, c.object.string());
    REQUIRE(object.ok());
    auto sections = readelf_sections(c.object);
    std::size_t data_sections = 0;
    for (const auto& [name, s] : sections) {
      bool data = name == ".data" || name == ".bss" || name == ".rodata" || name.starts_with(".data.") ||
                  name.starts_with(".rodata.") || name.starts_with(".bss.");
      if (!data || s.size == 0) continue;
      ++data_sections;
      INFO("section " << name);
      auto m =
          std::find_if(object->maps.begin(), object->maps.end(), [&](auto& m) { return m.name == name; });
      REQUIRE(m != object->maps.end());
      CHECK(m->type == static_cast<std::uint32_t>(MapType::array));
      CHECK(m->key_size == 4);
      CHECK(m->max_entries == 1);
      CHECK(m->value_size == s.size);
      CHECK(m->read_only == name.starts_with(".rodata"));
      std::vector<std::uint8_t> want(s.size, 0);
      if (s.type != "NOBITS") want.assign(bytes.begin() + s.offset, bytes.begin() + s.offset + s.size);
      CHECK(m->initial_value == want);
    }
    std::size_t ours = std::count_if(object->maps.begin(), object->maps.end(),
                                     [](auto& m) { return m.name.starts_with("."); });
    CHECK(ours == data_sections);
    if (c.stem != "globals") continue;
    // The values globals.c gives its variables, found through LLVM's symbol table.
    auto symbols = objdump_symbols(c.object);
    auto value = [&](const std::string& var, std::size_t index, std::size_t width) -> std::uint64_t {
      for (const auto& s : symbols) {
        if (s.name != var) continue;
        auto m = std::find_if(object->maps.begin(), object->maps.end(),
                              [&](auto& m) { return m.name == s.section; });
        if (m == object->maps.end() || s.value + (index + 1) * width > m->initial_value.size()) return ~0ull;
        std::uint64_t v = 0;
        std::memcpy(&v, m->initial_value.data() + s.value + index * width, width);
        return v;
      }
      return ~0ull;
    };
    CHECK(value("packets_seen", 0, 4) == 7);
    CHECK(value("byte_budget", 0, 8) == 1000000);
    CHECK(value("port_table", 0, 2) == 22);
    CHECK(value("port_table", 3, 2) == 8080);
    CHECK(value("verbose", 0, 4) == 1);
    CHECK(value("drops", 0, 8) == 0);
    CHECK(value("per_port", 2, 4) == 3);
    auto strings = std::find_if(object->maps.begin(), object->maps.end(),
                                [](auto& m) { return m.name == ".rodata.str1.1"; });
    REQUIRE(strings != object->maps.end());
    std::string text(strings->initial_value.begin(), strings->initial_value.end());
    CHECK(text.find(std::string("GET /index\0", 11)) != std::string::npos);
    CHECK(text.find(std::string("PUT\0", 4)) != std::string::npos);
  }
}

TEST_CASE("corpus line info names the source lines of the C file") {
  for (const auto& c : corpus()) {
    std::vector<std::string> source = lines_of(run(fmt::format("cat '{}'", c.source.string())));
    auto bytes = read_bytes(c.object);
    auto listed = list_programs(bytes, c.object.string());
    REQUIRE(listed.ok());
    for (const auto& entry : *listed) {
      INFO(c.object.string() << " program " << entry.name);
      LoadOptions options;
      options.program = entry.name;
      auto program = load_bytes(bytes, c.object.string(), options);
      REQUIRE(program.ok());
      REQUIRE(!program->lines.empty());
      CHECK(program->line_at(0) != nullptr);
      for (const auto& l : program->lines) {
        INFO("instruction " << l.insn << " line " << l.line);
        CHECK(l.insn < program->insns.size());
        CHECK(fs::path(l.file).filename() == c.source.filename());
        REQUIRE(l.line >= 1);
        REQUIRE(l.line <= source.size());
        CHECK(l.source == source[l.line - 1]);
        CHECK(l.column <= source[l.line - 1].size() + 1);
      }
    }
  }
}

// Calls fn(object, entry, program) for every program of every corpus object, each loaded on
// its own as `bpfvm ... --program NAME` would.
template <typename Fn>
void for_each_program(Fn fn) {
  for (const auto& c : corpus()) {
    auto bytes = read_bytes(c.object);
    auto listed = list_programs(bytes, c.object.string());
    REQUIRE(listed.ok());
    for (const auto& entry : *listed) {
      INFO(c.object.string() << " program " << entry.name << " (section " << entry.section << ")");
      LoadOptions options;
      options.program = entry.name;
      auto program = load_bytes(bytes, c.object.string(), options);
      REQUIRE(program.ok());
      fn(c, entry, *program);
    }
  }
}

TEST_CASE(
    "a linked corpus program disassembled with its source lines assembles back to the same instructions") {
  for_each_program([](const CorpusObject& c, const auto&, const Program& program) {
    DisasmOptions disasm;
    disasm.show_source = true;
    auto text = disassemble(program, disasm);
    CHECK(text.find(fmt::format("# {}:", c.source.filename().string())) != std::string::npos);
    auto back = assemble(text, Syntax::llvm);
    if (!back) FAIL(back.error().to_string());
    CHECK(back->insns == program.insns);
  });
}

TEST_CASE("the verifier accepts every corpus program") {
  for_each_program([](const CorpusObject&, const auto& entry, Program& program) {
    auto env = verifier::environment_by_name(program_type(entry.section));
    REQUIRE(env.ok());
    auto result = verifier::verify(std::move(program), *env);
    if (!result.accepted()) FAIL(result.diagnostic->to_string());
  });
}

// Unsafe mutations of real programs: the first load of each entry function, pushed 16 KiB past
// where it read, leaves every region a program can reach (stack, context, packet, map value).
// The verifier must reject it at that instruction with a bounds check, not accept or blame
// another instruction.
TEST_CASE("the verifier rejects each corpus program with its first load pushed out of bounds") {
  std::size_t mutated = 0;
  for_each_program([&](const CorpusObject&, const auto& entry, Program& program) {
    std::size_t pc = 0;
    for (; pc < program.functions[0].end;
         pc += static_cast<std::size_t>(slot_count(*decode(program.insns[pc])))) {
      auto op = decode(program.insns[pc]);
      REQUIRE(op);
      if (info(*op).kind == Kind::load && info(*op).operation == Operation::load) break;
    }
    if (pc == program.functions[0].end) return;  // no load of its own
    INFO("load at " << pc);
    program.insns[pc].off = static_cast<std::int16_t>(program.insns[pc].off + 0x4000);
    auto env = verifier::environment_by_name(program_type(entry.section));
    REQUIRE(env.ok());
    auto result = verifier::verify(std::move(program), *env);
    REQUIRE_FALSE(result.accepted());
    CHECK(result.diagnostic->insn == pc);
    const std::string check = result.diagnostic->check;
    CHECK((check == "mem_bounds" || check == "stack_bounds" || check == "ctx_access"));
    ++mutated;
  });
  CHECK(mutated >= 10);
}
