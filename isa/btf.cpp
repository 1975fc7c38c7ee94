#include "isa/btf.hpp"

#include <fmt/format.h>

#include "isa/le_bytes.hpp"

namespace bpfvm::isa::btf {
namespace {

constexpr std::uint16_t magic = 0xeb9f;
constexpr std::size_t header_size = 24, type_header_size = 12;

// BTF kinds (the `kind` bits of btf_type.info).
enum Kind : std::uint32_t {
  int_ = 1,
  ptr = 2,
  array = 3,
  struct_ = 4,
  union_ = 5,
  enum_ = 6,
  fwd = 7,
  typedef_ = 8,
  volatile_ = 9,
  const_ = 10,
  restrict_ = 11,
  func = 12,
  func_proto = 13,
  var = 14,
  datasec = 15,
  float_ = 16,
  decl_tag = 17,
  type_tag = 18,
  enum64 = 19,
};

// Bytes of kind-specific data after the 12-byte btf_type, or -1 for an unknown kind.
long long extra_size(std::uint32_t kind, std::uint32_t vlen) {
  switch (kind) {
    case int_:
    case var:
    case decl_tag: return 4;
    case ptr:
    case fwd:
    case typedef_:
    case volatile_:
    case const_:
    case restrict_:
    case func:
    case float_:
    case type_tag: return 0;
    case array: return 12;
    case struct_:
    case union_:
    case datasec:
    case enum64: return 12LL * vlen;
    case enum_:
    case func_proto: return 8LL * vlen;
    default: return -1;
  }
}

}  // namespace

Result<Types> Types::parse(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < header_size)
    return Error(
        fmt::format("BTF is {} bytes, too short for its header ({} bytes)", bytes.size(), header_size));
  if (le::u16(bytes, 0) != magic) return Error(fmt::format("bad BTF magic {:#06x}", le::u16(bytes, 0)));
  if (bytes[2] != 1) return Error(fmt::format("BTF version {} is not 1", bytes[2]));
  auto hdr_len = le::u32(bytes, 4);
  if (hdr_len < header_size || hdr_len > bytes.size())
    return Error(fmt::format("BTF header length {} is outside {}..{}", hdr_len, header_size, bytes.size()));
  auto body = bytes.subspan(hdr_len);
  auto type_off = le::u32(bytes, 8), type_len = le::u32(bytes, 12);
  auto str_off = le::u32(bytes, 16), str_len = le::u32(bytes, 20);
  if (!le::fits(body, type_off, type_len))
    return Error(
        fmt::format("BTF types at offset {} length {} run past the section's end", type_off, type_len));
  if (!le::fits(body, str_off, str_len))
    return Error(
        fmt::format("BTF strings at offset {} length {} run past the section's end", str_off, str_len));
  Types t;
  t.type_bytes_ = body.subspan(type_off, type_len);
  t.strings_ = body.subspan(str_off, str_len);
  t.types_.emplace_back();  // id 0: void
  for (std::size_t at = 0; at < t.type_bytes_.size();) {
    auto id = t.types_.size();
    if (!le::fits(t.type_bytes_, at, type_header_size))
      return Error(fmt::format("BTF type {} at offset {} is truncated", id, at));
    Type type;
    type.name_off = le::u32(t.type_bytes_, at);
    auto info = le::u32(t.type_bytes_, at + 4);
    type.vlen = info & 0xffff;
    type.kind = (info >> 24) & 0x1f;
    type.size_or_type = le::u32(t.type_bytes_, at + 8);
    type.extra = at + type_header_size;
    auto extra = extra_size(type.kind, type.vlen);
    if (extra < 0) return Error(fmt::format("BTF type {} has unknown kind {}", id, type.kind));
    if (!le::fits(t.type_bytes_, type.extra, static_cast<std::uint64_t>(extra)))
      return Error(fmt::format("BTF type {} (kind {}) is truncated: {} bytes of members past the end", id,
                               type.kind, extra));
    at = type.extra + static_cast<std::size_t>(extra);
    t.types_.push_back(type);
  }
  return t;
}

Result<std::string> Types::string_at(std::uint32_t offset) const {
  if (offset >= strings_.size())
    return Error(fmt::format("BTF string offset {} is outside the string section ({} bytes)", offset,
                             strings_.size()));
  for (std::size_t i = offset; i < strings_.size(); ++i)
    if (strings_[i] == 0)
      return std::string(reinterpret_cast<const char*>(strings_.data()) + offset, i - offset);
  return Error(fmt::format("BTF string at offset {} is not NUL-terminated", offset));
}

Result<const Types::Type*> Types::type(std::uint32_t id) const {
  if (id == 0 || id >= types_.size())
    return Error(
        fmt::format("BTF type id {} does not exist (the section has {} types)", id, types_.size() - 1));
  return &types_[id];
}

Result<std::uint32_t> Types::skip_modifiers(std::uint32_t id) const {
  for (int depth = 0; depth < 32; ++depth) {
    auto t = type(id);
    if (!t) return t.error();
    auto k = (*t)->kind;
    if (k != typedef_ && k != volatile_ && k != const_ && k != restrict_ && k != type_tag) return id;
    id = (*t)->size_or_type;
  }
  return Error(fmt::format("BTF type {}: chain of typedefs and qualifiers is too long (a cycle?)", id));
}

Result<std::uint64_t> Types::size_of(std::uint32_t id, int depth) const {
  if (depth > 32) return Error(fmt::format("BTF type {}: type nesting is too deep (a cycle?)", id));
  auto t = type(id);
  if (!t) return t.error();
  const Type& ty = **t;
  switch (ty.kind) {
    case int_:
    case struct_:
    case union_:
    case enum_:
    case enum64:
    case float_:
    case datasec: return std::uint64_t{ty.size_or_type};
    case ptr: return std::uint64_t{8};
    case typedef_:
    case volatile_:
    case const_:
    case restrict_:
    case type_tag:
    case var: return size_of(ty.size_or_type, depth + 1);
    case array: {
      auto elem = size_of(le::u32(type_bytes_, ty.extra), depth + 1);
      if (!elem) return elem;
      return *elem * le::u32(type_bytes_, ty.extra + 8);
    }
    default: return Error(fmt::format("BTF type {} (kind {}) has no size", id, ty.kind));
  }
}

std::vector<Var> Types::datasec_vars(std::string_view section) const {
  std::vector<Var> out;
  for (const auto& t : types_) {
    if (t.kind != datasec) continue;
    auto name = string_at(t.name_off);
    if (!name || *name != section) continue;
    for (std::uint32_t i = 0; i < t.vlen; ++i) {
      auto var_id = le::u32(type_bytes_, t.extra + 12 * i);
      if (var_id == 0 || var_id >= types_.size() || types_[var_id].kind != var) continue;
      auto var_name = string_at(types_[var_id].name_off);
      out.push_back({var_name ? *var_name : std::string(), var_id});
    }
  }
  return out;
}

Result<MapDef> Types::map_definition(std::uint32_t var_type) const {
  auto v = type(var_type);
  if (!v) return v.error();
  auto struct_id = skip_modifiers((*v)->size_or_type);
  if (!struct_id) return struct_id.error();
  const Type& s = types_[*struct_id];
  if (s.kind != struct_)
    return Error(
        fmt::format("BTF type {} of a .maps variable is not a struct (kind {})", *struct_id, s.kind));
  MapDef def;
  for (std::uint32_t i = 0; i < s.vlen; ++i) {
    auto m = s.extra + 12 * i;
    auto member = string_at(le::u32(type_bytes_, m));
    if (!member) return member.error();
    auto member_type = skip_modifiers(le::u32(type_bytes_, m + 4));
    if (!member_type) return member_type.error();
    const Type& mt = types_[*member_type];
    // __uint(name, N) is `int (*name)[N]`; __type(name, T) is `T *name`.
    std::uint32_t* number = nullptr;
    if (*member == "type")
      number = &def.type;
    else if (*member == "key_size")
      number = &def.key_size;
    else if (*member == "value_size")
      number = &def.value_size;
    else if (*member == "max_entries")
      number = &def.max_entries;
    else if (*member == "map_flags")
      number = &def.flags;
    if (number) {
      if (mt.kind != ptr)
        return Error(fmt::format("map member '{}' is not declared with __uint (pointer to array)", *member));
      auto target = skip_modifiers(mt.size_or_type);
      if (!target) return target.error();
      if (types_[*target].kind != array)
        return Error(fmt::format("map member '{}' is not declared with __uint (pointer to array)", *member));
      *number = le::u32(type_bytes_, types_[*target].extra + 8);
    } else if (*member == "key" || *member == "value") {
      if (mt.kind != ptr)
        return Error(fmt::format("map member '{}' is not declared with __type (pointer)", *member));
      auto size = size_of(mt.size_or_type);
      if (!size) return size.error();
      if (*size > UINT32_MAX)
        return Error(fmt::format("map member '{}': size {} is too large", *member, *size));
      (*member == "key" ? def.key_size : def.value_size) = static_cast<std::uint32_t>(*size);
    }
    // Other members (pinning, numa_node, map_extra, values of a prog_array, inner maps) do not
    // change what the map is; bpfvm has nothing to do with them.
  }
  return def;
}

Result<std::map<std::string, std::vector<LineRecord>>> parse_line_info(std::span<const std::uint8_t> ext,
                                                                       const Types& types) {
  if (ext.size() < header_size)
    return Error(
        fmt::format("BTF.ext is {} bytes, too short for its header ({} bytes)", ext.size(), header_size));
  if (le::u16(ext, 0) != magic) return Error(fmt::format("bad BTF.ext magic {:#06x}", le::u16(ext, 0)));
  auto hdr_len = le::u32(ext, 4);
  if (hdr_len < header_size || hdr_len > ext.size())
    return Error(fmt::format("BTF.ext header length {} is outside {}..{}", hdr_len, header_size, ext.size()));
  auto body = ext.subspan(hdr_len);
  auto off = le::u32(ext, 16), len = le::u32(ext, 20);
  std::map<std::string, std::vector<LineRecord>> out;
  if (len == 0) return out;
  if (!le::fits(body, off, len) || len < 4)
    return Error(
        fmt::format("BTF.ext line info at offset {} length {} runs past the section's end", off, len));
  auto info = body.subspan(off, len);
  auto rec_size = le::u32(info, 0);
  if (rec_size < 16) return Error(fmt::format("BTF.ext line info record size {} is below 16", rec_size));
  for (std::size_t at = 4; at < info.size();) {
    if (!le::fits(info, at, 8))
      return Error(fmt::format("BTF.ext line info block at offset {} is truncated", at));
    auto section = types.string_at(le::u32(info, at));
    if (!section) return section.error();
    auto count = le::u32(info, at + 4);
    at += 8;
    if (!le::fits(info, at, std::uint64_t{count} * rec_size))
      return Error(fmt::format("BTF.ext line info for section {}: {} records of {} bytes run past the end",
                               *section, count, rec_size));
    auto& records = out[*section];
    for (std::uint32_t i = 0; i < count; ++i, at += rec_size) {
      LineRecord r;
      r.insn_offset = le::u32(info, at);
      auto file = types.string_at(le::u32(info, at + 4));
      if (!file) return file.error();
      auto source = types.string_at(le::u32(info, at + 8));
      if (!source) return source.error();
      r.file = std::move(*file);
      r.source = std::move(*source);
      auto line_col = le::u32(info, at + 12);
      r.line = line_col >> 10;
      r.column = line_col & 0x3ff;
      records.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace bpfvm::isa::btf
