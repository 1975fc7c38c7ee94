// Runs the named cases in tests/verifier/cases/*.cases (format: tests/verifier/README.md).
// Every expectation was worked out by hand from the program text, not taken from the verifier.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "isa/load.hpp"
#include "verifier/verifier.hpp"

using namespace bpfvm;

namespace {

struct MapSpec {
  std::string name;
  std::uint32_t type = 0, key = 0, value = 0, entries = 0;
  bool read_only = false;
};

struct Case {
  std::string file;
  std::string name;
  std::string type = "raw";
  std::optional<std::uint64_t> mem_size;
  std::vector<MapSpec> maps;
  bool accept = true;
  std::string check;
  std::size_t insn = 0;
  std::string text;  // the expected message substring
  std::vector<std::string> program;
};

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<Case> parse(const std::filesystem::path& path) {
  static const std::map<std::string, std::uint32_t> map_types = {
      {"hash", 1},         {"array", 2},    {"prog_array", 3}, {"percpu_hash", 5},
      {"percpu_array", 6}, {"lru_hash", 9}, {"ringbuf", 27}};
  std::vector<Case> cases;
  std::ifstream in(path);
  std::string line;
  bool in_program = false;
  while (std::getline(in, line)) {
    if (line.rfind("==", 0) == 0) {
      cases.emplace_back();
      cases.back().file = path.filename().string();
      cases.back().name = trim(line.substr(2));
      in_program = false;
      continue;
    }
    if (cases.empty()) continue;
    Case& c = cases.back();
    if (in_program) {
      c.program.push_back(line);
      continue;
    }
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::istringstream words(t);
    std::string kw;
    words >> kw;
    if (kw == "type") {
      words >> c.type;
      std::uint64_t n;
      if (words >> n) c.mem_size = n;
    } else if (kw == "map") {
      MapSpec m;
      std::string type, ro;
      words >> m.name >> type >> m.key >> m.value >> m.entries >> ro;
      REQUIRE(map_types.count(type));
      m.type = map_types.at(type);
      m.read_only = ro == "readonly";
      c.maps.push_back(m);
    } else if (kw == "accept") {
      c.accept = true;
      in_program = true;
    } else if (kw == "reject") {
      c.accept = false;
      words >> c.check >> c.insn;
      auto q1 = t.find('"'), q2 = t.rfind('"');
      if (q1 != std::string::npos && q2 > q1) c.text = t.substr(q1 + 1, q2 - q1 - 1);
      in_program = true;
    } else {
      FAIL(path.filename().string() << ": " << c.name << ": unknown header line '" << t << "'");
    }
  }
  return cases;
}

// Pseudo-instructions for what the conformance syntax cannot say: `ldmap %rN, NAME`,
// `ldmapval %rN, NAME, OFF` and `ldfunc %rN, LABEL` become lddw instructions whose source kind
// (map_idx, map_idx_value, func) is patched in after assembly.
struct Patch {
  std::size_t pc;
  int src;
  std::int32_t imm, imm2;
};

bpfvm::Result<isa::Program> assemble(const Case& c) {
  std::map<std::string, std::size_t> labels;
  std::size_t pc = 0;
  auto is_pseudo = [](const std::string& t) { return t.rfind("ldmap", 0) == 0 || t.rfind("ldfunc", 0) == 0; };
  for (const auto& raw : c.program) {
    std::string t = trim(raw.substr(0, raw.find('#')));
    if (t.empty()) continue;
    if (t.back() == ':') {
      labels[t.substr(0, t.size() - 1)] = pc;
      continue;
    }
    pc += (t.rfind("lddw", 0) == 0 || is_pseudo(t)) ? 2 : 1;
  }
  std::string text;
  std::vector<Patch> patches;
  pc = 0;
  for (const auto& raw : c.program) {
    std::string t = trim(raw.substr(0, raw.find('#')));
    if (t.empty()) continue;
    if (t.back() == ':') {
      text += t + "\n";
      continue;
    }
    if (is_pseudo(t)) {
      std::string op, reg, arg, off;
      std::istringstream w(t);
      w >> op >> reg >> arg >> off;
      if (!reg.empty() && reg.back() == ',') reg.pop_back();
      if (!arg.empty() && arg.back() == ',') arg.pop_back();
      Patch p{pc, 0, 0, 0};
      if (op == "ldfunc") {
        REQUIRE(labels.count(arg));
        p.src = 4;
        p.imm = static_cast<std::int32_t>(labels[arg]) - static_cast<std::int32_t>(pc) - 1;
      } else {
        std::size_t idx = 0;
        while (idx < c.maps.size() && c.maps[idx].name != arg) ++idx;
        REQUIRE(idx < c.maps.size());
        p.src = op == "ldmap" ? 5 : 6;
        p.imm = static_cast<std::int32_t>(idx);
        p.imm2 = off.empty() ? 0 : std::stoi(off);
      }
      patches.push_back(p);
      text += "lddw " + reg + ", 0\n";
      pc += 2;
      continue;
    }
    text += t + "\n";
    pc += t.rfind("lddw", 0) == 0 ? 2 : 1;
  }
  isa::LoadOptions lo;
  lo.format = isa::InputFormat::text_conformance;
  std::vector<std::uint8_t> bytes(text.begin(), text.end());
  auto p = isa::load_bytes(bytes, c.name, lo);
  if (!p) return p.error();
  for (const auto& patch : patches) {
    REQUIRE(patch.pc + 1 < p->insns.size());
    p->insns[patch.pc].set_src(patch.src);
    p->insns[patch.pc].imm = patch.imm;
    p->insns[patch.pc + 1].imm = patch.imm2;
  }
  // Patched function references add function starts: let the verifier find them again.
  if (!patches.empty()) p->functions.clear();
  for (const auto& m : c.maps) {
    isa::MapDef d;
    d.name = m.name;
    d.type = m.type;
    d.key_size = m.key;
    d.value_size = m.value;
    d.max_entries = m.entries;
    d.read_only = m.read_only;
    p->maps.push_back(d);
  }
  return p;
}

std::vector<Case> all_cases() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(BPFVM_SOURCE_DIR "/tests/verifier/cases"))
    if (e.path().extension() == ".cases") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Case> cases;
  for (const auto& f : files)
    for (auto& c : parse(f)) cases.push_back(std::move(c));
  return cases;
}

}  // namespace

TEST_CASE("verifier cases", "[verifier][cases]") {
  auto cases = all_cases();
  CHECK(cases.size() >= 250);
  std::map<std::string, int> names;
  for (const auto& c : cases) {
    INFO(c.file << ": " << c.name);
    CHECK(++names[c.name] == 1);  // names are unique
    auto env = verifier::environment_by_name(c.type, c.mem_size);
    REQUIRE(env.ok());
    auto loaded = assemble(c);
    if (!loaded) {
      // Structural errors are found by the loader's validation, before the verifier runs.
      if (c.accept || c.check != "structure") {
        FAIL_CHECK("does not load: " << loaded.error().to_string());
      } else {
        CHECK(loaded.error().insn == std::optional<std::size_t>(c.insn));
        CHECK(loaded.error().to_string().find(c.text) != std::string::npos);
      }
      continue;
    }
    auto r = verifier::verify(std::move(loaded.value()), *env);
    if (c.accept) {
      if (!r.accepted()) FAIL_CHECK("expected accept, got:\n" << r.diagnostic->to_string());
      continue;
    }
    if (r.accepted()) {
      FAIL_CHECK("expected reject [" << c.check << "] at " << c.insn << ", got accept");
      continue;
    }
    const auto& d = *r.diagnostic;
    INFO(d.to_string());
    CHECK(d.check == c.check);
    CHECK(d.insn == c.insn);
    CHECK(d.to_string().find(c.text) != std::string::npos);
  }
}
