// What the RedisManager integration tests share: a redis-server of the test's own, an io_context
// the test runs until what it waits for has happened, and a plain connection for looking inside
// Redis.
#ifndef SESSIOND_TESTS_INTEGRATION_REDIS_MANAGER_FIXTURE_H_
#define SESSIOND_TESTS_INTEGRATION_REDIS_MANAGER_FIXTURE_H_

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "replication/clock.h"
#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_url.h"
#include "replication/session_id.h"
#include "sessiond/asio.h"
#include "tests/support/redis_process.h"

namespace sessiond::test {

class RedisManagerFixture : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start()); }

  // Runs the io_context until `done` holds or `limit` passes; false on timeout. Waits for the
  // thing itself (an event, a reconnection), never for a fixed time.
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
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
    if (!RunUntil([&] { return out.has_value(); }, std::chrono::seconds(30))) {
      throw std::runtime_error("the operation did not complete within 30 s");
    }
    return std::move(*out);
  }

  void AwaitVoid(asio::awaitable<void> op) {
    bool done = false;
    asio::co_spawn(io_, MarkDone(std::move(op), &done), asio::detached);
    ASSERT_TRUE(RunUntil([&] { return done; }, std::chrono::seconds(30)));
  }

  // A command on a plain connection of the test's own, for looking inside Redis.
  RedisReply Query(std::vector<std::string> args) {
    if (!inspector_ || !inspector_->is_open()) {
      Result<RedisUrl> url = RedisUrl::Parse(redis_.url());
      Result<std::shared_ptr<RedisConnection>> c =
          Await(RedisConnection::Connect(io_.get_executor(), *url, {}));
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      if (!c.ok()) return RedisReply::Error("no connection");
      inspector_ = *c;
    }
    Result<RedisReply> reply = Await(inspector_->Execute(RedisCommand(args)));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? *reply : RedisReply::Error(reply.status().message());
  }

  RedisProcess redis_;
  asio::io_context io_;
  SystemClock clock_;
  RandomIdGenerator ids_;
  std::shared_ptr<RedisConnection> inspector_;

  // Coroutines that keep an operation's outcome, for co_spawn.
  template <typename T>
  static asio::awaitable<void> StoreResult(asio::awaitable<T> op, std::optional<T>* out) {
    out->emplace(co_await std::move(op));
  }
  static asio::awaitable<void> MarkDone(asio::awaitable<void> op, bool* done) {
    co_await std::move(op);
    *done = true;
  }
};

}  // namespace sessiond::test

#endif  // SESSIOND_TESTS_INTEGRATION_REDIS_MANAGER_FIXTURE_H_
