// DelayProxy and LinkSchedule, with a real echo server and real sockets on 127.0.0.1.
//
// Time assertions are lower bounds only ("at least the configured delay"): a loaded machine may
// be slower, never faster. Waits on sockets have generous deadlines so a bug fails the test rather
// than hanging it.
#include "tools/bench/delay_proxy.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "sessiond/asio.h"
#include "tools/bench/link_schedule.h"

namespace sessiond::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

// ---- LinkSchedule: pure arithmetic ----

TEST(LinkScheduleTest, AddsTheDelayToEveryChunk) {
  LinkSchedule schedule(LinkShape{.delay = 500us}, 1);
  const Clock::time_point t0{1s};
  EXPECT_EQ(schedule.Release(t0, 100), t0 + 500us);
  EXPECT_EQ(schedule.Release(t0 + 1ms, 100), t0 + 1ms + 500us);
}

TEST(LinkScheduleTest, JitterNeverReordersChunks) {
  LinkSchedule schedule(LinkShape{.delay = 1ms, .jitter = 900us}, 42);
  Clock::time_point now{1s};
  Clock::time_point previous{};
  bool saw_spread = false;
  for (int i = 0; i < 10'000; ++i) {
    now += 10us;
    const auto release = schedule.Release(now, 10);
    EXPECT_GE(release, previous);
    EXPECT_GE(release, now + 100us);  // delay - jitter
    if (release > now + 1500us) saw_spread = true;
    previous = release;
  }
  EXPECT_TRUE(saw_spread) << "jitter should spread releases above the base delay";
}

TEST(LinkScheduleTest, BandwidthCapSerializesChunks) {
  // 1 MB/s: a 1000-byte chunk takes 1 ms on the wire; three sent at once leave 1, 2, 3 ms later.
  LinkSchedule schedule(LinkShape{.delay = 0us, .bandwidth_bytes_per_s = 1'000'000}, 1);
  const Clock::time_point t0{1s};
  EXPECT_EQ(schedule.Release(t0, 1000), t0 + 1ms);
  EXPECT_EQ(schedule.Release(t0, 1000), t0 + 2ms);
  EXPECT_EQ(schedule.Release(t0, 1000), t0 + 3ms);
  // An idle link starts afresh.
  EXPECT_EQ(schedule.Release(t0 + 10ms, 1000), t0 + 11ms);
}

// ---- DelayProxy over real sockets ----

// An echo server and the proxies under test share one io_context run by one thread.
class DelayProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    acceptor_.listen();
    asio::co_spawn(io_, EchoAccept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    proxy_.reset();  // stops it on the loop, which still runs
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  std::unique_ptr<DelayProxy>& StartProxy(DelayProxyOptions options) {
    options.target = acceptor_.local_endpoint();
    auto proxy = DelayProxy::Create(io_, options);
    EXPECT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxy_ = std::move(*proxy);
    return proxy_;
  }

  asio::awaitable<void> EchoAccept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(io_, Echo(std::move(socket)), asio::detached);
    }
  }

  static asio::awaitable<void> Echo(tcp::socket socket) {
    char data[16384];
    for (;;) {
      boost::system::error_code ec;
      size_t n = co_await socket.async_read_some(asio::buffer(data),
                                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      co_await asio::async_write(socket, asio::buffer(data, n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  std::unique_ptr<DelayProxy> proxy_;
};

// A plain blocking client socket with poll()-based deadlines, independent of the code under test.
class TestClient {
 public:
  explicit TestClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~TestClient() { ::close(fd_); }

  bool connected() const { return connected_; }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  bool SendAll(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  enum class Outcome { kData, kClosed, kTimeout };
  // Reads exactly `n` bytes into *out unless the peer closes/resets or `deadline` passes first.
  Outcome Receive(size_t n, std::string* out, std::chrono::milliseconds deadline) {
    out->clear();
    const auto until = Clock::now() + deadline;
    char buffer[65536];
    while (out->size() < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return Outcome::kTimeout;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) == 0) return Outcome::kTimeout;
      ssize_t got = ::recv(fd_, buffer, std::min(sizeof buffer, n - out->size()), 0);
      if (got <= 0) return Outcome::kClosed;
      out->append(buffer, static_cast<size_t>(got));
    }
    return Outcome::kData;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

TEST_F(DelayProxyTest, ForwardsEveryByteInOrderDespiteJitter) {
  auto& proxy = StartProxy(DelayProxyOptions{
      .to_target = LinkShape{.delay = 1ms, .jitter = 1ms},
      .to_client = LinkShape{.delay = 1ms, .jitter = 1ms},
      .read_chunk_bytes = 1000,  // many chunks, each with its own jitter sample
  });
  TestClient client(proxy->port());
  ASSERT_TRUE(client.connected());
  const std::string sent = Pattern(1 << 20);
  std::thread writer([&] { EXPECT_TRUE(client.SendAll(sent)); });
  std::string echoed;
  EXPECT_EQ(client.Receive(sent.size(), &echoed, 30s), TestClient::Outcome::kData);
  writer.join();
  EXPECT_TRUE(echoed == sent) << "bytes changed or reordered on the way";
  EXPECT_EQ(proxy->bytes_to_target(), sent.size());
  EXPECT_EQ(proxy->connections_accepted(), 1u);
}

TEST_F(DelayProxyTest, RoundTripTakesAtLeastTheDelayOfBothDirections) {
  auto& proxy = StartProxy(DelayProxyOptions{
      .to_target = LinkShape{.delay = 20ms},
      .to_client = LinkShape{.delay = 15ms},
  });
  TestClient client(proxy->port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    ASSERT_TRUE(client.SendAll("ping"));
    std::string reply;
    ASSERT_EQ(client.Receive(4, &reply, 10s), TestClient::Outcome::kData);
    EXPECT_EQ(reply, "ping");
    EXPECT_GE(Clock::now() - start, 35ms) << "round trip " << i;
  }
}

TEST_F(DelayProxyTest, BandwidthCapSlowsABulkTransfer) {
  // 200 KB at 1 MB/s towards the target cannot arrive in less than 200 ms.
  auto& proxy = StartProxy(DelayProxyOptions{
      .to_target = LinkShape{.bandwidth_bytes_per_s = 1'000'000},
  });
  TestClient client(proxy->port());
  ASSERT_TRUE(client.connected());
  const std::string sent = Pattern(200'000);
  const auto start = Clock::now();
  std::thread writer([&] { EXPECT_TRUE(client.SendAll(sent)); });
  std::string echoed;
  EXPECT_EQ(client.Receive(sent.size(), &echoed, 30s), TestClient::Outcome::kData);
  writer.join();
  EXPECT_GE(Clock::now() - start, 200ms);
  EXPECT_TRUE(echoed == sent);
}

TEST_F(DelayProxyTest, CutBreaksOpenConnectionsAndRefusesNewOnesUntilRestore) {
  auto& proxy = StartProxy(DelayProxyOptions{});
  TestClient before(proxy->port());
  ASSERT_TRUE(before.connected());
  std::string reply;
  ASSERT_TRUE(before.SendAll("hello"));
  ASSERT_EQ(before.Receive(5, &reply, 10s), TestClient::Outcome::kData);

  proxy->Cut();
  // The open connection is gone: the next read sees the end (reset), not a timeout.
  EXPECT_EQ(before.Receive(1, &reply, 10s), TestClient::Outcome::kClosed);

  // A new one is reset at once; whatever it sends is never echoed.
  TestClient during(proxy->port());
  during.SendAll("lost");
  EXPECT_EQ(during.Receive(4, &reply, 10s), TestClient::Outcome::kClosed);

  proxy->Restore();
  TestClient after(proxy->port());
  ASSERT_TRUE(after.connected());
  ASSERT_TRUE(after.SendAll("again"));
  EXPECT_EQ(after.Receive(5, &reply, 10s), TestClient::Outcome::kData);
  EXPECT_EQ(reply, "again");
}

TEST_F(DelayProxyTest, BlackholeCutSwallowsNewConnectionsSilently) {
  auto& proxy = StartProxy(DelayProxyOptions{
      .cut_mode = DelayProxyOptions::CutMode::kBlackhole,
  });
  proxy->Cut();
  TestClient during(proxy->port());
  ASSERT_TRUE(during.connected());  // the handshake completes, as a partitioned path's may not
  ASSERT_TRUE(during.SendAll("anyone?"));
  std::string reply;
  // Nothing comes back and nothing closes: the sender only learns by its own timeout.
  EXPECT_EQ(during.Receive(1, &reply, 300ms), TestClient::Outcome::kTimeout);

  proxy->Restore();
  // Restore ends the swallowed connection; new ones are forwarded again.
  EXPECT_EQ(during.Receive(1, &reply, 10s), TestClient::Outcome::kClosed);
  TestClient after(proxy->port());
  ASSERT_TRUE(after.SendAll("back"));
  EXPECT_EQ(after.Receive(4, &reply, 10s), TestClient::Outcome::kData);
}

TEST_F(DelayProxyTest, HalfCloseIsForwardedAfterTheData) {
  auto& proxy = StartProxy(DelayProxyOptions{.to_target = LinkShape{.delay = 5ms}});
  TestClient client(proxy->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.SendAll("last words"));
  client.ShutdownWrite();
  // The end must not overtake the delayed data: the echo server answers, then sees the end and
  // closes, and the client gets both, in that order.
  std::string reply;
  EXPECT_EQ(client.Receive(10, &reply, 10s), TestClient::Outcome::kData);
  EXPECT_EQ(reply, "last words");
  EXPECT_EQ(client.Receive(1, &reply, 10s), TestClient::Outcome::kClosed);
}

TEST_F(DelayProxyTest, StopClosesConnections) {
  auto& proxy = StartProxy(DelayProxyOptions{});
  TestClient client(proxy->port());
  ASSERT_TRUE(client.SendAll("x"));
  std::string reply;
  ASSERT_EQ(client.Receive(1, &reply, 10s), TestClient::Outcome::kData);
  EXPECT_EQ(proxy->connections_open(), 1u);
  proxy->Stop();
  EXPECT_EQ(client.Receive(1, &reply, 10s), TestClient::Outcome::kClosed);
  EXPECT_EQ(proxy->connections_open(), 0u);
}

TEST_F(DelayProxyTest, CreateFailsOnAPortInUse) {
  auto& first = StartProxy(DelayProxyOptions{});
  DelayProxyOptions options;
  options.target = acceptor_.local_endpoint();
  options.listen_port = first->port();
  // SO_REUSEADDR does not let two listeners share a port on Linux.
  auto second = DelayProxy::Create(io_, options);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), v1::UNAVAILABLE);
}

}  // namespace
}  // namespace sessiond::bench
