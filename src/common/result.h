// Result<T> and Status: the one error style at module boundaries. An Error
// carries a kind that the API maps to an HTTP status. Value types; not shared.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sandman {

enum class ErrorKind {
  kInvalid,       // 400: bad input, nothing changed
  kUnauthorized,  // 401
  kOverBudget,    // 402: a budget is spent and --budget-enforcement block refuses new spending
  kNotFound,      // 404
  kConflict,      // 409: exists already, or no capacity
  kTooLarge,      // 413
  kUnavailable,   // 503: a backend (Docker, store) is down; retry
  kNoSpace,       // 507: a file system Sandman writes to is (nearly) full; free space, then retry
  kInternal,      // 500: a bug
};

const char* errorCode(ErrorKind kind);  // "invalid", "not_found", ...
int httpStatus(ErrorKind kind);

struct Error {
  ErrorKind kind;
  std::string message;
  std::string details{};  // optional JSON object text, merged into the API's error body (e.g. budget figures)
};

inline Error invalid(std::string m) { return {ErrorKind::kInvalid, std::move(m)}; }
inline Error notFound(std::string m) { return {ErrorKind::kNotFound, std::move(m)}; }
inline Error conflict(std::string m) { return {ErrorKind::kConflict, std::move(m)}; }
inline Error unavailable(std::string m) { return {ErrorKind::kUnavailable, std::move(m)}; }
inline Error noSpace(std::string m) { return {ErrorKind::kNoSpace, std::move(m)}; }
inline Error internal(std::string m) { return {ErrorKind::kInternal, std::move(m)}; }
inline Error overBudget(std::string m, std::string details) {
  return {ErrorKind::kOverBudget, std::move(m), std::move(details)};
}

// Status: success, or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : error_(std::move(e)) {}  // NOLINT: implicit by design
  bool ok() const { return !error_.has_value(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

// Result<T>: a T, or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error e) : v_(std::move(e)) {}      // NOLINT: implicit by design
  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T* operator->() const { return &std::get<T>(v_); }
  T* operator->() { return &std::get<T>(v_); }
  const T& operator*() const { return std::get<T>(v_); }
  const Error& error() const { return std::get<Error>(v_); }
  Status status() const { return ok() ? Status() : Status(error()); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace sandman
