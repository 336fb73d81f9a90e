// TLS to Redis (rediss://) against a real redis-server with a TLS port and a throwaway PKI made
// by RedisProcess::StartTls: the client (RedisConnection, RedisManager with its subscriber and
// near cache), and whole daemons driven through the client library. Each failure a user can
// cause (a wrong CA, a certificate naming another host, a missing client certificate, the wrong
// port) must answer UNAVAILABLE with a sentence naming the cause, and leave the node running
// and retrying.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "replication/clock.h"
#include "replication/redis/redis_command.h"
#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_manager.h"
#include "replication/redis/redis_pool.h"
#include "replication/redis/redis_tls_context.h"
#include "replication/redis/redis_url.h"
#include "replication/session_id.h"
#include "sessiond/asio.h"
#include "sessiond/client.h"
#include "tests/support/daemon_process.h"
#include "tests/support/redis_process.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using test::DaemonProcess;
using test::RedisProcess;
using test::RedisTlsSetup;

template <typename T>
asio::awaitable<void> StoreResult(asio::awaitable<T> op, std::optional<T>* out) {
  out->emplace(co_await std::move(op));
}

asio::awaitable<void> MarkDone(asio::awaitable<void> op, bool* done) {
  co_await std::move(op);
  *done = true;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class RedisTlsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Boost 1.74 aborts when an io_context goes with coroutine completions still queued.
    for (auto& c : connections_) c->Close(Unavailable("the test is over"));
    connections_.clear();
    io_.restart();
    io_.run_for(200ms);
  }

  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(deadline - now);
    }
    return true;
  }

  template <typename T>
  T Await(asio::awaitable<T> op) {
    std::optional<T> out;
    asio::co_spawn(io_, StoreResult(std::move(op), &out), asio::detached);
    if (!RunUntil([&] { return out.has_value(); }, 30s)) {
      throw std::runtime_error("the operation did not complete within 30 s");
    }
    return std::move(*out);
  }

  void AwaitVoid(asio::awaitable<void> op) {
    bool done = false;
    asio::co_spawn(io_, MarkDone(std::move(op), &done), asio::detached);
    ASSERT_TRUE(RunUntil([&] { return done; }, 30s));
  }

  static std::shared_ptr<RedisTlsContext> Tls(RedisTlsOptions options) {
    Result<std::shared_ptr<RedisTlsContext>> made = RedisTlsContext::Create(std::move(options));
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? *made : nullptr;
  }

  // Connects to `url` with `tls`; keeps the connection for TearDown.
  Result<std::shared_ptr<RedisConnection>> Connect(const std::string& url,
                                                   std::shared_ptr<RedisTlsContext> tls,
                                                   std::chrono::milliseconds timeout = 3s) {
    Result<RedisUrl> parsed = RedisUrl::Parse(url);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    RedisConnectionOptions options;
    options.tls = std::move(tls);
    options.connect_timeout = timeout;
    Result<std::shared_ptr<RedisConnection>> c =
        Await(RedisConnection::Connect(io_.get_executor(), *parsed, options));
    if (c.ok()) connections_.push_back(*c);
    return c;
  }

  RedisOptions ManagerRedisOptions(const std::string& url, RedisTlsOptions tls) {
    RedisOptions options;
    options.url = RedisUrl::Parse(url).value();
    options.tls = std::move(tls);
    options.connections = 2;
    options.backoff_initial = 20ms;
    options.backoff_max = 200ms;
    options.ping_interval = 200ms;
    return options;
  }

  std::unique_ptr<RedisManager> Manager(const std::string& node_id, RedisOptions redis) {
    ManagerOptions manager;
    manager.node_id = node_id;
    manager.limits = limits_;
    manager.clock = &clock_;
    manager.ids = &ids_;
    return std::make_unique<RedisManager>(io_.get_executor(), manager, std::move(redis));
  }

  asio::io_context io_;
  SystemClock clock_;
  RandomIdGenerator ids_;
  SessionLimits limits_;
  std::vector<std::shared_ptr<RedisConnection>> connections_;
};

TEST_F(RedisTlsTest, AConnectionRoundTripsCommandsOverTls) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  auto tls = Tls({redis.pki().ca_cert, "", ""});
  // By address (the certificate names IP:127.0.0.1) and by name (DNS:localhost, sent as SNI).
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    Result<std::shared_ptr<RedisConnection>> c = Connect(redis.tls_url(0, host), tls);
    ASSERT_TRUE(c.ok()) << host << ": " << c.status().ToString() << "\n" << redis.LogTail();
    std::shared_ptr<RedisConnection> connection = *c;

    // Pipelined: 300 commands in flight, each gets its own reply, over one TLS stream.
    constexpr int kCommands = 300;
    std::vector<std::optional<Result<RedisReply>>> replies(kCommands);
    for (int i = 0; i < kCommands; ++i) {
      asio::co_spawn(
          io_,
          StoreResult(connection->Execute(RedisCommand{"INCR", "counter:" + host}), &replies[i]),
          asio::detached);
    }
    ASSERT_TRUE(RunUntil([&] { return replies.back().has_value(); }));
    for (int i = 0; i < kCommands; ++i) {
      ASSERT_TRUE(replies[i] && replies[i]->ok());
      EXPECT_EQ((*replies[i])->integer(), i + 1);
    }
    // A value larger than a TLS record (16 KiB), binary-safe.
    std::string big(100'000, 'x');
    big[7] = '\0';
    big[50'000] = '\n';
    ASSERT_TRUE(Await(connection->Execute(RedisCommand{"SET", "big", big}))->IsText("OK"));
    EXPECT_EQ(Await(connection->Execute(RedisCommand{"GET", "big"}))->text(), big);
  }
  // The same data is on the plain port: it is one Redis.
  Result<std::shared_ptr<RedisConnection>> plain = Connect(redis.url(), nullptr);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(Await((*plain)->Execute(RedisCommand{"GET", "counter:localhost"}))->text(), "300");
}

TEST_F(RedisTlsTest, AManagerServesAndHearsEventsOverTls) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  RedisOptions options = ManagerRedisOptions(redis.tls_url(), {redis.pki().ca_cert, "", ""});
  options.near_cache = RedisNearCacheMode::kValidated;  // the tracked connection too
  std::unique_ptr<RedisManager> m1 = Manager("n1", options);
  std::unique_ptr<RedisManager> m2 = Manager("n2", options);
  ASSERT_TRUE(Await(m1->Start()).ok());
  ASSERT_TRUE(Await(m2->Start()).ok());
  ASSERT_TRUE(RunUntil([&] { return m1->Ready().ready && m2->Ready().ready; }))
      << m1->Ready().detail << " / " << m2->Ready().detail;

  std::vector<v1::SessionEvent> seen;
  AwaitVoid(m2->PrepareWatch());  // as the daemon does before a watch
  auto watch = m2->Watch({}, [&](const v1::SessionEvent& e) { seen.push_back(e); });
  v1::CreateRequest create;
  create.set_max_idle_s(60);
  (*create.mutable_attributes())["cart"] = "3 books";
  Result<v1::Session> created = Await(m1->Create(create));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  v1::GetRequest get;
  get.set_id(created->id());
  for (int i = 0; i < 2; ++i) {  // the second read may come from the near cache
    Result<v1::Session> got = Await(m2->Get(get));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->attributes().at("cart"), "3 books");
  }
  ASSERT_TRUE(RunUntil([&] { return !seen.empty(); })) << "no event through the TLS subscriber";
  EXPECT_EQ(seen[0].kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(seen[0].id(), created->id());
  const auto counters = m2->Stats().counters();
  EXPECT_GE(counters.at("redis_subscriptions"), 1u);
  watch.reset();
  AwaitVoid(m1->Stop());
  AwaitVoid(m2->Stop());
}

TEST_F(RedisTlsTest, AWrongCaIsRefusedWithASentenceNamingIt) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  Result<std::shared_ptr<RedisConnection>> c =
      Connect(redis.tls_url(), Tls({redis.pki().other_ca_cert, "", ""}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(c.status().message(),
                       "certificate at 127.0.0.1:" + std::to_string(redis.tls_port()) +
                           "/0 did not verify against --redis-tls-ca-file " +
                           redis.pki().other_ca_cert))
      << c.status().message();
  // No CA file: the system trust store does not know the test CA either.
  Result<std::shared_ptr<RedisConnection>> system = Connect(redis.tls_url(), nullptr);
  ASSERT_FALSE(system.ok());
  EXPECT_TRUE(Contains(system.status().message(), "the system trust store"))
      << system.status().message();
}

TEST_F(RedisTlsTest, ACertificateForAnotherHostIsRefused) {
  RedisProcess redis;
  RedisTlsSetup setup;
  setup.server_alt_names = "DNS:localhost";  // not IP:127.0.0.1
  ASSERT_TRUE(redis.StartTls(setup));
  auto tls = Tls({redis.pki().ca_cert, "", ""});
  Result<std::shared_ptr<RedisConnection>> by_address = Connect(redis.tls_url(), tls);
  ASSERT_FALSE(by_address.ok());
  EXPECT_EQ(by_address.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(by_address.status().message(), "IP address mismatch"))
      << by_address.status().message();
  EXPECT_TRUE(Contains(by_address.status().message(), "does not name '127.0.0.1'"))
      << by_address.status().message();
  Result<std::shared_ptr<RedisConnection>> by_name = Connect(redis.tls_url(0, "localhost"), tls);
  EXPECT_TRUE(by_name.ok()) << by_name.status().ToString();
}

TEST_F(RedisTlsTest, TheWrongPortForTheSchemeIsExplained) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  auto tls = Tls({redis.pki().ca_cert, "", ""});
  // rediss:// to the plain port: Redis reads the TLS hello as an unfinished command and waits.
  Result<std::shared_ptr<RedisConnection>> tls_to_plain =
      Connect("rediss://127.0.0.1:" + std::to_string(redis.port()) + "/0", tls, 500ms);
  ASSERT_FALSE(tls_to_plain.ok());
  EXPECT_EQ(tls_to_plain.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(tls_to_plain.status().message(), "did not finish the TLS handshake"))
      << tls_to_plain.status().message();
  EXPECT_TRUE(Contains(tls_to_plain.status().message(), "tls-port"))
      << tls_to_plain.status().message();
  // redis:// to the TLS port: Redis drops the connection.
  Result<std::shared_ptr<RedisConnection>> plain_to_tls =
      Connect("redis://127.0.0.1:" + std::to_string(redis.tls_port()) + "/0", nullptr, 500ms);
  ASSERT_FALSE(plain_to_tls.ok());
  EXPECT_EQ(plain_to_tls.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(plain_to_tls.status().message(), "use rediss://"))
      << plain_to_tls.status().message();
}

TEST_F(RedisTlsTest, ClientCertificatesAuthenticateWhenRedisDemandsThem) {
  RedisProcess redis;
  RedisTlsSetup setup;
  setup.auth_clients = true;
  ASSERT_TRUE(redis.StartTls(setup));
  const test::TestPki& pki = redis.pki();

  Result<std::shared_ptr<RedisConnection>> without =
      Connect(redis.tls_url(), Tls({pki.ca_cert, "", ""}));
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.status().code(), v1::UNAVAILABLE);
  EXPECT_TRUE(Contains(without.status().message(), "Redis refused this node's client certificate"))
      << without.status().message();
  EXPECT_TRUE(Contains(without.status().message(), "--redis-tls-cert-file"))
      << without.status().message();

  Result<std::shared_ptr<RedisConnection>> with =
      Connect(redis.tls_url(), Tls({pki.ca_cert, pki.client_cert, pki.client_key}));
  ASSERT_TRUE(with.ok()) << with.status().ToString() << "\n" << redis.LogTail();
  EXPECT_TRUE(Await((*with)->Execute(RedisCommand{"PING"}))->IsText("PONG"));
}

TEST_F(RedisTlsTest, UnusableTlsFilesAreRefusedOnce) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  const test::TestPki& pki = redis.pki();
  Result<std::shared_ptr<RedisTlsContext>> no_ca =
      RedisTlsContext::Create({"/nonexistent/ca", "", ""});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_TRUE(Contains(no_ca.status().message(), "--redis-tls-ca-file '/nonexistent/ca'"));
  // The key of another certificate.
  Result<std::shared_ptr<RedisTlsContext>> mismatched =
      RedisTlsContext::Create({pki.ca_cert, pki.client_cert, pki.server_key});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_TRUE(Contains(mismatched.status().message(), "cannot be used as the key of"))
      << mismatched.status().message();
  // A manager with such files refuses to start, before connecting anything.
  std::unique_ptr<RedisManager> m = Manager(
      "n1", ManagerRedisOptions(redis.tls_url(), {pki.ca_cert, pki.client_cert, pki.server_key}));
  Status started = Await(m->Start());
  EXPECT_EQ(started.code(), v1::INVALID_ARGUMENT) << started.ToString();
}

TEST_F(RedisTlsTest, AManagerReconnectsOverTlsAfterAnOutageFault) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  std::unique_ptr<RedisManager> m =
      Manager("n1", ManagerRedisOptions(redis.tls_url(), {redis.pki().ca_cert, "", ""}));
  ASSERT_TRUE(Await(m->Start()).ok());
  ASSERT_TRUE(RunUntil([&] { return m->Ready().ready; })) << m->Ready().detail;
  v1::CreateRequest create;
  create.set_max_idle_s(60);
  ASSERT_TRUE(Await(m->Create(create)).ok());

  redis.Kill9();
  ASSERT_TRUE(RunUntil([&] { return !m->Ready().ready; }));
  Result<v1::Session> during = Await(m->Create(create));
  ASSERT_FALSE(during.ok());
  EXPECT_EQ(during.status().code(), v1::UNAVAILABLE);

  ASSERT_TRUE(redis.Restart());  // same ports, same certificates
  ASSERT_TRUE(RunUntil([&] { return m->Ready().ready; }, 15s)) << m->Ready().detail;
  Result<v1::Session> after = Await(m->Create(create));
  EXPECT_TRUE(after.ok()) << after.status().ToString();
  AwaitVoid(m->Stop());
}

// Not a check: prints what TLS costs a pool of pipelined connections, SET + GET of 200 bytes
// from 64 concurrent callers for one second each way. Labelled slow, run on demand:
//   integration_redis_tls_test --gtest_filter='*CostOfTls*'
TEST_F(RedisTlsTest, PrintsTheCostOfTlsSlow) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  auto run = [&](const std::string& url, std::shared_ptr<RedisTlsContext> tls) -> double {
    RedisPoolOptions options;
    options.connections = 4;
    options.connection.tls = std::move(tls);
    RedisPool pool(io_.get_executor(), RedisUrl::Parse(url).value(), options);
    pool.Start();
    bool connected = Await(pool.WaitConnected(5s));
    EXPECT_TRUE(connected) << pool.last_error().ToString();
    uint64_t operations = 0;
    bool stop = false;
    int running = 0;
    const std::string value(200, 'v');
    for (int worker = 0; worker < 64; ++worker) {
      ++running;
      asio::co_spawn(
          io_,
          [&, worker]() -> asio::awaitable<void> {
            const std::string key = "bench:" + std::to_string(worker);
            while (!stop) {
              RedisCommand set{"SET", key, value};
              Result<RedisReply> a = co_await pool.Execute(std::move(set));
              RedisCommand get{"GET", key};
              Result<RedisReply> b = co_await pool.Execute(std::move(get));
              if (!a.ok() || !b.ok()) break;
              operations += 2;
            }
            --running;
          },
          asio::detached);
    }
    const auto start = std::chrono::steady_clock::now();
    RunUntil([] { return false; }, 1s);
    stop = true;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    RunUntil([&] { return running == 0; });
    pool.Stop();
    io_.restart();
    io_.run_for(100ms);
    return static_cast<double>(operations) / seconds;
  };
  const double plain = run(redis.url(), nullptr);
  const double tls = run(redis.tls_url(), Tls({redis.pki().ca_cert, "", ""}));
  std::printf("[cost of TLS] plain %.0f commands/s, TLS %.0f commands/s (%.0f%%)\n", plain, tls,
              100.0 * tls / plain);
  EXPECT_GT(tls, 0);
}

// Whole daemons, through the client library.

::testing::AssertionResult ReadyzBecomes(const DaemonProcess& node, int status,
                                         std::chrono::milliseconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    Result<test::HttpReply> reply = node.HttpGet("/readyz", 2s);
    if (reply.ok()) {
      if (reply->status == status) return ::testing::AssertionSuccess();
      last = std::to_string(reply->status) + " " + reply->body;
    } else {
      last = reply.status().ToString();
    }
    std::this_thread::sleep_for(50ms);
  }
  return ::testing::AssertionFailure() << "/readyz did not answer " << status << " within "
                                       << limit.count() << " ms; last: " << last;
}

v1::CreateRequest NewSession() {
  v1::CreateRequest request;
  request.set_max_idle_s(600);
  (*request.mutable_attributes())["lang"] = "en";
  return request;
}

TEST(RedisTlsDaemonTest, TwoDaemonsShareSessionsOverRediss) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  DaemonProcess n1("n1"), n2("n2");
  const std::vector<std::string> common{
      "--mode", "redis", "--redis", redis.tls_url(), "--redis-tls-ca-file", redis.pki().ca_cert};
  std::vector<std::string> a1{"--node-id", "n1"}, a2{"--node-id", "n2", "--redis-near-cache"};
  a1.insert(a1.end(), common.begin(), common.end());
  a2.insert(a2.end(), common.begin(), common.end());
  ASSERT_TRUE(n1.Start(a1));
  ASSERT_TRUE(n2.Start(a2));
  ASSERT_TRUE(ReadyzBecomes(n1, 200)) << n1.LogTail();
  ASSERT_TRUE(ReadyzBecomes(n2, 200)) << n2.LogTail();
  Result<std::unique_ptr<Client>> c1 = n1.Connect();
  Result<std::unique_ptr<Client>> c2 = n2.Connect();
  ASSERT_TRUE(c1.ok() && c2.ok());

  Result<v1::Session> created = (*c1)->Create(NewSession());
  ASSERT_TRUE(created.ok()) << created.status().ToString() << "\n" << n1.LogTail();
  for (int i = 0; i < 2; ++i) {
    Result<v1::Session> got = (*c2)->Get(created->id());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->attributes().at("lang"), "en");
  }
}

TEST(RedisTlsDaemonTest, AWrongCaAnswersUnavailableAndTheDaemonKeepsRunning) {
  RedisProcess redis;
  ASSERT_TRUE(redis.StartTls());
  DaemonProcess node("n1");
  ASSERT_TRUE(node.Start({"--mode", "redis", "--node-id", "n1", "--redis", redis.tls_url(),
                          "--redis-tls-ca-file", redis.pki().other_ca_cert}));
  Result<std::unique_ptr<Client>> client = node.Connect();
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  for (int i = 0; i < 3; ++i) {
    Result<v1::Session> created = (*client)->Create(NewSession());
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.status().code(), v1::UNAVAILABLE);
    EXPECT_TRUE(Contains(created.status().message(),
                         "did not verify against --redis-tls-ca-file " + redis.pki().other_ca_cert))
        << created.status().message();
    std::this_thread::sleep_for(100ms);
  }
  Result<test::HttpReply> ready = node.HttpGet("/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_NE(ready->status, 200);
  EXPECT_TRUE(Contains(ready->body, "did not verify")) << ready->body;
  EXPECT_TRUE(node.running());
  EXPECT_EQ(node.WaitExit(200ms), -1) << "the daemon exited:\n" << node.LogTail();
}

TEST(RedisTlsDaemonTest, AClientCertificateLetsTheDaemonIn) {
  RedisProcess redis;
  RedisTlsSetup setup;
  setup.auth_clients = true;
  ASSERT_TRUE(redis.StartTls(setup));
  const test::TestPki& pki = redis.pki();
  DaemonProcess node("n1");
  ASSERT_TRUE(node.Start({"--mode", "redis", "--node-id", "n1", "--redis", redis.tls_url(),
                          "--redis-tls-ca-file", pki.ca_cert, "--redis-tls-cert-file",
                          pki.client_cert, "--redis-tls-key-file", pki.client_key}));
  ASSERT_TRUE(ReadyzBecomes(node, 200)) << node.LogTail();
  Result<std::unique_ptr<Client>> client = node.Connect();
  ASSERT_TRUE(client.ok());
  Result<v1::Session> created = (*client)->Create(NewSession());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE((*client)->Get(created->id()).ok());
}

}  // namespace
}  // namespace sessiond
