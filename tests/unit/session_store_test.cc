#include "replication/session_store.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "replication/session_id.h"
#include "replication/session_key.h"

namespace sessiond {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

// Predictable, well-formed ids: the n-th id encodes n.
std::string Id(uint64_t n) {
  std::array<uint8_t, SessionKey::kBytes> bytes{};
  bytes[0] = 0x5E;  // so that no id is all zeros
  for (int i = 0; i < 8; ++i) bytes[15 - i] = static_cast<uint8_t>(n >> (8 * i));
  return SessionKey(bytes).ToText();
}

SessionLimits SmallLimits() {
  SessionLimits limits;
  limits.max_value_bytes = 100;
  limits.max_name_bytes = 8;
  limits.max_attributes = 3;
  limits.max_principal_bytes = 10;
  limits.max_sessions = 5;
  limits.default_max_idle_s = 60;
  limits.max_idle_limit_s = 3600;
  return limits;
}

v1::CreateRequest Create(uint32_t max_idle_s = 0, uint32_t max_lifetime_s = 0,
                         std::string principal = "") {
  v1::CreateRequest r;
  r.set_max_idle_s(max_idle_s);
  r.set_max_lifetime_s(max_lifetime_s);
  r.set_principal(std::move(principal));
  return r;
}

v1::UpdateRequest Update(const std::string& id) {
  v1::UpdateRequest r;
  r.set_id(id);
  return r;
}

// Hands out the ids it was given, in order.
class ScriptedIds final : public IdGenerator {
 public:
  explicit ScriptedIds(std::vector<std::string> ids) : ids_(std::move(ids)) {}
  std::string NewId() override { return ids_.at(next_++); }

 private:
  std::vector<std::string> ids_;
  size_t next_ = 0;
};

class SessionStoreTest : public ::testing::Test {
 protected:
  // Creates session Id(n) at `now` or fails the test.
  const StoredSession* MustCreate(uint64_t n, const v1::CreateRequest& request = Create(),
                                  int64_t now = kT0) {
    Result<const StoredSession*> r = store_.Create(Id(n), request, now);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  }

  std::vector<std::string> ExpireDue(int64_t now) {
    std::vector<std::string> expired;
    store_.ExpireDue(now, [&](const StoredSession& s) { expired.push_back(s.id()); });
    return expired;
  }

  SessionStore store_{SmallLimits()};
};

TEST_F(SessionStoreTest, CreateHoldsEveryFieldAtVersionOne) {
  v1::CreateRequest request = Create(120, 600, "alice");
  (*request.mutable_attributes())["user"] = "alice";
  (*request.mutable_attributes())["cart"] = std::string("\0\1\2", 3);
  const StoredSession* s = MustCreate(1, request, kT0 + 5);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->id(), Id(1));
  EXPECT_EQ(s->created_ms(), kT0 + 5);
  EXPECT_EQ(s->last_access_ms(), kT0 + 5);
  EXPECT_EQ(s->version(), 1u);
  EXPECT_EQ(s->max_idle_s(), 120u);
  EXPECT_EQ(s->max_lifetime_s(), 600u);
  EXPECT_EQ(s->principal(), "alice");
  EXPECT_EQ(s->attributes().Find("cart"), std::string_view("\0\1\2", 3));

  const v1::Session p = s->ToProto();
  EXPECT_EQ(p.id(), Id(1));
  EXPECT_EQ(p.created_ms(), kT0 + 5);
  EXPECT_EQ(p.last_access_ms(), kT0 + 5);
  EXPECT_EQ(p.max_idle_s(), 120u);
  EXPECT_EQ(p.max_lifetime_s(), 600u);
  EXPECT_EQ(p.principal(), "alice");
  EXPECT_EQ(p.version(), 1u);
  ASSERT_EQ(p.attributes().size(), 2);
  EXPECT_EQ(p.attributes().at("user"), "alice");

  EXPECT_EQ(store_.Find(Id(1), kT0 + 5), s);
  EXPECT_EQ(store_.size(), 1u);
}

TEST_F(SessionStoreTest, CreateWithoutIdleTimeoutUsesTheDefault) {
  const StoredSession* s = MustCreate(1);
  EXPECT_EQ(s->max_idle_s(), 60u);
  EXPECT_EQ(s->DeadlineMs(), kT0 + 60'000);
}

TEST_F(SessionStoreTest, FindTreatsUnknownAndMalformedIdsAsAbsent) {
  MustCreate(1);
  EXPECT_EQ(store_.Find(Id(2), kT0), nullptr);
  EXPECT_EQ(store_.Find("", kT0), nullptr);
  EXPECT_EQ(store_.Find("not an id", kT0), nullptr);
  EXPECT_EQ(store_.Find(Id(1) + "x", kT0), nullptr);
}

TEST_F(SessionStoreTest, NotFoundNamesTheSessionByTagOnly) {
  const std::string id = Id(42);
  Result<const StoredSession*> r = store_.Touch(id, kT0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), v1::NOT_FOUND);
  EXPECT_EQ(r.status().message(),
            "session " + LogTag(id) +
                " not found: it expired, was invalidated or never existed; create a new one");
  EXPECT_EQ(r.status().message().find(id), std::string::npos);
}

// Every limit, on create: the right code, a sentence, and nothing stored.
TEST_F(SessionStoreTest, CreateRejectsEachBrokenLimit) {
  struct Case {
    const char* what;
    v1::CreateRequest request;
    StatusCode code;
  };
  std::vector<Case> cases;
  {
    v1::CreateRequest r = Create();
    (*r.mutable_attributes())["big"] = std::string(101, 'x');
    cases.push_back({"value over max_value_bytes", r, v1::TOO_LARGE});
  }
  {
    v1::CreateRequest r = Create();
    for (const char* n : {"a", "b", "c", "d"}) (*r.mutable_attributes())[n] = "v";
    cases.push_back({"more than max_attributes", r, v1::RESOURCE_EXHAUSTED});
  }
  {
    v1::CreateRequest r = Create();
    (*r.mutable_attributes())["ninechars"] = "v";
    cases.push_back({"name over max_name_bytes", r, v1::INVALID_ARGUMENT});
  }
  {
    v1::CreateRequest r = Create();
    (*r.mutable_attributes())[""] = "v";
    cases.push_back({"empty name", r, v1::INVALID_ARGUMENT});
  }
  cases.push_back(
      {"principal over max_principal_bytes", Create(0, 0, "elevenchars"), v1::INVALID_ARGUMENT});
  cases.push_back({"max_idle_s over max_idle_limit_s", Create(3601), v1::INVALID_ARGUMENT});
  cases.push_back({"max_lifetime_s over max_idle_limit_s", Create(0, 3601), v1::INVALID_ARGUMENT});

  for (const Case& c : cases) {
    Result<const StoredSession*> r = store_.Create(Id(1), c.request, kT0);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().ToString();
    EXPECT_GT(r.status().message().size(), 20u) << c.what;
    EXPECT_NE(r.status().message().find(':'), std::string::npos)
        << c.what << ": say what to do after the colon";
    EXPECT_EQ(store_.size(), 0u) << c.what;
  }
  // The edges themselves are allowed.
  v1::CreateRequest at_limits = Create(3600, 3600, "tenchars!!");
  for (const char* n : {"a", "b", "eightchr"}) (*at_limits.mutable_attributes())[n] = "v";
  (*at_limits.mutable_attributes())["a"] = std::string(100, 'x');
  EXPECT_TRUE(store_.Create(Id(1), at_limits, kT0).ok());
}

TEST_F(SessionStoreTest, CreateRejectsTooManySessionsMalformedAndRepeatedIds) {
  for (uint64_t n = 0; n < 5; ++n) MustCreate(n);
  Result<const StoredSession*> full = store_.Create(Id(5), Create(), kT0);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(store_.size(), 5u);

  ASSERT_TRUE(store_.Erase(Id(0), kT0).ok());
  Result<const StoredSession*> repeated = store_.Create(Id(1), Create(), kT0);
  EXPECT_EQ(repeated.status().code(), v1::CONFLICT);
  Result<const StoredSession*> malformed = store_.Create("short", Create(), kT0);
  EXPECT_EQ(malformed.status().code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(malformed.status().message().find("short"), std::string::npos);
  EXPECT_TRUE(store_.Create(Id(5), Create(), kT0).ok());
}

TEST_F(SessionStoreTest, UpdateSetsAndRemovesAttributesAndBumpsTheVersion) {
  v1::CreateRequest request = Create();
  (*request.mutable_attributes())["a"] = "1";
  (*request.mutable_attributes())["b"] = "2";
  MustCreate(1, request);

  v1::UpdateRequest u = Update(Id(1));
  (*u.mutable_set())["a"] = "one";
  (*u.mutable_set())["c"] = "3";
  u.add_remove("b");
  u.add_remove("gone");
  Result<SessionStore::UpdateResult> r = store_.Update(u, kT0 + 1000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->changed);
  const StoredSession* s = r->session;
  EXPECT_EQ(s->version(), 2u);
  EXPECT_EQ(s->last_access_ms(), kT0 + 1000);  // a change is an access
  EXPECT_EQ(s->attributes().count(), 2u);
  EXPECT_EQ(s->attributes().Find("a"), "one");
  EXPECT_EQ(s->attributes().Find("c"), "3");
  EXPECT_FALSE(s->attributes().Find("b").has_value());
}

TEST_F(SessionStoreTest, UpdateThatChangesNothingKeepsVersionAndAccessTime) {
  v1::CreateRequest request = Create(0, 0, "alice");
  (*request.mutable_attributes())["a"] = "1";
  MustCreate(1, request);

  v1::UpdateRequest same = Update(Id(1));
  (*same.mutable_set())["a"] = "1";
  same.add_remove("absent");
  same.set_principal("alice");
  same.set_max_idle_s(60);
  Result<SessionStore::UpdateResult> r = store_.Update(same, kT0 + 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed);
  EXPECT_EQ(r->session->version(), 1u);
  EXPECT_EQ(r->session->last_access_ms(), kT0);
}

TEST_F(SessionStoreTest, TouchOnlyUpdateMovesAccessTimeButNotVersion) {
  MustCreate(1);
  v1::UpdateRequest u = Update(Id(1));
  u.set_touch(true);
  Result<SessionStore::UpdateResult> r = store_.Update(u, kT0 + 5000);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed);
  EXPECT_EQ(r->session->version(), 1u);
  EXPECT_EQ(r->session->last_access_ms(), kT0 + 5000);
}

TEST_F(SessionStoreTest, UpdateChecksExpectedVersion) {
  MustCreate(1);
  v1::UpdateRequest u = Update(Id(1));
  (*u.mutable_set())["a"] = "1";
  u.set_expected_version(1);
  ASSERT_TRUE(store_.Update(u, kT0).ok());  // now at 2

  (*u.mutable_set())["a"] = "2";
  Result<SessionStore::UpdateResult> stale = store_.Update(u, kT0);  // still expects 1
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), v1::CONFLICT);
  EXPECT_NE(stale.status().message().find("version 2"), std::string::npos)
      << stale.status().message();
  EXPECT_EQ(store_.Find(Id(1), kT0)->attributes().Find("a"), "1");

  u.set_expected_version(2);
  ASSERT_TRUE(store_.Update(u, kT0).ok());
  u.set_expected_version(0);  // unconditional
  (*u.mutable_set())["a"] = "3";
  Result<SessionStore::UpdateResult> any = store_.Update(u, kT0);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->session->version(), 4u);
}

TEST_F(SessionStoreTest, UpdateAppliesAllOrNothing) {
  v1::CreateRequest request = Create(0, 0, "alice");
  (*request.mutable_attributes())["a"] = "1";
  MustCreate(1, request);

  struct Case {
    const char* what;
    v1::UpdateRequest request;
    StatusCode code;
  };
  std::vector<Case> cases;
  auto base = [] {
    v1::UpdateRequest u = Update(Id(1));
    (*u.mutable_set())["a"] = "changed";
    u.set_principal("bob");
    u.set_max_idle_s(30);
    return u;
  };
  {
    v1::UpdateRequest u = base();
    (*u.mutable_set())["big"] = std::string(101, 'x');
    cases.push_back({"value too large", u, v1::TOO_LARGE});
  }
  {
    v1::UpdateRequest u = base();
    for (const char* n : {"b", "c", "d"}) (*u.mutable_set())[n] = "v";
    cases.push_back({"too many attributes", u, v1::RESOURCE_EXHAUSTED});
  }
  {
    v1::UpdateRequest u = base();
    (*u.mutable_set())["ninechars"] = "v";
    cases.push_back({"name too long", u, v1::INVALID_ARGUMENT});
  }
  {
    v1::UpdateRequest u = base();
    u.add_remove("");
    cases.push_back({"empty name removed", u, v1::INVALID_ARGUMENT});
  }
  {
    v1::UpdateRequest u = base();
    u.add_remove("a");
    cases.push_back({"set and removed", u, v1::INVALID_ARGUMENT});
  }
  {
    v1::UpdateRequest u = base();
    u.set_principal("elevenchars");
    cases.push_back({"principal too long", u, v1::INVALID_ARGUMENT});
  }
  {
    v1::UpdateRequest u = base();
    u.set_max_idle_s(3601);
    cases.push_back({"idle over limit", u, v1::INVALID_ARGUMENT});
  }
  {
    v1::UpdateRequest u = base();
    u.set_max_idle_s(0);
    cases.push_back({"idle of zero", u, v1::INVALID_ARGUMENT});
  }
  {
    v1::UpdateRequest u = base();
    u.set_expected_version(7);
    cases.push_back({"stale version", u, v1::CONFLICT});
  }
  {
    v1::UpdateRequest u = base();
    u.set_id(Id(2));
    cases.push_back({"unknown id", u, v1::NOT_FOUND});
  }
  for (const Case& c : cases) {
    Result<SessionStore::UpdateResult> r = store_.Update(c.request, kT0 + 1000);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().ToString();
    const StoredSession* s = store_.Find(Id(1), kT0);
    EXPECT_EQ(s->version(), 1u) << c.what;
    EXPECT_EQ(s->last_access_ms(), kT0) << c.what;
    EXPECT_EQ(s->attributes().Find("a"), "1") << c.what;
    EXPECT_EQ(s->attributes().count(), 1u) << c.what;
    EXPECT_EQ(s->principal(), "alice") << c.what;
    EXPECT_EQ(s->max_idle_s(), 60u) << c.what;
  }
  EXPECT_TRUE(store_.Update(base(), kT0 + 1000).ok());
}

TEST_F(SessionStoreTest, UpdateMayReplaceAttributesAtTheLimit) {
  v1::CreateRequest request = Create();
  for (const char* n : {"a", "b", "c"}) (*request.mutable_attributes())[n] = std::string("v");
  MustCreate(1, request);
  v1::UpdateRequest u = Update(Id(1));
  u.add_remove("a");
  (*u.mutable_set())["d"] = "v";
  (*u.mutable_set())["b"] = "w";
  ASSERT_TRUE(store_.Update(u, kT0).ok());
  v1::UpdateRequest over = Update(Id(1));
  (*over.mutable_set())["e"] = "v";
  EXPECT_EQ(store_.Update(over, kT0).status().code(), v1::RESOURCE_EXHAUSTED);
}

TEST_F(SessionStoreTest, EraseRemovesAndReportsTheVersion) {
  MustCreate(1);
  v1::UpdateRequest u = Update(Id(1));
  (*u.mutable_set())["a"] = "1";
  ASSERT_TRUE(store_.Update(u, kT0).ok());
  Result<uint64_t> erased = store_.Erase(Id(1), kT0);
  ASSERT_TRUE(erased.ok());
  EXPECT_EQ(*erased, 2u);
  EXPECT_EQ(store_.Find(Id(1), kT0), nullptr);
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(store_.Erase(Id(1), kT0).status().code(), v1::NOT_FOUND);
}

TEST_F(SessionStoreTest, RenameMovesTheSessionAndKeepsEverythingElse) {
  v1::CreateRequest request = Create(100, 0, "alice");
  (*request.mutable_attributes())["a"] = "1";
  MustCreate(1, request);
  Result<const StoredSession*> r = store_.Rename(Id(1), Id(2), kT0 + 10'000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->id(), Id(2));
  EXPECT_EQ((*r)->version(), 1u);
  EXPECT_EQ((*r)->last_access_ms(), kT0);
  EXPECT_EQ((*r)->attributes().Find("a"), "1");
  EXPECT_EQ(store_.Find(Id(1), kT0), nullptr);
  EXPECT_EQ(store_.Find(Id(2), kT0), *r);
  EXPECT_EQ(store_.size(), 1u);

  EXPECT_EQ(store_.Rename(Id(1), Id(3), kT0).status().code(), v1::NOT_FOUND);
  MustCreate(3);
  EXPECT_EQ(store_.Rename(Id(2), Id(3), kT0).status().code(), v1::CONFLICT);
  EXPECT_EQ(store_.Rename(Id(2), "bad", kT0).status().code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(store_.Find(Id(2), kT0), nullptr);
}

TEST_F(SessionStoreTest, IdleTimeoutExpiresAndTouchExtendsIt) {
  MustCreate(1, Create(10));
  ASSERT_NE(store_.Find(Id(1), kT0 + 9'999), nullptr);
  ASSERT_TRUE(store_.Touch(Id(1), kT0 + 9'000).ok());
  EXPECT_EQ(ExpireDue(kT0 + 10'000), std::vector<std::string>{});
  EXPECT_NE(store_.Find(Id(1), kT0 + 18'999), nullptr);
  EXPECT_EQ(ExpireDue(kT0 + 19'000), std::vector<std::string>{Id(1)});
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(store_.expiry_queue_size(), 0u);
}

TEST_F(SessionStoreTest, TouchByKeyIsTouchById) {
  MustCreate(1, Create(10));
  const SessionKey key = *SessionKey::FromText(Id(1));
  ASSERT_TRUE(store_.Touch(key, kT0 + 9'000).ok());
  EXPECT_EQ(store_.Find(key, kT0 + 9'000)->last_access_ms(), kT0 + 9'000);
  ASSERT_TRUE(store_.Touch(key, kT0 + 5'000).ok());  // never backwards
  EXPECT_EQ(store_.Find(key, kT0 + 9'000)->last_access_ms(), kT0 + 9'000);
  EXPECT_EQ(store_.Touch(key, kT0 + 19'000).status().code(), v1::NOT_FOUND);  // expired
  const Status missing = store_.Touch(*SessionKey::FromText(Id(2)), kT0).status();
  EXPECT_EQ(missing.code(), v1::NOT_FOUND);
  EXPECT_EQ(missing.message(), store_.Touch(Id(2), kT0).status().message());
}

TEST_F(SessionStoreTest, LifetimeCapsTheSessionWhateverTheTouches) {
  MustCreate(1, Create(10, 25));
  for (int64_t t = 5'000; t < 25'000; t += 5'000) {
    ASSERT_TRUE(store_.Touch(Id(1), kT0 + t).ok()) << t;
    EXPECT_TRUE(ExpireDue(kT0 + t).empty()) << t;
  }
  EXPECT_EQ(store_.Find(Id(1), kT0 + 25'000), nullptr);
  EXPECT_EQ(store_.Touch(Id(1), kT0 + 25'000).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(ExpireDue(kT0 + 25'000), std::vector<std::string>{Id(1)});
}

TEST_F(SessionStoreTest, ExpiredSessionIsAbsentBeforeTheReaperRuns) {
  MustCreate(1, Create(10, 0, "alice"));
  const int64_t late = kT0 + 10'000;
  EXPECT_EQ(store_.Find(Id(1), late), nullptr);
  EXPECT_EQ(store_.Touch(Id(1), late).status().code(), v1::NOT_FOUND);
  v1::UpdateRequest u = Update(Id(1));
  (*u.mutable_set())["a"] = "1";
  EXPECT_EQ(store_.Update(u, late).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(store_.Erase(Id(1), late).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(store_.Rename(Id(1), Id(2), late).status().code(), v1::NOT_FOUND);
  EXPECT_TRUE(store_.FindByPrincipal("alice", late).empty());
  int seen = 0;
  store_.ForEach(late, [&](const StoredSession&) { ++seen; });
  EXPECT_EQ(seen, 0);
  // Still held until reaped, and reaped exactly once.
  EXPECT_EQ(store_.size(), 1u);
  EXPECT_EQ(ExpireDue(late), std::vector<std::string>{Id(1)});
  EXPECT_TRUE(ExpireDue(late + 1'000'000).empty());
}

TEST_F(SessionStoreTest, RenameKeepsTheDeadline) {
  MustCreate(1, Create(10));
  ASSERT_TRUE(store_.Rename(Id(1), Id(2), kT0 + 5'000).ok());
  EXPECT_TRUE(ExpireDue(kT0 + 9'999).empty());
  EXPECT_NE(store_.Find(Id(2), kT0 + 9'999), nullptr);
  EXPECT_EQ(ExpireDue(kT0 + 10'000), std::vector<std::string>{Id(2)});
  EXPECT_EQ(store_.expiry_queue_size(), 0u);
}

TEST_F(SessionStoreTest, ShorterIdleTimeoutExpiresOnTime) {
  MustCreate(1, Create(3600));
  v1::UpdateRequest u = Update(Id(1));
  u.set_max_idle_s(10);
  ASSERT_TRUE(store_.Update(u, kT0).ok());
  EXPECT_EQ(store_.NextDeadlineMs(), kT0 + 10'000);
  EXPECT_EQ(ExpireDue(kT0 + 10'000), std::vector<std::string>{Id(1)});
}

TEST_F(SessionStoreTest, NextDeadlineIsNeverLaterThanTheEarliestSession) {
  EXPECT_FALSE(store_.NextDeadlineMs().has_value());
  MustCreate(1, Create(30));
  MustCreate(2, Create(20));
  MustCreate(3, Create(40));
  EXPECT_EQ(store_.NextDeadlineMs(), kT0 + 20'000);
  ASSERT_TRUE(store_.Touch(Id(2), kT0 + 15'000).ok());
  EXPECT_TRUE(ExpireDue(kT0 + 20'000).empty());  // session 2 re-queued for its new deadline
  EXPECT_EQ(store_.NextDeadlineMs(), kT0 + 30'000);
  EXPECT_EQ(ExpireDue(kT0 + 35'000), (std::vector<std::string>{Id(1), Id(2)}));
}

TEST(SessionStoreQueueTest, TouchesNeverGrowTheExpiryQueue) {
  SessionLimits limits;
  limits.max_idle_limit_s = 3600;
  SessionStore store(limits);
  for (uint64_t n = 0; n < 100; ++n) ASSERT_TRUE(store.Create(Id(n), Create(10), kT0).ok());
  // Every session touched every second for 10 minutes, reaped every second: one entry each.
  for (int64_t t = 1'000; t <= 600'000; t += 1'000) {
    for (uint64_t n = 0; n < 100; ++n) ASSERT_TRUE(store.Touch(Id(n), kT0 + t).ok());
    ASSERT_EQ(store.ExpireDue(kT0 + t, nullptr), 0u);
    ASSERT_EQ(store.expiry_queue_size(), 100u) << t;
  }
}

TEST(SessionStoreQueueTest, ChurnCannotGrowTheQueuePastTwiceTheSessions) {
  SessionLimits limits;
  limits.max_idle_limit_s = 86400;
  SessionStore store(limits);
  // Long-lived sessions invalidated or rotated early leave stale entries behind.
  for (uint64_t n = 0; n < 100; ++n) ASSERT_TRUE(store.Create(Id(n), Create(86400), kT0).ok());
  uint64_t next = 1'000'000;
  for (int round = 0; round < 20'000; ++round) {
    ASSERT_TRUE(store.Create(Id(next), Create(86400), kT0).ok());
    ASSERT_TRUE(store.Rename(Id(next), Id(next + 1), kT0).ok());
    ASSERT_TRUE(store.Erase(Id(next + 1), kT0).ok());
    next += 2;
    ASSERT_LE(store.expiry_queue_size(), std::max<size_t>(1024, 2 * store.size()) + 1) << round;
  }
  EXPECT_EQ(store.size(), 100u);
  // What is left still expires, each session once.
  EXPECT_EQ(store.ExpireDue(kT0 + 86'400'000, nullptr), 100u);
  EXPECT_EQ(store.expiry_queue_size(), 0u);
}

TEST_F(SessionStoreTest, FindByPrincipalReturnsLiveSessionsOldestFirst) {
  MustCreate(1, Create(100, 0, "alice"), kT0 + 2);
  MustCreate(2, Create(10, 0, "alice"), kT0 + 1);
  MustCreate(3, Create(100, 0, "bob"), kT0 + 3);
  MustCreate(4, Create(100), kT0);
  std::vector<const StoredSession*> alice = store_.FindByPrincipal("alice", kT0 + 5);
  ASSERT_EQ(alice.size(), 2u);
  EXPECT_EQ(alice[0]->id(), Id(2));
  EXPECT_EQ(alice[1]->id(), Id(1));
  EXPECT_EQ(store_.FindByPrincipal("alice", kT0 + 20'000).size(), 1u);
  EXPECT_TRUE(store_.FindByPrincipal("carol", kT0).empty());
  EXPECT_TRUE(store_.FindByPrincipal("", kT0).empty());
}

TEST_F(SessionStoreTest, PrincipalIndexKeepsNoStaleEntries) {
  MustCreate(1, Create(100, 0, "alice"));
  MustCreate(2, Create(10, 0, "alice"));
  MustCreate(3, Create(100, 0, "bob"));
  MustCreate(4, Create(100, 0, "carol"));
  EXPECT_EQ(store_.principal_count(), 3u);
  EXPECT_EQ(store_.principal_key_count(), 4u);

  // Invalidate: bob's only session goes, and bob with it.
  ASSERT_TRUE(store_.Erase(Id(3), kT0).ok());
  EXPECT_EQ(store_.principal_count(), 2u);
  EXPECT_EQ(store_.principal_key_count(), 3u);

  // Rotate: the entry moves to the new id.
  ASSERT_TRUE(store_.Rename(Id(1), Id(5), kT0).ok());
  EXPECT_EQ(store_.principal_key_count(), 3u);
  std::vector<const StoredSession*> alice = store_.FindByPrincipal("alice", kT0);
  ASSERT_EQ(alice.size(), 2u);
  EXPECT_TRUE(alice[0]->id() == Id(5) || alice[1]->id() == Id(5));

  // Expiry.
  EXPECT_EQ(ExpireDue(kT0 + 10'000), std::vector<std::string>{Id(2)});
  EXPECT_EQ(store_.principal_count(), 2u);
  EXPECT_EQ(store_.principal_key_count(), 2u);

  // Principal change, then removal: carol's entry goes, dave's comes and goes.
  v1::UpdateRequest u = Update(Id(4));
  u.set_principal("dave");
  ASSERT_TRUE(store_.Update(u, kT0 + 10'000).ok());
  EXPECT_TRUE(store_.FindByPrincipal("carol", kT0 + 10'000).empty());
  EXPECT_EQ(store_.FindByPrincipal("dave", kT0 + 10'000).size(), 1u);
  EXPECT_EQ(store_.principal_count(), 2u);
  u.set_principal("");
  ASSERT_TRUE(store_.Update(u, kT0 + 10'000).ok());
  EXPECT_EQ(store_.Find(Id(4), kT0 + 10'000)->principal(), "");
  EXPECT_EQ(store_.principal_count(), 1u);
  EXPECT_EQ(store_.principal_key_count(), 1u);

  ASSERT_TRUE(store_.Erase(Id(5), kT0 + 10'000).ok());
  EXPECT_EQ(store_.principal_count(), 0u);
  EXPECT_EQ(store_.principal_key_count(), 0u);
}

TEST_F(SessionStoreTest, RestoreTakesASessionAsAnotherNodeHeldIt) {
  v1::CreateRequest request = Create(100, 1000, "alice");
  (*request.mutable_attributes())["a"] = "1";
  MustCreate(1, request);
  v1::UpdateRequest u = Update(Id(1));
  (*u.mutable_set())["b"] = "2";
  ASSERT_TRUE(store_.Update(u, kT0 + 500).ok());
  const v1::Session snapshot = store_.Find(Id(1), kT0)->ToProto();

  SessionStore other(SmallLimits());
  Result<const StoredSession*> restored = other.Restore(snapshot, kT0 + 600);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals((*restored)->ToProto(), snapshot))
      << (*restored)->ToProto().DebugString() << " vs " << snapshot.DebugString();
  EXPECT_EQ(other.FindByPrincipal("alice", kT0 + 600).size(), 1u);
  EXPECT_EQ(other.NextDeadlineMs(), kT0 + 500 + 100'000);
  EXPECT_EQ(other.Restore(snapshot, kT0).status().code(), v1::CONFLICT);

  v1::Session no_idle = snapshot;
  no_idle.set_id(Id(9));
  no_idle.set_max_idle_s(0);
  EXPECT_EQ(other.Restore(no_idle, kT0).status().code(), v1::INVALID_ARGUMENT);
}

TEST_F(SessionStoreTest, RestoreFromViewsWithABlockBuiltAheadIsTheSame) {
  v1::CreateRequest request = Create(100, 1000, "alice");
  (*request.mutable_attributes())["a"] = "1";
  (*request.mutable_attributes())["b"] = std::string(90, 'x');
  MustCreate(1, request);
  const v1::Session snapshot = store_.Find(Id(1), kT0)->ToProto();

  std::vector<AttributeBlock::Attribute> attributes;
  for (const auto& [name, value] : snapshot.attributes()) attributes.push_back({name, value});
  SessionImage image;
  image.id = snapshot.id();
  image.created_ms = snapshot.created_ms();
  image.last_access_ms = snapshot.last_access_ms();
  image.version = snapshot.version();
  image.max_idle_s = snapshot.max_idle_s();
  image.max_lifetime_s = snapshot.max_lifetime_s();
  image.principal = snapshot.principal();
  image.attributes = attributes;

  SessionStore other(SmallLimits());
  Result<const StoredSession*> restored = other.Restore(image, AttributeBlock::Of(attributes));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals((*restored)->ToProto(), snapshot))
      << (*restored)->ToProto().DebugString() << " vs " << snapshot.DebugString();
  EXPECT_EQ(other.FindByPrincipal("alice", kT0).size(), 1u);
  EXPECT_EQ(other.Restore(image).status().code(), v1::CONFLICT);

  // With the id decoded by the caller (a state transfer's worker does it), the same session.
  SessionStore keyed(SmallLimits());
  image.key = SessionKey::FromText(image.id);
  ASSERT_TRUE(image.key.has_value());
  ASSERT_TRUE(keyed.Restore(image).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      keyed.Find(snapshot.id(), kT0)->ToProto(), snapshot));
  EXPECT_EQ(keyed.Restore(image).status().code(), v1::CONFLICT);
  image.key.reset();

  SessionStore third(SmallLimits());
  ASSERT_TRUE(third.Restore(image).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      third.Find(snapshot.id(), kT0)->ToProto(), snapshot));
  // The same checks as Restore(v1::Session): a value over the limit is refused.
  const std::string huge(SmallLimits().max_value_bytes + 1, 'x');
  attributes.push_back({"huge", huge});
  image.id = Id(2);
  image.attributes = attributes;
  EXPECT_EQ(third.Restore(image).status().code(), v1::TOO_LARGE);
}

TEST_F(SessionStoreTest, ForEachVisitsLiveSessions) {
  MustCreate(1, Create(10));
  MustCreate(2, Create(100));
  std::vector<std::string> ids;
  store_.ForEach(kT0 + 20'000, [&](const StoredSession& s) { ids.push_back(s.id()); });
  EXPECT_EQ(ids, std::vector<std::string>{Id(2)});
}

TEST_F(SessionStoreTest, ANewIdThatIsTakenIsRetriedOnceThenReportedAsABrokenGenerator) {
  MustCreate(1);
  ScriptedIds once_repeated({Id(1), Id(2)});
  Result<const StoredSession*> created = store_.CreateWithNewId(once_repeated, Create(), kT0);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)->id(), Id(2));

  ScriptedIds always_repeated({Id(1), Id(2)});
  created = store_.CreateWithNewId(always_repeated, Create(), kT0);
  EXPECT_EQ(created.status().code(), v1::INTERNAL);
  EXPECT_NE(created.status().message().find("random source"), std::string::npos);

  ScriptedIds rename_ids({Id(2), Id(3)});
  Result<const StoredSession*> renamed = store_.RenameToNewId(Id(1), rename_ids, kT0);
  ASSERT_TRUE(renamed.ok()) << renamed.status().ToString();
  EXPECT_EQ((*renamed)->id(), Id(3));
  ScriptedIds unused({Id(9)});
  EXPECT_EQ(store_.RenameToNewId(Id(1), unused, kT0).status().code(), v1::NOT_FOUND);
}

TEST_F(SessionStoreTest, ExpiryWaitIsTheTimeToTheNextDeadlineAtMostTheMaximum) {
  using std::chrono::milliseconds;
  EXPECT_EQ(store_.ExpiryWait(kT0, milliseconds(1000)), milliseconds(1000));
  MustCreate(1, Create(/*max_idle_s=*/1));
  const std::optional<int64_t> next = store_.NextDeadlineMs();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(store_.ExpiryWait(*next - 300, milliseconds(1000)), milliseconds(300));
  EXPECT_EQ(store_.ExpiryWait(*next - 300, milliseconds(100)), milliseconds(100));
  EXPECT_EQ(store_.ExpiryWait(*next + 5, milliseconds(1000)), milliseconds(0));
}

}  // namespace
}  // namespace sessiond
