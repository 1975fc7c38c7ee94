#include "vm/helpers.hpp"

#include <algorithm>

namespace bpfvm::vm {

Status HelperRegistry::add(std::uint32_t id, std::string name, HelperFn fn,
                           std::optional<isa::HelperPrototype> prototype) {
  if (fn == nullptr) return Error("helper " + std::to_string(id) + ": no function");
  if (name.empty()) return Error("helper " + std::to_string(id) + ": empty name");
  if (const Helper* other = find(name); other != nullptr && other->id != id) {
    return Error("helper " + std::to_string(id) + ": name '" + name + "' already belongs to helper " +
                 std::to_string(other->id));
  }
  auto it = std::lower_bound(helpers_.begin(), helpers_.end(), id,
                             [](const Helper& h, std::uint32_t key) { return h.id < key; });
  Helper helper{id, std::move(name), fn, std::move(prototype)};
  if (it != helpers_.end() && it->id == id) {
    *it = std::move(helper);
  } else {
    helpers_.insert(it, std::move(helper));
  }
  return {};
}

const Helper* HelperRegistry::find(std::uint32_t id) const {
  auto it = std::lower_bound(helpers_.begin(), helpers_.end(), id,
                             [](const Helper& h, std::uint32_t key) { return h.id < key; });
  return it != helpers_.end() && it->id == id ? &*it : nullptr;
}

const Helper* HelperRegistry::find(std::string_view name) const {
  for (const Helper& h : helpers_) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

namespace {
std::uint64_t return_first_argument(std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t,
                                    std::uint64_t, RunContext*) {
  return r1;
}
}  // namespace

Status HelperRegistry::add_conformance_helpers() {
  return add(5, "conformance_return_r1", return_first_argument);
}

HelperRegistry HelperRegistry::conformance() {
  HelperRegistry registry;
  (void)registry.add_conformance_helpers();
  return registry;
}

}  // namespace bpfvm::vm
