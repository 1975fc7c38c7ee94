// Executable memory for either JIT: mapped writable while the code is copied in, then switched
// to read+execute (never both at once), with the instruction cache flushed for the range (a
// no-op on x86-64, required on AArch64).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "isa/error.hpp"

namespace bpfvm::jit {

class ExecutableMemory {
 public:
  static Result<ExecutableMemory> create(std::span<const std::uint8_t> code);

  ExecutableMemory(ExecutableMemory&& other) noexcept;
  ExecutableMemory& operator=(ExecutableMemory&& other) noexcept;
  ExecutableMemory(const ExecutableMemory&) = delete;
  ExecutableMemory& operator=(const ExecutableMemory&) = delete;
  ~ExecutableMemory();

  const void* entry() const { return base_; }
  std::size_t size() const { return code_size_; }
  // The code as a function pointer of type Fn (e.g. std::uint64_t (*)(std::uint64_t)).
  template <typename Fn>
  Fn as() const {
    return reinterpret_cast<Fn>(base_);
  }

 private:
  ExecutableMemory(void* base, std::size_t mapped, std::size_t code_size)
      : base_(base), mapped_(mapped), code_size_(code_size) {}
  void release();

  void* base_ = nullptr;
  std::size_t mapped_ = 0;
  std::size_t code_size_ = 0;
};

}  // namespace bpfvm::jit
