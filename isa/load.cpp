#include "isa/load.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string_view>

#include "isa/asm.hpp"
#include "isa/elf.hpp"
#include "isa/validate.hpp"

namespace bpfvm::isa {
namespace {

bool is_elf(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
}

// Text: every byte printable or whitespace. Raw instruction words almost always hold a NUL or a
// control byte (registers and offsets are small numbers).
bool is_text(std::span<const std::uint8_t> bytes) {
  return !bytes.empty() && std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t c) {
    return c == '\n' || c == '\r' || c == '\t' || (c >= 0x20 && c < 0x7f);
  });
}

Result<Program> finish(Result<Program> loaded, const std::string& name) {
  if (!loaded) {
    auto e = loaded.error();
    if (e.file.empty()) e.file = name;
    return e;
  }
  auto status = validate(loaded.value());
  if (!status) {
    auto e = status.error();
    if (e.file.empty()) e.file = name;
    if (e.section.empty()) e.section = loaded->section;
    return e;
  }
  return loaded;
}

}  // namespace

Result<Program> load_bytes(std::span<const std::uint8_t> bytes, const std::string& name,
                           const LoadOptions& options) {
  auto format = options.format;
  if (format == InputFormat::detect) {
    if (is_elf(bytes)) {
      format = InputFormat::elf;
    } else if (is_text(bytes)) {
      std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      format =
          text.find("%r") != std::string_view::npos ? InputFormat::text_conformance : InputFormat::text_llvm;
    } else {
      format = InputFormat::raw;
    }
  }
  std::string stem = name.substr(name.find_last_of('/') + 1);
  switch (format) {
    case InputFormat::elf: return finish(load_object(bytes, name, options.program), name);
    case InputFormat::raw: return finish(program_from_bytes(bytes, stem), name);
    case InputFormat::text_llvm:
    case InputFormat::text_conformance: {
      std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      auto syntax = format == InputFormat::text_llvm ? Syntax::llvm : Syntax::conformance;
      auto program = assemble(text, syntax, name);
      if (program) program->name = stem;
      return finish(std::move(program), name);
    }
    case InputFormat::detect: break;
  }
  return Error("unknown input format");
}

namespace {

Result<std::vector<std::uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Error e("cannot open the file");
    e.file = path;
    return e;
  }
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

Result<Program> load_file(const std::string& path, const LoadOptions& options) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  return load_bytes(*bytes, path, options);
}

Result<ObjectInfo> inspect_file(const std::string& path, InputFormat format) {
  auto bytes = read_file(path);
  if (!bytes) return bytes.error();
  if (format == InputFormat::elf || (format == InputFormat::detect && is_elf(*bytes)))
    return read_object(*bytes, path);
  LoadOptions options;
  options.format = format;
  auto program = load_bytes(*bytes, path, options);
  if (!program) return program.error();
  return ObjectInfo{{{program->section, program->name, program->insns.size()}}, program->maps};
}

}  // namespace bpfvm::isa
