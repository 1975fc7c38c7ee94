#include "conformance/data_file.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include "isa/asm.hpp"

namespace bpfvm::conformance {
namespace {

enum class Section { ignore, assembly, raw, result, memory, error };

std::string_view trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\v\f");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\v\f");
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::string_view(" \t\v\f").find(s[i]) != std::string_view::npos) ++i;
    std::size_t start = i;
    while (i < s.size() && std::string_view(" \t\v\f").find(s[i]) == std::string_view::npos) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// A whole-token unsigned number in `base`, optionally after "0x" when base is 16.
std::optional<std::uint64_t> unsigned_number(std::string_view s, int base) {
  if (base == 16 && (s.starts_with("0x") || s.starts_with("0X"))) s.remove_prefix(2);
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// `-- result`: hex when the text contains 0x, else decimal; a leading '-' negates modulo 2^64
// (the suite reads it with strtoull).
std::optional<std::uint64_t> result_number(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  auto v = unsigned_number(s, s.find("0x") != std::string_view::npos ? 16 : 10);
  if (v && negative) *v = ~*v + 1;
  return v;
}

Error at_line(std::string message, const std::string& name, std::size_t line) {
  Error e{std::move(message)};
  e.file = name;
  e.line = line;
  return e;
}

}  // namespace

Result<DataFile> parse_data(std::string_view text, const std::string& name) {
  DataFile out;
  out.name = name;
  Section section = Section::ignore;
  std::string result_line;
  std::size_t result_lineno = 0;
  std::vector<std::pair<std::string_view, std::size_t>> raw_tokens, mem_tokens;
  std::size_t lineno = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (line.find("--") != std::string_view::npos) {
      // Headers match by substring, in the suite's order.
      if (line.find("asm") != std::string_view::npos) {
        section = Section::assembly;
      } else if (line.find("result") != std::string_view::npos) {
        section = Section::result;
      } else if (line.find("mem") != std::string_view::npos) {
        section = Section::memory;
      } else if (line.find("raw") != std::string_view::npos) {
        section = Section::raw;
      } else if (line.find("no register offset") != std::string_view::npos ||
                 line.find(" c") != std::string_view::npos) {
        section = Section::ignore;
      } else if (line.find("error") != std::string_view::npos) {
        section = Section::error;
      } else {
        out.skip =
            "unknown section header '" + std::string(trim(line)) + "' at line " + std::to_string(lineno);
        return out;
      }
      continue;
    }
    if (line.empty()) continue;
    switch (section) {
      case Section::assembly: out.asm_text.append(line).push_back('\n'); break;
      case Section::result:
        result_line = trim(line);
        result_lineno = lineno;
        break;
      case Section::memory:
        for (auto t : tokens(line)) mem_tokens.emplace_back(t, lineno);
        break;
      case Section::raw:
        for (auto t : tokens(line)) raw_tokens.emplace_back(t, lineno);
        break;
      case Section::error: out.error = line; break;
      case Section::ignore: break;
    }
  }
  if (out.error.empty() && result_line.empty()) {
    out.skip = "no result and no error";
    return out;
  }
  if (!result_line.empty()) {
    out.result = result_number(result_line);
    if (!out.result) return at_line("-- result: '" + result_line + "' is not a number", name, result_lineno);
  }
  for (auto [t, l] : mem_tokens) {
    auto v = unsigned_number(t, 16);
    if (!v || *v > 0xff) return at_line("-- mem: '" + std::string(t) + "' is not a hex byte", name, l);
    out.memory.push_back(static_cast<std::uint8_t>(*v));
  }
  if (!raw_tokens.empty()) {
    for (auto [t, l] : raw_tokens) {
      auto v = t.starts_with("0x") ? unsigned_number(t, 16) : unsigned_number(t, 10);
      if (!v) return at_line("-- raw: '" + std::string(t) + "' is not a 64-bit number", name, l);
      isa::Insn insn;
      insn.opcode = static_cast<std::uint8_t>(*v);
      insn.regs = static_cast<std::uint8_t>(*v >> 8);
      insn.off = static_cast<std::int16_t>(static_cast<std::uint16_t>(*v >> 16));
      insn.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(*v >> 32));
      out.insns.push_back(insn);
    }
  } else {
    auto program = isa::assemble(out.asm_text, isa::Syntax::conformance, name);
    if (!program) return program.error();
    out.insns = std::move(program->insns);
  }
  if (out.insns.empty()) out.skip = "no instructions";
  return out;
}

Result<DataFile> read_data_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Error e{"cannot open the file"};
    e.file = path;
    return e;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  auto parsed = parse_data(text.str(), base);
  if (!parsed && parsed.error().file == base) parsed.error().file = path;
  return parsed;
}

Requirements requirements(std::span<const isa::Insn> insns) {
  Requirements r;
  for (std::size_t i = 0; i < insns.size(); ++i) {
    auto op = isa::decode(insns[i]);
    if (!op) continue;
    const auto& row = isa::info(*op);
    r.cpu_version = std::max<int>(r.cpu_version, row.min_cpu);
    r.groups |= group_bit(row.group);
    i += isa::slot_count(*op) - 1;
  }
  return r;
}

}  // namespace bpfvm::conformance
