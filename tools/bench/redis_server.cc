#include "tools/bench/redis_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "tools/bench/free_port.h"

namespace sessiond::bench {
namespace {

// Waits for `fd` to be ready for `events` until `until`; false on timeout or error.
bool WaitFor(int fd, short events, std::chrono::steady_clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) == 1 && (p.revents & events);
}

}  // namespace

bool RedisServer::Ping(uint16_t port, std::chrono::milliseconds timeout) {
  // An inline command over a plain socket: this is a readiness probe, not a Redis client.
  const auto until = std::chrono::steady_clock::now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc == 0 || (errno == EINPROGRESS && WaitFor(fd, POLLOUT, until))) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    static constexpr char kPing[] = "PING\r\n";
    if (err == 0 && ::send(fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) == sizeof kPing - 1) {
      std::string reply;
      char buffer[64];
      while (reply.find("\r\n") == std::string::npos && WaitFor(fd, POLLIN, until)) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        reply.append(buffer, static_cast<size_t>(n));
      }
      ok = reply.rfind("+PONG", 0) == 0;  // "-LOADING ..." means not yet
    }
  }
  ::close(fd);
  return ok;
}

Result<std::unique_ptr<RedisServer>> RedisServer::Start(const RedisServerOptions& options) {
  Result<std::vector<uint16_t>> ports = PickFreePorts(1);
  if (!ports.ok()) return ports.status();
  const uint16_t port = ports->front();
  const std::vector<std::string> argv = {options.binary,
                                         "--port",
                                         std::to_string(port),
                                         "--bind",
                                         "127.0.0.1",
                                         "--save",
                                         "",
                                         "--appendonly",
                                         "no",
                                         "--dir",
                                         options.dir,
                                         "--protected-mode",
                                         "no",
                                         "--notify-keyspace-events",
                                         "Ex",
                                         "--daemonize",
                                         "no",
                                         "--logfile",
                                         ""};  // "" = stdout, which goes to our log file
  Result<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Spawn(argv, options.dir + "/redis.log");
  if (!child.ok()) return child.status();
  std::unique_ptr<ChildProcess> process = std::move(*child);
  const auto until = std::chrono::steady_clock::now() + options.start_timeout;
  while (!Ping(port, std::chrono::milliseconds(200))) {
    if (!process->Running()) {
      return Unavailable("redis-server " + *process->ExitDescription() + ": " + process->LogTail() +
                         " (is redis-server installed? apt-get install "
                         "redis-server)");
    }
    if (std::chrono::steady_clock::now() >= until) {
      return Unavailable("redis-server on port " + std::to_string(port) +
                         " did not answer PING in time: " + process->LogTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::unique_ptr<RedisServer>(new RedisServer(std::move(process), port));
}

RedisServer::~RedisServer() { process_->Stop(std::chrono::milliseconds(2000)); }

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

}  // namespace sessiond::bench
