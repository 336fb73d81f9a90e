// AsyncClient (and the blocking Client over it) against FakeDaemon: a few dozen lines that speak
// the sessiond framing on 127.0.0.1 port 0 or a Unix socket, and answer, hold, reorder or drop
// requests as each test tells it. Everything runs on io_contexts; nothing sleeps.
#include "sessiond/async_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sessiond/client.h"
#include "sessiond/frame.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using Socket = asio::generic::stream_protocol::socket;

// ---------------------------------------------------------------------------------------------
// FakeDaemon

class FakeDaemon : public std::enable_shared_from_this<FakeDaemon> {
 public:
  class Connection;
  // Called for every request; the handler answers (or not) through the connection.
  using Handler = std::function<void(Connection&, const v1::ClientRequest&)>;

  class Connection : public std::enable_shared_from_this<Connection> {
   public:
    explicit Connection(Socket socket) : socket_(std::move(socket)) {}

    void Send(const v1::ClientResponse& response) {
      ASSERT_TRUE(AppendMessageFrame(outbox_, response, {}).ok());
      Flush();
    }
    // Writes bytes as they are: several frames at once, or garbage.
    void SendRaw(const std::string& bytes) {
      outbox_ += bytes;
      Flush();
    }
    // Closes at once, or once everything queued has been written.
    void Drop(bool after_writes = false) {
      if (after_writes && (writing_ || !outbox_.empty())) {
        drop_after_writes_ = true;
        return;
      }
      boost::system::error_code ignored;
      socket_.close(ignored);
    }

    asio::awaitable<void> Serve(std::shared_ptr<FakeDaemon> daemon) {
      auto self = shared_from_this();
      FrameDecoder decoder;
      std::array<char, 4096> buffer;
      std::string payload;
      for (;;) {
        boost::system::error_code error;
        const size_t n = co_await socket_.async_read_some(
            asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, error));
        if (error) co_return;
        decoder.Feed(std::string_view(buffer.data(), n));
        while (decoder.Next(&payload) == FrameDecoder::State::kFrame) {
          v1::ClientRequest request;
          EXPECT_TRUE(request.ParseFromString(payload));
          ++daemon->requests_;
          daemon->handler_(*this, request);
          if (!socket_.is_open()) co_return;
        }
        EXPECT_TRUE(decoder.error().ok()) << decoder.error().ToString();
      }
    }

    Socket& socket() { return socket_; }

   private:
    void Flush() {
      if (writing_ || outbox_.empty() || !socket_.is_open()) return;
      writing_ = true;
      auto data = std::make_shared<std::string>(std::move(outbox_));
      outbox_.clear();
      asio::async_write(socket_, asio::buffer(*data),
                        [self = shared_from_this(), data](boost::system::error_code error, size_t) {
                          self->writing_ = false;
                          if (error) return;
                          if (self->drop_after_writes_ && self->outbox_.empty()) {
                            self->Drop();
                            return;
                          }
                          self->Flush();
                        });
    }

    Socket socket_;
    std::string outbox_;
    bool writing_ = false;
    bool drop_after_writes_ = false;
  };

  // Listens on 127.0.0.1, port 0.
  static std::shared_ptr<FakeDaemon> Tcp(asio::any_io_executor executor, Handler handler) {
    auto daemon = std::make_shared<FakeDaemon>(executor, std::move(handler));
    daemon->Listen(asio::generic::stream_protocol::endpoint(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    sockaddr_in address;
    std::memcpy(&address, daemon->acceptor_.local_endpoint().data(), sizeof(address));
    daemon->endpoint_.kind = Endpoint::Kind::kTcp;
    daemon->endpoint_.host = "127.0.0.1";
    daemon->endpoint_.port = ntohs(address.sin_port);
    return daemon;
  }

  static std::shared_ptr<FakeDaemon> Unix(asio::any_io_executor executor, std::string path,
                                          Handler handler) {
    ::unlink(path.c_str());
    auto daemon = std::make_shared<FakeDaemon>(executor, std::move(handler));
    daemon->Listen(asio::local::stream_protocol::endpoint(path));
    daemon->endpoint_.kind = Endpoint::Kind::kUnix;
    daemon->endpoint_.path = path;
    return daemon;
  }

  FakeDaemon(asio::any_io_executor executor, Handler handler)
      : acceptor_(executor), handler_(std::move(handler)) {}
  ~FakeDaemon() {
    if (endpoint_.kind == Endpoint::Kind::kUnix) ::unlink(endpoint_.path.c_str());
  }

  // Stops accepting and closes every connection.
  void Stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& weak : connections_) {
      if (auto connection = weak.lock()) connection->Drop();
    }
  }

  const Endpoint& endpoint() const { return endpoint_; }
  int accepted() const { return accepted_; }
  int requests() const { return requests_; }

 private:
  void Listen(const asio::generic::stream_protocol::endpoint& endpoint) {
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    asio::co_spawn(
        acceptor_.get_executor(), [self = shared_from_this()] { return self->AcceptLoop(); },
        asio::detached);
  }

  asio::awaitable<void> AcceptLoop() {
    for (;;) {
      Socket socket(acceptor_.get_executor());
      boost::system::error_code error;
      co_await acceptor_.async_accept(socket, asio::redirect_error(asio::use_awaitable, error));
      if (error) co_return;
      ++accepted_;
      // As a real daemon would; without it, Nagle delays a second small answer by 40 ms.
      socket.set_option(asio::ip::tcp::no_delay(true), error);  // fails harmlessly on Unix
      auto connection = std::make_shared<Connection>(std::move(socket));
      connections_.push_back(connection);
      asio::co_spawn(
          acceptor_.get_executor(),
          [connection, self = shared_from_this()] { return connection->Serve(self); },
          asio::detached);
    }
  }

  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
  Handler handler_;
  Endpoint endpoint_;
  std::vector<std::weak_ptr<Connection>> connections_;
  std::atomic<int> accepted_ = 0;
  std::atomic<int> requests_ = 0;
};

v1::ClientResponse ResponseTo(const v1::ClientRequest& request) {
  v1::ClientResponse response;
  response.set_request_id(request.request_id());
  return response;
}

// What a healthy daemon would answer: Get returns a session named after the id asked for
// ("missing" is not found), everything else OK.
v1::ClientResponse CannedAnswer(const v1::ClientRequest& request) {
  v1::ClientResponse response = ResponseTo(request);
  if (request.has_get()) {
    if (request.get().id() == "missing") {
      response.set_status(v1::NOT_FOUND);
      response.set_error("session missing not found; it expired or was invalidated");
    } else {
      response.mutable_session()->set_id(request.get().id());
      response.mutable_session()->set_version(1);
    }
  } else if (request.has_create()) {
    response.mutable_session()->set_id("created");
    *response.mutable_session()->mutable_attributes() = request.create().attributes();
  } else if (request.has_find_by_principal()) {
    response.mutable_sessions()->add_sessions()->set_id("a");
    response.mutable_sessions()->add_sessions()->set_id("b");
  } else if (request.has_stats()) {
    response.mutable_stats()->set_node_id("fake");
  }
  return response;
}

void Answer(FakeDaemon::Connection& connection, const v1::ClientRequest& request) {
  connection.Send(CannedAnswer(request));
}

v1::ClientResponse Event(uint64_t request_id, const std::string& id) {
  v1::ClientResponse response;
  response.set_request_id(request_id);
  response.mutable_event()->set_kind(v1::SessionEvent::CHANGED);
  response.mutable_event()->set_id(id);
  return response;
}

std::string Frame(const v1::ClientResponse& response) {
  std::string out;
  EXPECT_TRUE(AppendMessageFrame(out, response, {}).ok());
  return out;
}

// An endpoint nothing listens on: a port that was just bound and released.
Endpoint DeadEndpoint(asio::io_context& io) {
  asio::ip::tcp::acceptor probe(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Endpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = probe.local_endpoint().port();
  return endpoint;
}

// A listener that never accepts, with its backlog already full: Linux then drops further SYNs,
// so a connection attempt hangs until the client's connect timeout.
class BlackHole {
 public:
  explicit BlackHole(asio::io_context& io) : acceptor_(io), filler_(io) {
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen(0);  // room for one connection, which the filler takes
    filler_.connect(acceptor_.local_endpoint());
  }
  Endpoint endpoint() const {
    Endpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = acceptor_.local_endpoint().port();
    return endpoint;
  }

 private:
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::socket filler_;
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Coroutine helpers

// ASSERT_* returns, which a coroutine cannot; these co_return instead.
#define CO_ASSERT(condition)                            \
  do {                                                  \
    if (!(condition)) {                                 \
      ADD_FAILURE() << "assertion failed: " #condition; \
      co_return;                                        \
    }                                                   \
  } while (false)
#define CO_ASSERT_OK(result)                                                \
  do {                                                                      \
    if (!(result).ok()) {                                                   \
      ADD_FAILURE() << #result " failed: " << (result).status().ToString(); \
      co_return;                                                            \
    }                                                                       \
  } while (false)

// A one-shot event a test coroutine can wait for.
class Signal {
 public:
  explicit Signal(asio::any_io_executor executor)
      : timer_(executor, asio::steady_timer::time_point::max()) {}
  void Set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }
  asio::awaitable<void> Wait() {
    while (!set_) {
      boost::system::error_code ignored;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

// Runs every call at once and returns their results in order.
template <typename T>
asio::awaitable<std::vector<T>> All(std::vector<asio::awaitable<T>> calls) {
  auto executor = co_await asio::this_coro::executor;
  std::vector<std::optional<T>> results(calls.size());
  size_t remaining = calls.size();
  Signal done(executor);
  for (size_t i = 0; i < calls.size(); ++i) {
    asio::co_spawn(
        executor,
        [&, i, call = std::move(calls[i])]() mutable -> asio::awaitable<void> {
          results[i].emplace(co_await std::move(call));
          if (--remaining == 0) done.Set();
        },
        asio::detached);
  }
  if (remaining > 0) co_await done.Wait();
  std::vector<T> out;
  for (auto& result : results) out.push_back(std::move(*result));
  co_return out;
}

class AsyncClientTest : public ::testing::Test {
 protected:
  ClientOptions Options(std::vector<Endpoint> endpoints) {
    ClientOptions options;
    options.endpoints = std::move(endpoints);
    options.connect_timeout = 2s;
    options.default_deadline = 5s;
    return options;
  }

  std::shared_ptr<FakeDaemon> StartDaemon(FakeDaemon::Handler handler = Answer) {
    auto daemon = FakeDaemon::Tcp(io_.get_executor(), std::move(handler));
    daemons_.push_back(daemon);
    return daemon;
  }

  // Runs `body` on io_ until it returns. A watchdog timer fails the test rather than hang it.
  void Run(std::function<asio::awaitable<void>()> body) {
    bool finished = false;
    asio::steady_timer watchdog(io_, 20s);
    watchdog.async_wait([this](boost::system::error_code error) {
      if (error) return;
      ADD_FAILURE() << "the test did not finish within 20 s";
      io_.stop();
    });
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await body();
          finished = true;
          for (auto& daemon : daemons_) daemon->Stop();
          watchdog.cancel();
        },
        [](std::exception_ptr error) {
          if (error) std::rethrow_exception(error);
        });
    io_.run();
    EXPECT_TRUE(finished);
  }

  asio::io_context io_;
  std::vector<std::shared_ptr<FakeDaemon>> daemons_;
};

// ---------------------------------------------------------------------------------------------
// AsyncClient

TEST_F(AsyncClientTest, PingAndGetGetCannedAnswers) {
  auto daemon = StartDaemon();
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    EXPECT_EQ(client.connected_endpoint(), "");
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(client.connected_endpoint(), daemon->endpoint().ToString());

    auto session = co_await client.Get("abc", true);
    CO_ASSERT_OK(session);
    EXPECT_EQ(session->id(), "abc");

    auto sessions = co_await client.FindByPrincipal("alice");
    CO_ASSERT_OK(sessions);
    CO_ASSERT(sessions->size() == 2u);
    EXPECT_EQ((*sessions)[1].id(), "b");

    auto stats = co_await client.Stats();
    CO_ASSERT_OK(stats);
    EXPECT_EQ(stats->node_id(), "fake");

    v1::CreateRequest create;
    (*create.mutable_attributes())["cart"] = std::string(20000, 'x');  // compressed on the way
    auto created = co_await client.Create(create);
    CO_ASSERT_OK(created);
    EXPECT_EQ(created->attributes().at("cart"), std::string(20000, 'x'));

    EXPECT_EQ(daemon->accepted(), 1);
  });
}

TEST_F(AsyncClientTest, ErrorAnswersBecomeStatuses) {
  auto daemon = StartDaemon();
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    auto session = co_await client.Get("missing");
    CO_ASSERT(!(session.ok()));
    EXPECT_EQ(session.status().code(), v1::NOT_FOUND);
    EXPECT_EQ(session.status().message(),
              "session missing not found; it expired or was invalidated");

    // Call returns the response as it is, whatever its status.
    v1::ClientRequest request;
    request.mutable_get()->set_id("missing");
    auto response = co_await client.Call(request);
    CO_ASSERT_OK(response);
    EXPECT_EQ(response->status(), v1::NOT_FOUND);
    EXPECT_NE(response->request_id(), 0u);
  });
}

TEST_F(AsyncClientTest, OkAnswerWithoutItsResultIsInternal) {
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    connection.Send(ResponseTo(r));  // OK, but no session
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    auto session = co_await client.Get("abc");
    CO_ASSERT(!(session.ok()));
    EXPECT_EQ(session.status().code(), v1::INTERNAL);
  });
}

TEST_F(AsyncClientTest, HundredPipelinedCallsAreMatchedByRequestId) {
  // The daemon holds every request until it has 100, then answers them in reverse order.
  std::vector<std::pair<std::shared_ptr<FakeDaemon::Connection>, v1::ClientRequest>> held;
  auto daemon = StartDaemon([&](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    held.emplace_back(connection.shared_from_this(), r);
    if (held.size() < 100) return;
    for (auto it = held.rbegin(); it != held.rend(); ++it)
      it->first->Send(CannedAnswer(it->second));
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    std::vector<asio::awaitable<Result<v1::Session>>> calls;
    for (int i = 0; i < 100; ++i) calls.push_back(client.Get("s" + std::to_string(i)));
    auto results = co_await All(std::move(calls));
    for (int i = 0; i < 100; ++i) {
      CO_ASSERT_OK(results[i]);
      EXPECT_EQ(results[i]->id(), "s" + std::to_string(i));
    }
    EXPECT_EQ(daemon->accepted(), 1) << "all calls share one connection";
  });
}

TEST_F(AsyncClientTest, MissedDeadlineIsUnavailableAndTheLateAnswerIsDropped) {
  // "late" is held until "now" arrives; then both are answered, the late one first.
  std::shared_ptr<FakeDaemon::Connection> held_connection;
  v1::ClientRequest held;
  auto daemon = StartDaemon([&](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.get().id() == "late") {
      held_connection = connection.shared_from_this();
      held = r;
      return;
    }
    if (held_connection) held_connection->Send(CannedAnswer(held));
    connection.Send(CannedAnswer(r));
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    auto late = co_await client.Get("late", false, 50ms);
    CO_ASSERT(!(late.ok()));
    EXPECT_EQ(late.status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(late.status().message(),
                         "no answer from " + daemon->endpoint().ToString() + " within 50 ms"))
        << late.status().message();

    // The answer to "late" arrives just before this one's, and must not be taken for it.
    auto now = co_await client.Get("now");
    CO_ASSERT_OK(now);
    EXPECT_EQ(now->id(), "now");
    EXPECT_EQ(daemon->accepted(), 1) << "a missed deadline does not drop the connection";
  });
}

TEST_F(AsyncClientTest, ConnectionLossFailsCallsInFlightThenReconnects) {
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get() && r.get().id() == "drop") {
      connection.Drop();
      return;
    }
    Answer(connection, r);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    std::vector<asio::awaitable<Result<v1::Session>>> calls;
    calls.push_back(client.Get("drop"));
    auto results = co_await All(std::move(calls));
    CO_ASSERT(!(results[0].ok()));
    EXPECT_EQ(results[0].status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(results[0].status().message(), "was lost"))
        << results[0].status().message();
    EXPECT_EQ(client.connected_endpoint(), "");

    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(daemon->accepted(), 2);
  });
}

TEST_F(AsyncClientTest, EveryPendingCallFailsWhenTheConnectionBreaks) {
  // The daemon holds ten calls, then drops the connection on the eleventh.
  int seen = 0;
  auto daemon = StartDaemon([&](FakeDaemon::Connection& connection, const v1::ClientRequest&) {
    if (++seen == 11) connection.Drop();
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    std::vector<asio::awaitable<Status>> calls;
    for (int i = 0; i < 11; ++i) calls.push_back(client.Ping());
    for (const Status& status : co_await All(std::move(calls))) {
      EXPECT_EQ(status.code(), v1::UNAVAILABLE) << status.ToString();
    }
  });
}

TEST_F(AsyncClientTest, FailsOverFromADeadFirstEndpoint) {
  auto daemon = StartDaemon();
  const Endpoint dead = DeadEndpoint(io_);
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({dead, daemon->endpoint()}));
    EXPECT_TRUE((co_await client.Connect()).ok());
    EXPECT_EQ(client.connected_endpoint(), daemon->endpoint().ToString());
    EXPECT_TRUE((co_await client.Ping()).ok());
  });
}

TEST_F(AsyncClientTest, FailsOverToTheNextEndpointWhenTheConnectionIsLost) {
  const auto drop_on_get = [](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get()) return connection.Drop();
    Answer(connection, r);
  };
  auto first = StartDaemon(drop_on_get);
  auto second = StartDaemon(drop_on_get);
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({first->endpoint(), second->endpoint()}));
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(client.connected_endpoint(), first->endpoint().ToString());

    EXPECT_EQ((co_await client.Get("x")).status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(client.connected_endpoint(), second->endpoint().ToString());

    // And back again: the list wraps around.
    EXPECT_EQ((co_await client.Get("x")).status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(client.connected_endpoint(), first->endpoint().ToString());
    EXPECT_EQ(first->accepted(), 2);
    EXPECT_EQ(second->accepted(), 1);
  });
}

TEST_F(AsyncClientTest, NoEndpointAcceptingIsUnavailableNamingEachEndpoint) {
  const Endpoint dead1 = DeadEndpoint(io_);
  const Endpoint dead2 = DeadEndpoint(io_);
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({dead1, dead2}));
    const Status status = co_await client.Ping();
    EXPECT_EQ(status.code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(status.message(), dead1.ToString())) << status.message();
    EXPECT_TRUE(Contains(status.message(), dead2.ToString())) << status.message();

    // Concurrent callers share one connection attempt, and all see it fail.
    std::vector<asio::awaitable<Status>> calls;
    for (int i = 0; i < 5; ++i) calls.push_back(client.Ping());
    for (const Status& each : co_await All(std::move(calls))) {
      EXPECT_EQ(each.code(), v1::UNAVAILABLE);
    }
  });
}

TEST_F(AsyncClientTest, ConnectTimesOutAndFailsOverToTheNextEndpoint) {
  BlackHole hole(io_);
  auto daemon = StartDaemon();
  Run([&]() -> asio::awaitable<void> {
    ClientOptions options = Options({hole.endpoint(), daemon->endpoint()});
    options.connect_timeout = 100ms;
    AsyncClient client(io_.get_executor(), options);
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(client.connected_endpoint(), daemon->endpoint().ToString());
  });
}

TEST_F(AsyncClientTest, ConnectTimeoutIsReported) {
  BlackHole hole(io_);
  Run([&]() -> asio::awaitable<void> {
    ClientOptions options = Options({hole.endpoint()});
    options.connect_timeout = 100ms;
    AsyncClient client(io_.get_executor(), options);
    const Status status = co_await client.Connect();
    EXPECT_EQ(status.code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(status.message(),
                         hole.endpoint().ToString() + " did not accept a connection within 100 ms"))
        << status.message();
  });
}

TEST_F(AsyncClientTest, CallDeadlineBoundsTheWaitForAConnection) {
  BlackHole hole(io_);
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({hole.endpoint()}));  // 2 s connect timeout
    const Status status = co_await client.Ping(50ms);
    EXPECT_EQ(status.code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(status.message(), "within 50 ms")) << status.message();
    // The client goes away with its connection attempt still in progress.
  });
}

TEST_F(AsyncClientTest, NoEndpointsIsInvalidArgument) {
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({}));
    EXPECT_EQ((co_await client.Ping()).code(), v1::INVALID_ARGUMENT);
  });
}

TEST_F(AsyncClientTest, ConnectsOverAUnixSocket) {
  const std::string path =
      ::testing::TempDir() + "sessiond-client-test-" + std::to_string(::getpid()) + ".sock";
  auto daemon = FakeDaemon::Unix(io_.get_executor(), path, Answer);
  daemons_.push_back(daemon);
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    auto session = co_await client.Get("over-unix");
    CO_ASSERT_OK(session);
    EXPECT_EQ(session->id(), "over-unix");
    EXPECT_EQ(client.connected_endpoint(), "unix:" + path);
  });
}

TEST_F(AsyncClientTest, WatchReceivesPushedEventsUntilTheConnectionCloses) {
  std::shared_ptr<FakeDaemon::Connection> watcher;
  uint64_t watch_id = 0;
  auto daemon = StartDaemon([&](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_watch()) {
      EXPECT_EQ(r.watch().ids_size(), 2);
      watcher = connection.shared_from_this();
      watch_id = r.request_id();
      // The OK and the first events in one write: none may be lost to the race between the
      // answer and the caller resuming.
      connection.SendRaw(Frame(ResponseTo(r)) + Frame(Event(watch_id, "a")) +
                         Frame(Event(watch_id, "b")));
      return;
    }
    if (r.has_get() && r.get().id() == "push") {
      connection.Send(Event(watch_id, "c"));
      connection.Send(CannedAnswer(r));
      return;
    }
    if (r.has_get() && r.get().id() == "close") return connection.Drop();
    Answer(connection, r);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    std::vector<std::string> events;
    std::optional<Status> ended;
    Signal end_signal(io_.get_executor());
    // A named vector: GCC 12 miscompiles a braced list of literals inside a co_await.
    std::vector<std::string> ids = {"a", "b"};
    auto id = co_await client.Watch(
        ids, [&](const v1::SessionEvent& event) { events.push_back(event.id()); },
        [&](const Status& reason) {
          ended = reason;
          end_signal.Set();
        });
    CO_ASSERT_OK(id);
    EXPECT_EQ(*id, watch_id);

    // The answer to "push" comes after event "c" on the same stream.
    EXPECT_TRUE((co_await client.Get("push")).ok());
    EXPECT_EQ(events, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_FALSE(ended.has_value());

    EXPECT_EQ((co_await client.Get("close")).status().code(), v1::UNAVAILABLE);
    co_await end_signal.Wait();
    CO_ASSERT(ended.has_value());
    EXPECT_EQ(ended->code(), v1::UNAVAILABLE);
  });
}

TEST_F(AsyncClientTest, CancelledWatchGetsNoMoreEvents) {
  uint64_t watch_id = 0;
  auto daemon = StartDaemon([&](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_watch()) watch_id = r.request_id();
    if (r.has_get()) connection.Send(Event(watch_id, "after-cancel"));
    Answer(connection, r);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    int events = 0;
    int ends = 0;
    auto id = co_await client.Watch(
        {}, [&](const v1::SessionEvent&) { ++events; }, [&](const Status&) { ++ends; });
    CO_ASSERT_OK(id);
    client.CancelWatch(*id);
    EXPECT_TRUE((co_await client.Get("x")).ok());
    EXPECT_EQ(events, 0);
    client.Close();
    EXPECT_EQ(ends, 0) << "a cancelled watch does not end again";
  });
}

TEST_F(AsyncClientTest, RefusedWatchReturnsTheDaemonsStatus) {
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    v1::ClientResponse response = ResponseTo(r);
    response.set_status(v1::INVALID_ARGUMENT);
    response.set_error("too many ids in one watch; watch at most 1000");
    connection.Send(response);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    std::vector<std::string> ids = {"a"};
    auto id = co_await client.Watch(ids, [](const v1::SessionEvent&) {});
    CO_ASSERT(!(id.ok()));
    EXPECT_EQ(id.status().code(), v1::INVALID_ARGUMENT);
  });
}

TEST_F(AsyncClientTest, MalformedFrameFromTheDaemonClosesTheConnection) {
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get()) return connection.SendRaw(std::string("\0\0\0\x02\x40x", 6));  // bad flags
    Answer(connection, r);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    const auto session = co_await client.Get("x");
    EXPECT_EQ(session.status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(session.status().message(), "malformed frame"))
        << session.status().message();
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(daemon->accepted(), 2);
  });
}

TEST_F(AsyncClientTest, TheDaemonsLastWordsReachTheCallers) {
  // A daemon that refuses a connection answers with request_id 0, then closes.
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest&) {
    v1::ClientResponse response;
    response.set_status(v1::RESOURCE_EXHAUSTED);
    response.set_error("too many connections (limit 1); raise --max-connections");
    connection.Send(response);
    connection.Drop(/*after_writes=*/true);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    const Status status = co_await client.Ping();
    EXPECT_EQ(status.code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(status.message(), "too many connections")) << status.message();
  });
}

TEST_F(AsyncClientTest, RequestOverTheFrameLimitIsTooLargeAndNotSent) {
  auto daemon = StartDaemon();
  Run([&]() -> asio::awaitable<void> {
    ClientOptions options = Options({daemon->endpoint()});
    options.frames.max_frame_bytes = 1000;
    options.frames.compress_threshold = 0;
    AsyncClient client(io_.get_executor(), options);
    v1::CreateRequest create;
    (*create.mutable_attributes())["big"] = std::string(2000, 'x');
    EXPECT_EQ((co_await client.Create(create)).status().code(), v1::TOO_LARGE);
    EXPECT_TRUE((co_await client.Ping()).ok()) << "the connection is still usable";
    EXPECT_EQ(daemon->requests(), 1);
  });
}

TEST_F(AsyncClientTest, CloseFailsCallsInFlightAndTheNextCallReconnects) {
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get()) return;  // held forever
    Answer(connection, r);
  });
  Run([&]() -> asio::awaitable<void> {
    AsyncClient client(io_.get_executor(), Options({daemon->endpoint()}));
    EXPECT_TRUE((co_await client.Connect()).ok());
    std::optional<Result<v1::Session>> held;
    Signal done(io_.get_executor());
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          held.emplace(co_await client.Get("held"));
          done.Set();
        },
        asio::detached);
    // Ping is answered only after the daemon has read the Get before it, so Get is in flight.
    EXPECT_TRUE((co_await client.Ping()).ok());
    client.Close();
    co_await done.Wait();
    EXPECT_EQ(held->status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE((co_await client.Ping()).ok());
    EXPECT_EQ(daemon->accepted(), 2);
  });
}

TEST_F(AsyncClientTest, DestroyingTheClientWithCallsSuspendedIsSafe) {
  auto daemon = StartDaemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get()) return;  // held forever
    Answer(connection, r);
  });
  Run([&]() -> asio::awaitable<void> {
    auto client = std::make_unique<AsyncClient>(io_.get_executor(), Options({daemon->endpoint()}));
    int ends = 0;
    EXPECT_TRUE((co_await client->Watch(
                     {}, [](const v1::SessionEvent&) {}, [&](const Status&) { ++ends; }))
                    .ok());
    std::optional<Result<v1::Session>> held;
    Signal done(io_.get_executor());
    asio::co_spawn(
        io_,
        [&, call = client->Get("held")]() mutable -> asio::awaitable<void> {
          held.emplace(co_await std::move(call));
          done.Set();
        },
        asio::detached);
    EXPECT_TRUE((co_await client->Ping()).ok());
    client.reset();
    co_await done.Wait();
    EXPECT_EQ(held->status().code(), v1::UNAVAILABLE);
    EXPECT_EQ(ends, 1);
  });
}

TEST_F(AsyncClientTest, ClientDestroyedBeforeItsCallStartsIsSafe) {
  auto daemon = StartDaemon();
  Run([&]() -> asio::awaitable<void> {
    auto client = std::make_unique<AsyncClient>(io_.get_executor(), Options({daemon->endpoint()}));
    auto call = client->Ping();  // not started yet
    client.reset();
    EXPECT_EQ((co_await std::move(call)).code(), v1::UNAVAILABLE);
  });
}

// ---------------------------------------------------------------------------------------------
// Client: the blocking API, with FakeDaemon on a thread of its own.

class DaemonThread {
 public:
  explicit DaemonThread(FakeDaemon::Handler handler)
      : work_(io_.get_executor()),
        daemon_(FakeDaemon::Tcp(io_.get_executor(), std::move(handler))),
        thread_([this] { io_.run(); }) {}
  ~DaemonThread() {
    asio::post(io_, [this] { daemon_->Stop(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  const Endpoint& endpoint() const { return daemon_->endpoint(); }
  const FakeDaemon& daemon() const { return *daemon_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::shared_ptr<FakeDaemon> daemon_;
  std::thread thread_;
};

ClientOptions OptionsFor(const Endpoint& endpoint) {
  ClientOptions options;
  options.endpoints = {endpoint};
  options.connect_timeout = 2s;
  options.default_deadline = 10s;
  return options;
}

TEST(ClientTest, ConnectFailsWhenNoEndpointAccepts) {
  asio::io_context io;
  auto client = Client::Connect(OptionsFor(DeadEndpoint(io)));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), v1::UNAVAILABLE);
}

TEST(ClientTest, ManyThreadsShareOneConnection) {
  DaemonThread daemon(Answer);
  auto client = Client::Connect(OptionsFor(daemon.endpoint()));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches = 0;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        auto session = (*client)->Get(id);
        if (!session.ok() || session->id() != id) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(daemon.daemon().accepted(), 1);
  EXPECT_EQ((*client)->Get("missing").status().code(), v1::NOT_FOUND);
}

TEST(ClientTest, WatchStreamDeliversEventsInOrder) {
  DaemonThread daemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    Answer(connection, r);
    if (r.has_watch()) {
      for (int i = 0; i < 10; ++i) connection.Send(Event(r.request_id(), std::to_string(i)));
    }
  });
  auto client = Client::Connect(OptionsFor(daemon.endpoint()));
  ASSERT_TRUE(client.ok());
  auto stream = (*client)->Watch({});
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  for (int i = 0; i < 10; ++i) {
    auto event = (*stream)->Next(10s);
    ASSERT_TRUE(event.ok()) << event.status().ToString();
    EXPECT_EQ(event->id(), std::to_string(i));
  }
  // Nothing more: the stream times out but stays open.
  auto none = (*stream)->Next(1ms);
  EXPECT_EQ(none.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(none.status().message(), "still open")) << none.status().message();
}

TEST(ClientTest, WatchStreamThatFallsBehindEndsInsteadOfDroppingEvents) {
  constexpr int kCapacity = 4096;  // client.cc's kWatchQueueCapacity
  DaemonThread daemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    Answer(connection, r);
    if (r.has_watch()) {
      for (int i = 0; i < kCapacity + 10; ++i) {
        connection.Send(Event(r.request_id(), std::to_string(i)));
      }
    }
  });
  auto client = Client::Connect(OptionsFor(daemon.endpoint()));
  ASSERT_TRUE(client.ok());
  auto stream = (*client)->Watch({});
  ASSERT_TRUE(stream.ok());
  // The events were sent before this Ping's answer, so by its return all have been handled.
  ASSERT_TRUE((*client)->Ping().ok());
  for (int i = 0; i < kCapacity; ++i) {
    auto event = (*stream)->Next(10s);
    ASSERT_TRUE(event.ok()) << i << ": " << event.status().ToString();
    ASSERT_EQ(event->id(), std::to_string(i));
  }
  auto end = (*stream)->Next(10s);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.status().code(), v1::UNAVAILABLE);
  EXPECT_EQ(end.status().message(),
            "watch fell behind by 4097 events; read faster or watch fewer ids");
}

TEST(ClientTest, WatchStreamEndsWhenTheConnectionIsLost) {
  DaemonThread daemon([](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get()) return connection.Drop();
    Answer(connection, r);
  });
  auto client = Client::Connect(OptionsFor(daemon.endpoint()));
  ASSERT_TRUE(client.ok());
  auto stream = (*client)->Watch({"a"});
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ((*client)->Get("a").status().code(), v1::UNAVAILABLE);
  auto end = (*stream)->Next(10s);
  EXPECT_EQ(end.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(end.status().message(), "was lost")) << end.status().message();
}

TEST(ClientTest, DestructionWithACallOutstandingEndsIt) {
  std::promise<void> received;
  DaemonThread daemon([&](FakeDaemon::Connection& connection, const v1::ClientRequest& r) {
    if (r.has_get()) return received.set_value();  // held forever
    Answer(connection, r);
  });
  auto client = Client::Connect(OptionsFor(daemon.endpoint()));
  ASSERT_TRUE(client.ok());
  auto stream = (*client)->Watch({});
  ASSERT_TRUE(stream.ok());
  std::optional<Status> outcome;
  std::thread caller([&] { outcome = (*client)->Get("held").status(); });
  received.get_future().wait();
  client.value().reset();
  caller.join();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->code(), v1::UNAVAILABLE);
  // The stream outlives its client and reports why it ended.
  EXPECT_EQ((*stream)->Next(10s).status().code(), v1::UNAVAILABLE);
}

}  // namespace
}  // namespace sessiond
