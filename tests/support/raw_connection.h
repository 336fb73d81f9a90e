// RawConnection: a plain blocking TCP connection for tests that must send what no well-behaved
// client would (garbage, truncated frames, lies about lengths) and read what comes back.
#ifndef SESSIOND_TESTS_SUPPORT_RAW_CONNECTION_H_
#define SESSIOND_TESTS_SUPPORT_RAW_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sessiond/v1/sessiond.pb.h"

namespace sessiond::test {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; check connected().
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }

  // Writes all of `bytes`; false if the peer has closed.
  bool Send(std::string_view bytes);
  // Frames `request` (no compression) and sends it.
  bool SendRequest(const v1::ClientRequest& request);

  // Reads one frame and parses it as a ClientResponse; nullopt on timeout, close or a bad frame.
  std::optional<v1::ClientResponse> ReadResponse(std::chrono::milliseconds timeout);

  // True when the daemon closes the connection (EOF or reset) within `timeout`, after any
  // pending bytes are drained.
  bool WaitClosed(std::chrono::milliseconds timeout);

 private:
  // Reads exactly n bytes into out; false on timeout or close.
  bool ReadExactly(size_t n, std::string* out, std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
};

}  // namespace sessiond::test

#endif  // SESSIOND_TESTS_SUPPORT_RAW_CONNECTION_H_
