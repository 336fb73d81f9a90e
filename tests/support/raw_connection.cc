#include "tests/support/raw_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sessiond/frame.h"

namespace sessiond::test {

RawConnection::RawConnection(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = fd;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool RawConnection::SendRequest(const v1::ClientRequest& request) {
  std::string frame;
  FrameOptions options;
  options.compress_threshold = 0;
  if (!AppendMessageFrame(frame, request, options).ok()) return false;
  return Send(frame);
}

bool RawConnection::ReadExactly(size_t n, std::string* out,
                                std::chrono::steady_clock::time_point deadline) {
  out->clear();
  while (out->size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[65536];
    size_t want = std::min(sizeof buf, n - out->size());
    ssize_t got = ::recv(fd_, buf, want, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out->append(buf, static_cast<size_t>(got));
  }
  return true;
}

std::optional<v1::ClientResponse> RawConnection::ReadResponse(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string header;
  if (!ReadExactly(kFrameHeaderBytes, &header, deadline)) return std::nullopt;
  uint32_t length = (uint32_t{static_cast<uint8_t>(header[0])} << 24) |
                    (uint32_t{static_cast<uint8_t>(header[1])} << 16) |
                    (uint32_t{static_cast<uint8_t>(header[2])} << 8) |
                    uint32_t{static_cast<uint8_t>(header[3])};
  if (length == 0) return std::nullopt;
  std::string body;
  if (!ReadExactly(length - 1, &body, deadline)) return std::nullopt;
  // Decode through the real decoder so compressed responses are handled too.
  FrameDecoder decoder;
  decoder.Feed(header);
  decoder.Feed(body);
  std::string payload;
  if (decoder.Next(&payload) != FrameDecoder::State::kFrame) return std::nullopt;
  v1::ClientResponse response;
  if (!response.ParseFromString(payload)) return std::nullopt;
  return response;
}

bool RawConnection::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return false;
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return true;
  }
}

}  // namespace sessiond::test
