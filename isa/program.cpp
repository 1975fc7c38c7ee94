#include "isa/program.hpp"

#include <algorithm>
#include <cstring>

namespace bpfvm::isa {

const Function* Program::function_at(std::size_t pc) const {
  for (auto& f : functions)
    if (pc >= f.start && pc < f.end) return &f;
  return nullptr;
}

const LineInfo* Program::line_at(std::size_t pc) const {
  auto it = std::upper_bound(lines.begin(), lines.end(), pc,
                             [](std::size_t p, const LineInfo& l) { return p < l.insn; });
  if (it == lines.begin()) return nullptr;
  return &*std::prev(it);
}

Program instructions_only(const Program& program) {
  Program copy;
  copy.name = program.name;
  copy.insns = program.insns;
  copy.functions = program.functions;
  return copy;
}

Result<Program> program_from_bytes(std::span<const std::uint8_t> bytes, std::string name) {
  if (bytes.size() % sizeof(Insn) != 0)
    return Error{"program size " + std::to_string(bytes.size()) + " bytes is not a multiple of 8"};
  Program p;
  p.name = std::move(name);
  p.insns.resize(bytes.size() / sizeof(Insn));
  if (!bytes.empty()) std::memcpy(p.insns.data(), bytes.data(), bytes.size());
  return p;
}

std::vector<std::uint8_t> program_bytes(const Program& program) {
  std::vector<std::uint8_t> out(program.insns.size() * sizeof(Insn));
  if (!out.empty()) std::memcpy(out.data(), program.insns.data(), out.size());
  return out;
}

std::string_view map_type_name(std::uint32_t type) {
  switch (static_cast<MapType>(type)) {
    case MapType::hash: return "hash";
    case MapType::array: return "array";
    case MapType::prog_array: return "prog_array";
    case MapType::percpu_hash: return "percpu_hash";
    case MapType::percpu_array: return "percpu_array";
    case MapType::lru_hash: return "lru_hash";
    case MapType::lru_percpu_hash: return "lru_percpu_hash";
    case MapType::ringbuf: return "ringbuf";
  }
  return "";
}

}  // namespace bpfvm::isa
