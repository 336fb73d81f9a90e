// Where a sessiond listens: a TCP host:port or a Unix socket path.
#ifndef SESSIOND_ENDPOINT_H_
#define SESSIOND_ENDPOINT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "sessiond/status.h"

namespace sessiond {

struct Endpoint {
  enum class Kind { kTcp, kUnix };

  // Accepts "HOST:PORT", "tcp://HOST:PORT", "[::1]:PORT", "unix:PATH" and "unix://PATH".
  // Returns INVALID_ARGUMENT with a sentence naming the accepted forms otherwise.
  static Result<Endpoint> Parse(std::string_view text);

  // The canonical text form: "127.0.0.1:7400" or "unix:/run/sessiond.sock".
  std::string ToString() const;

  Kind kind = Kind::kTcp;
  std::string host;   // kTcp
  uint16_t port = 0;  // kTcp
  std::string path;   // kUnix
};

}  // namespace sessiond

#endif  // SESSIOND_ENDPOINT_H_
