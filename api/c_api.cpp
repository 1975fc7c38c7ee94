// The C API (api/bpfvm.h) over the C++ API (api/bpfvm.hpp).
#include "api/bpfvm.h"

#include <array>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "api/bpfvm.hpp"

namespace {

struct CHelper {
  bpfvm_helper_fn fn = nullptr;
  void* user = nullptr;
};

// vm::HelperFn carries no per-helper data, so each registered C helper gets a slot and a
// trampoline that knows its slot number; the run's user pointer is the handle.
constexpr std::size_t max_c_helpers = 64;

}  // namespace

struct bpfvm_program {
  bpfvm::Vm vm;
  bool loaded = false;
  bpfvm::Engine engine = bpfvm::Engine::interpreter;
  std::uint64_t budget = bpfvm::vm::default_budget;
  std::shared_ptr<const bpfvm::vm::Executable> executable;
  std::optional<bpfvm::verifier::VerifiedProgram> verified;  // set by bpfvm_verify()
  std::array<CHelper, max_c_helpers> slots{};
  std::map<std::uint32_t, std::size_t> slot_of_id;
  std::string error;

  bpfvm_status fail(bpfvm_status status, std::string message) {
    error = std::move(message);
    return status;
  }
};

namespace {

template <std::size_t N>
std::uint64_t trampoline(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                         std::uint64_t r5, bpfvm::vm::RunContext* ctx) {
  const auto& slot = static_cast<const bpfvm_program*>(ctx->user())->slots[N];
  return slot.fn(slot.user, r1, r2, r3, r4, r5);
}

template <std::size_t... N>
constexpr std::array<bpfvm::vm::HelperFn, sizeof...(N)> make_trampolines(std::index_sequence<N...>) {
  return {&trampoline<N>...};
}
constexpr auto trampolines = make_trampolines(std::make_index_sequence<max_c_helpers>{});

template <std::size_t Size>
void copy_text(char (&out)[Size], std::string_view text) {
  std::size_t n = std::min(text.size(), Size - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

// Every entry point: a C++ exception (a bug or out of memory) becomes BPFVM_ERR_INTERNAL.
template <typename F>
bpfvm_status guarded(bpfvm_program* p, F&& f) {
  if (!p) return BPFVM_ERR_ARGUMENT;
  try {
    p->error.clear();
    return f();
  } catch (const std::exception& e) {
    return p->fail(BPFVM_ERR_INTERNAL, std::string("internal error: ") + e.what());
  }
}

bpfvm_status load(bpfvm_program* p, bpfvm::Result<bpfvm::isa::Program> program) {
  if (!program) return p->fail(BPFVM_ERR_LOAD, program.error().to_string());
  if (auto s = p->vm.load(std::move(*program)); !s) return p->fail(BPFVM_ERR_LOAD, s.error().to_string());
  p->loaded = true;
  p->executable.reset();
  p->verified.reset();
  return BPFVM_OK;
}

void fill_result(const bpfvm::vm::RunResult& r, bpfvm_result* result) {
  result->r0 = r.r0;
  if (!r.trap) return;
  result->trapped = 1;
  auto& t = result->trap;
  copy_text(t.kind, bpfvm::vm::to_string(r.trap->kind));
  t.pc = r.trap->pc;
  t.address = r.trap->address;
  t.size = r.trap->size;
  copy_text(t.region, r.trap->region);
  copy_text(t.message, r.trap->message());
}

constexpr int einval = 22;

// The map named `name`, or nullptr.
bpfvm::vm::Map* map_named(bpfvm_program* program, const char* name) {
  if (!program || !name) return nullptr;
  return program->vm.maps()->find(name);
}

bpfvm::isa::LoadOptions load_options(const char* section) {
  bpfvm::isa::LoadOptions options;
  if (section) options.program = section;
  return options;
}

}  // namespace

extern "C" {

bpfvm_program* bpfvm_create(void) { return new (std::nothrow) bpfvm_program(); }

void bpfvm_destroy(bpfvm_program* program) { delete program; }

const char* bpfvm_last_error(const bpfvm_program* program) { return program ? program->error.c_str() : ""; }

bpfvm_status bpfvm_load_bytes(bpfvm_program* program, const void* bytes, size_t size, const char* section) {
  return guarded(program, [&] {
    if (!bytes && size) return program->fail(BPFVM_ERR_ARGUMENT, "bytes is NULL");
    std::span<const std::uint8_t> data(static_cast<const std::uint8_t*>(bytes), size);
    return load(program, bpfvm::isa::load_bytes(data, "<memory>", load_options(section)));
  });
}

bpfvm_status bpfvm_load_file(bpfvm_program* program, const char* path, const char* section) {
  return guarded(program, [&] {
    if (!path) return program->fail(BPFVM_ERR_ARGUMENT, "path is NULL");
    if (auto s = program->vm.load_file(path, load_options(section)); !s)
      return program->fail(BPFVM_ERR_LOAD, s.error().to_string());
    program->loaded = true;
    program->executable.reset();
    program->verified.reset();
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_register_helper(bpfvm_program* program, uint32_t id, const char* name, bpfvm_helper_fn fn,
                                   void* user) {
  return guarded(program, [&] {
    if (!name || !fn) return program->fail(BPFVM_ERR_ARGUMENT, "name and fn must not be NULL");
    auto it = program->slot_of_id.find(id);
    std::size_t slot = it != program->slot_of_id.end() ? it->second : program->slot_of_id.size();
    if (slot >= max_c_helpers)
      return program->fail(BPFVM_ERR_ARGUMENT, "helper " + std::to_string(id) + ": at most " +
                                                   std::to_string(max_c_helpers) + " helpers per program");
    if (auto s = program->vm.add_helper(id, name, trampolines[slot]); !s)
      return program->fail(BPFVM_ERR_ARGUMENT, s.error().to_string());
    program->slot_of_id[id] = slot;
    program->slots[slot] = {fn, user};
    program->executable.reset();
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_set_engine(bpfvm_program* program, const char* engine) {
  return guarded(program, [&] {
    auto e = engine ? bpfvm::engine_from_string(engine) : std::nullopt;
    if (!e || !bpfvm::engine_available(*e))
      return program->fail(BPFVM_ERR_ARGUMENT, std::string("unknown engine '") +
                                                   (engine ? engine : "(null)") + "' in this build");
    program->engine = *e;
    program->executable.reset();
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_set_budget(bpfvm_program* program, uint64_t instructions) {
  return guarded(program, [&] {
    program->budget = instructions ? instructions : bpfvm::vm::default_budget;
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_verify(bpfvm_program* program, const char* type, int64_t mem_size) {
  return guarded(program, [&] {
    if (!type) return program->fail(BPFVM_ERR_ARGUMENT, "type is NULL");
    if (!program->loaded) return program->fail(BPFVM_ERR_STATE, "no program loaded");
    std::optional<std::uint64_t> size;
    if (mem_size >= 0) size = static_cast<std::uint64_t>(mem_size);
    auto env = bpfvm::verifier::environment_by_name(type, size);
    if (!env) return program->fail(BPFVM_ERR_ARGUMENT, env.error().to_string());
    auto result = program->vm.verify(*env);
    program->executable.reset();
    program->verified = std::move(result.program);
    if (!program->verified) return program->fail(BPFVM_ERR_REJECTED, result.diagnostic->to_string());
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_compile(bpfvm_program* program) {
  return guarded(program, [&] {
    if (!program->loaded) return program->fail(BPFVM_ERR_STATE, "no program loaded");
    bpfvm::vm::CompileOptions options;
    options.enforce_budget = program->budget != BPFVM_NO_BUDGET;
    auto exe = program->verified ? program->vm.compile(program->engine, *program->verified, options)
                                 : program->vm.compile(program->engine, options);
    if (!exe) return program->fail(BPFVM_ERR_COMPILE, exe.error().to_string());
    program->executable = std::move(*exe);
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_run(const bpfvm_program* program, void* memory, size_t size, bpfvm_result* result) {
  if (!program || !result || (!memory && size)) return BPFVM_ERR_ARGUMENT;
  *result = bpfvm_result{};
  if (!program->executable) return BPFVM_ERR_STATE;
  try {
    bpfvm::RunOptions options;
    options.budget = program->budget;
    options.user = const_cast<bpfvm_program*>(program);  // read by the trampolines only
    auto r = bpfvm::run(*program->executable, {static_cast<std::uint8_t*>(memory), size}, options);
    fill_result(r, result);
    return r.trap ? BPFVM_ERR_TRAP : BPFVM_OK;
  } catch (const std::exception&) {
    return BPFVM_ERR_INTERNAL;
  }
}

bpfvm_status bpfvm_add_linux_helpers(bpfvm_program* program) {
  return guarded(program, [&] {
    if (auto s = program->vm.add_linux_helpers(); !s)
      return program->fail(BPFVM_ERR_INTERNAL, s.error().to_string());
    program->executable.reset();
    return BPFVM_OK;
  });
}

bpfvm_status bpfvm_create_maps(bpfvm_program* program) {
  return guarded(program, [&] {
    if (!program->loaded) return program->fail(BPFVM_ERR_STATE, "no program loaded");
    if (auto s = program->vm.create_maps(); !s) return program->fail(BPFVM_ERR_LOAD, s.error().to_string());
    return BPFVM_OK;
  });
}

size_t bpfvm_map_count(const bpfvm_program* program) {
  return program ? program->vm.maps()->all().size() : 0;
}

bpfvm_status bpfvm_map_info_at(const bpfvm_program* program, size_t index, bpfvm_map_info* info) {
  if (!program || !info) return BPFVM_ERR_ARGUMENT;
  const auto maps = program->vm.maps()->all();
  if (index >= maps.size()) return BPFVM_ERR_ARGUMENT;
  const auto& d = maps[index]->def();
  *info = bpfvm_map_info{};
  copy_text(info->name, d.name);
  info->type = d.type;
  info->key_size = d.key_size;
  info->value_size = d.value_size;
  info->max_entries = d.max_entries;
  info->value_bytes = maps[index]->host_value_size();
  return BPFVM_OK;
}

int bpfvm_map_lookup(bpfvm_program* program, const char* map, const void* key, void* value) {
  bpfvm::vm::Map* m = map_named(program, map);
  if (!m || !key || !value) return -einval;
  return m->host_lookup(key, value);
}

int bpfvm_map_update(bpfvm_program* program, const char* map, const void* key, const void* value,
                     uint64_t flags) {
  bpfvm::vm::Map* m = map_named(program, map);
  if (!m || !key || !value) return -einval;
  return m->host_update(key, value, flags);
}

int bpfvm_map_delete(bpfvm_program* program, const char* map, const void* key) {
  bpfvm::vm::Map* m = map_named(program, map);
  if (!m || !key) return -einval;
  return m->host_remove(key);
}

int bpfvm_map_next_key(bpfvm_program* program, const char* map, const void* key, void* next_key) {
  bpfvm::vm::Map* m = map_named(program, map);
  if (!m || !next_key) return -einval;
  return m->next_key(key, next_key);
}

long bpfvm_ringbuf_consume(bpfvm_program* program, const char* map, bpfvm_ringbuf_fn fn, void* user) {
  auto* ring = dynamic_cast<bpfvm::vm::RingBuffer*>(map_named(program, map));
  if (!ring || !fn) return -einval;
  return static_cast<long>(
      ring->consume([&](std::span<const std::uint8_t> record) { fn(user, record.data(), record.size()); }));
}

bpfvm_status bpfvm_run_packet(const bpfvm_program* program, const char* type, const void* packet, size_t size,
                              bpfvm_result* result) {
  if (!program || !type || !result || (!packet && size)) return BPFVM_ERR_ARGUMENT;
  *result = bpfvm_result{};
  const auto kind = bpfvm::vm::context_kind(type);
  if (!kind) return BPFVM_ERR_ARGUMENT;
  if (!program->executable) return BPFVM_ERR_STATE;
  try {
    auto context = bpfvm::vm::PacketContext::create(*kind);
    if (!context) return BPFVM_ERR_INTERNAL;
    if (!(*context)->set_packet({static_cast<const std::uint8_t*>(packet), size})) return BPFVM_ERR_ARGUMENT;
    bpfvm::RunOptions options;
    options.budget = program->budget;
    options.user = const_cast<bpfvm_program*>(program);
    auto r = bpfvm::run_packet(*program->executable, **context, options);
    fill_result(r, result);
    return r.trap ? BPFVM_ERR_TRAP : BPFVM_OK;
  } catch (const std::exception&) {
    return BPFVM_ERR_INTERNAL;
  }
}

const char* bpfvm_status_string(bpfvm_status status) {
  switch (status) {
    case BPFVM_OK: return "ok";
    case BPFVM_ERR_ARGUMENT: return "invalid argument";
    case BPFVM_ERR_LOAD: return "load failed";
    case BPFVM_ERR_COMPILE: return "compile failed";
    case BPFVM_ERR_STATE: return "wrong state";
    case BPFVM_ERR_TRAP: return "trap";
    case BPFVM_ERR_INTERNAL: return "internal error";
    case BPFVM_ERR_REJECTED: return "rejected by the verifier";
  }
  return "unknown status";
}

}  // extern "C"
