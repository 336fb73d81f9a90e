#include "sessiond/status.h"

#include <string>
#include <string_view>
#include <utility>

namespace sessiond {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case v1::OK:
      return "OK";
    case v1::NOT_FOUND:
      return "NOT_FOUND";
    case v1::CONFLICT:
      return "CONFLICT";
    case v1::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case v1::TOO_LARGE:
      return "TOO_LARGE";
    case v1::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case v1::UNAVAILABLE:
      return "UNAVAILABLE";
    case v1::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case v1::INTERNAL:
      return "INTERNAL";
    default:
      // A code from a newer daemon: still printable, and callers can compare the number.
      return "UNKNOWN_STATUS";
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status NotFound(std::string message) { return Status(v1::NOT_FOUND, std::move(message)); }
Status Conflict(std::string message) { return Status(v1::CONFLICT, std::move(message)); }
Status InvalidArgument(std::string message) {
  return Status(v1::INVALID_ARGUMENT, std::move(message));
}
Status TooLarge(std::string message) { return Status(v1::TOO_LARGE, std::move(message)); }
Status ResourceExhausted(std::string message) {
  return Status(v1::RESOURCE_EXHAUSTED, std::move(message));
}
Status Unavailable(std::string message) { return Status(v1::UNAVAILABLE, std::move(message)); }
Status Unauthenticated(std::string message) {
  return Status(v1::UNAUTHENTICATED, std::move(message));
}
Status Internal(std::string message) { return Status(v1::INTERNAL, std::move(message)); }

}  // namespace sessiond
