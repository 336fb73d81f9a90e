// The near cache inside RedisManager: two managers on a real redis-server, one of them caching,
// checking it never serves a value older than an acknowledged update, and that it forgets
// everything when its invalidation connection drops. An integration test: it starts redis-server.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "replication/clock.h"
#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_manager.h"
#include "replication/session_id.h"
#include "sessiond/asio.h"
#include "tests/integration/redis_manager_fixture.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

class RedisNearCacheManagerTest : public test::RedisManagerFixture {
 protected:
  std::unique_ptr<RedisManager> Started(const std::string& node_id, RedisNearCacheMode cache) {
    RedisOptions options;
    options.url = *RedisUrl::Parse(redis_.url());
    options.connections = 2;
    options.backoff_initial = 20ms;
    options.backoff_max = 200ms;
    options.near_cache = cache;
    ManagerOptions manager;
    manager.node_id = node_id;
    manager.clock = &clock_;
    manager.ids = &ids_;
    auto m = std::make_unique<RedisManager>(io_.get_executor(), manager, options);
    EXPECT_TRUE(Await(m->Start()).ok());
    EXPECT_TRUE(m->Ready().ready) << m->Ready().detail;
    if (cache != RedisNearCacheMode::kOff) WaitCacheOn(*m);
    return m;
  }

  void WaitCacheOn(RedisManager& m) {
    EXPECT_TRUE(RunUntil([&] {
      return m.Ready().detail.find("near cache on") != std::string::npos;
    })) << m.Ready().detail;
  }

  std::string Read(RedisManager& m, const std::string& id) {
    v1::GetRequest get;
    get.set_id(id);
    Result<v1::Session> s = Await(m.Get(get));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->attributes().at("a") : "";
  }

  void Write(RedisManager& m, const std::string& id, const std::string& value) {
    v1::UpdateRequest update;
    update.set_id(id);
    (*update.mutable_set())["a"] = value;
    ASSERT_TRUE(Await(m.Update(update)).ok());
  }

  std::string CreateSession(RedisManager& m) {
    v1::CreateRequest create;
    create.set_max_idle_s(60);
    (*create.mutable_attributes())["a"] = "0";
    Result<v1::Session> s = Await(m.Create(create));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->id() : "";
  }

  uint64_t Counter(RedisManager& m, const std::string& name) {
    return m.Stats().counters().at(name);
  }
};

TEST_F(RedisNearCacheManagerTest, NeverServesAValueOlderThanAnAcknowledgedUpdate) {
  auto writer = Started("n1", RedisNearCacheMode::kOff);
  auto reader = Started("n2", RedisNearCacheMode::kValidated);
  const std::string id = CreateSession(*writer);
  for (int i = 1; i <= 200; ++i) {
    Write(*writer, id, std::to_string(i));
    // The update was acknowledged: no read that starts now may return anything older.
    ASSERT_EQ(Read(*reader, id), std::to_string(i)) << "round " << i;
    ASSERT_EQ(Read(*reader, id), std::to_string(i)) << "round " << i;  // from the cache
  }
  EXPECT_GE(Counter(*reader, "near_cache_hits"), 150u);
  EXPECT_GE(Counter(*reader, "near_cache_invalidations"), 150u);
  EXPECT_GE(reader->Stats().sessions(), 1u);
}

TEST_F(RedisNearCacheManagerTest, ServesRepeatedReadsFromMemoryAndDropsWhatChanges) {
  auto writer = Started("n1", RedisNearCacheMode::kOff);
  auto reader = Started("n2", RedisNearCacheMode::kEventual);
  const std::string id = CreateSession(*writer);
  EXPECT_EQ(Read(*reader, id), "0");
  EXPECT_EQ(Counter(*reader, "near_cache_misses"), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Read(*reader, id), "0");
  EXPECT_EQ(Counter(*reader, "near_cache_hits"), 10u);

  Write(*writer, id, "1");
  // Eventual: the copy goes once the invalidation arrives, which this waits for.
  ASSERT_TRUE(RunUntil([&] { return Counter(*reader, "near_cache_invalidations") >= 1; }));
  EXPECT_EQ(Read(*reader, id), "1");

  // Invalidated elsewhere: the cached copy must not outlive the session.
  v1::InvalidateRequest invalidate;
  invalidate.set_id(id);
  ASSERT_TRUE(Await(writer->Invalidate(invalidate)).ok());
  ASSERT_TRUE(RunUntil([&] { return Counter(*reader, "near_cache_invalidations") >= 2; }));
  v1::GetRequest get;
  get.set_id(id);
  EXPECT_EQ(Await(reader->Get(get)).status().code(), v1::NOT_FOUND);
}

// A read with touch is served from the cache while the session's access time is not due to be
// written (the fill read the key's TTL); once it is due, the read goes to Redis and writes it.
TEST_F(RedisNearCacheManagerTest, ReadsWithTouchAreServedFromMemoryUntilTheTouchIsDue) {
  auto reader = Started("n1", RedisNearCacheMode::kValidated);
  const std::string id = CreateSession(*reader);  // 60 s idle: a 15 s touch window
  v1::GetRequest get;
  get.set_id(id);
  get.set_touch(true);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Await(reader->Get(get)).ok());
  EXPECT_EQ(Counter(*reader, "near_cache_misses"), 1u);
  EXPECT_EQ(Counter(*reader, "near_cache_hits"), 4u);
  EXPECT_EQ(Counter(*reader, "redis_touches_written"), 0u);

  // As if 20 s had passed since the last write of the access time: the next fill sees it due.
  EXPECT_EQ(Query({"PEXPIRE", "sd:s:" + id, "55000"}).integer(), 1);
  ASSERT_TRUE(RunUntil([&] { return Counter(*reader, "near_cache_invalidations") >= 1; }));
  ASSERT_TRUE(Await(reader->Get(get)).ok());
  EXPECT_EQ(Counter(*reader, "redis_touches_written"), 1u);
  EXPECT_GT(Query({"PTTL", "sd:s:" + id}).integer(), 70'000);
}

TEST_F(RedisNearCacheManagerTest, FaultFlushesWhenTheInvalidationConnectionDropsAndRecovers) {
  auto writer = Started("n1", RedisNearCacheMode::kOff);
  auto reader = Started("n2", RedisNearCacheMode::kValidated);
  const std::string id = CreateSession(*writer);
  EXPECT_EQ(Read(*reader, id), "0");
  EXPECT_EQ(Read(*reader, id), "0");
  ASSERT_EQ(reader->Stats().sessions(), 1u);
  const uint64_t flushes = Counter(*reader, "near_cache_flushes");

  // Kill every pub/sub connection from inside Redis: invalidations sent meanwhile are lost, so
  // the cache must forget everything.
  Result<RedisUrl> url = RedisUrl::Parse(redis_.url());
  Result<std::shared_ptr<RedisConnection>> admin =
      Await(RedisConnection::Connect(io_.get_executor(), *url, {}));
  ASSERT_TRUE(admin.ok());
  Result<RedisReply> killed =
      Await((*admin)->Execute(RedisCommand{"CLIENT", "KILL", "TYPE", "pubsub"}));
  ASSERT_TRUE(killed.ok());
  ASSERT_GE(killed->integer(), 1);
  ASSERT_TRUE(RunUntil([&] { return Counter(*reader, "near_cache_flushes") > flushes; }));
  EXPECT_EQ(reader->Stats().sessions(), 0u);
  Write(*writer, id, "1");  // while the reader may be without invalidations

  WaitCacheOn(*reader);
  EXPECT_EQ(Read(*reader, id), "1");
  const uint64_t hits = Counter(*reader, "near_cache_hits");
  EXPECT_EQ(Read(*reader, id), "1");
  EXPECT_EQ(Counter(*reader, "near_cache_hits"), hits + 1);
  Write(*writer, id, "2");
  EXPECT_EQ(Read(*reader, id), "2");
}

}  // namespace
}  // namespace sessiond
