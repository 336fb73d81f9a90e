// Status and Result<T>: how every sessiond module reports an outcome across its boundary.
//
// The codes are the wire protocol's StatusCode, so a status travels to a client unchanged. The
// message is a sentence a person can act on ("session ... not found: it expired or was
// invalidated; create a new one"), never a bare code.
#ifndef SESSIOND_STATUS_H_
#define SESSIOND_STATUS_H_

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

using StatusCode = v1::StatusCode;

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == v1::OK; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NOT_FOUND: session ... not found", or "OK".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = v1::OK;
  std::string message_;
};

// Convenience constructors, one per code that callers produce.
Status NotFound(std::string message);
Status Conflict(std::string message);
Status InvalidArgument(std::string message);
Status TooLarge(std::string message);
Status ResourceExhausted(std::string message);
Status Unavailable(std::string message);
Status Unauthenticated(std::string message);
Status Internal(std::string message);

// The code's protocol name, e.g. "NOT_FOUND".
std::string_view StatusCodeName(StatusCode code);

// What Result::status() returns when it holds a value.
inline const Status kOkStatus{};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result needs a value or a non-OK status");
  }

  bool ok() const { return v_.index() == 0; }
  // The error; an OK status when there is a value.
  const Status& status() const {
    // A namespace-scope constant, not a guarded function-local static: GCC 12 loses track of
    // v_'s index across the guard's call and warns (-Wmaybe-uninitialized) when a Result<T>
    // holding a T dies. (constexpr would do too, but clang 14 cannot evaluate libstdc++'s
    // std::string constructor at compile time.)
    const Status* error = std::get_if<Status>(&v_);
    return error != nullptr ? *error : kOkStatus;
  }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sessiond

#endif  // SESSIOND_STATUS_H_
