// RedisDirectDriver against a real redis-server (started by the bench's RedisServer): the
// workload's operations reach Redis in sessiond's redis-mode layout, every acknowledged write is
// read back, and an unreachable Redis is reported rather than hung on.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "tools/bench/redis_direct_driver.h"
#include "tools/bench/redis_server.h"

namespace sessiond::bench {
namespace {

using namespace std::chrono_literals;

class BenchRedisDirectDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "bench_redis_direct_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    RedisServerOptions options;
    options.dir = dir_;
    auto redis = RedisServer::Start(options);
    if (!redis.ok())
      GTEST_SKIP() << "no redis-server to test against: " << redis.status().ToString();
    redis_ = std::move(*redis);
  }

  void TearDown() override {
    redis_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  static WorkloadOptions Small() {
    WorkloadOptions options;
    options.sessions = 200;
    options.attributes = 3;
    options.value_bytes = 64;
    options.mix = OpMix{50, 40, 10};
    options.sticky = 0.5;
    options.connections = 2;
    options.threads = 2;
    options.warmup = 200ms;
    options.duration = 1000ms;
    return options;
  }

  std::string dir_;
  std::unique_ptr<RedisServer> redis_;
};

TEST_F(BenchRedisDirectDriverTest, RunsTheMixAndEveryAcknowledgedWriteIsInRedis) {
  WorkloadOptions options = Small();
  options.record_writes = true;
  options.lag_probes_per_s = 50;
  // Two app servers sharing the one Redis.
  RedisDirectDriver driver(redis_->url(), 2, options);
  RunProgress progress;
  ASSERT_TRUE(driver.Populate(progress).ok());
  EXPECT_EQ(progress.ok.load(), 200u);

  auto result = driver.Run(progress);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(result->interrupted);
  EXPECT_EQ(result->all.failed(), 0u);
  for (int op = 0; op < kOpCount; ++op) {
    EXPECT_GT(result->by_op[op].ok, 0u) << OpName(static_cast<Op>(op));
  }
  // Both app servers read the same Redis: a write is visible to the other at once.
  EXPECT_GT(result->lag_probes, 0u);
  EXPECT_EQ(result->lag_unseen, 0u);

  const LostWriteLedger::Verdict verdict = driver.VerifyWrites(result->ledger, {true, true});
  EXPECT_GT(verdict.acknowledged_writes, 600u);  // at least the initial attributes
  EXPECT_EQ(verdict.writes_lost, 0u);
  EXPECT_EQ(verdict.sessions_lost, 0u);
  EXPECT_EQ(verdict.unexpected_values, 0u);
  EXPECT_EQ(verdict.sessions_checked, result->ledger.session_count());
}

TEST_F(BenchRedisDirectDriverTest, AnUnreachableRedisIsReportedNotWaitedOn) {
  WorkloadOptions options = Small();
  options.request_deadline = 300ms;
  // Port 1 on loopback: nothing listens there.
  RedisDirectDriver driver("redis://127.0.0.1:1/0", 1, options);
  RunProgress progress;
  Status status = driver.Populate(progress);
  EXPECT_EQ(status.code(), v1::UNAVAILABLE) << status.ToString();
  EXPECT_NE(status.message().find("Redis"), std::string::npos) << status.message();
}

TEST_F(BenchRedisDirectDriverTest, AMalformedUrlIsRefused) {
  RedisDirectDriver driver("http://127.0.0.1:6379", 1, Small());
  RunProgress progress;
  EXPECT_EQ(driver.Populate(progress).code(), v1::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sessiond::bench
