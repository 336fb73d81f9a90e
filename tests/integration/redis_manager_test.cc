// RedisManager (redis mode) against a real redis-server: every operation, TTLs, the principal
// index, two managers sharing one Redis, events across them, and an outage. An integration test:
// it starts redis-server and waits for Redis to expire sessions. The same promises through real
// daemons and the client library are in redis_mode_test.cc.
#include "replication/redis/redis_manager.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/clock.h"
#include "replication/redis/redis_connection.h"
#include "replication/redis/redis_url.h"
#include "replication/session_id.h"
#include "replication/standalone_manager.h"
#include "sessiond/asio.h"
#include "tests/integration/redis_manager_fixture.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

bool Same(const v1::Session& a, const v1::Session& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

v1::CreateRequest CreateWith(std::initializer_list<std::pair<std::string, std::string>> attrs,
                             uint32_t idle_s = 60, std::string principal = "") {
  v1::CreateRequest request;
  request.set_max_idle_s(idle_s);
  request.set_principal(std::move(principal));
  for (const auto& [name, value] : attrs) (*request.mutable_attributes())[name] = value;
  return request;
}

class RedisManagerTest : public test::RedisManagerFixture {
 protected:
  RedisOptions Options() {
    RedisOptions options;
    Result<RedisUrl> url = RedisUrl::Parse(redis_.url());
    EXPECT_TRUE(url.ok());
    options.url = *url;
    options.connections = 2;
    options.command_timeout = 2s;
    options.backoff_initial = 20ms;
    options.backoff_max = 200ms;
    options.unwatch_grace = 200ms;
    options.ping_interval = 200ms;
    return options;
  }

  std::unique_ptr<RedisManager> Manager(const std::string& node_id,
                                        std::optional<RedisOptions> options = std::nullopt) {
    ManagerOptions manager;
    manager.node_id = node_id;
    manager.limits = limits_;
    manager.clock = &clock_;
    manager.ids = &ids_;
    return std::make_unique<RedisManager>(io_.get_executor(), manager,
                                          options ? *options : Options());
  }

  // A started manager; fails the test if Redis is not reachable.
  std::unique_ptr<RedisManager> Started(const std::string& node_id,
                                        std::optional<RedisOptions> options = std::nullopt) {
    std::unique_ptr<RedisManager> m = Manager(node_id, std::move(options));
    EXPECT_TRUE(Await(m->Start()).ok());
    EXPECT_TRUE(m->Ready().ready) << m->Ready().detail;
    return m;
  }

  v1::Session CreateOk(RedisManager& m, v1::CreateRequest request) {
    Result<v1::Session> s = Await(m.Create(std::move(request)));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : v1::Session();
  }

  Result<v1::Session> Get(RedisManager& m, const std::string& id, bool touch = false) {
    v1::GetRequest request;
    request.set_id(id);
    request.set_touch(touch);
    return Await(m.Get(request));
  }

  Result<v1::Session> Set(RedisManager& m, const std::string& id, const std::string& name,
                          const std::string& value, uint64_t expected_version = 0) {
    v1::UpdateRequest request;
    request.set_id(id);
    request.set_expected_version(expected_version);
    (*request.mutable_set())[name] = value;
    return Await(m.Update(request));
  }

  std::vector<std::string> Principal(RedisManager& m, const std::string& principal) {
    v1::FindByPrincipalRequest request;
    request.set_principal(principal);
    Result<v1::SessionList> list = Await(m.FindByPrincipal(request));
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    std::vector<std::string> ids;
    if (list.ok()) {
      for (const v1::Session& s : list->sessions()) ids.push_back(s.id());
    }
    return ids;
  }

  SessionLimits limits_;
};

TEST_F(RedisManagerTest, EveryOperationRoundTrips) {
  auto m = Started("n1");
  const int64_t before = clock_.NowMs();
  v1::Session created = CreateOk(*m, CreateWith({{"cart", "3 items"}, {"lang", "en"}}, 60, "ann"));
  EXPECT_TRUE(IsWellFormedSessionId(created.id()));
  EXPECT_EQ(created.version(), 1u);
  EXPECT_GE(created.created_ms(), before - 1000);
  EXPECT_EQ(created.last_access_ms(), created.created_ms());
  EXPECT_EQ(created.max_idle_s(), 60u);
  EXPECT_EQ(created.principal(), "ann");

  Result<v1::Session> got = Get(*m, created.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(Same(*got, created)) << got->DebugString() << created.DebugString();

  v1::UpdateRequest update;
  update.set_id(created.id());
  update.set_expected_version(1);
  (*update.mutable_set())["cart"] = "4 items";
  (*update.mutable_set())["new"] = "x";
  update.add_remove("lang");
  Result<v1::Session> updated = Await(m->Update(update));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(updated->attributes().size(), 2u);
  EXPECT_EQ(updated->attributes().at("cart"), "4 items");
  EXPECT_EQ(updated->attributes().at("new"), "x");
  EXPECT_TRUE(Same(*Get(*m, created.id()), *updated));

  Result<v1::Session> rotated = Await(m->RotateId([&] {
    v1::RotateIdRequest r;
    r.set_id(created.id());
    return r;
  }()));
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_NE(rotated->id(), created.id());
  EXPECT_EQ(rotated->version(), 2u);
  EXPECT_EQ(rotated->attributes().at("cart"), "4 items");
  EXPECT_EQ(Get(*m, created.id()).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(Principal(*m, "ann"), std::vector<std::string>{rotated->id()});

  v1::InvalidateRequest invalidate;
  invalidate.set_id(rotated->id());
  ASSERT_TRUE(Await(m->Invalidate(invalidate)).ok());
  Result<v1::Session> gone = Get(*m, rotated->id());
  EXPECT_EQ(gone.status().code(), v1::NOT_FOUND);
  EXPECT_NE(gone.status().message().find("create a new one"), std::string::npos);
  EXPECT_EQ(Await(m->Invalidate(invalidate)).code(), v1::NOT_FOUND);
  EXPECT_TRUE(Principal(*m, "ann").empty());
  EXPECT_EQ(Query({"EXISTS", "sd:p:ann"}).integer(), 0);  // the index left nothing behind

  const v1::NodeStats stats = m->Stats();
  EXPECT_EQ(stats.mode(), "redis");
  EXPECT_EQ(stats.counters().at("sessions_created"), 1u);
  EXPECT_EQ(stats.counters().at("sessions_updated"), 1u);
  EXPECT_EQ(stats.counters().at("sessions_rotated"), 1u);
  EXPECT_EQ(stats.counters().at("sessions_invalidated"), 1u);
  AwaitVoid(m->Stop());
  EXPECT_FALSE(m->Ready().ready);
}

TEST_F(RedisManagerTest, UnknownAndMalformedIdsAreNotFound) {
  auto m = Started("n1");
  EXPECT_EQ(Get(*m, "no-such-session").status().code(), v1::NOT_FOUND);
  EXPECT_EQ(Get(*m, ids_.NewId()).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(Get(*m, ids_.NewId(), /*touch=*/true).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(Set(*m, ids_.NewId(), "a", "b").status().code(), v1::NOT_FOUND);
  v1::RotateIdRequest rotate;
  rotate.set_id(ids_.NewId());
  EXPECT_EQ(Await(m->RotateId(rotate)).status().code(), v1::NOT_FOUND);
}

// The TTL is the idle timeout plus one touch window (max_idle_s / 4: reads write the access
// time at most once per window), capped by the lifetime.
TEST_F(RedisManagerTest, TheHashTtlIsTheSessionDeadline) {
  auto m = Started("n1");
  const v1::Session idle_only = CreateOk(*m, CreateWith({{"a", "1"}}, 100));
  const int64_t ttl = Query({"PTTL", "sd:s:" + idle_only.id()}).integer();
  EXPECT_LE(ttl, 125'000);
  EXPECT_GT(ttl, 120'000);

  v1::CreateRequest capped = CreateWith({{"a", "1"}}, 100);
  capped.set_max_lifetime_s(30);
  const v1::Session s = CreateOk(*m, capped);
  EXPECT_EQ(s.max_lifetime_s(), 30u);
  const int64_t capped_ttl = Query({"PTTL", "sd:s:" + s.id()}).integer();
  EXPECT_LE(capped_ttl, 30'000);
  EXPECT_GT(capped_ttl, 25'000);
  // A touch refreshes the idle deadline but never passes the lifetime.
  ASSERT_TRUE(Get(*m, s.id(), /*touch=*/true).ok());
  EXPECT_LE(Query({"PTTL", "sd:s:" + s.id()}).integer(), 30'000);

  // A shorter idle timeout shortens the TTL at once.
  v1::UpdateRequest shorter;
  shorter.set_id(idle_only.id());
  shorter.set_max_idle_s(10);
  Result<v1::Session> updated = Await(m->Update(shorter));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->max_idle_s(), 10u);
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_LE(Query({"PTTL", "sd:s:" + idle_only.id()}).integer(), 12'500);

  // The default idle timeout applies when a create names none.
  const v1::Session defaulted = CreateOk(*m, CreateWith({}, 0));
  EXPECT_EQ(defaulted.max_idle_s(), limits_.default_max_idle_s);
}

TEST_F(RedisManagerTest, TouchMovesTheAccessTimeAndNotTheVersion) {
  auto m = Started("n1");
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}}, 100));
  Query({"PEXPIRE", "sd:s:" + s.id(), "50000"});  // as if time had passed
  Result<v1::Session> touched = Get(*m, s.id(), /*touch=*/true);
  ASSERT_TRUE(touched.ok()) << touched.status().ToString();
  EXPECT_EQ(touched->version(), 1u);
  EXPECT_GE(touched->last_access_ms(), s.last_access_ms());
  EXPECT_GT(Query({"PTTL", "sd:s:" + s.id()}).integer(), 95'000);

  // An update that changes nothing is not a change: no new version, no event.
  Result<v1::Session> same = Set(*m, s.id(), "a", "1");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version(), 1u);
  v1::UpdateRequest remove_absent;
  remove_absent.set_id(s.id());
  remove_absent.add_remove("never-set");
  EXPECT_EQ(Await(m->Update(remove_absent))->version(), 1u);
  EXPECT_EQ(m->Stats().counters().at("sessions_updated"), 0u);
}

// A read with touch writes the access time only once the last write is a touch window old
// (judged by the key's TTL, in Redis's time), so most reads are a plain HGETALL; the session
// still never expires earlier than its idle timeout after a read.
TEST_F(RedisManagerTest, ReadsWriteTheAccessTimeOncePerTouchWindow) {
  auto m = Started("n1");
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}}, 100));  // window 25 s
  const std::string key = "sd:s:" + s.id();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Get(*m, s.id(), /*touch=*/true).ok());
  EXPECT_EQ(m->Stats().counters().at("redis_touches_written"), 0u);
  EXPECT_GT(Query({"PTTL", key}).integer(), 100'000);

  Query({"PEXPIRE", key, "101000"});  // as if 24 s had passed: not due yet
  ASSERT_TRUE(Get(*m, s.id(), /*touch=*/true).ok());
  EXPECT_EQ(m->Stats().counters().at("redis_touches_written"), 0u);
  Query({"PEXPIRE", key, "99000"});  // as if 26 s had passed: due
  Result<v1::Session> touched = Get(*m, s.id(), /*touch=*/true);
  ASSERT_TRUE(touched.ok()) << touched.status().ToString();
  EXPECT_EQ(m->Stats().counters().at("redis_touches_written"), 1u);
  EXPECT_GT(Query({"PTTL", key}).integer(), 120'000);
  EXPECT_EQ(touched->version(), 1u);
  EXPECT_EQ(touched->attributes().at("a"), "1");
  // The answer carries the access time written, as a read without touch then sees it.
  EXPECT_EQ(Get(*m, s.id())->last_access_ms(), touched->last_access_ms());

  // A key whose TTL was removed behind sessiond's back gets it back at the next read.
  Query({"PERSIST", key});
  ASSERT_TRUE(Get(*m, s.id(), /*touch=*/true).ok());
  EXPECT_GT(Query({"PTTL", key}).integer(), 120'000);
  // Reads without touch never write.
  Query({"PEXPIRE", key, "50000"});
  ASSERT_TRUE(Get(*m, s.id()).ok());
  EXPECT_LE(Query({"PTTL", key}).integer(), 50'000);
  EXPECT_EQ(m->Stats().counters().at("redis_touches_written"), 2u);
}

// An update answers the session as it is after the update, though the script sends back the
// hash from before it.
TEST_F(RedisManagerTest, AnUpdateAnswersTheSessionAfterIt) {
  auto m = Started("n1");
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}, {"b", "2"}, {"c", "3"}}, 100, "dan"));
  v1::UpdateRequest update;
  update.set_id(s.id());
  (*update.mutable_set())["a"] = "10";
  (*update.mutable_set())["d"] = "4";
  update.add_remove("b");
  update.add_remove("b");
  update.add_remove("never-set");
  update.set_principal("");
  update.set_max_idle_s(50);
  Result<v1::Session> updated = Await(m->Update(update));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  Result<v1::Session> read = Get(*m, s.id());
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*updated, *read))
      << updated->DebugString() << " vs " << read->DebugString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(updated->attributes().size(), 3u);
  EXPECT_EQ(updated->principal(), "");
  EXPECT_EQ(updated->max_idle_s(), 50u);
  EXPECT_TRUE(Principal(*m, "dan").empty());

  update.clear_remove();
  update.clear_principal();
  update.clear_max_idle_s();
  update.mutable_set()->clear();
  update.set_principal("erin");
  update.set_touch(true);
  updated = Await(m->Update(update));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  read = Get(*m, s.id());
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*updated, *read))
      << updated->DebugString() << " vs " << read->DebugString();
  EXPECT_EQ(updated->version(), 3u);
  EXPECT_EQ(Principal(*m, "erin"), std::vector<std::string>{s.id()});
}

TEST_F(RedisManagerTest, StaleExpectedVersionIsAConflict) {
  auto m = Started("n1");
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}}));
  ASSERT_TRUE(Set(*m, s.id(), "a", "2", /*expected_version=*/1).ok());
  Result<v1::Session> stale = Set(*m, s.id(), "a", "3", /*expected_version=*/1);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), v1::CONFLICT);
  EXPECT_NE(stale.status().message().find("is at version 2, not the expected 1"), std::string::npos)
      << stale.status().message();
  EXPECT_EQ(Get(*m, s.id())->attributes().at("a"), "2");
  EXPECT_EQ(m->Stats().counters().at("update_conflicts"), 1u);
}

// The same bad requests get the same statuses and sentences as in standalone mode.
TEST_F(RedisManagerTest, LimitsAnswerAsInStandaloneMode) {
  limits_.max_attributes = 3;
  limits_.max_value_bytes = 10;
  limits_.max_name_bytes = 5;
  limits_.max_principal_bytes = 4;
  limits_.max_idle_limit_s = 100;
  auto redis_mode = Started("n1");
  StandaloneManager standalone(io_.get_executor(), ManagerOptions{"n1", limits_, &clock_, &ids_});
  ASSERT_TRUE(Await(standalone.Start()).ok());

  auto same_create = [&](v1::CreateRequest request) {
    Result<v1::Session> a = Await(redis_mode->Create(request));
    Result<v1::Session> b = Await(standalone.Create(request));
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.status().ToString(), b.status().ToString());
  };
  same_create(CreateWith({{"a", std::string(11, 'x')}}));
  same_create(CreateWith({{"toolong", "x"}}));
  same_create(CreateWith({{"", "x"}}));
  same_create(CreateWith({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}));
  same_create(CreateWith({}, 101));
  same_create(CreateWith({}, 60, "alice"));

  const v1::Session r = CreateOk(*redis_mode, CreateWith({{"a", "1"}, {"b", "2"}}));
  Result<v1::Session> s_created = Await(standalone.Create(CreateWith({{"a", "1"}, {"b", "2"}})));
  ASSERT_TRUE(s_created.ok());
  auto same_update = [&](v1::UpdateRequest request) {
    request.set_id(r.id());
    Result<v1::Session> a = Await(redis_mode->Update(request));
    request.set_id(s_created->id());
    Result<v1::Session> b = Await(standalone.Update(request));
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.status().ToString(), b.status().ToString());
  };
  v1::UpdateRequest too_many;
  (*too_many.mutable_set())["c"] = "3";
  (*too_many.mutable_set())["d"] = "4";
  same_update(too_many);
  v1::UpdateRequest both;
  (*both.mutable_set())["a"] = "2";
  both.add_remove("a");
  same_update(both);
  v1::UpdateRequest zero_idle;
  zero_idle.set_max_idle_s(0);
  same_update(zero_idle);
  v1::UpdateRequest big;
  (*big.mutable_set())["a"] = std::string(11, 'y');
  same_update(big);
  // Swapping one attribute for another at the limit is fine: the count does not grow.
  v1::UpdateRequest swap;
  swap.set_id(r.id());
  (*swap.mutable_set())["c"] = "3";
  ASSERT_TRUE(Await(redis_mode->Update(swap)).ok());
  swap.clear_set();
  (*swap.mutable_set())["d"] = "4";
  swap.add_remove("a");
  Result<v1::Session> swapped = Await(redis_mode->Update(swap));
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  EXPECT_EQ(swapped->attributes().size(), 3u);

  v1::FindByPrincipalRequest nobody;
  EXPECT_EQ(Await(redis_mode->FindByPrincipal(nobody)).status().ToString(),
            Await(standalone.FindByPrincipal(nobody)).status().ToString());
  AwaitVoid(standalone.Stop());
}

TEST_F(RedisManagerTest, PrincipalIndexIsExactAfterInvalidateRotateAndExpiry) {
  auto m = Started("n1");
  std::vector<v1::SessionEvent> expired;
  AwaitVoid(m->PrepareWatch());  // as the daemon does before a watch
  auto watch = m->Watch({}, [&](const v1::SessionEvent& e) {
    if (e.kind() == v1::SessionEvent::EXPIRED) expired.push_back(e);
  });
  const v1::Session kept = CreateOk(*m, CreateWith({{"a", "1"}}, 60, "alice"));
  const v1::Session invalidated = CreateOk(*m, CreateWith({{"a", "1"}}, 60, "alice"));
  const v1::Session rotated = CreateOk(*m, CreateWith({{"a", "1"}}, 60, "alice"));
  const v1::Session expiring = CreateOk(*m, CreateWith({{"a", "1"}}, 1, "alice"));
  const v1::Session moved = CreateOk(*m, CreateWith({{"a", "1"}}, 60, "alice"));
  EXPECT_EQ(Principal(*m, "alice").size(), 5u);

  v1::InvalidateRequest invalidate;
  invalidate.set_id(invalidated.id());
  ASSERT_TRUE(Await(m->Invalidate(invalidate)).ok());
  v1::RotateIdRequest rotate;
  rotate.set_id(rotated.id());
  Result<v1::Session> new_id = Await(m->RotateId(rotate));
  ASSERT_TRUE(new_id.ok());
  v1::UpdateRequest to_bob;
  to_bob.set_id(moved.id());
  to_bob.set_principal("bob");
  ASSERT_TRUE(Await(m->Update(to_bob)).ok());

  // Wait for Redis to expire the 1-second session, as the event says.
  ASSERT_TRUE(RunUntil([&] { return !expired.empty(); }, 10s));
  EXPECT_EQ(expired[0].id(), expiring.id());
  EXPECT_EQ(expired[0].origin_node(), "redis");

  std::vector<std::string> want{kept.id(), new_id->id()};
  std::vector<std::string> got = Principal(*m, "alice");
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  // Inside Redis too: exactly these members (FindByPrincipal dropped the expired one).
  RedisReply members = Query({"ZRANGE", "sd:p:alice", "0", "-1"});
  std::vector<std::string> raw;
  for (const RedisReply& e : members.elements()) raw.push_back(e.text());
  std::sort(raw.begin(), raw.end());
  EXPECT_EQ(raw, want);
  EXPECT_EQ(Principal(*m, "bob"), std::vector<std::string>{moved.id()});
}

TEST_F(RedisManagerTest, APrincipalIndexExpiresWithItsLastSession) {
  auto m = Started("n1");
  std::vector<std::string> expired;
  AwaitVoid(m->PrepareWatch());  // as the daemon does before a watch
  auto watch = m->Watch({}, [&](const v1::SessionEvent& e) {
    if (e.kind() == v1::SessionEvent::EXPIRED) expired.push_back(e.id());
  });
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}}, 1, "carol"));
  EXPECT_EQ(Query({"ZCARD", "sd:p:carol"}).integer(), 1);
  EXPECT_LE(Query({"PTTL", "sd:p:carol"}).integer(), 1250);
  ASSERT_TRUE(RunUntil([&] { return !expired.empty(); }, 10s));
  // No node has to hear the expiry for the index to go: it had the same deadline.
  EXPECT_EQ(Query({"EXISTS", "sd:p:carol"}).integer(), 0);
  EXPECT_TRUE(Principal(*m, "carol").empty());
}

TEST_F(RedisManagerTest, ConcurrentVersionedUpdatesOnTwoNodesGiveOneOkAndOneConflict) {
  auto m1 = Started("n1");
  auto m2 = Started("n2");
  for (int round = 0; round < 20; ++round) {
    const v1::Session s = CreateOk(*m1, CreateWith({{"a", "0"}}));
    std::optional<Result<v1::Session>> r1, r2;
    v1::UpdateRequest u1, u2;
    u1.set_id(s.id());
    u1.set_expected_version(1);
    (*u1.mutable_set())["a"] = "from n1";
    u2 = u1;
    (*u2.mutable_set())["a"] = "from n2";
    asio::co_spawn(io_, StoreResult(m1->Update(u1), &r1), asio::detached);
    asio::co_spawn(io_, StoreResult(m2->Update(u2), &r2), asio::detached);
    ASSERT_TRUE(RunUntil([&] { return r1 && r2; }));
    ASSERT_NE(r1->ok(), r2->ok()) << r1->status().ToString() << " / " << r2->status().ToString();
    const Result<v1::Session>& winner = r1->ok() ? *r1 : *r2;
    const Result<v1::Session>& loser = r1->ok() ? *r2 : *r1;
    EXPECT_EQ(loser.status().code(), v1::CONFLICT);
    EXPECT_EQ(winner->version(), 2u);
    EXPECT_EQ(Get(*m2, s.id())->attributes().at("a"), winner->attributes().at("a"));
  }
}

TEST_F(RedisManagerTest, AWatchOnOneNodeSeesChangesAndExpiriesFromAnother) {
  auto m1 = Started("n1");
  auto m2 = Started("n2");
  std::vector<v1::SessionEvent> on_id, on_all;
  AwaitVoid(m2->PrepareWatch());  // as the daemon does before a watch
  auto all = m2->Watch({}, [&](const v1::SessionEvent& e) { on_all.push_back(e); });
  const v1::Session s = CreateOk(*m1, CreateWith({{"a", "1"}}));
  // Events travel through Redis pub/sub, so one may reach another node after the change was
  // acknowledged: wait for the creation before watching the id, or that watch could see it.
  ASSERT_TRUE(RunUntil([&] { return on_all.size() == 1; }));
  EXPECT_EQ(on_all[0].kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(on_all[0].version(), 1u);
  AwaitVoid(m2->PrepareWatch());  // as the daemon does before a watch
  auto by_id = m2->Watch({s.id()}, [&](const v1::SessionEvent& e) { on_id.push_back(e); });

  ASSERT_TRUE(Set(*m1, s.id(), "a", "2").ok());
  ASSERT_TRUE(RunUntil([&] { return on_id.size() == 1; }));
  EXPECT_EQ(on_id[0].kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(on_id[0].id(), s.id());
  EXPECT_EQ(on_id[0].version(), 2u);
  EXPECT_EQ(on_id[0].origin_node(), "n1");
  EXPECT_GT(on_id[0].at_ms(), 0);

  // The watch follows its session through a rotation made on the other node.
  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  Result<v1::Session> rotated = Await(m1->RotateId(rotate));
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(RunUntil([&] { return on_id.size() == 2; }));
  EXPECT_EQ(on_id[1].kind(), v1::SessionEvent::ID_CHANGED);
  EXPECT_EQ(on_id[1].new_id(), rotated->id());
  ASSERT_TRUE(Set(*m1, rotated->id(), "a", "3").ok());
  ASSERT_TRUE(RunUntil([&] { return on_id.size() == 3; }));
  EXPECT_EQ(on_id[2].id(), rotated->id());
  EXPECT_EQ(on_id[2].version(), 3u);

  const v1::Session short_lived = CreateOk(*m1, CreateWith({{"a", "1"}}, 1));
  ASSERT_TRUE(RunUntil([&] {
    return std::any_of(on_all.begin(), on_all.end(), [&](const v1::SessionEvent& e) {
      return e.kind() == v1::SessionEvent::EXPIRED && e.id() == short_lived.id();
    });
  }));
  // Every event came once, in the order Redis applied the changes.
  std::vector<v1::SessionEvent::Kind> kinds;
  for (const v1::SessionEvent& e : on_all) kinds.push_back(e.kind());
  EXPECT_EQ(kinds,
            (std::vector<v1::SessionEvent::Kind>{
                v1::SessionEvent::CREATED, v1::SessionEvent::CHANGED, v1::SessionEvent::ID_CHANGED,
                v1::SessionEvent::CHANGED, v1::SessionEvent::CREATED, v1::SessionEvent::EXPIRED}));
  // The writing node's own watch sees its events once too.
  std::vector<v1::SessionEvent> on_m1;
  AwaitVoid(m1->PrepareWatch());  // as the daemon does before a watch
  auto own = m1->Watch({}, [&](const v1::SessionEvent& e) { on_m1.push_back(e); });
  v1::InvalidateRequest invalidate;
  invalidate.set_id(rotated->id());
  ASSERT_TRUE(Await(m1->Invalidate(invalidate)).ok());
  // (m1 may still be delivering the expiry when its watch starts, so look at the last event.)
  ASSERT_TRUE(RunUntil([&] {
    return on_all.size() == 7 && !on_m1.empty() &&
           on_m1.back().kind() == v1::SessionEvent::INVALIDATED;
  }));
  EXPECT_EQ(on_all.back().kind(), v1::SessionEvent::INVALIDATED);
  EXPECT_EQ(on_m1.back().version(), 3u);
  EXPECT_EQ(on_m1.back().origin_node(), "n1");
  v1::NodeStats stats = m2->Stats();
  EXPECT_EQ(stats.counters().at("sessions_expired"), 1u);
  EXPECT_EQ(stats.counters().at("watchers"), 2u);
}

// Redis writes every event to every subscribed node: a node subscribes to the events channel
// only while it has watches (and a grace period after), so unwatched changes cost no writes.
TEST_F(RedisManagerTest, ANodeListensForEventsOnlyWhileItHasWatches) {
  auto m1 = Started("n1");
  auto m2 = Started("n2");
  auto listeners = [&] { return Query({"PUBSUB", "NUMSUB", "sd:ev"}).elements().at(1).integer(); };
  EXPECT_EQ(listeners(), 0);
  const v1::Session s = CreateOk(*m1, CreateWith({{"a", "1"}}));
  ASSERT_TRUE(Set(*m1, s.id(), "a", "2").ok());

  std::vector<v1::SessionEvent> seen;
  AwaitVoid(m2->PrepareWatch());
  EXPECT_EQ(listeners(), 1);
  auto watch = m2->Watch({s.id()}, [&](const v1::SessionEvent& e) { seen.push_back(e); });
  ASSERT_TRUE(Set(*m1, s.id(), "a", "3").ok());  // right after the watch: it must see it
  ASSERT_TRUE(RunUntil([&] { return seen.size() == 1; }));
  EXPECT_EQ(seen[0].version(), 3u);

  watch.reset();
  ASSERT_TRUE(RunUntil([&] { return listeners() == 0; }));  // after unwatch_grace
  EXPECT_EQ(m2->Stats().counters().at("watchers"), 0u);
  // Watched again (without PrepareWatch, as a caller inside the process may): listens again.
  auto again = m2->Watch({}, [&](const v1::SessionEvent& e) { seen.push_back(e); });
  ASSERT_TRUE(RunUntil([&] { return listeners() == 1; }));
}

TEST_F(RedisManagerTest, FaultWhileRedisIsDownEveryRequestIsUnavailableAndTheNodeRecovers) {
  auto m = Started("n1");
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}}));
  redis_.Kill9();
  ASSERT_TRUE(RunUntil([&] {
    return !m->Ready().ready && m->Ready().detail.find("unreachable") != std::string::npos;
  })) << m->Ready().detail;

  auto expect_unavailable = [](const Status& status) {
    EXPECT_EQ(status.code(), v1::UNAVAILABLE) << status.ToString();
    EXPECT_NE(status.message().find("Redis at 127.0.0.1:"), std::string::npos) << status.message();
  };
  expect_unavailable(Await(m->Create(CreateWith({{"a", "1"}}))).status());
  expect_unavailable(Get(*m, s.id()).status());
  expect_unavailable(Get(*m, s.id(), true).status());
  expect_unavailable(Set(*m, s.id(), "a", "2").status());
  v1::InvalidateRequest invalidate;
  invalidate.set_id(s.id());
  expect_unavailable(Await(m->Invalidate(invalidate)));
  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  expect_unavailable(Await(m->RotateId(rotate)).status());
  v1::FindByPrincipalRequest find;
  find.set_principal("x");
  expect_unavailable(Await(m->FindByPrincipal(find)).status());

  // Back, empty (no persistence): the same manager serves again, scripts and all.
  ASSERT_TRUE(redis_.Restart());
  ASSERT_TRUE(RunUntil([&] { return m->Ready().ready; })) << m->Ready().detail;
  EXPECT_EQ(Get(*m, s.id()).status().code(), v1::NOT_FOUND);
  const v1::Session again = CreateOk(*m, CreateWith({{"a", "1"}}));
  EXPECT_TRUE(Set(*m, again.id(), "a", "2").ok());
  std::vector<v1::SessionEvent> events;
  AwaitVoid(m->PrepareWatch());  // as the daemon does before a watch
  auto watch = m->Watch({again.id()}, [&](const v1::SessionEvent& e) { events.push_back(e); });
  ASSERT_TRUE(Set(*m, again.id(), "a", "3").ok());
  ASSERT_TRUE(RunUntil([&] { return events.size() == 1; }));  // events resubscribed too
}

TEST_F(RedisManagerTest, FaultStartsWithoutRedisAndServesOnceItComes) {
  const uint16_t port = redis_.port();
  redis_.Kill9();
  RedisOptions options = Options();
  options.connect_timeout = 200ms;
  auto m = Manager("n1", options);
  ASSERT_TRUE(Await(m->Start()).ok());
  EXPECT_FALSE(m->Ready().ready);
  EXPECT_EQ(Await(m->Create(CreateWith({}))).status().code(), v1::UNAVAILABLE);
  ASSERT_TRUE(redis_.Restart());
  ASSERT_EQ(redis_.port(), port);
  ASSERT_TRUE(RunUntil([&] { return m->Ready().ready; })) << m->Ready().detail;
  EXPECT_TRUE(Await(m->Create(CreateWith({}))).ok());
}

TEST_F(RedisManagerTest, ScriptsAreReloadedAfterNoscript) {
  auto m = Started("n1");
  const v1::Session s = CreateOk(*m, CreateWith({{"a", "1"}}));
  ASSERT_TRUE(Query({"SCRIPT", "FLUSH"}).IsText("OK"));
  Result<v1::Session> updated = Set(*m, s.id(), "a", "2");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(m->Stats().counters().at("redis_script_reloads"), 1u);
  EXPECT_TRUE(Set(*m, s.id(), "a", "3").ok());
  EXPECT_EQ(m->Stats().counters().at("redis_script_reloads"), 1u);  // loaded once
}

TEST_F(RedisManagerTest, EnablesKeyspaceEventsOrSaysWhyNot) {
  ASSERT_EQ(Query({"CONFIG", "GET", "notify-keyspace-events"}).elements()[1].text(), "");
  RedisOptions hands_off = Options();
  hands_off.configure_keyspace_events = false;
  auto m1 = Started("n1", hands_off);
  EXPECT_NE(m1->Ready().detail.find("expiry events off"), std::string::npos) << m1->Ready().detail;
  EXPECT_NE(m1->Ready().detail.find("notify-keyspace-events Exe"), std::string::npos);

  auto m2 = Started("n2");
  const std::string flags = Query({"CONFIG", "GET", "notify-keyspace-events"}).elements()[1].text();
  for (char flag : {'E', 'x', 'e'}) EXPECT_NE(flags.find(flag), std::string::npos) << flags;
  EXPECT_NE(m2->Ready().detail.find("expiry events on"), std::string::npos) << m2->Ready().detail;
}

TEST_F(RedisManagerTest, ASessionStaysInTheCompactListpackEncoding) {
  auto m = Started("n1");
  // Two 50-byte attributes, as in the figures.
  const v1::Session s = CreateOk(
      *m, CreateWith({{"user", std::string(50, 'u')}, {"cart", std::string(50, 'c')}}, 1800));
  const std::string key = "sd:s:" + s.id();
  EXPECT_EQ(Query({"OBJECT", "ENCODING", key}).text(), "listpack");
  const int64_t bytes = Query({"MEMORY", "USAGE", key, "SAMPLES", "0"}).integer();
  std::printf("[ redis    ] MEMORY USAGE of a session with two 50-byte attributes: %lld bytes\n",
              static_cast<long long>(bytes));
  EXPECT_GT(bytes, 0);
  // Touches and updates keep it there.
  ASSERT_TRUE(Get(*m, s.id(), true).ok());
  ASSERT_TRUE(Set(*m, s.id(), "user", std::string(60, 'v')).ok());
  EXPECT_EQ(Query({"OBJECT", "ENCODING", key}).text(), "listpack");
}

}  // namespace
}  // namespace sessiond
