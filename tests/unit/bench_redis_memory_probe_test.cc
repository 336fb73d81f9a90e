// RedisMemoryProbe against a real redis-server: the memory per session it reports for hashes laid
// out as sessiond's redis mode lays them out, and the encoding it sees.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/bench/redis_memory_probe.h"
#include "tools/bench/redis_server.h"

namespace sessiond::bench {
namespace {

class BenchRedisMemoryProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v redis-server > /dev/null 2>&1") != 0) {
      GTEST_SKIP() << "redis-server is not installed";
    }
    dir_ = (std::filesystem::temp_directory_path() /
            ("bench_redis_memory_" + std::to_string(::getpid())))
               .string();
    std::filesystem::create_directories(dir_);
    auto redis = RedisServer::Start(RedisServerOptions{.dir = dir_});
    ASSERT_TRUE(redis.ok()) << redis.status().ToString();
    redis_ = std::move(*redis);
    context_ = redisConnect("127.0.0.1", redis_->port());
    ASSERT_TRUE(context_ != nullptr && context_->err == 0);
  }
  void TearDown() override {
    if (context_ != nullptr) redisFree(context_);
    redis_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // `count` session hashes as docs/redis.md lays them out: meta fields, two attributes of
  // `value_bytes` each, a one-hour TTL.
  void WriteSessions(int count, size_t value_bytes, const std::string& prefix) {
    const std::string value(value_bytes, 'x');
    for (int i = 0; i < count; ++i) {
      const std::string key = "sd:s:" + prefix + std::to_string(1'000'000 + i);
      std::vector<std::string> args = {
          "HSET",          key, "v",    "1",      "c",   "1700000000000", "a",
          "1700000000000", "i", "3600", ".attr0", value, ".attr1",        value};
      Command(args);
      Command({"PEXPIRE", key, "3600000"});
    }
  }

  void Command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
    ASSERT_NE(reply, nullptr);
    EXPECT_NE(reply->type, REDIS_REPLY_ERROR) << reply->str;
    freeReplyObject(reply);
  }

  std::string dir_;
  std::unique_ptr<RedisServer> redis_;
  redisContext* context_ = nullptr;
};

TEST_F(BenchRedisMemoryProbeTest, SmallSessionsStayInListpackAndCostAFewHundredBytes) {
  RedisMemoryProbe probe(redis_->port());
  auto before = probe.Take();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  WriteSessions(2000, 50, "");
  auto after = probe.Take();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->keys - before->keys, 2000u);

  auto memory = probe.Measure(*before, *after);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_EQ(memory->keys, 2000u);
  EXPECT_EQ(memory->encoding, "listpack");
  EXPECT_EQ(memory->sample_keys, 20u);
  // Two 50-byte values and the meta fields: more than the raw 100 bytes, well under a kilobyte.
  EXPECT_GT(memory->memory_usage_bytes, 150);
  EXPECT_LT(memory->memory_usage_bytes, 500);
  EXPECT_GT(memory->used_bytes_per_key, 150);
  EXPECT_LT(memory->used_bytes_per_key, 700);
}

TEST_F(BenchRedisMemoryProbeTest, AValueOverTheListpackLimitShowsAsHashtable) {
  RedisMemoryProbe probe(redis_->port());
  auto before = probe.Take();
  ASSERT_TRUE(before.ok());
  WriteSessions(5, 50, "small");
  WriteSessions(5, 100, "large");  // over hash-max-listpack-value (64)
  auto after = probe.Take();
  ASSERT_TRUE(after.ok());
  auto memory = probe.Measure(*before, *after);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_EQ(memory->sample_keys, 10u);
  EXPECT_EQ(memory->encoding, "mixed: 5 hashtable, 5 listpack");
}

TEST(BenchRedisMemoryProbeUnreachableTest, NoRedisIsUnavailable) {
  // Port 1 on loopback: nothing listens there.
  auto snapshot = RedisMemoryProbe(1, std::chrono::milliseconds(500)).Take();
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.status().code(), v1::UNAVAILABLE);
}

}  // namespace
}  // namespace sessiond::bench
