// BackupManager: three or four nodes (a Cluster and a BackupManager each) in one io_context on
// 127.0.0.1, port 0. Cluster time is a ManualClock and heartbeats are explicit Tick() calls, so
// a peer dies only when a test moves the clock.
#include "replication/backup/backup_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/backup/placement.h"
#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "replication/session_id.h"
#include "replication/session_key.h"
#include "tests/unit/test_cluster_support.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;

using testing::RunUntil;

class BackupManagerTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<BackupManager> manager;
  };

  ~BackupManagerTest() override {
    for (auto& [id, node] : nodes_) {
      node->manager.reset();
      node->cluster->Stop();
    }
    relays_.clear();
    io_.poll();
  }

  // With a relay, the node tells its peers to dial it through the relay.
  Node& Start(const std::string& id, std::vector<Endpoint> seeds = {},
              testing::Relay* relay = nullptr) {
    auto node = std::make_unique<Node>();
    node->cluster = std::make_unique<Cluster>(
        io_.get_executor(), TestClusterOptions(id, std::move(seeds), relay, &clock_));
    ManagerOptions manager_options;
    manager_options.node_id = id;
    manager_options.clock = &clock_;
    manager_options.ids = &ids_;
    node->manager = std::make_unique<BackupManager>(io_.get_executor(), manager_options,
                                                    node->cluster.get(), backup_options_);
    EXPECT_TRUE(node->cluster->Start().ok());
    if (relay != nullptr) relay->set_target(node->cluster->listen_endpoint().port);
    const Status started = Run(node->manager->Start());
    EXPECT_TRUE(started.ok()) << started.ToString();
    Node* raw = node.get();
    nodes_[id] = std::move(node);
    return *raw;
  }

  // Every node started after this drops the next backup reply `match` accepts, as a link that
  // broke right after the reply was sent would.
  void DropRepliesOnRequest() {
    backup_options_.drop_for_test = [this](std::string_view, const peer::v1::PeerEnvelope& e) {
      if (!drop_next_ || !e.has_backup_reply() || !drop_next_(e.backup_reply())) return false;
      drop_next_ = nullptr;
      ++dropped_;
      return true;
    };
  }

  bool AllLinkedAndReady(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      if (nodes_.at(id)->cluster->LivePeers().size() != ids.size() - 1) return false;
      if (!nodes_.at(id)->manager->Ready().ready) return false;
    }
    return true;
  }

  // Starts nodes `ids` (the first is every other's seed) and waits until all are linked and
  // ready.
  void StartAll(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      if (id == ids[0]) {
        Start(id);
      } else {
        Start(id, {nodes_.at(ids[0])->cluster->listen_endpoint()});
      }
    }
    ASSERT_TRUE(RunUntil(io_, [&] {
      for (const std::string& id : ids) {
        if (nodes_.at(id)->cluster->LivePeers().size() != ids.size() - 1) return false;
        if (!nodes_.at(id)->manager->Ready().ready) return false;
      }
      return true;
    }));
  }

  BackupManager& M(const std::string& id) { return *nodes_.at(id)->manager; }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    std::optional<T> result;
    Spawn(std::move(op), &result);
    EXPECT_TRUE(RunUntil(io_, [&] { return result.has_value(); }));
    return std::move(*result);
  }

  template <typename T>
  void Spawn(asio::awaitable<T> op, std::optional<T>* out) {
    asio::co_spawn(
        io_,
        [](asio::awaitable<T> op, std::optional<T>* out) -> asio::awaitable<void> {
          out->emplace(co_await std::move(op));
        }(std::move(op), out),
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }

  void RunVoid(asio::awaitable<void> op) {
    bool done = false;
    asio::co_spawn(
        io_,
        [](asio::awaitable<void> op, bool* done) -> asio::awaitable<void> {
          co_await std::move(op);
          *done = true;
        }(std::move(op), &done),
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    EXPECT_TRUE(RunUntil(io_, [&] { return done; }));
  }

  v1::Session Create(const std::string& node, std::map<std::string, std::string> attributes,
                     const std::string& principal = "") {
    v1::CreateRequest request;
    request.set_max_idle_s(600);
    request.set_principal(principal);
    for (auto& [name, value] : attributes) (*request.mutable_attributes())[name] = value;
    Result<v1::Session> created = Run(M(node).Create(request));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : v1::Session();
  }

  Result<v1::Session> Read(const std::string& node, const std::string& id) {
    v1::GetRequest request;
    request.set_id(id);
    return Run(M(node).Get(request));
  }

  // A read that counts as an access (moves the session's idle deadline).
  Result<v1::Session> ReadTouching(const std::string& node, const std::string& id) {
    v1::GetRequest request;
    request.set_id(id);
    request.set_touch(true);
    return Run(M(node).Get(request));
  }

  Result<v1::Session> Set(const std::string& node, const std::string& id, const std::string& name,
                          const std::string& value) {
    v1::UpdateRequest update;
    update.set_id(id);
    (*update.mutable_set())[name] = value;
    return Run(M(node).Update(update));
  }

  uint64_t Counter(const std::string& node, const std::string& name) {
    return M(node).Stats().counters().at(name);
  }

  // Totals over `ids` of each role.
  BackupManager::RoleCounts Totals(const std::vector<std::string>& ids) {
    BackupManager::RoleCounts total;
    for (const std::string& id : ids) {
      const BackupManager::RoleCounts r = M(id).Roles();
      total.primary += r.primary;
      total.backup += r.backup;
      total.proxy += r.proxy;
      total.under_replicated += r.under_replicated;
    }
    return total;
  }

  // Waits until no node in `ids` holds a session in any role (expired or removed everywhere).
  bool GoneEverywhere(const std::vector<std::string>& ids) {
    return RunUntil(io_, [&] {
      const BackupManager::RoleCounts t = Totals(ids);
      return t.primary + t.backup + t.proxy == 0;
    });
  }

  // Waits until every node in `ids` holds `sessions` as primary once and `k` times as backup,
  // with nothing under-replicated: redundancy is whole.
  bool RedundancyRestored(const std::vector<std::string>& ids, uint64_t sessions, uint64_t k) {
    return RunUntil(io_, [&] {
      const BackupManager::RoleCounts t = Totals(ids);
      return t.primary == sessions && t.backup == sessions * k && t.under_replicated == 0 &&
             t.proxy == sessions * (ids.size() - 1 - k);
    });
  }

  // Moves the clock, has every node in `ids` heartbeat and judge its peers, and runs the loop
  // until each of them has heard each other one at the new time.
  void Advance(int64_t ms, const std::vector<std::string>& ids) { AdvanceGroups(ms, {ids}); }

  // As Advance, for every group at once: the nodes of a group hear each other (a partition's
  // sides, each judging the other).
  void AdvanceGroups(int64_t ms, const std::vector<std::vector<std::string>>& groups) {
    clock_.AdvanceMs(ms);
    for (const auto& ids : groups) {
      for (const std::string& id : ids) nodes_.at(id)->cluster->Tick();
    }
    ASSERT_TRUE(RunUntil(io_, [&] {
      for (const auto& ids : groups) {
        for (const std::string& from : ids) {
          for (const std::string& to : ids) {
            if (from == to) continue;
            for (const MemberView& m : nodes_.at(to)->cluster->View().members) {
              if (m.member.node_id == from && m.heard_ago_ms != 0) return false;
            }
          }
        }
      }
      return true;
    }));
  }

  // Moves time on until the survivors declare the others dead.
  void DeclareDead(const std::vector<std::string>& survivors) {
    for (int i = 0; i < 6; ++i) Advance(600, survivors);
  }

  void Crash(const std::string& id) {
    nodes_.at(id)->manager.reset();
    nodes_.at(id)->cluster->Stop();
  }

  asio::io_context io_;
  ManualClock clock_;
  RandomIdGenerator ids_;
  BackupOptions backup_options_;
  std::function<bool(const peer::v1::BackupReply&)> drop_next_;
  int dropped_ = 0;
  std::vector<std::unique_ptr<testing::Relay>> relays_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(BackupManagerTest, CreatePlacesOnePrimaryKBackupsAndProxiesElsewhere) {
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  // Sync create: the backup and both proxies confirmed before the answer.
  const BackupManager::RoleCounts t = Totals({"a", "b", "c"});
  EXPECT_EQ(M("a").Roles().primary, 1u);
  EXPECT_EQ(t.backup, 1u);
  EXPECT_EQ(t.proxy, 1u);
  EXPECT_EQ(t.under_replicated, 0u);
  // Full copies only on the primary and its backup.
  EXPECT_EQ(M("a").Stats().sessions() + M("b").Stats().sessions() + M("c").Stats().sessions(), 2u);
}

TEST_F(BackupManagerTest, CreatedOnOneNodeReadOnAnotherMovesOwnership) {
  backup_options_.move_after = 0;  // the first access moves the session
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  Result<v1::Session> got = Read("c", s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "3 items");
  EXPECT_EQ(got->version(), s.version());
  EXPECT_EQ(M("c").Roles().primary, 1u);
  EXPECT_EQ(M("a").Roles().primary, 0u);
  EXPECT_EQ(Counter("c", "backup_moves_in"), 1u);
  // Every node learns the new placement; a second access is local.
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  ASSERT_TRUE(Set("c", s.id(), "cart", "4 items").ok());
  EXPECT_EQ(Counter("c", "backup_fetches"), 1u);
  // And a read on a moves it back, with the update.
  got = Read("a", s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "4 items");
  EXPECT_EQ(got->version(), 2u);
  EXPECT_EQ(M("a").Roles().primary, 1u);
}

// A move keeps the old primary as the first backup: it holds the current copy, so nothing is
// copied to it, and a move to a node that holds a current copy carries no session at all.
TEST_F(BackupManagerTest, AMoveCopiesNoSessionToNodesThatHoldOne) {
  backup_options_.move_after = 0;  // the first access moves the session
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  const std::string backup = M("b").Roles().backup == 1 ? "b" : "c";
  const std::string proxy = backup == "b" ? "c" : "b";
  const uint64_t puts_before = Counter("a", "backup_puts_sent");
  // The proxy takes the session over: a stays as its backup, the old backup drops its copy.
  ASSERT_TRUE(Set(proxy, s.id(), "cart", "4 items").ok());
  EXPECT_EQ(M(proxy).Roles().primary, 1u);
  EXPECT_EQ(Counter(proxy, "backup_puts_sent"), 0u);
  ASSERT_TRUE(RunUntil(io_, [&] {
    return M("a").Roles().backup == 1 && M(backup).Roles().proxy == 1 &&
           M(backup).Stats().sessions() == 0;
  }));
  // The update reached a through the ordinary change path, at the same version.
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  // And back to a, which holds the current copy: no session travels, nothing is put.
  Result<v1::Session> got = Read("a", s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "4 items");
  EXPECT_EQ(got->version(), 2u);
  EXPECT_EQ(M("a").Roles().primary, 1u);
  EXPECT_EQ(Counter("a", "backup_puts_sent"), puts_before);
  EXPECT_EQ(Counter("a", "backup_moves_in"), 1u);
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  EXPECT_EQ(M(proxy).Roles().backup, 1u);
  // The old primary's copy is a full backup: a write acknowledged after the move survives the
  // new primary's crash.
  ASSERT_TRUE(Set("a", s.id(), "cart", "5 items").ok());
  Crash("a");
  DeclareDead({"b", "c"});
  ASSERT_TRUE(RunUntil(io_, [&] { return M(proxy).Roles().primary == 1; }));
  got = Read(proxy, s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "5 items");
  EXPECT_EQ(got->version(), 3u);
}

// The default (move_after 1): an access from another node is forwarded; the second in a row
// from the same node runs on the primary and hands the session over in the same round trip.
TEST_F(BackupManagerTest, TheSecondForwardedAccessInARowMovesTheSession) {
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  const std::string backup = M("b").Roles().backup == 1 ? "b" : "c";
  const std::string proxy = backup == "b" ? "c" : "b";
  ASSERT_TRUE(Read(proxy, s.id()).ok());
  EXPECT_EQ(Counter(proxy, "backup_forwards"), 1u);
  EXPECT_EQ(M("a").Roles().primary, 1u);
  // A local access between two forwarded ones ends the run.
  ASSERT_TRUE(Read("a", s.id()).ok());
  ASSERT_TRUE(Read(proxy, s.id()).ok());
  EXPECT_EQ(M("a").Roles().primary, 1u);
  EXPECT_EQ(M(proxy).Roles().primary, 0u);
  // The second in a row moves it: the update runs on a, then the proxy becomes primary with
  // the updated session and a stays as its backup.
  Result<v1::Session> updated = Set(proxy, s.id(), "cart", "4 items");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(M(proxy).Roles().primary, 1u);
  EXPECT_EQ(Counter(proxy, "backup_moves_in"), 1u);
  EXPECT_EQ(Counter(proxy, "backup_forwards"), 3u);
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  EXPECT_EQ(M("a").Roles().backup, 1u);
  Result<v1::Session> got = Read(proxy, s.id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes().at("cart"), "4 items");
  EXPECT_EQ(got->version(), 2u);
  // Back to a, the backup: two updates in a row from a; the second is confirmed by a's copy,
  // so the hand-over carries no session and a's copy is the one it serves from then on.
  const uint64_t puts_before = Counter(proxy, "backup_puts_sent");
  ASSERT_TRUE(Set("a", s.id(), "cart", "5 items").ok());
  updated = Set("a", s.id(), "cart", "6 items");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 4u);
  EXPECT_EQ(M("a").Roles().primary, 1u);
  EXPECT_EQ(Counter(proxy, "backup_puts_sent"), puts_before);
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  got = Read("a", s.id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes().at("cart"), "6 items");
  EXPECT_EQ(got->version(), 4u);
  // The new backup (the proxy, the old primary) has the last acknowledged write.
  Crash("a");
  DeclareDead({"b", "c"});
  ASSERT_TRUE(RunUntil(io_, [&] { return M(proxy).Roles().primary == 1; }));
  got = Read(proxy, s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "6 items");
  EXPECT_EQ(got->version(), 4u);
}

TEST_F(BackupManagerTest, MoveOnAccessFalseForwardsToThePrimary) {
  backup_options_.move_on_access = false;
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"k", "1"}});
  Result<v1::Session> updated = Set("c", s.id(), "k", "2");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version(), 2u);
  EXPECT_EQ(Counter("c", "backup_forwards"), 1u);
  EXPECT_EQ(Counter("a", "backup_forwards_served"), 1u);
  EXPECT_EQ(M("a").Roles().primary, 1u);
  EXPECT_EQ(M("c").Roles().primary, 0u);
  Result<v1::Session> got = Read("b", s.id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attributes().at("k"), "2");
  // CONFLICT answers are the primary's wherever they are asked.
  v1::UpdateRequest stale;
  stale.set_id(s.id());
  stale.set_expected_version(1);
  (*stale.mutable_set())["k"] = "3";
  Result<v1::Session> conflict = Run(M("b").Update(stale));
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), v1::CONFLICT);
  // Invalidate and rotate are forwarded too.
  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  Result<v1::Session> rotated = Run(M("c").RotateId(rotate));
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_FALSE(Read("b", s.id()).ok());
  ASSERT_TRUE(Read("b", rotated->id()).ok());
  v1::InvalidateRequest invalidate;
  invalidate.set_id(rotated->id());
  ASSERT_TRUE(Run(M("b").Invalidate(invalidate)).ok());
  ASSERT_TRUE(GoneEverywhere({"a", "b", "c"}));
  EXPECT_EQ(Read("c", rotated->id()).status().code(), v1::NOT_FOUND);
}

TEST_F(BackupManagerTest, UpdatesReachTheBackupWithTheSameVersions) {
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"k", "0"}});
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(Set("a", s.id(), "k", std::to_string(i)).ok());
  // Sync: the backup applied every change before each answer; its digest matches the primary's
  // copy.
  std::string backup;
  for (const char* node : {"b", "c"}) {
    if (M(node).Roles().backup == 1) backup = node;
  }
  ASSERT_FALSE(backup.empty());
  EXPECT_EQ(M(backup).Digest()->hash, M("a").Digest()->hash);
  EXPECT_EQ(Counter(backup, "backup_changes_applied"), 5u);
}

TEST_F(BackupManagerTest, ChangesOfOneLoopTurnTravelAsOneBatchPerBackup) {
  StartAll({"a", "b", "c"});
  std::vector<v1::Session> sessions;
  for (int i = 0; i < 10; ++i) sessions.push_back(Create("a", {{"k", "0"}}));
  const uint64_t batches_before = Counter("a", "backup_change_batches_sent");
  std::vector<std::optional<Result<v1::Session>>> results(sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) {
    v1::UpdateRequest update;
    update.set_id(sessions[i].id());
    (*update.mutable_set())["k"] = "1";
    Spawn(M("a").Update(update), &results[i]);
  }
  ASSERT_TRUE(RunUntil(io_, [&] {
    for (auto& r : results) {
      if (!r) return false;
    }
    return true;
  }));
  for (auto& r : results) EXPECT_TRUE(r->ok()) << r->status().ToString();
  // Ten updates in one turn: at most one batch per backup (b and c), not one per update.
  EXPECT_LE(Counter("a", "backup_change_batches_sent") - batches_before, 2u);
  for (const v1::Session& s : sessions) EXPECT_EQ(Read("a", s.id())->attributes().at("k"), "1");
}

TEST_F(BackupManagerTest, FaultPrimaryCrashBackupPromotesAndRedundancyReturns) {
  StartAll({"a", "b", "c"});
  std::vector<v1::Session> sessions;
  for (int i = 0; i < 30; ++i) sessions.push_back(Create("a", {{"k", "0"}}));
  // Sync writes acknowledged before the crash must all survive it.
  for (const v1::Session& s : sessions) ASSERT_TRUE(Set("a", s.id(), "k", "acked").ok());
  Crash("a");
  DeclareDead({"b", "c"});
  ASSERT_TRUE(RedundancyRestored({"b", "c"}, sessions.size(), 1));
  EXPECT_EQ(Counter("b", "backup_failovers") + Counter("c", "backup_failovers"), sessions.size());
  for (const v1::Session& s : sessions) {
    Result<v1::Session> got = Read("b", s.id());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->attributes().at("k"), "acked");
    EXPECT_EQ(got->version(), 2u);
  }

  // Redundancy is whole again, so killing the new primary of everything loses nothing either.
  ASSERT_TRUE(RedundancyRestored({"b", "c"}, sessions.size(), 1));
  Crash("b");
  DeclareDead({"c"});
  ASSERT_TRUE(RunUntil(io_, [&] { return M("c").Roles().primary == sessions.size(); }));
  for (const v1::Session& s : sessions) {
    Result<v1::Session> got = Read("c", s.id());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->attributes().at("k"), "acked");
  }
  EXPECT_EQ(Counter("c", "backup_sessions_lost"), 0u);
}

TEST_F(BackupManagerTest, FaultFailoverOfManySessionsRefillsInChunks) {
  StartAll({"a", "b", "c"});
  const size_t count = 5000;  // more than one refill chunk on each survivor
  std::vector<std::optional<Result<v1::Session>>> created(count);
  for (size_t i = 0; i < count; ++i) {
    v1::CreateRequest request;
    request.set_max_idle_s(600);
    Spawn(M("a").Create(request), &created[i]);
  }
  ASSERT_TRUE(RunUntil(io_, [&] {
    for (auto& r : created) {
      if (!r) return false;
    }
    return true;
  }));
  for (auto& r : created) ASSERT_TRUE(r->ok()) << r->status().ToString();
  Crash("a");
  DeclareDead({"b", "c"});
  ASSERT_TRUE(RedundancyRestored({"b", "c"}, count, 1)) << Totals({"b", "c"}).under_replicated;
  for (size_t i = 0; i < count; i += 97) ASSERT_TRUE(Read("c", (*created[i])->id()).ok());
}

TEST_F(BackupManagerTest, FaultBackupCrashPrimaryRefills) {
  StartAll({"a", "b", "c", "d"});
  std::vector<v1::Session> sessions;
  for (int i = 0; i < 20; ++i) sessions.push_back(Create("a", {{"k", "v"}}));
  Crash("b");
  DeclareDead({"a", "c", "d"});
  ASSERT_TRUE(RedundancyRestored({"a", "c", "d"}, sessions.size(), 1));
  EXPECT_EQ(M("a").Roles().primary, sessions.size());
}

TEST_F(BackupManagerTest, FaultTwoBackupsTwoSimultaneousCrashesLoseNothing) {
  backup_options_.backups = 2;
  StartAll({"a", "b", "c", "d"});
  std::vector<v1::Session> sessions;
  for (int i = 0; i < 30; ++i) sessions.push_back(Create("a", {{"k", "0"}}));
  for (const v1::Session& s : sessions) ASSERT_TRUE(Set("a", s.id(), "k", "acked").ok());
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c", "d"}, sessions.size(), 2));
  Crash("a");
  Crash("b");
  DeclareDead({"c", "d"});
  // Two nodes left: one backup each is all there can be.
  ASSERT_TRUE(RedundancyRestored({"c", "d"}, sessions.size(), 1));
  for (const v1::Session& s : sessions) {
    Result<v1::Session> got = Read("d", s.id());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->attributes().at("k"), "acked");
  }
}

TEST_F(BackupManagerTest, StopHandsOverAndLosesNothing) {
  StartAll({"a", "b", "c"});
  std::vector<v1::Session> sessions;
  for (int i = 0; i < 20; ++i) sessions.push_back(Create(i % 2 ? "a" : "b", {{"k", "v"}}));
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, sessions.size(), 1));
  // A rolling restart's first step: a hands over, then leaves (no failure detection needed).
  RunVoid(M("a").Stop());
  EXPECT_EQ(M("a").Roles().primary, 0u);
  EXPECT_GT(Counter("a", "backup_handoffs"), 0u);
  RunVoid(nodes_.at("a")->cluster->Leave("rolling restart"));
  ASSERT_TRUE(RedundancyRestored({"b", "c"}, sessions.size(), 1));
  for (const v1::Session& s : sessions) {
    Result<v1::Session> got = Read("c", s.id());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
  }
}

TEST_F(BackupManagerTest, JoiningNodeTakesBackupsAndServesExistingSessions) {
  backup_options_.backups = 2;
  StartAll({"a", "b"});
  std::vector<v1::Session> sessions;
  for (int i = 0; i < 10; ++i) sessions.push_back(Create("a", {{"k", "v"}}));
  ASSERT_TRUE(RedundancyRestored({"a", "b"}, sessions.size(), 1));
  Start("c", {nodes_.at("a")->cluster->listen_endpoint()});
  ASSERT_TRUE(RunUntil(io_, [&] { return M("c").Ready().ready; }));
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, sessions.size(), 2));
  EXPECT_EQ(M("c").Roles().backup, sessions.size());
  ASSERT_TRUE(Read("c", sessions[0].id()).ok());
}

TEST_F(BackupManagerTest, FindByPrincipalIsClusterWide) {
  StartAll({"a", "b", "c"});
  Create("a", {}, "alice");
  Create("b", {}, "alice");
  Create("b", {}, "bob");
  v1::FindByPrincipalRequest find;
  find.set_principal("alice");
  Result<v1::SessionList> found = Run(M("c").FindByPrincipal(find));
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->sessions_size(), 2);
}

TEST_F(BackupManagerTest, WatchIsClusterWide) {
  StartAll({"a", "b", "c"});
  std::vector<v1::SessionEvent> all;
  std::unique_ptr<WatchHandle> watch_all =
      M("c").Watch({}, [&](const v1::SessionEvent& e) { all.push_back(e); });
  ASSERT_TRUE(RunUntil(io_, [&] { return Counter("a", "watch_peers_interested") == 1; }));
  const v1::Session s = Create("a", {{"k", "1"}});
  std::vector<v1::SessionEvent> one;
  std::unique_ptr<WatchHandle> watch_one =
      M("b").Watch({s.id()}, [&](const v1::SessionEvent& e) { one.push_back(e); });
  ASSERT_TRUE(RunUntil(io_, [&] { return all.size() >= 1; }));
  ASSERT_TRUE(RunUntil(io_, [&] { return Counter("a", "watch_peers_interested") == 2; }));
  ASSERT_TRUE(Set("a", s.id(), "k", "2").ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return all.size() >= 2 && one.size() >= 1; }));
  EXPECT_EQ(all[0].kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(all[0].origin_node(), "a");
  EXPECT_EQ(all[1].kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(one[0].kind(), v1::SessionEvent::CHANGED);
}

TEST_F(BackupManagerTest, AWatchOnAnotherNodeFollowsRotateId) {
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"k", "1"}});
  std::vector<v1::SessionEvent> seen;
  std::unique_ptr<WatchHandle> watch =
      M("b").Watch({s.id()}, [&](const v1::SessionEvent& e) { seen.push_back(e); });
  ASSERT_TRUE(RunUntil(io_, [&] { return Counter("a", "watch_peers_interested") == 1; }));
  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  Result<v1::Session> rotated = Run(M("a").RotateId(rotate));
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(Set("a", rotated->id(), "k", "2").ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return seen.size() >= 2; }));
  EXPECT_EQ(seen[0].kind(), v1::SessionEvent::ID_CHANGED);
  EXPECT_EQ(seen[0].new_id(), rotated->id());
  EXPECT_EQ(seen[1].kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(seen[1].id(), rotated->id());
}

TEST_F(BackupManagerTest, SyncWriteNoBackupConfirmedAnswersUnavailable) {
  backup_options_.ack_timeout = 50ms;
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"k", "1"}});
  Crash("b");
  Crash("c");
  // b and c are still alive to the failure detector (the clock does not move).
  const Result<v1::Session> result = Set("a", s.id(), "k", "2");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), v1::UNAVAILABLE);
  EXPECT_NE(result.status().message().find("did not confirm"), std::string::npos);
}

TEST_F(BackupManagerTest, CreateIsNotFailedByAnUnresponsiveProxyOnly) {
  backup_options_.ack_timeout = 50ms;
  StartAll({"a", "b", "c"});
  Crash("c");  // still alive to the failure detector: the clock does not move
  int durable = 0;
  for (int i = 0; i < 20; ++i) {
    v1::CreateRequest request;
    Result<v1::Session> created = Run(M("a").Create(request));
    // Backed up on b (c only a proxy): OK. Backed up on c: nobody confirmed the copy.
    if (created.ok()) {
      ++durable;
    } else {
      EXPECT_EQ(created.status().code(), v1::UNAVAILABLE);
    }
  }
  EXPECT_GT(durable, 0);
  EXPECT_EQ(M("b").Roles().backup, static_cast<uint64_t>(durable));
  EXPECT_EQ(Counter("a", "backup_proxy_acks_missed"), static_cast<uint64_t>(durable));
}

TEST_F(BackupManagerTest, ExpiryOnThePrimaryRemovesEverywhere) {
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"k", "1"}});
  clock_.AdvanceMs(601'000);
  EXPECT_EQ(M("a").ExpireDue(), 1u);
  ASSERT_TRUE(GoneEverywhere({"a", "b", "c"}));
}

// A primary replicates an access only once per touch window (max_idle / 4, 150 s here), each
// running that far ahead, so that a backup never expires its copy before the primary. A create,
// an update and a rotation count as replicated accesses: they must carry the window too, or the
// reads right after them (not replicated) leave the backups behind, and a backup drops its copy
// (and its placement) while the primary still serves the session.
TEST_F(BackupManagerTest, ABackupCopyDoesNotExpireBeforeThePrimarysAfterUnreplicatedReads) {
  StartAll({"a", "b", "c"});
  const v1::Session created = Create("a", {{"k", "0"}});
  const v1::Session updated = Create("a", {{"k", "0"}});
  const v1::Session to_rotate = Create("a", {{"k", "0"}});
  clock_.AdvanceMs(10'000);
  ASSERT_TRUE(Set("a", updated.id(), "k", "1").ok());
  v1::RotateIdRequest rotate;
  rotate.set_id(to_rotate.id());
  Result<v1::Session> rotated = Run(M("a").RotateId(rotate));
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  std::vector<std::string> ids{created.id(), updated.id(), rotated->id()};

  clock_.AdvanceMs(100'000);
  for (const std::string& id : ids) {
    ASSERT_TRUE(ReadTouching("a", id).ok());  // within the window: not replicated
  }
  // Past the create's, the update's and the rotation's idle deadline; within the reads'.
  clock_.AdvanceMs(550'000);
  for (const char* node : {"a", "b", "c"}) EXPECT_EQ(M(node).ExpireDue(), 0u) << node;
  const BackupManager::RoleCounts t = Totals({"a", "b", "c"});
  EXPECT_EQ(t.primary, 3u);
  EXPECT_EQ(t.backup, 3u);
  EXPECT_EQ(t.proxy, 3u);
  for (const std::string& id : ids) {
    for (const char* node : {"b", "c"}) EXPECT_TRUE(Read(node, id).ok()) << node;
  }
  // And they still expire, everywhere, once the reads' deadline has passed.
  clock_.AdvanceMs(150'000 + 1);
  EXPECT_EQ(M("a").ExpireDue(), 3u);
  ASSERT_TRUE(GoneEverywhere({"a", "b", "c"}));
}

// A move to a backup keeps the asker's copy (session_omitted), which runs up to a touch window
// ahead of the old primary's (creates, updates and touches carry the window); the old primary
// stays as first backup and must move its own copy up to what it covered, or it expires the copy
// (and forgets the placement) while the new primary still serves the session.
TEST_F(BackupManagerTest, TheOldPrimaryKeptAsBackupAfterAMoveDoesNotExpireBeforeTheNewPrimary) {
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"k", "0"}});  // t = 0: the backup's copy at 150 s
  const std::string backup = M("b").Roles().backup == 1 ? "b" : "c";
  clock_.AdvanceMs(10'000);
  ASSERT_TRUE(ReadTouching(backup, s.id()).ok());  // forwarded: a touches at 10 s, in the window
  ASSERT_TRUE(ReadTouching(backup, s.id()).ok());  // forwarded again: handed over, copy omitted
  ASSERT_TRUE(RunUntil(io_, [&] { return M(backup).Roles().primary == 1; }));
  ASSERT_EQ(M("a").Roles().backup, 1u);
  // Past the old primary's idle deadline (610 s), before the new primary's (750 s).
  clock_.AdvanceMs(600'000 + 1'000);
  for (const char* node : {"a", "b", "c"}) (void)M(node).ExpireDue();
  EXPECT_TRUE(Read(backup, s.id()).ok());  // the new primary still serves it
  EXPECT_EQ(M("a").Roles().backup, 1u) << "the old primary dropped its backup copy first";
  const Result<v1::Session> on_a = Read("a", s.id());
  EXPECT_TRUE(on_a.ok()) << "the old primary answers for a live session: "
                         << on_a.status().ToString();
}

TEST_F(BackupManagerTest, MetricsExportTheRoleGauges) {
  StartAll({"a", "b", "c"});
  Create("a", {});
  std::string out;
  M("a").AppendMetrics(out);
  EXPECT_NE(out.find("sessiond_sessions_primary 1"), std::string::npos) << out;
  EXPECT_NE(out.find("sessiond_sessions_under_replicated 0"), std::string::npos) << out;
  EXPECT_NE(out.find("sessiond_sessions_backup "), std::string::npos);
  EXPECT_NE(out.find("sessiond_sessions_proxy "), std::string::npos);
}

// A forward's hand-over whose reply is lost: the old primary believes the asker is primary and
// the asker believes the opposite. The asker's next access hears "not primary, you are" and
// takes the session over with the old primary's copy.
TEST_F(BackupManagerTest, ALostHandOverReplyIsAdoptedByTheAsker) {
  backup_options_.fetch_timeout = 300ms;
  DropRepliesOnRequest();
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  const std::string backup = M("b").Roles().backup == 1 ? "b" : "c";
  const std::string proxy = backup == "b" ? "c" : "b";
  ASSERT_TRUE(Read(proxy, s.id()).ok());  // the first forward: no move yet
  drop_next_ = [](const peer::v1::BackupReply& r) { return r.handed_over(); };
  // The second moves it: the update runs on a, a hands the session over, the reply is lost.
  const Result<v1::Session> lost = Set(proxy, s.id(), "cart", "4 items");
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), v1::UNAVAILABLE);
  EXPECT_EQ(dropped_, 1);
  EXPECT_EQ(M("a").Roles().primary, 0u);
  EXPECT_EQ(M(proxy).Roles().primary, 0u);

  Result<v1::Session> got = Read(proxy, s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "4 items");  // it ran on a before the hand-over
  EXPECT_EQ(got->version(), 2u);
  EXPECT_EQ(M(proxy).Roles().primary, 1u);
  EXPECT_EQ(Counter(proxy, "backup_handovers_adopted"), 1u);
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  EXPECT_EQ(M("a").Roles().backup, 1u);
  // Readable and writable from both nodes.
  ASSERT_TRUE(Set("a", s.id(), "cart", "5 items").ok());
  ASSERT_TRUE(Set(proxy, s.id(), "cart", "6 items").ok());
  got = Read("a", s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "6 items");
  EXPECT_EQ(got->version(), 4u);
  got = Read(proxy, s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "6 items");
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
}

// A take-over fetch whose reply is lost (move_after 0), and the old primary is the one asked
// next: the asker, which never became primary, names the old primary, which takes the session
// back with its backup's confirmation.
TEST_F(BackupManagerTest, ALostTakeOverReplyIsAdoptedByTheOldPrimary) {
  backup_options_.move_after = 0;
  backup_options_.fetch_timeout = 300ms;
  DropRepliesOnRequest();
  StartAll({"a", "b", "c"});
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  const std::string backup = M("b").Roles().backup == 1 ? "b" : "c";
  const std::string proxy = backup == "b" ? "c" : "b";
  drop_next_ = [proxy](const peer::v1::BackupReply& r) {
    return !r.not_primary() && r.placement().nodes_size() > 0 && r.placement().nodes(0) == proxy;
  };
  const Result<v1::Session> lost = Read(proxy, s.id());
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), v1::UNAVAILABLE);
  EXPECT_EQ(dropped_, 1);
  EXPECT_EQ(M("a").Roles().primary, 0u);
  EXPECT_EQ(M(proxy).Roles().primary, 0u);

  Result<v1::Session> got = Read("a", s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "3 items");
  EXPECT_EQ(M("a").Roles().primary, 1u);
  EXPECT_EQ(Counter("a", "backup_handovers_adopted"), 1u);
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
  // Readable and writable from both nodes (each access moves it, move_after 0).
  ASSERT_TRUE(Set(proxy, s.id(), "cart", "4 items").ok());
  ASSERT_TRUE(Set("a", s.id(), "cart", "5 items").ok());
  got = Read(proxy, s.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->attributes().at("cart"), "5 items");
  EXPECT_EQ(got->version(), 3u);
  ASSERT_TRUE(RedundancyRestored({"a", "b", "c"}, 1, 1));
}

// A partition {c} | {a, b}: both sides keep serving, so the session has two primaries with
// different copies. When it heals, both compute the same winner (rendezvous order of the two
// claimants); the loser takes the winner's copy and placement, and the loser's writes made
// during the partition are gone.
TEST_F(BackupManagerTest, FaultTwoPrimariesAfterAPartitionConvergeOnOne) {
  backup_options_.move_on_access = false;  // reads must not move the session around
  // c reaches a and b only through a relay the test can blackhole: c advertises it and a and b
  // dial c (their seed) through it; a and b link directly.
  relays_.push_back(std::make_unique<testing::Relay>(io_));
  testing::Relay& relay = *relays_.back();
  Start("c", {}, &relay);
  Start("a", {relay.endpoint()});
  Start("b", {relay.endpoint()});
  const std::vector<std::string> all{"a", "b", "c"};
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinkedAndReady(all); }));
  const v1::Session s = Create("c", {{"k", "before"}});
  ASSERT_TRUE(RedundancyRestored(all, 1, 1));

  relay.set_mode(testing::Relay::Mode::kBlackhole);
  for (int i = 0; i < 6; ++i) AdvanceGroups(600, {{"a", "b"}, {"c"}});
  // Each side fails over: c keeps the session alone, a-b promote c's backup and refill.
  ASSERT_TRUE(RunUntil(io_, [&] {
    return M("c").Roles().primary == 1 && Totals({"a", "b"}).primary == 1 &&
           Totals({"a", "b"}).backup == 1 && Totals({"a", "b"}).under_replicated == 0;
  }));
  const std::string other = M("a").Roles().primary == 1 ? "a" : "b";
  ASSERT_TRUE(Set("c", s.id(), "k", "c side").ok());
  ASSERT_TRUE(Set("a", s.id(), "k", "a-b side").ok());
  ASSERT_TRUE(Set("b", s.id(), "k", "a-b side, again").ok());

  const std::string winner =
      PickByRendezvous(*SessionKey::FromText(s.id()), {"c", other}, {}, 1).front();
  const std::string loser = winner == "c" ? other : "c";
  const std::string kept = winner == "c" ? "c side" : "a-b side, again";
  const uint64_t kept_version = winner == "c" ? 2 : 3;

  relay.set_mode(testing::Relay::Mode::kPass);
  relay.Cut();
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinkedAndReady(all); }));
  Advance(600, all);
  ASSERT_TRUE(RunUntil(io_,
                       [&] {
                         const BackupManager::RoleCounts t = Totals(all);
                         return M(winner).Roles().primary == 1 && t.primary == 1 && t.backup == 1 &&
                                t.proxy == 1 && t.under_replicated == 0;
                       }))
      << Totals(all).primary << " primaries";
  std::string backup;
  for (const std::string& id : all) {
    if (M(id).Roles().backup == 1) backup = id;
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return M(backup).Digest()->hash == M(winner).Digest()->hash; }));
  EXPECT_EQ(Counter(loser, "backup_primary_conflicts_lost"), 1u);
  EXPECT_GE(Counter(winner, "backup_primary_conflicts_won"), 1u);
  // Every node reads the winner's copy (the proxy forwards to the winner).
  for (const std::string& id : all) {
    Result<v1::Session> got = Read(id, s.id());
    ASSERT_TRUE(got.ok()) << id << ": " << got.status().ToString();
    EXPECT_EQ(got->attributes().at("k"), kept) << id;
    EXPECT_EQ(got->version(), kept_version) << id;
  }
  // And writes from every node land on it.
  for (const std::string& id : all) {
    const Result<v1::Session> set = Set(id, s.id(), "k", "after " + id);
    ASSERT_TRUE(set.ok()) << id << ": " << set.status().ToString();
  }
  EXPECT_EQ(M(backup).Digest()->hash, M(winner).Digest()->hash);
  EXPECT_EQ(Read(loser, s.id())->version(), kept_version + 3);
}

// The same with many sessions, each settled on its own winner (c for some, the a-b side's
// primary for others), in more than one refill chunk. (With count 20000, more than a link's
// queue holds, it passes too, in about 18 s: the losers ask kYieldWindow sessions at a time.)
TEST_F(BackupManagerTest, FaultManyTwoPrimarySessionsAfterAPartitionEachConvergeOnOne) {
  backup_options_.move_on_access = false;
  relays_.push_back(std::make_unique<testing::Relay>(io_));
  testing::Relay& relay = *relays_.back();
  Start("c", {}, &relay);
  Start("a", {relay.endpoint()});
  Start("b", {relay.endpoint()});
  const std::vector<std::string> all{"a", "b", "c"};
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinkedAndReady(all); }));
  const size_t count = 3000;
  std::vector<std::optional<Result<v1::Session>>> created(count);
  for (size_t first = 0; first < count; first += 2000) {
    const size_t last = std::min(count, first + 2000);
    for (size_t i = first; i < last; ++i) {
      v1::CreateRequest request;
      request.set_max_idle_s(600);
      Spawn(M("c").Create(request), &created[i]);
    }
    ASSERT_TRUE(RunUntil(io_, [&] {
      for (size_t i = first; i < last; ++i) {
        if (!created[i]) return false;
      }
      return true;
    }));
  }
  std::vector<std::string> ids;
  for (auto& r : created) {
    ASSERT_TRUE(r->ok()) << r->status().ToString();
    ids.push_back((*r)->id());
  }
  ASSERT_TRUE(RedundancyRestored(all, count, 1));

  relay.set_mode(testing::Relay::Mode::kBlackhole);
  for (int i = 0; i < 6; ++i) AdvanceGroups(600, {{"a", "b"}, {"c"}});
  ASSERT_TRUE(RunUntil(io_, [&] {
    return M("c").Roles().primary == count && Totals({"a", "b"}).primary == count &&
           Totals({"a", "b"}).under_replicated == 0;
  }));
  for (const std::string& id : ids) {
    ASSERT_TRUE(Set("c", id, "k", "c").ok());
    ASSERT_TRUE(Set("a", id, "k", "ab").ok());
  }

  relay.set_mode(testing::Relay::Mode::kPass);
  relay.Cut();
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinkedAndReady(all); }));
  Advance(600, all);
  ASSERT_TRUE(RunUntil(
      io_,
      [&] {
        const BackupManager::RoleCounts t = Totals(all);
        return t.primary == count && t.backup == count && t.proxy == count &&
               t.under_replicated == 0;
      },
      60s))
      << Totals(all).primary << " primaries";
  uint64_t lost = 0;
  for (const std::string& id : all) lost += Counter(id, "backup_primary_conflicts_lost");
  EXPECT_EQ(lost, count);
  for (const std::string& id : ids) {
    const SessionKey key = *SessionKey::FromText(id);
    // c created it with the backup rendezvous picked; that backup was promoted on the a-b side.
    const std::string promoted = PickByRendezvous(key, all, {"c"}, 1).front();
    const std::string winner = PickByRendezvous(key, {"c", promoted}, {}, 1).front();
    Result<v1::Session> got = Read("b", id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->attributes().at("k"), winner == "c" ? "c" : "ab") << id;
  }
}

}  // namespace
}  // namespace sessiond
