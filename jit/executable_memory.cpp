#include "jit/executable_memory.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace bpfvm::jit {

Result<ExecutableMemory> ExecutableMemory::create(std::span<const std::uint8_t> code) {
  if (code.empty()) return Error("executable memory: no code");
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t mapped = (code.size() + page - 1) / page * page;
  // Populated up front: one pass in the kernel instead of a page fault per page of the copy.
  void* base =
      mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (base == MAP_FAILED)
    return Error(fmt::format("executable memory: mmap of {} bytes failed: {}", mapped, std::strerror(errno)));
  std::memcpy(base, code.data(), code.size());
  if (mprotect(base, mapped, PROT_READ | PROT_EXEC) != 0) {
    const int err = errno;
    munmap(base, mapped);
    return Error(fmt::format("executable memory: mprotect to read+execute failed: {}", std::strerror(err)));
  }
  // AArch64 instruction fetch is not coherent with data writes: clean and invalidate the range
  // (x86-64 keeps them coherent; the builtin is empty there).
  char* begin = static_cast<char*>(base);
  __builtin___clear_cache(begin, begin + code.size());
  return ExecutableMemory(base, mapped, code.size());
}

ExecutableMemory::ExecutableMemory(ExecutableMemory&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      mapped_(std::exchange(other.mapped_, 0)),
      code_size_(std::exchange(other.code_size_, 0)) {}

ExecutableMemory& ExecutableMemory::operator=(ExecutableMemory&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    mapped_ = std::exchange(other.mapped_, 0);
    code_size_ = std::exchange(other.code_size_, 0);
  }
  return *this;
}

ExecutableMemory::~ExecutableMemory() { release(); }

void ExecutableMemory::release() {
  if (base_) munmap(base_, mapped_);
  base_ = nullptr;
}

}  // namespace bpfvm::jit
