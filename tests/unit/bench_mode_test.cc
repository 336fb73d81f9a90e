// BenchMode: the comparison's row names and what each starts.
#include "tools/bench/bench_mode.h"

#include <gtest/gtest.h>

namespace sessiond::bench {
namespace {

TEST(BenchModeTest, PlainModesAreTheDaemonsModes) {
  for (const char* name : {"standalone", "delta", "backup", "redis"}) {
    auto mode = BenchMode::Parse(name);
    ASSERT_TRUE(mode.ok()) << name;
    EXPECT_EQ(mode->name, name);
    EXPECT_EQ(mode->daemon_mode, name);
    EXPECT_TRUE(mode->replication_ack.empty());
    EXPECT_TRUE(mode->extra_args.empty());
    EXPECT_FALSE(mode->direct());
  }
}

TEST(BenchModeTest, VariantsAddTheirFlags) {
  auto nc = BenchMode::Parse("redis-nc");
  ASSERT_TRUE(nc.ok());
  EXPECT_EQ(nc->daemon_mode, "redis");
  EXPECT_EQ(nc->extra_args, std::vector<std::string>{"--redis-near-cache"});
  EXPECT_TRUE(nc->uses_redis());
  EXPECT_FALSE(nc->clustered());

  auto sync = BenchMode::Parse("delta-sync");
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(sync->daemon_mode, "delta");
  EXPECT_EQ(sync->replication_ack, "sync");
  EXPECT_TRUE(sync->clustered());

  auto async = BenchMode::Parse("backup-async");
  ASSERT_TRUE(async.ok());
  EXPECT_EQ(async->daemon_mode, "backup");
  EXPECT_EQ(async->replication_ack, "async");
}

TEST(BenchModeTest, WhatEachModeShares) {
  EXPECT_FALSE(BenchMode::Parse("standalone")->shares_sessions());
  EXPECT_TRUE(BenchMode::Parse("delta")->shares_sessions());
  auto direct = BenchMode::Parse("redis-direct");
  ASSERT_TRUE(direct.ok());
  EXPECT_TRUE(direct->direct());
  EXPECT_TRUE(direct->uses_redis());
  EXPECT_TRUE(direct->shares_sessions());
  EXPECT_FALSE(direct->clustered());
}

TEST(BenchModeTest, UnknownNameIsRefusedWithTheKnownOnes) {
  auto mode = BenchMode::Parse("memcached");
  ASSERT_FALSE(mode.ok());
  EXPECT_EQ(mode.status().code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(mode.status().message().find("redis-nc"), std::string::npos);
  EXPECT_NE(mode.status().message().find("delta-sync"), std::string::npos);
}

}  // namespace
}  // namespace sessiond::bench
