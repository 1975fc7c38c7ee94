#include "isa/disasm.hpp"

#include <array>
#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace bpfvm::isa {
namespace text_detail {

namespace {
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}
}  // namespace

namespace {

std::string build_template(const OpInfo& row, Syntax syntax, bool alu32) {
  if (syntax == Syntax::conformance) return std::string(row.conformance_text);
  std::string t(row.llvm_text);
  if (!alu32) return t;
  // With alu32 LLVM names the 32-bit-or-narrower data register of zero-extending loads,
  // register stores and atomics by its w half.
  if (row.kind == Kind::load && row.operation == Operation::load && row.width < 64)
    replace_all(t, "r{dst}", "w{dst}");
  if ((row.kind == Kind::store && row.source == Source::reg && row.width < 64) ||
      (row.kind == Kind::atomic && row.width < 64))
    replace_all(t, "r{src}", "w{src}");
  return t;
}

// Templates and hint flags for every row, computed once: [0] LLVM, [1] LLVM alu32, [2] conformance.
struct Tables {
  std::array<std::array<std::string, op_count>, 3> templates;
  std::array<std::array<bool, op_count>, 2> hints{};  // [0] LLVM, [1] conformance
  Tables() {
    for (std::size_t i = 0; i < op_count; ++i) {
      templates[0][i] = build_template(op_table[i], Syntax::llvm, false);
      templates[1][i] = build_template(op_table[i], Syntax::llvm, true);
      templates[2][i] = build_template(op_table[i], Syntax::conformance, false);
    }
    for (int s = 0; s < 2; ++s)
      for (std::size_t i = 0; i < op_count; ++i)
        for (std::size_t j = 0; j < i && !hints[s][i]; ++j)
          hints[s][i] =
              op_table[j].opcode == op_table[i].opcode && templates[2 * s][j] == templates[2 * s][i];
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& row_template(const OpInfo& row, Syntax syntax, bool alu32) {
  std::size_t variant = syntax == Syntax::conformance ? 2 : alu32 ? 1 : 0;
  return tables().templates[variant][static_cast<std::size_t>(row.id)];
}

bool needs_hint(const OpInfo& row, Syntax syntax) {
  return tables().hints[syntax == Syntax::conformance ? 1 : 0][static_cast<std::size_t>(row.id)];
}

std::string_view disc_name(Disc disc) {
  switch (disc) {
    case Disc::off: return "off";
    case Disc::imm: return "imm";
    case Disc::src: return "src";
    case Disc::none: break;
  }
  return "none";
}

}  // namespace text_detail

namespace {

std::string llvm_hex(std::int64_t v) {
  if (v < 0) return fmt::format("-0x{:x}", std::uint64_t{0} - static_cast<std::uint64_t>(v));
  return fmt::format("0x{:x}", v);
}

std::string signed_text(std::int64_t v, Syntax syntax) {
  return syntax == Syntax::llvm ? llvm_hex(v) : fmt::format("{}", v);
}

// "+0x5" / "-0x5" (LLVM) or "+5" / "-5" (conformance).
std::string relative_text(std::int64_t v, Syntax syntax) {
  std::string s = signed_text(v, syntax);
  return v < 0 ? s : "+" + s;
}

std::string offset_text(std::int32_t off, Syntax syntax) {
  if (syntax == Syntax::conformance) return relative_text(off, syntax);
  std::int64_t v = off;
  return v < 0 ? "- " + llvm_hex(-v) : "+ " + llvm_hex(v);
}

}  // namespace

std::string format_insn(std::span<const Insn> insns, std::size_t pc, Syntax syntax, bool alu32) {
  if (pc >= insns.size()) return "<no instruction>";
  const Insn& insn = insns[pc];
  auto op = decode(insn);
  if (!op) return "<unknown>";
  const OpInfo& row = info(*op);
  const std::string& t = text_detail::row_template(row, syntax, alu32);
  std::int64_t target = (row.kind == Kind::call ||
                         (row.kind == Kind::jump && row.width == 32 && row.operation == Operation::ja))
                            ? std::int64_t{insn.imm}
                            : std::int64_t{insn.off};
  std::string out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '{') {
      out += t[i];
      continue;
    }
    std::size_t close = t.find('}', i);
    std::string_view name = std::string_view(t).substr(i + 1, close - i - 1);
    i = close;
    if (name == "dst")
      out += std::to_string(insn.dst());
    else if (name == "src")
      out += std::to_string(insn.src());
    else if (name == "imm")
      out += signed_text(insn.imm, syntax);
    else if (name == "off")
      out += offset_text(insn.off, syntax);
    else if (name == "+imm")  // LLVM prints ldind's immediate only when it is not 0
      out += insn.imm == 0 ? "" : " " + offset_text(insn.imm, syntax);
    else if (name == "tgt")
      out += relative_text(target, syntax);
    else if (name == "imm64") {
      if (pc + 1 >= insns.size()) return "<lddw without its second slot>";
      std::uint64_t v = lddw_value(insn, insns[pc + 1]);
      out += syntax == Syntax::llvm ? llvm_hex(static_cast<std::int64_t>(v)) : fmt::format("0x{:x}", v);
    }
  }
  if (text_detail::needs_hint(row, syntax))
    out += fmt::format(" # {}={}", text_detail::disc_name(row.disc), row.disc_value);
  return out;
}

std::string disassemble(const Program& program, const DisasmOptions& options) {
  std::span<const Insn> insns = program.insns;
  std::string out;
  auto header = [&](const std::string& name, std::size_t pc) {
    if (!out.empty()) out += "\n";
    if (options.syntax == Syntax::llvm)
      out += fmt::format("{:016x} <{}>:\n", pc * sizeof(Insn), name);
    else
      out += name + ":\n";
  };
  const LineInfo* last_line = nullptr;
  auto source = [&](std::size_t pc) {
    const LineInfo* l = program.line_at(pc);
    if (!l || l->insn != pc || (last_line && last_line->file == l->file && last_line->line == l->line))
      return;
    last_line = l;
    auto text = std::string_view(l->source);
    auto first = text.find_first_not_of(" \t");
    text = first == std::string_view::npos ? std::string_view{} : text.substr(first);
    out += fmt::format("{}# {}:{}: {}\n", options.syntax == Syntax::llvm ? "" : "  ",
                       l->file.substr(l->file.find_last_of('/') + 1), l->line, text);
  };
  std::size_t next_function = 0;
  if (program.functions.empty()) header(program.name.empty() ? "main" : program.name, 0);
  for (std::size_t pc = 0; pc < insns.size();) {
    while (next_function < program.functions.size() && program.functions[next_function].start <= pc) {
      if (program.functions[next_function].start == pc) header(program.functions[next_function].name, pc);
      ++next_function;
    }
    auto op = decode(insns[pc]);
    std::size_t slots = op && pc + 1 < insns.size() ? static_cast<std::size_t>(slot_count(*op)) : 1;
    std::string bytes;
    for (std::size_t s = 0; s < slots; ++s) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(&insns[pc + s]);
      for (std::size_t k = 0; k < sizeof(Insn); ++k)
        bytes += fmt::format("{}{:02x}", bytes.empty() ? "" : " ", b[k]);
    }
    if (options.show_source) source(pc);
    std::string text = format_insn(insns, pc, options.syntax, options.alu32);
    if (options.syntax == Syntax::llvm) {
      if (options.show_pc) out += fmt::format("{:>8}:\t", pc);
      if (options.show_bytes) out += bytes + "\t";
      out += text + "\n";
    } else {
      out += "  " + text;
      if (options.show_pc || options.show_bytes) {
        out += "  #";
        if (options.show_pc) out += fmt::format(" {}:", pc);
        if (options.show_bytes) out += " " + bytes;
      }
      out += "\n";
    }
    pc += slots;
  }
  return out;
}

}  // namespace bpfvm::isa
