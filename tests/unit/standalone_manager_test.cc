#include "replication/standalone_manager.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "replication/session_key.h"
#include "sessiond/asio.h"

namespace sessiond {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

// Ids 1, 2, 3, ... so that tests know which id comes next.
class SequentialIds final : public IdGenerator {
 public:
  std::string NewId() override { return Id(++last_); }
  static std::string Id(uint64_t n) {
    std::array<uint8_t, SessionKey::kBytes> bytes{};
    bytes[0] = 0xA5;
    for (int i = 0; i < 8; ++i) bytes[15 - i] = static_cast<uint8_t>(n >> (8 * i));
    return SessionKey(bytes).ToText();
  }
  // Makes the next NewId() repeat the last one, as a broken generator would.
  void Repeat(int times) { last_ -= times; }

 private:
  uint64_t last_ = 0;
};

template <typename T>
asio::awaitable<void> StoreResult(asio::awaitable<T> op, std::optional<T>* out) {
  out->emplace(co_await std::move(op));
}

asio::awaitable<void> MarkDone(asio::awaitable<void> op, bool* done) {
  co_await std::move(op);
  *done = true;
}

class StandaloneManagerTest : public ::testing::Test {
 protected:
  StandaloneManagerTest() {
    limits_.default_max_idle_s = 60;
    limits_.max_idle_limit_s = 3600;
    limits_.max_sessions = 100;
    Build();
  }

  void Build() {
    manager_ = std::make_unique<StandaloneManager>(io_.get_executor(),
                                                   ManagerOptions{"n1", limits_, &clock_, &ids_});
  }

  // Runs the coroutine `op` on the io_context until it completes; no waiting on timers.
  template <typename T>
  T Await(asio::awaitable<T> op) {
    std::optional<T> out;
    io_.restart();  // run_one() stops the context whenever it runs out of work
    asio::co_spawn(io_, StoreResult(std::move(op), &out), asio::detached);
    while (!out && io_.run_one() > 0) {
    }
    EXPECT_TRUE(out.has_value());
    return std::move(*out);
  }

  void AwaitVoid(asio::awaitable<void> op) {
    bool done = false;
    io_.restart();
    asio::co_spawn(io_, MarkDone(std::move(op), &done), asio::detached);
    while (!done && io_.run_one() > 0) {
    }
    EXPECT_TRUE(done);
  }

  void Start() { ASSERT_TRUE(Await(manager_->Start()).ok()); }

  v1::Session MustCreate(v1::CreateRequest request = {}) {
    Result<v1::Session> r = Await(manager_->Create(std::move(request)));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : v1::Session();
  }

  std::unique_ptr<WatchHandle> WatchAll(std::vector<std::string> ids = {}) {
    return manager_->Watch(std::move(ids),
                           [this](const v1::SessionEvent& e) { events_.push_back(e); });
  }

  uint64_t Counter(const std::string& name) const {
    const v1::NodeStats stats = manager_->Stats();
    auto it = stats.counters().find(name);
    return it == stats.counters().end() ? 0 : it->second;
  }

  asio::io_context io_;
  ManualClock clock_{kT0};
  SequentialIds ids_;
  SessionLimits limits_;
  std::unique_ptr<StandaloneManager> manager_;
  std::vector<v1::SessionEvent> events_;
};

TEST_F(StandaloneManagerTest, IsReadyOnceStartedAndStopsCleanly) {
  EXPECT_EQ(manager_->mode(), "standalone");
  EXPECT_FALSE(manager_->Ready().ready);
  Start();
  EXPECT_TRUE(manager_->Ready().ready);
  AwaitVoid(manager_->Stop());
  EXPECT_FALSE(manager_->Ready().ready);
  // Nothing of the manager is left on the loop: run() returns at once.
  io_.restart();
  EXPECT_EQ(io_.run(), 0u);
}

TEST_F(StandaloneManagerTest, CreatePublishesCreatedAndUsesTheDefaultIdleTimeout) {
  Start();
  auto watch = WatchAll();
  v1::CreateRequest request;
  request.set_principal("alice");
  (*request.mutable_attributes())["user"] = "alice";
  const v1::Session s = MustCreate(request);
  EXPECT_EQ(s.id(), SequentialIds::Id(1));
  EXPECT_EQ(s.version(), 1u);
  EXPECT_EQ(s.max_idle_s(), 60u);
  EXPECT_EQ(s.created_ms(), kT0);
  EXPECT_EQ(s.attributes().at("user"), "alice");

  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(events_[0].id(), s.id());
  EXPECT_EQ(events_[0].version(), 1u);
  EXPECT_EQ(events_[0].origin_node(), "n1");
  EXPECT_EQ(events_[0].at_ms(), kT0);
  EXPECT_EQ(Counter("sessions_created"), 1u);
}

TEST_F(StandaloneManagerTest, CreateReportsBrokenLimitsAndPublishesNothing) {
  Start();
  auto watch = WatchAll();
  v1::CreateRequest request;
  request.set_max_idle_s(3601);
  Result<v1::Session> r = Await(manager_->Create(request));
  EXPECT_EQ(r.status().code(), v1::INVALID_ARGUMENT);
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(manager_->Stats().sessions(), 0u);
}

TEST_F(StandaloneManagerTest, CreateRetriesOnceWhenTheGeneratorRepeatsAnId) {
  Start();
  MustCreate();
  ids_.Repeat(1);  // the next id is taken; the one after is fresh
  EXPECT_EQ(MustCreate().id(), SequentialIds::Id(2));
  ids_.Repeat(2);  // ids 1 and 2 again, both taken: a broken generator
  Result<v1::Session> broken = Await(manager_->Create({}));
  // The manager gives up with INTERNAL, not a CONFLICT the client could do nothing about.
  EXPECT_EQ(broken.status().code(), v1::INTERNAL);
}

TEST_F(StandaloneManagerTest, GetReadsAndTouchesWithoutPublishing) {
  Start();
  const v1::Session s = MustCreate();
  auto watch = WatchAll();
  clock_.AdvanceMs(5'000);
  v1::GetRequest get;
  get.set_id(s.id());
  Result<v1::Session> plain = Await(manager_->Get(get));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->last_access_ms(), kT0);
  get.set_touch(true);
  Result<v1::Session> touched = Await(manager_->Get(get));
  ASSERT_TRUE(touched.ok());
  EXPECT_EQ(touched->last_access_ms(), kT0 + 5'000);
  EXPECT_EQ(touched->version(), 1u);
  EXPECT_TRUE(events_.empty());

  get.set_id(SequentialIds::Id(99));
  EXPECT_EQ(Await(manager_->Get(get)).status().code(), v1::NOT_FOUND);
}

TEST_F(StandaloneManagerTest, UpdatePublishesChangedOnlyForRealChanges) {
  Start();
  const v1::Session s = MustCreate();
  auto watch = WatchAll({s.id()});

  v1::UpdateRequest update;
  update.set_id(s.id());
  (*update.mutable_set())["cart"] = "3 items";
  Result<v1::Session> changed = Await(manager_->Update(update));
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_EQ(changed->version(), 2u);
  EXPECT_EQ(changed->attributes().at("cart"), "3 items");
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(events_[0].version(), 2u);

  // Same value again, and a touch: no change, no event.
  update.set_touch(true);
  Result<v1::Session> same = Await(manager_->Update(update));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version(), 2u);
  EXPECT_EQ(events_.size(), 1u);

  update.set_expected_version(1);
  (*update.mutable_set())["cart"] = "4 items";
  EXPECT_EQ(Await(manager_->Update(update)).status().code(), v1::CONFLICT);
  EXPECT_EQ(events_.size(), 1u);
  EXPECT_EQ(Counter("update_conflicts"), 1u);
  EXPECT_EQ(Counter("sessions_updated"), 1u);
}

TEST_F(StandaloneManagerTest, InvalidatePublishesAndRemoves) {
  Start();
  const v1::Session s = MustCreate();
  auto watch = WatchAll();
  v1::InvalidateRequest invalidate;
  invalidate.set_id(s.id());
  ASSERT_TRUE(Await(manager_->Invalidate(invalidate)).ok());
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind(), v1::SessionEvent::INVALIDATED);
  EXPECT_EQ(events_[0].id(), s.id());
  EXPECT_EQ(events_[0].version(), 1u);

  Status again = Await(manager_->Invalidate(invalidate));
  EXPECT_EQ(again.code(), v1::NOT_FOUND);
  EXPECT_EQ(again.message().find(s.id()), std::string::npos);
  v1::GetRequest get;
  get.set_id(s.id());
  EXPECT_EQ(Await(manager_->Get(get)).status().code(), v1::NOT_FOUND);
  EXPECT_EQ(Counter("sessions_invalidated"), 1u);
  EXPECT_EQ(manager_->Stats().sessions(), 0u);
}

TEST_F(StandaloneManagerTest, RotateIdPublishesIdChangedAndTheWatchFollows) {
  Start();
  v1::CreateRequest create;
  create.set_principal("alice");
  const v1::Session s = MustCreate(create);
  auto watch = WatchAll({s.id()});

  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  Result<v1::Session> rotated = Await(manager_->RotateId(rotate));
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_EQ(rotated->id(), SequentialIds::Id(2));
  EXPECT_EQ(rotated->principal(), "alice");
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind(), v1::SessionEvent::ID_CHANGED);
  EXPECT_EQ(events_[0].id(), s.id());
  EXPECT_EQ(events_[0].new_id(), rotated->id());

  v1::GetRequest old_get;
  old_get.set_id(s.id());
  EXPECT_EQ(Await(manager_->Get(old_get)).status().code(), v1::NOT_FOUND);

  // The watch on the old id now hears about the new one.
  v1::UpdateRequest update;
  update.set_id(rotated->id());
  (*update.mutable_set())["x"] = "1";
  ASSERT_TRUE(Await(manager_->Update(update)).ok());
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(events_[1].id(), rotated->id());

  v1::FindByPrincipalRequest find;
  find.set_principal("alice");
  Result<v1::SessionList> found = Await(manager_->FindByPrincipal(find));
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->sessions_size(), 1);
  EXPECT_EQ(found->sessions(0).id(), rotated->id());
  EXPECT_EQ(Counter("sessions_rotated"), 1u);
}

TEST_F(StandaloneManagerTest, FindByPrincipalListsLiveSessions) {
  Start();
  v1::CreateRequest alice;
  alice.set_principal("alice");
  MustCreate(alice);
  alice.set_max_idle_s(10);
  MustCreate(alice);
  MustCreate();
  v1::FindByPrincipalRequest find;
  find.set_principal("alice");
  EXPECT_EQ(Await(manager_->FindByPrincipal(find))->sessions_size(), 2);
  clock_.AdvanceMs(10'000);
  EXPECT_EQ(Await(manager_->FindByPrincipal(find))->sessions_size(), 1);
  find.set_principal("nobody");
  EXPECT_EQ(Await(manager_->FindByPrincipal(find))->sessions_size(), 0);
  find.set_principal("");
  EXPECT_EQ(Await(manager_->FindByPrincipal(find)).status().code(), v1::INVALID_ARGUMENT);
}

TEST_F(StandaloneManagerTest, ExpireDuePublishesExpired) {
  Start();
  v1::CreateRequest create;
  create.set_max_idle_s(10);
  const v1::Session s = MustCreate(create);
  const v1::Session other = MustCreate();
  auto watch = WatchAll({s.id()});
  clock_.AdvanceMs(9'999);
  EXPECT_EQ(manager_->ExpireDue(), 0u);
  clock_.AdvanceMs(1);
  EXPECT_EQ(manager_->ExpireDue(), 1u);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind(), v1::SessionEvent::EXPIRED);
  EXPECT_EQ(events_[0].id(), s.id());
  EXPECT_EQ(events_[0].at_ms(), kT0 + 10'000);
  EXPECT_EQ(Counter("sessions_expired"), 1u);
  EXPECT_EQ(manager_->Stats().sessions(), 1u);
  (void)other;
}

TEST_F(StandaloneManagerTest, ExpiryTimerReapsWithoutBeingAsked) {
  // Sessions already due when the manager starts: the reaper's first pass finds them, with no
  // timer wait involved.
  v1::CreateRequest create;
  create.set_max_idle_s(10);
  MustCreate(create);
  MustCreate(create);
  auto watch = WatchAll();
  clock_.AdvanceMs(10'000);
  Start();
  io_.restart();
  while (events_.size() < 2 && io_.run_one() > 0) {
  }
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].kind(), v1::SessionEvent::EXPIRED);
  EXPECT_EQ(events_[1].kind(), v1::SessionEvent::EXPIRED);
  EXPECT_EQ(manager_->Stats().sessions(), 0u);
  AwaitVoid(manager_->Stop());
}

TEST_F(StandaloneManagerTest, StatsNameTheNodeAndCountWatchers) {
  Start();
  MustCreate();
  auto w1 = WatchAll();
  auto w2 = WatchAll({SequentialIds::Id(1)});
  const v1::NodeStats stats = manager_->Stats();
  EXPECT_EQ(stats.node_id(), "n1");
  EXPECT_EQ(stats.mode(), "standalone");
  EXPECT_EQ(stats.sessions(), 1u);
  EXPECT_EQ(stats.counters().at("watchers"), 2u);
  w1.reset();
  EXPECT_EQ(Counter("watchers"), 1u);
}

TEST_F(StandaloneManagerTest, DestroyingWithoutStopLeavesTheLoopSafe) {
  Start();
  MustCreate();
  manager_.reset();
  // The expiry loop wakes to find the manager gone and ends without touching it.
  io_.restart();
  io_.run();
  SUCCEED();
}

}  // namespace
}  // namespace sessiond
