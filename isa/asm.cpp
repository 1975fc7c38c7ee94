#include "isa/asm.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "isa/disasm.hpp"

namespace bpfvm::isa {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_label_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }
bool is_label_char(char c) { return is_word(c) || c == '.'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_label_name(std::string_view s) {
  if (s.empty() || !is_label_start(s[0])) return false;
  return std::all_of(s.begin(), s.end(), is_label_char);
}

// What one template made of the instruction text.
struct Fields {
  int dst = -1;
  int src = -1;
  std::optional<std::int32_t> imm;
  std::optional<std::uint64_t> imm64;
  std::optional<std::int16_t> off;
  std::optional<std::int64_t> target;
  std::string label;  // a label given for {tgt}, or for {imm} of a call
};

// Soft failures keep views into the (static) templates and literals: most rows fail on
// most lines, so nothing is formatted until a line matches no row at all.
struct Failure {
  std::size_t pos = 0;
  std::string_view what;  // what was expected at pos
  bool quoted = false;    // `what` is template text, shown in quotes
  std::string message;    // a formatted expectation, or the whole message when hard
  bool hard = false;      // a value that was recognised but is out of range

  std::string expected() const {
    if (!message.empty()) return message;
    return quoted ? fmt::format("'{}'", what) : std::string(what);
  }
};

struct Matcher {
  std::string_view in;
  Syntax syntax;
  const OpInfo& row;
  std::size_t pos = 0;
  Fields fields;
  std::optional<Failure> failure;

  void skip_ws() {
    while (pos < in.size() && is_space(in[pos])) ++pos;
  }
  bool fail(std::string_view what, bool quoted = false) {
    failure = Failure{pos, what, quoted, {}, false};
    return false;
  }
  bool fail_formatted(std::string expected) {
    failure = Failure{pos, {}, false, std::move(expected), false};
    return false;
  }
  bool fail_hard(std::size_t at, std::string message) {
    failure = Failure{at, {}, false, std::move(message), true};
    return false;
  }

  // An unsigned number (0x hex or decimal) at pos; nullopt when there are no digits.
  // `overflow` is set when it does not fit in 64 bits.
  std::optional<std::uint64_t> number(bool& overflow) {
    overflow = false;
    bool hex = pos + 1 < in.size() && in[pos] == '0' && (in[pos + 1] == 'x' || in[pos + 1] == 'X');
    std::size_t start = pos + (hex ? 2 : 0), p = start;
    std::uint64_t v = 0;
    unsigned base = hex ? 16 : 10;
    for (; p < in.size(); ++p) {
      unsigned char c = static_cast<unsigned char>(in[p]);
      unsigned d;
      if (std::isdigit(c))
        d = c - '0';
      else if (hex && std::isxdigit(c))
        d = static_cast<unsigned>(std::tolower(c) - 'a' + 10);
      else
        break;
      if (v > (UINT64_MAX - d) / base) overflow = true;
      v = v * base + d;
    }
    if (p == start) return std::nullopt;
    if (p < in.size() && is_word(in[p])) return std::nullopt;  // 12abc, 0x1g
    pos = p;
    return v;
  }

  // A signed number: an optional sign (required when `need_sign`), spaces allowed after it.
  // Returns false (with failure set) when absent or outside [min, max].
  bool signed_number(bool need_sign, std::int64_t min, std::uint64_t max, std::string_view what,
                     std::string_view range, std::int64_t& out) {
    skip_ws();
    std::size_t start = pos;
    bool negative = false;
    if (pos < in.size() && (in[pos] == '-' || in[pos] == '+')) {
      negative = in[pos] == '-';
      ++pos;
      skip_ws();
    } else if (need_sign) {
      return fail_formatted(fmt::format("'+' or '-' and {}", what));
    }
    bool overflow = false;
    auto v = number(overflow);
    if (!v) return fail(what);
    std::string text(in.substr(start, pos - start));
    auto too_big = [&] {
      return fail_hard(pos, fmt::format("{} '{}' does not fit in {}", what, text, range));
    };
    if (overflow) return too_big();
    if (negative) {
      if (*v > static_cast<std::uint64_t>(0) - static_cast<std::uint64_t>(min)) return too_big();
      out = static_cast<std::int64_t>(std::uint64_t{0} - *v);
    } else {
      if (*v > max) return too_big();
      out = static_cast<std::int64_t>(*v);
    }
    return true;
  }

  bool label(std::string& out) {
    skip_ws();
    std::size_t start = pos;
    if (pos >= in.size() || !is_label_start(in[pos])) return false;
    while (pos < in.size() && is_label_char(in[pos])) ++pos;
    out = std::string(in.substr(start, pos - start));
    return true;
  }

  bool reg(std::string_view prefix, int& out) {
    std::size_t start = pos;
    bool overflow = false;
    auto v = number(overflow);
    if (!v) return fail("register number");
    if (overflow || *v >= static_cast<std::uint64_t>(register_count))
      return fail_hard(pos, fmt::format("register '{}{}' does not exist (registers are {}0..{}10)", prefix,
                                        in.substr(start, pos - start), prefix, prefix));
    if (out >= 0 && out != static_cast<int>(*v))
      return fail_formatted(fmt::format("{}{} again", prefix, out));
    out = static_cast<int>(*v);
    return true;
  }

  bool placeholder(std::string_view name, std::string_view prefix) {
    std::int64_t v = 0;
    bool imm_target = row.kind == Kind::call ||
                      (row.kind == Kind::jump && row.width == 32 && row.operation == Operation::ja);
    if (name == "dst") return reg(prefix, fields.dst);
    if (name == "src") return reg(prefix, fields.src);
    if (name == "imm") {
      std::string l;
      if (row.kind == Kind::call && label(l)) {
        fields.label = l;
        return true;
      }
      if (!signed_number(false, INT32_MIN, UINT32_MAX, "immediate", "32 bits", v)) return false;
      fields.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
      return true;
    }
    if (name == "imm64") {
      if (!signed_number(false, INT64_MIN, UINT64_MAX, "64-bit immediate", "64 bits", v)) return false;
      fields.imm64 = static_cast<std::uint64_t>(v);
      return true;
    }
    if (name == "off") {
      skip_ws();
      bool has_sign = pos < in.size() && (in[pos] == '+' || in[pos] == '-');
      if (syntax == Syntax::conformance && !has_sign) {
        fields.off = 0;
        return true;
      }
      if (!signed_number(true, INT16_MIN, INT16_MAX, "offset", "16 bits (-32768..32767)", v)) return false;
      fields.off = static_cast<std::int16_t>(v);
      return true;
    }
    if (name == "+imm") {  // an optional "+ N" / "- N"; absent means 0
      skip_ws();
      if (pos >= in.size() || (in[pos] != '+' && in[pos] != '-')) {
        fields.imm = 0;
        return true;
      }
      if (!signed_number(true, INT32_MIN, INT32_MAX, "immediate", "32 bits", v)) return false;
      fields.imm = static_cast<std::int32_t>(v);
      return true;
    }
    if (name == "tgt") {
      skip_ws();
      if (label(fields.label)) return true;
      if (pos >= in.size() || (in[pos] != '+' && in[pos] != '-'))
        return fail("jump target (+N, -N or a label)");
      if (imm_target) {
        if (!signed_number(true, INT32_MIN, INT32_MAX, "jump offset", "32 bits", v)) return false;
      } else if (!signed_number(true, INT16_MIN, INT16_MAX, "jump offset", "16 bits (-32768..32767)", v)) {
        return false;
      }
      fields.target = v;
      return true;
    }
    return fail_formatted(fmt::format("template placeholder {{{}}}", name));
  }

  bool run(std::string_view t) {
    for (std::size_t i = 0; i < t.size(); ++i) {
      char c = t[i];
      if (is_space(c)) continue;
      if (c == '{') {
        std::size_t close = t.find('}', i);
        std::size_t p = i;
        while (p > 0 && (std::isalpha(static_cast<unsigned char>(t[p - 1])) || t[p - 1] == '%')) --p;
        if (!placeholder(t.substr(i + 1, close - i - 1), t.substr(p, i - p))) return false;
        i = close;
        continue;
      }
      skip_ws();
      if (pos >= in.size() || in[pos] != c) {
        std::size_t end = i;
        while (end < t.size() && !is_space(t[end]) && t[end] != '{') ++end;
        return fail(t.substr(i, end - i), true);
      }
      ++pos;
      bool word_end = is_word(c) && (i + 1 == t.size() || (!is_word(t[i + 1]) && t[i + 1] != '{'));
      if (word_end && pos < in.size() && is_word(in[pos])) {
        std::size_t start = i;
        while (start > 0 && is_word(t[start - 1])) --start;
        return fail(t.substr(start, i + 1 - start), true);
      }
    }
    skip_ws();
    if (pos != in.size()) return fail("end of instruction");
    return true;
  }
};

// The conformance suite's other spellings of a line: a leading mnemonic word without suffix
// means 64 (add = add64), with suffix 64 may be written without it (jeq64 = jeq), and
// swapN = bswapN. The first spelling is the line itself.
std::vector<std::string> spellings(std::string_view line) {
  std::vector<std::string> out{std::string(line)};
  for (std::size_t i = 0; i < line.size();) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) break;
    std::size_t j = i;
    while (j < line.size() && is_word(line[j])) ++j;
    std::string w(line.substr(i, j - i));
    std::vector<std::string> variants{w + "64"};
    if (w.size() > 2 && w.ends_with("64")) variants.push_back(w.substr(0, w.size() - 2));
    if (w.starts_with("swap")) variants.push_back("b" + w);
    for (const auto& v : variants)
      out.push_back(std::string(line.substr(0, i)) + v + std::string(line.substr(j)));
    i = j;
  }
  return out;
}

struct Hint {
  std::string field;
  std::int64_t value = 0;
};

struct Fixup {
  std::size_t pc;
  std::string label;
  std::size_t line;
  bool in_imm;
};

std::string join_expected(std::set<std::string> expected) {
  std::string out;
  std::size_t n = 0;
  for (const auto& e : expected) {
    if (n == 6) return out + " or ...";
    out += (n++ ? " or " : "") + e;
  }
  return out;
}

}  // namespace

Result<Program> assemble(std::string_view text, Syntax syntax, std::string_view source_name) {
  Program program;
  program.name = "main";
  std::map<std::string, std::pair<std::size_t, std::size_t>, std::less<>> labels;  // name -> (pc, line)
  std::vector<Fixup> fixups;
  std::optional<std::size_t> first_exit;
  std::size_t line_no = 0;

  auto error = [&](std::string message, std::size_t line) {
    Error e(std::move(message));
    e.file = std::string(source_name);
    e.line = line;
    return e;
  };

  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;

    // Comments, and the `# src=N` form hint.
    std::optional<Hint> hint;
    std::vector<std::uint8_t> column_bytes;  // llvm-objdump's byte column, when present
    std::string_view line = raw;
    if (std::size_t hash = line.find('#'); hash != std::string_view::npos) {
      std::string_view c = trim(line.substr(hash + 1));
      std::size_t eq = c.find('=');
      if (eq != std::string_view::npos) {
        std::string_view field = c.substr(0, eq);
        if (field == "src" || field == "imm" || field == "off") {
          std::string_view v = c.substr(eq + 1);
          std::size_t used = 0;
          try {
            std::int64_t value = std::stoll(std::string(v), &used, 10);
            if (used > 0) hint = Hint{std::string(field), value};
          } catch (const std::exception&) {
          }
        }
      }
      line = line.substr(0, hash);
    }
    line = trim(line);
    if (line.empty()) continue;

    std::string cleaned;
    if (syntax == Syntax::llvm) {
      if (line.find("file format") != std::string_view::npos || line.starts_with("Disassembly of section"))
        continue;
      // llvm-objdump's function header: 0000000000000000 <name>:
      if (std::size_t lt = line.find(" <");
          lt != std::string_view::npos && line.ends_with(">:") &&
          std::all_of(line.begin(), line.begin() + static_cast<long>(lt),
                      [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
        line = line.substr(lt + 1);
        line = line.substr(1, line.size() - 3);
        if (line.find('+') == std::string_view::npos)
          cleaned = std::string(line) + ":";
        else
          continue;
      } else {
        // "  12:\t07 01 00 00 05 00 00 00\tr1 += 0x5": drop the address and byte columns.
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && colon > 0 && !trim(line.substr(colon + 1)).empty() &&
            std::all_of(line.begin(), line.begin() + static_cast<long>(colon),
                        [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
          line = trim(line.substr(colon + 1));
          while (line.size() >= 2 && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                 std::isxdigit(static_cast<unsigned char>(line[1])) &&
                 (line.size() == 2 || std::isspace(static_cast<unsigned char>(line[2])))) {
            column_bytes.push_back(
                static_cast<std::uint8_t>(std::stoul(std::string(line.substr(0, 2)), nullptr, 16)));
            line = trim(line.substr(2));
          }
          if (line.empty()) continue;
        }
        // <symbol+0x10> annotations after the instruction.
        std::string s;
        for (std::size_t i = 0; i < line.size(); ++i) {
          if (line[i] == '<' && i > 0 && i + 1 < line.size() && is_label_start(line[i + 1])) {
            std::size_t gt = line.find('>', i);
            if (gt != std::string_view::npos) {
              i = gt;
              continue;
            }
          }
          s += line[i];
        }
        cleaned = std::string(trim(s));
      }
    } else {
      cleaned = std::string(line);
    }

    if (cleaned.size() > 1 && cleaned.back() == ':' &&
        is_label_name(std::string_view(cleaned).substr(0, cleaned.size() - 1))) {
      std::string name = cleaned.substr(0, cleaned.size() - 1);
      auto [it, inserted] = labels.emplace(name, std::pair{program.insns.size(), line_no});
      if (!inserted)
        return error(fmt::format("label '{}' is defined twice (first on line {})", name, it->second.second),
                     line_no);
      continue;
    }
    std::vector<std::string> candidates =
        syntax == Syntax::conformance ? spellings(cleaned) : std::vector<std::string>{cleaned};

    // Every row whose template takes the whole text.
    std::vector<std::pair<const OpInfo*, Fields>> matches;
    std::optional<Failure> best;  // the failure that got furthest
    std::vector<Failure> also;    // others that stopped at the same place
    std::string best_text;
    for (const std::string& candidate : candidates) {
      for (const OpInfo& row : op_table) {
        for (bool alu32 : {false, true}) {
          if (alu32 && syntax != Syntax::llvm) break;
          const std::string& t = text_detail::row_template(row, syntax, alu32);
          if (alu32 && t == text_detail::row_template(row, syntax, false)) break;
          Matcher m{candidate, syntax, row, 0, {}, {}};
          if (m.run(t)) {
            matches.emplace_back(&row, m.fields);
            break;
          }
          Failure& f = *m.failure;
          if (!best || f.pos > best->pos || (f.pos == best->pos && f.hard && !best->hard)) {
            best = std::move(f);
            also.clear();
            best_text = candidate;
          } else if (f.pos == best->pos && !f.hard && !best->hard) {
            also.push_back(std::move(f));
          }
        }
      }
      if (!matches.empty()) break;
    }
    if (matches.empty()) {
      std::size_t word_end = 0;
      while (word_end < cleaned.size() && !is_space(cleaned[word_end])) ++word_end;
      if (best->hard) return error(best->message, line_no);
      if (best->pos < word_end || best->pos == 0)
        return error(fmt::format("unknown instruction '{}'", cleaned.substr(0, word_end)), line_no);
      std::set<std::string> expected{best->expected()};
      for (const Failure& f : also) expected.insert(f.expected());
      std::string where = best->pos >= best_text.size() ? std::string("at end of line")
                                                        : fmt::format("at '{}'", best_text.substr(best->pos));
      return error(fmt::format("expected {} {}", join_expected(expected), where), line_no);
    }

    auto chosen = matches.front();
    std::optional<Op> column_op;
    if (column_bytes.size() >= sizeof(Insn)) {
      Insn first;
      std::memcpy(&first, column_bytes.data(), sizeof(Insn));
      column_op = decode(first);
    }
    auto column_match = std::find_if(matches.begin(), matches.end(),
                                     [&](const auto& m) { return column_op && m.first->id == *column_op; });
    if (hint) {
      auto it = std::find_if(matches.begin(), matches.end(), [&](const auto& m) {
        return text_detail::disc_name(m.first->disc) == hint->field && m.first->disc_value == hint->value;
      });
      if (it == matches.end())
        return error(fmt::format("'{}' has no form with {}={}", cleaned, hint->field, hint->value), line_no);
      chosen = *it;
    } else if (column_match != matches.end()) {
      // The text alone is ambiguous (call 0x1 of any call kind): the bytes beside it tell.
      chosen = *column_match;
    } else if (!chosen.second.label.empty() && chosen.first->kind == Kind::call) {
      auto it = std::find_if(matches.begin(), matches.end(),
                             [](const auto& m) { return m.first->operation == Operation::local; });
      if (it != matches.end()) chosen = *it;
    }
    const OpInfo& row = *chosen.first;
    const Fields& f = chosen.second;
    if (!f.label.empty() && row.kind == Kind::call && row.operation != Operation::local)
      return error(fmt::format("a label target needs a bpf-to-bpf call, not '{}'", cleaned), line_no);

    Insn insn;
    insn.opcode = row.opcode;
    if (f.dst >= 0) insn.set_dst(f.dst);
    if (f.src >= 0) insn.set_src(f.src);
    if (f.imm) insn.imm = *f.imm;
    if (f.off) insn.off = *f.off;
    bool imm_target = row.kind == Kind::call ||
                      (row.kind == Kind::jump && row.width == 32 && row.operation == Operation::ja);
    if (f.target) {
      if (imm_target)
        insn.imm = static_cast<std::int32_t>(*f.target);
      else
        insn.off = static_cast<std::int16_t>(*f.target);
    }
    switch (row.disc) {
      case Disc::off: insn.off = static_cast<std::int16_t>(row.disc_value); break;
      case Disc::imm: insn.imm = row.disc_value; break;
      case Disc::src: insn.set_src(row.disc_value); break;
      case Disc::none: break;
    }
    if (!f.label.empty()) fixups.push_back({program.insns.size(), f.label, line_no, imm_target});
    if (row.kind == Kind::exit && !first_exit) first_exit = program.insns.size();
    if (f.imm64) {
      insn.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(*f.imm64));
      Insn second;
      second.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(*f.imm64 >> 32));
      program.insns.push_back(insn);
      program.insns.push_back(second);
    } else {
      program.insns.push_back(insn);
    }
  }

  if (syntax == Syntax::conformance && first_exit && !labels.count("exit"))
    labels.emplace("exit", std::pair{*first_exit, std::size_t{0}});
  for (const Fixup& fix : fixups) {
    auto it = labels.find(fix.label);
    if (it == labels.end()) return error(fmt::format("undefined label '{}'", fix.label), fix.line);
    std::int64_t delta = static_cast<std::int64_t>(it->second.first) - static_cast<std::int64_t>(fix.pc) - 1;
    Insn& insn = program.insns[fix.pc];
    if (fix.in_imm) {
      insn.imm = static_cast<std::int32_t>(delta);
    } else {
      if (delta < INT16_MIN || delta > INT16_MAX)
        return error(
            fmt::format("label '{}' is {} instructions away, beyond a 16-bit jump offset", fix.label, delta),
            fix.line);
      insn.off = static_cast<std::int16_t>(delta);
    }
  }
  return program;
}

}  // namespace bpfvm::isa
