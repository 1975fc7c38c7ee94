// Errors as values: what went wrong and where (file, section, instruction index, line).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace bpfvm {

struct Error {
  Error() = default;
  explicit Error(std::string msg) : message(std::move(msg)) {}

  std::string message;
  std::string file;                  // input file, when there is one
  std::string section;               // ELF section or program name
  std::optional<std::size_t> insn;   // instruction index within the program
  std::optional<std::size_t> line;   // line of a text input (1-based)

  // "file:section: instruction 12: message" with the parts that are known.
  std::string to_string() const;
};

// A value or an Error. Small on purpose: C++20 has no std::expected.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }
  Error& error() { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Status {
  Status() = default;
  Status(Error e) : error_(std::move(e)) {}
  bool ok() const { return !error_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace bpfvm
