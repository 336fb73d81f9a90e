// The Redis client on Asio (RedisConnection, RedisPool, RedisSubscriber), against a real
// redis-server started by RedisProcess. An integration test: it starts processes, and the outage
// cases wait for reconnection backoff. RedisUrl's parsing is a unit test (redis_url_test.cc).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_pool.h"
#include "replication/redis/redis_subscriber.h"
#include "replication/redis/redis_url.h"
#include "sessiond/asio.h"
#include "tests/support/redis_process.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using test::RedisProcess;

template <typename T>
asio::awaitable<void> StoreResult(asio::awaitable<T> op, std::optional<T>* out) {
  out->emplace(co_await std::move(op));
}

class RedisClientTest : public ::testing::Test {
 protected:
  // Runs the io_context until `done` holds or `limit` passes; false on timeout. This waits for
  // the awaited thing itself, not for a fixed time.
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

  RedisUrl Url(const RedisProcess& redis, uint32_t db = 0) {
    Result<RedisUrl> url = RedisUrl::Parse(redis.url(db));
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    return *url;
  }

  std::shared_ptr<RedisConnection> Connect(const RedisUrl& url,
                                           RedisConnectionOptions options = {}) {
    Result<std::shared_ptr<RedisConnection>> c =
        Await(RedisConnection::Connect(io_.get_executor(), url, options));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : nullptr;
  }

  asio::io_context io_;
};

TEST_F(RedisClientTest, PipelinedRepliesMatchTheirCommandsInOrder) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  std::shared_ptr<RedisConnection> c = Connect(Url(redis));
  ASSERT_TRUE(c);

  // 500 commands in flight at once on one connection: each must get its own reply.
  constexpr int kCommands = 500;
  std::vector<std::optional<Result<RedisReply>>> replies(kCommands);
  for (int i = 0; i < kCommands; ++i) {
    asio::co_spawn(io_, StoreResult(c->Execute(RedisCommand{"INCR", "counter"}), &replies[i]),
                   asio::detached);
  }
  // All of them are queued before the first reply comes back: one round trip, not 500.
  EXPECT_TRUE(RunUntil([&] { return c->pending() == kCommands; }, 2s)) << c->pending();
  ASSERT_TRUE(RunUntil([&] { return replies.back().has_value(); }));
  for (int i = 0; i < kCommands; ++i) {
    ASSERT_TRUE(replies[i].has_value());
    ASSERT_TRUE(replies[i]->ok()) << replies[i]->status().ToString();
    EXPECT_EQ((*replies[i])->integer(), i + 1);
  }
}

TEST_F(RedisClientTest, AnErrorReplyIsAnAnswerAndTheConnectionCarriesOn) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  std::shared_ptr<RedisConnection> c = Connect(Url(redis));
  ASSERT_TRUE(c);
  ASSERT_TRUE(Await(c->Execute(RedisCommand{"SET", "k", "v"}))->IsText("OK"));
  Result<RedisReply> wrong = Await(c->Execute(RedisCommand{"HGET", "k", "f"}));
  ASSERT_TRUE(wrong.ok());
  EXPECT_TRUE(wrong->IsErrorCode("WRONGTYPE")) << wrong->Describe();
  Result<std::vector<RedisReply>> both =
      Await(c->ExecuteAll({RedisCommand{"GET", "k"}, RedisCommand{"GET", "absent"}}));
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE((*both)[0].IsText("v"));
  EXPECT_TRUE((*both)[1].is_nil());
  // Binary-safe arguments and values.
  const std::string binary("a\0b\r\nc", 6);
  ASSERT_TRUE(Await(c->Execute(RedisCommand{"SET", binary, binary}))->IsText("OK"));
  EXPECT_EQ(Await(c->Execute(RedisCommand{"GET", binary}))->text(), binary);
}

TEST_F(RedisClientTest, AnUnansweredCommandFailsAtItsDeadlineAndClosesTheConnection) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  RedisConnectionOptions options;
  options.command_timeout = 200ms;
  std::shared_ptr<RedisConnection> c = Connect(Url(redis), options);
  ASSERT_TRUE(c);
  // BLPOP on an empty list holds its reply for 5 s; the PING behind it waits too.
  std::optional<Result<RedisReply>> blocked, behind;
  asio::co_spawn(io_, StoreResult(c->Execute(RedisCommand{"BLPOP", "empty", "5"}), &blocked),
                 asio::detached);
  asio::co_spawn(io_, StoreResult(c->Execute(RedisCommand{"PING"}), &behind), asio::detached);
  ASSERT_TRUE(RunUntil([&] { return blocked && behind; }, 3s));
  ASSERT_FALSE(blocked->ok());
  EXPECT_EQ(blocked->status().code(), v1::UNAVAILABLE);
  EXPECT_NE(blocked->status().message().find("did not answer BLPOP within 200 ms"),
            std::string::npos)
      << blocked->status().message();
  EXPECT_EQ(behind->status().code(), v1::UNAVAILABLE);
  EXPECT_FALSE(c->is_open());
  EXPECT_EQ(Await(c->Execute(RedisCommand{"PING"})).status().code(), v1::UNAVAILABLE);
}

TEST_F(RedisClientTest, FaultAKilledServerFailsEveryPendingCommand) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  std::shared_ptr<RedisConnection> c = Connect(Url(redis));
  ASSERT_TRUE(c);
  Status closed_with;
  bool closed = false;
  c->SetCloseHandler([&](const Status& why) {
    closed = true;
    closed_with = why;
  });
  std::optional<Result<RedisReply>> blocked;
  asio::co_spawn(io_, StoreResult(c->Execute(RedisCommand{"BLPOP", "empty", "5"}), &blocked),
                 asio::detached);
  ASSERT_TRUE(RunUntil([&] { return c->pending() == 1; }));
  io_.poll();  // let the write go out
  redis.Kill9();
  ASSERT_TRUE(RunUntil([&] { return blocked.has_value() && closed; }, 3s));
  EXPECT_EQ(blocked->status().code(), v1::UNAVAILABLE);
  EXPECT_NE(blocked->status().message().find("was lost"), std::string::npos)
      << blocked->status().message();
  EXPECT_EQ(closed_with.code(), v1::UNAVAILABLE);
}

TEST_F(RedisClientTest, LogsInAndSelectsTheDatabase) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start({"--requirepass", "letmein"}));
  RedisUrl url = Url(redis, 3);

  Result<std::shared_ptr<RedisConnection>> refused =
      Await(RedisConnection::Connect(io_.get_executor(), url, {}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), v1::UNAVAILABLE);
  EXPECT_NE(refused.status().message().find("refused the login"), std::string::npos)
      << refused.status().message();

  url.password = "wrong";
  refused = Await(RedisConnection::Connect(io_.get_executor(), url, {}));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--redis-password-file"), std::string::npos);

  url.password = "letmein";
  std::shared_ptr<RedisConnection> in_db3 = Connect(url);
  ASSERT_TRUE(in_db3);
  ASSERT_TRUE(Await(in_db3->Execute(RedisCommand{"SET", "where", "db3"}))->IsText("OK"));
  url.db = 0;
  std::shared_ptr<RedisConnection> in_db0 = Connect(url);
  ASSERT_TRUE(in_db0);
  EXPECT_TRUE(Await(in_db0->Execute(RedisCommand{"GET", "where"}))->is_nil());
  EXPECT_EQ(Await(in_db0->Execute(RedisCommand{"SELECT", "3"}))->text(), "OK");
  EXPECT_EQ(Await(in_db0->Execute(RedisCommand{"GET", "where"}))->text(), "db3");
}

TEST_F(RedisClientTest, ConnectingToNothingFailsWithASentence) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  const RedisUrl url = Url(redis);
  redis.Kill9();
  Result<std::shared_ptr<RedisConnection>> c =
      Await(RedisConnection::Connect(io_.get_executor(), url, {}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), v1::UNAVAILABLE);
  EXPECT_NE(c.status().message().find("cannot connect to Redis at " + url.Describe()),
            std::string::npos)
      << c.status().message();
}

TEST_F(RedisClientTest, FaultPoolAnswersUnavailableWhileRedisIsDownAndReconnectsByItself) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  RedisPoolOptions options;
  options.connections = 3;
  options.backoff_initial = 20ms;
  options.backoff_max = 100ms;
  int set_ups = 0;
  RedisPool pool(io_.get_executor(), Url(redis), options);
  pool.SetSetupCommands([&]() -> Result<std::vector<RedisCommand>> {
    ++set_ups;
    return std::vector<RedisCommand>{RedisCommand{"CLIENT", "SETNAME", "pool-test"}};
  });
  pool.Start();
  ASSERT_TRUE(Await(pool.WaitConnected(5s)));
  ASSERT_TRUE(RunUntil([&] { return pool.connected() == 3; }));
  EXPECT_EQ(set_ups, 3);
  EXPECT_TRUE(Await(pool.Execute(RedisCommand{"PING"}))->IsText("PONG"));

  redis.Kill9();
  ASSERT_TRUE(RunUntil([&] { return pool.connected() == 0; }));
  Result<RedisReply> down = Await(pool.Execute(RedisCommand{"PING"}));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), v1::UNAVAILABLE);
  EXPECT_NE(down.status().message().find("unreachable"), std::string::npos)
      << down.status().message();
  EXPECT_NE(down.status().message().find("reconnecting on its own"), std::string::npos);

  ASSERT_TRUE(redis.Restart());
  ASSERT_TRUE(Await(pool.WaitConnected(10s)));
  EXPECT_TRUE(Await(pool.Execute(RedisCommand{"PING"}))->IsText("PONG"));
  ASSERT_TRUE(RunUntil([&] { return pool.connected() == 3; }));
  EXPECT_EQ(set_ups, 6);  // every new connection ran the set-up again
  EXPECT_EQ(pool.connects(), 6u);
}

TEST_F(RedisClientTest, PoolFirstUpSendsEverythingOnOneConnectionAndFailsOver) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  RedisPoolOptions options;
  options.connections = 2;
  options.use = RedisPoolOptions::Use::kFirstUp;
  options.backoff_initial = 10ms;
  RedisPool pool(io_.get_executor(), Url(redis), options);
  pool.Start();
  ASSERT_TRUE(RunUntil([&] { return pool.connected() == 2; }));
  const int64_t first = Await(pool.Execute(RedisCommand{"CLIENT", "ID"}))->integer();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Await(pool.Execute(RedisCommand{"CLIENT", "ID"}))->integer(), first);
  }
  // Its connection gone, the one standing by serves at once.
  std::shared_ptr<RedisConnection> admin = Connect(Url(redis));
  ASSERT_TRUE(admin);
  ASSERT_TRUE(
      Await(admin->Execute(RedisCommand{"CLIENT", "KILL", "ID", std::to_string(first)})).ok());
  ASSERT_TRUE(RunUntil([&] { return pool.connected() == 1; }));
  const int64_t second = Await(pool.Execute(RedisCommand{"CLIENT", "ID"}))->integer();
  EXPECT_NE(second, first);
}

TEST_F(RedisClientTest, PoolDropAllMakesEveryConnectionRunItsSetUpAgain) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  RedisPoolOptions options;
  options.connections = 2;
  options.backoff_initial = 10ms;
  RedisPool pool(io_.get_executor(), Url(redis), options);
  std::string name = "before";
  pool.SetSetupCommands([&]() -> Result<std::vector<RedisCommand>> {
    return std::vector<RedisCommand>{RedisCommand{"CLIENT", "SETNAME", name}};
  });
  int closed = 0;
  pool.SetClosedHandler([&](const Status&) { ++closed; });
  pool.Start();
  ASSERT_TRUE(RunUntil([&] { return pool.connected() == 2; }));
  name = "after";
  pool.DropAll(Unavailable("test"));
  ASSERT_TRUE(RunUntil([&] { return closed == 2 && pool.connected() == 2; }));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Await(pool.Execute(RedisCommand{"CLIENT", "GETNAME"}))->text(), "after");
  }
}

TEST_F(RedisClientTest, SubscriberDeliversEveryMessageBeforeItsBarrier) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  std::vector<std::string> received;
  int64_t subscribed_as = 0;
  RedisSubscriber::Handlers handlers;
  handlers.on_subscribed = [&](int64_t id) { subscribed_as = id; };
  handlers.on_message = [&](const std::string& channel, const RedisReply& payload) {
    EXPECT_EQ(channel, "news");
    received.push_back(payload.text());
  };
  RedisSubscriber subscriber(io_.get_executor(), Url(redis), {}, {"news", "other"},
                             std::move(handlers));
  subscriber.Start();
  ASSERT_TRUE(RunUntil([&] { return subscriber.subscribed(); }));
  EXPECT_GT(subscribed_as, 0);
  EXPECT_EQ(subscriber.client_id(), subscribed_as);

  std::shared_ptr<RedisConnection> publisher = Connect(Url(redis));
  ASSERT_TRUE(publisher);
  std::vector<RedisCommand> publishes;
  for (int i = 0; i < 100; ++i) {
    publishes.push_back(RedisCommand{"PUBLISH", "news", std::to_string(i)});
  }
  Result<std::vector<RedisReply>> counts = Await(publisher->ExecuteAll(std::move(publishes)));
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->back().integer(), 1);  // one subscriber heard it
  // Every message published before the barrier has been handed over once it returns.
  ASSERT_TRUE(Await(subscriber.Barrier()).ok());
  ASSERT_EQ(received.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(received[i], std::to_string(i));
}

TEST_F(RedisClientTest, BarriersAskedInOneTurnShareOnePingAndLaterOnesWaitForTheirOwn) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  std::vector<std::string> received;
  RedisSubscriber::Handlers handlers;
  handlers.on_message = [&](const std::string&, const RedisReply& payload) {
    received.push_back(payload.text());
  };
  RedisSubscriber subscriber(io_.get_executor(), Url(redis), {}, {"news"}, std::move(handlers));
  subscriber.Start();
  ASSERT_TRUE(RunUntil([&] { return subscriber.subscribed(); }));
  std::shared_ptr<RedisConnection> publisher = Connect(Url(redis));
  ASSERT_TRUE(publisher);

  // Ten barriers asked in one turn: one PING answers them all.
  const uint64_t pings_before = subscriber.barrier_pings();
  int ok = 0, done = 0;
  auto barrier = [&]() -> asio::awaitable<void> {
    if ((co_await subscriber.Barrier()).ok()) ++ok;
    ++done;
  };
  for (int i = 0; i < 10; ++i) asio::co_spawn(io_, barrier(), asio::detached);
  ASSERT_TRUE(RunUntil([&] { return done == 10; }));
  EXPECT_EQ(ok, 10);
  EXPECT_EQ(subscriber.barrier_pings(), pings_before + 1);

  // A barrier asked while a PING is on its way gets a PING of its own, and returns only after
  // what was published before it asked.
  bool first_done = false, second_done = false;
  size_t seen_by_second = 0;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        EXPECT_TRUE((co_await subscriber.Barrier()).ok());
        first_done = true;
      },
      asio::detached);
  ASSERT_TRUE(RunUntil([&] { return subscriber.barrier_pings() == pings_before + 2; }));
  ASSERT_EQ(Await(publisher->Execute(RedisCommand{"PUBLISH", "news", "late"}))->integer(), 1);
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        EXPECT_TRUE((co_await subscriber.Barrier()).ok());
        seen_by_second = received.size();
        second_done = true;
      },
      asio::detached);
  ASSERT_TRUE(RunUntil([&] { return first_done && second_done; }));
  EXPECT_EQ(subscriber.barrier_pings(), pings_before + 3);
  EXPECT_EQ(seen_by_second, 1u);
}

TEST_F(RedisClientTest, FaultSubscriberResubscribesAfterRedisComesBack) {
  RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  int lost = 0, subscriptions = 0;
  std::vector<std::string> received;
  RedisSubscriber::Handlers handlers;
  handlers.on_subscribed = [&](int64_t) { ++subscriptions; };
  handlers.on_lost = [&](const Status&) { ++lost; };
  handlers.on_message = [&](const std::string&, const RedisReply& payload) {
    received.push_back(payload.text());
  };
  RedisSubscriberOptions options;
  options.backoff_initial = 20ms;
  options.backoff_max = 100ms;
  RedisSubscriber subscriber(io_.get_executor(), Url(redis), options, {"news"},
                             std::move(handlers));
  subscriber.Start();
  ASSERT_TRUE(RunUntil([&] { return subscriber.subscribed(); }));
  redis.Kill9();
  ASSERT_TRUE(RunUntil([&] { return lost == 1; }));
  EXPECT_FALSE(subscriber.subscribed());
  EXPECT_EQ(Await(subscriber.Barrier()).code(), v1::UNAVAILABLE);
  ASSERT_TRUE(redis.Restart());
  ASSERT_TRUE(RunUntil([&] { return subscriptions == 2; }));
  std::shared_ptr<RedisConnection> publisher = Connect(Url(redis));
  ASSERT_TRUE(publisher);
  ASSERT_EQ(Await(publisher->Execute(RedisCommand{"PUBLISH", "news", "back"}))->integer(), 1);
  ASSERT_TRUE(RunUntil([&] { return received.size() == 1; }));
  EXPECT_EQ(received[0], "back");
}

}  // namespace
}  // namespace sessiond
