// The near cache of redis mode: its bookkeeping alone (fills racing invalidations, flushes,
// deadlines, the size bound). The near cache inside RedisManager, on a real redis-server, is
// tested in tests/integration/redis_near_cache_manager_test.cc.
#include "replication/redis/redis_near_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace sessiond {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

v1::Session SessionWith(const std::string& id, const std::string& value, int64_t now = kNow) {
  v1::Session s;
  s.set_id(id);
  s.set_created_ms(now);
  s.set_last_access_ms(now);
  s.set_max_idle_s(60);
  s.set_version(1);
  (*s.mutable_attributes())["a"] = value;
  return s;
}

TEST(RedisNearCacheTest, ReadsWithTouchAreServedOnlyUntilTheTouchIsDue) {
  RedisNearCache cache(10);
  const uint64_t fill = cache.BeginFill("s1");
  cache.EndFill("s1", fill, SessionWith("s1", "v1"), /*touch_due_ms=*/kNow + 1000);
  EXPECT_NE(cache.Find("s1", kNow, /*touch=*/true), nullptr);
  EXPECT_EQ(cache.Find("s1", kNow + 1000, /*touch=*/true), nullptr);
  EXPECT_NE(cache.Find("s1", kNow + 1000), nullptr);  // a plain read still may

  // A fill that did not learn when the touch is due never serves a read with touch.
  const uint64_t plain = cache.BeginFill("s2");
  cache.EndFill("s2", plain, SessionWith("s2", "v1"));
  EXPECT_EQ(cache.Find("s2", kNow, /*touch=*/true), nullptr);
  EXPECT_NE(cache.Find("s2", kNow), nullptr);
}

TEST(RedisNearCacheTest, AFillIsKeptUnlessAnInvalidationCameFirst) {
  RedisNearCache cache(10);
  const uint64_t fill = cache.BeginFill("s1");
  cache.EndFill("s1", fill, SessionWith("s1", "v1"));
  ASSERT_NE(cache.Find("s1", kNow), nullptr);
  EXPECT_EQ(cache.Find("s1", kNow)->attributes().at("a"), "v1");

  // The read's reply and the invalidation of the change after it travel on different
  // connections: when the invalidation wins, the read's (older) value must not be kept.
  cache.Invalidate("s1");
  const uint64_t racing = cache.BeginFill("s1");
  cache.Invalidate("s1");
  cache.EndFill("s1", racing, SessionWith("s1", "stale"));
  EXPECT_EQ(cache.Find("s1", kNow), nullptr);

  // And when the reply wins, the invalidation that follows removes it.
  const uint64_t next = cache.BeginFill("s1");
  cache.EndFill("s1", next, SessionWith("s1", "v2"));
  cache.Invalidate("s1");
  EXPECT_EQ(cache.Find("s1", kNow), nullptr);
}

TEST(RedisNearCacheTest, AFlushCancelsFillsInFlight) {
  RedisNearCache cache(10);
  const uint64_t before = cache.BeginFill("s1");
  cache.EndFill("s2", cache.BeginFill("s2"), SessionWith("s2", "v"));
  cache.Flush();
  cache.EndFill("s1", before, SessionWith("s1", "from a dead tracking connection"));
  EXPECT_EQ(cache.Find("s1", kNow), nullptr);
  EXPECT_EQ(cache.Find("s2", kNow), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.flushes(), 1u);
}

TEST(RedisNearCacheTest, OnlyTheNewestOfConcurrentFillsIsKept) {
  RedisNearCache cache(10);
  const uint64_t first = cache.BeginFill("s1");
  const uint64_t second = cache.BeginFill("s1");
  cache.EndFill("s1", first, SessionWith("s1", "first"));
  EXPECT_EQ(cache.Find("s1", kNow), nullptr);
  cache.EndFill("s1", second, SessionWith("s1", "second"));
  ASSERT_NE(cache.Find("s1", kNow), nullptr);
  EXPECT_EQ(cache.Find("s1", kNow)->attributes().at("a"), "second");
  cache.AbandonFill("s1", cache.BeginFill("s1"));  // a miss: nothing changes
  EXPECT_NE(cache.Find("s1", kNow), nullptr);
}

TEST(RedisNearCacheTest, NeverServesASessionPastItsDeadline) {
  RedisNearCache cache(10);
  cache.EndFill("s1", cache.BeginFill("s1"), SessionWith("s1", "v"));
  EXPECT_NE(cache.Find("s1", kNow + 59'999), nullptr);
  EXPECT_EQ(cache.Find("s1", kNow + 60'000), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RedisNearCacheTest, KeepsAtMostItsLimitDroppingTheLeastRecentlyUsed) {
  RedisNearCache cache(2);
  cache.EndFill("s1", cache.BeginFill("s1"), SessionWith("s1", "v"));
  cache.EndFill("s2", cache.BeginFill("s2"), SessionWith("s2", "v"));
  ASSERT_NE(cache.Find("s1", kNow), nullptr);  // s2 is now the least recently used
  cache.EndFill("s3", cache.BeginFill("s3"), SessionWith("s3", "v"));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.Find("s1", kNow), nullptr);
  EXPECT_EQ(cache.Find("s2", kNow), nullptr);
  EXPECT_NE(cache.Find("s3", kNow), nullptr);
}

}  // namespace
}  // namespace sessiond
