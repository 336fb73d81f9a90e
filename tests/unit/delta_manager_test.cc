// DeltaManager: three nodes (a Cluster and a DeltaManager each) in one io_context on 127.0.0.1,
// port 0. Cluster time is a ManualClock and heartbeats are explicit Tick() calls, so nothing
// sleeps and a slow machine cannot make a healthy peer look dead.
#include "replication/delta/delta_manager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "replication/session_id.h"
#include "tests/unit/delta_test_cluster.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using testing::RunUntil;

class DeltaManagerTest : public testing::DeltaClusterTest {
 protected:
  Node& Start(const std::string& id, std::vector<Endpoint> seeds = {}) {
    return DeltaClusterTest::Start(id, std::move(seeds), delta_options_);
  }

  void StartThree() {
    Start("a");
    Start("b", {nodes_.at("a")->cluster->listen_endpoint()});
    Start("c", {nodes_.at("a")->cluster->listen_endpoint()});
    ASSERT_TRUE(RunUntil(io_, [&] {
      for (auto& [id, node] : nodes_) {
        if (node->cluster->LivePeers().size() != 2) return false;
      }
      return true;
    }));
  }

  v1::Session Create(const std::string& node, std::map<std::string, std::string> attributes) {
    v1::CreateRequest request;
    request.set_max_idle_s(600);
    for (auto& [name, value] : attributes) (*request.mutable_attributes())[name] = value;
    Result<v1::Session> created = Run(nodes_.at(node)->manager->Create(request));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : v1::Session();
  }

  // Waits until `node` holds session `id` with attribute `name` == `value`.
  bool Sees(const std::string& node, const std::string& id, const std::string& name,
            const std::string& value) {
    return RunUntil(io_, [&] {
      v1::GetRequest request;
      request.set_id(id);
      std::optional<Result<v1::Session>> got;
      Spawn(nodes_.at(node)->manager->Get(request), &got);
      io_.poll();
      if (!got || !got->ok()) return false;
      auto it = (*got)->attributes().find(name);
      return it != (*got)->attributes().end() && it->second == value;
    });
  }

  // Moves the clock, has every node in `ids` heartbeat and judge its peers, and runs the loop
  // until each of them has heard each other one at the new time.
  void Advance(int64_t ms, const std::vector<std::string>& ids) {
    clock_.AdvanceMs(ms);
    for (const std::string& id : ids) nodes_.at(id)->cluster->Tick();
    ASSERT_TRUE(RunUntil(io_, [&] {
      for (const std::string& from : ids) {
        for (const std::string& to : ids) {
          if (from == to) continue;
          for (const MemberView& m : nodes_.at(to)->cluster->View().members) {
            if (m.member.node_id == from && m.heard_ago_ms != 0) return false;
          }
        }
      }
      return true;
    }));
  }

  // An update setting one attribute (hides the base's SetAttribute, which also runs it).
  v1::UpdateRequest SetAttribute(const std::string& id, const std::string& name,
                                 const std::string& value) {
    v1::UpdateRequest update;
    update.set_id(id);
    (*update.mutable_set())[name] = value;
    return update;
  }
};

TEST_F(DeltaManagerTest, SessionCreatedOnOneNodeIsReadableOnEveryNode) {
  StartThree();
  const v1::Session s = Create("a", {{"cart", "3 items"}});
  EXPECT_TRUE(Sees("b", s.id(), "cart", "3 items"));
  EXPECT_TRUE(Sees("c", s.id(), "cart", "3 items"));
  EXPECT_EQ(Read("c", s.id())->created_ms(), s.created_ms());
  EXPECT_TRUE(DigestsEqual({"a", "b", "c"}));
}

TEST_F(DeltaManagerTest, UpdateInvalidateAndRotateReplicate) {
  StartThree();
  const v1::Session s = Create("a", {{"k", "1"}, {"gone", "x"}});
  ASSERT_TRUE(Sees("c", s.id(), "k", "1"));

  v1::UpdateRequest update;
  update.set_id(s.id());
  (*update.mutable_set())["k"] = "2";
  update.add_remove("gone");
  update.set_principal("alice");
  ASSERT_TRUE(Run(nodes_.at("b")->manager->Update(update)).ok());
  ASSERT_TRUE(Sees("a", s.id(), "k", "2"));
  ASSERT_TRUE(Sees("c", s.id(), "k", "2"));
  EXPECT_EQ(Read("c", s.id())->attributes().count("gone"), 0u);
  v1::FindByPrincipalRequest find;
  find.set_principal("alice");
  EXPECT_EQ(Run(nodes_.at("a")->manager->FindByPrincipal(find))->sessions_size(), 1);

  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  Result<v1::Session> rotated = Run(nodes_.at("c")->manager->RotateId(rotate));
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(Sees("a", rotated->id(), "k", "2"));
  ASSERT_TRUE(Sees("b", rotated->id(), "k", "2"));
  EXPECT_FALSE(Read("a", s.id()).has_value());

  v1::InvalidateRequest invalidate;
  invalidate.set_id(rotated->id());
  ASSERT_TRUE(Run(nodes_.at("a")->manager->Invalidate(invalidate)).ok());
  EXPECT_TRUE(RunUntil(io_, [&] {
    return nodes_.at("b")->manager->Stats().sessions() == 0 &&
           nodes_.at("c")->manager->Stats().sessions() == 0;
  }));
}

TEST_F(DeltaManagerTest, WatcherOnOneNodeSeesChangesMadeOnAnother) {
  StartThree();
  std::vector<v1::SessionEvent> seen;
  std::unique_ptr<WatchHandle> watch =
      nodes_.at("c")->manager->Watch({}, [&](const v1::SessionEvent& e) { seen.push_back(e); });
  const v1::Session s = Create("a", {{"k", "1"}});
  ASSERT_TRUE(Sees("b", s.id(), "k", "1"));
  v1::UpdateRequest update;
  update.set_id(s.id());
  (*update.mutable_set())["k"] = "2";
  ASSERT_TRUE(Run(nodes_.at("b")->manager->Update(update)).ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return seen.size() >= 2; }));
  EXPECT_EQ(seen[0].kind(), v1::SessionEvent::CREATED);
  EXPECT_EQ(seen[0].origin_node(), "a");
  EXPECT_EQ(seen[1].kind(), v1::SessionEvent::CHANGED);
  EXPECT_EQ(seen[1].origin_node(), "b");
}

TEST_F(DeltaManagerTest, ConcurrentConflictingUpdatesConverge) {
  StartThree();
  const v1::Session s = Create("a", {{"k", "0"}, {"r", "0"}});
  ASSERT_TRUE(Sees("b", s.id(), "k", "0"));
  ASSERT_TRUE(Sees("c", s.id(), "k", "0"));
  // Each node writes the same attributes in the same loop turn, before any delta can arrive:
  // every node applies its own first and the others' in some order.
  std::vector<std::optional<Result<v1::Session>>> results(6);
  int i = 0;
  for (const char* node : {"a", "b", "c"}) {
    v1::UpdateRequest set;
    set.set_id(s.id());
    (*set.mutable_set())["k"] = std::string("from ") + node;
    Spawn(nodes_.at(node)->manager->Update(set), &results[i++]);
    v1::UpdateRequest remove;
    remove.set_id(s.id());
    if (std::string(node) == "b") {
      remove.add_remove("r");
    } else {
      (*remove.mutable_set())["r"] = std::string("r from ") + node;
    }
    Spawn(nodes_.at(node)->manager->Update(remove), &results[i++]);
  }
  ASSERT_TRUE(RunUntil(io_, [&] {
    for (auto& r : results) {
      if (!r) return false;
    }
    return true;
  }));
  ASSERT_TRUE(RunUntil(io_, [&] {
    // a: the updates of b and c; b and c: a's create and the other two nodes' updates.
    for (const auto& [node, batches] :
         std::map<std::string, uint64_t>{{"a", 2}, {"b", 3}, {"c", 3}}) {
      if (nodes_.at(node)->manager->Stats().counters().at("delta_batches_received") < batches) {
        return false;
      }
    }
    return DigestsEqual({"a", "b", "c"});
  }));
  const std::optional<v1::Session> on_a = Read("a", s.id());
  const std::optional<v1::Session> on_c = Read("c", s.id());
  ASSERT_TRUE(on_a && on_c);
  EXPECT_EQ(on_a->attributes().at("k"), on_c->attributes().at("k"));
  EXPECT_EQ(on_a->attributes().count("r"), on_c->attributes().count("r"));
}

TEST_F(DeltaManagerTest, TouchesReplicateThrottled) {
  StartThree();
  const v1::Session s = Create("a", {{"k", "1"}});
  ASSERT_TRUE(Sees("b", s.id(), "k", "1"));
  v1::GetRequest get;
  get.set_id(s.id());
  get.set_touch(true);
  // 600 s idle, divisor 4: one touch per 150 s at most.
  ASSERT_TRUE(Run(nodes_.at("a")->manager->Get(get)).ok());
  clock_.AdvanceMs(10'000);
  ASSERT_TRUE(Run(nodes_.at("a")->manager->Get(get)).ok());
  EXPECT_EQ(nodes_.at("a")->manager->Stats().counters().at("touches_replicated"), 0u);
  clock_.AdvanceMs(150'000);
  ASSERT_TRUE(Run(nodes_.at("a")->manager->Get(get)).ok());
  EXPECT_EQ(nodes_.at("a")->manager->Stats().counters().at("touches_replicated"), 1u);
  ASSERT_TRUE(RunUntil(io_, [&] {
    std::optional<v1::Session> on_b = Read("b", s.id());
    return on_b && on_b->last_access_ms() >= clock_.NowMs();
  }));
}

TEST_F(DeltaManagerTest, FirstNodeToExpireTellsTheOthers) {
  StartThree();
  const v1::Session s = Create("a", {{"k", "1"}});
  ASSERT_TRUE(Sees("c", s.id(), "k", "1"));
  std::vector<v1::SessionEvent> seen;
  std::unique_ptr<WatchHandle> watch = nodes_.at("c")->manager->Watch(
      {s.id()}, [&](const v1::SessionEvent& e) { seen.push_back(e); });
  clock_.AdvanceMs(601'000);
  EXPECT_EQ(nodes_.at("a")->manager->ExpireDue(), 1u);
  ASSERT_TRUE(RunUntil(io_, [&] { return !seen.empty(); }));
  EXPECT_EQ(seen[0].kind(), v1::SessionEvent::EXPIRED);
  // c's own reaper may have got there first (its timer is real time); either way it is gone.
  EXPECT_EQ(nodes_.at("c")->manager->Stats().sessions(), 0u);
}

TEST_F(DeltaManagerTest, SyncWriteIsOnEveryPeerWhenAnswered) {
  delta_options_.ack = ReplicationAck::kSync;
  StartThree();
  const v1::Session s = Create("a", {{"k", "1"}});
  ASSERT_TRUE(Run(nodes_.at("a")->manager->Update(SetAttribute(s.id(), "k", "2"))).ok());
  // No further loop turn: the peers applied it before the answer.
  for (const char* node : {"b", "c"}) {
    const std::optional<v1::Session> got = Read(node, s.id());
    ASSERT_TRUE(got.has_value()) << node;
    EXPECT_EQ(got->attributes().at("k"), "2") << node;
  }
}

TEST_F(DeltaManagerTest, SyncWriteStopsWaitingForADeadPeer) {
  delta_options_.ack = ReplicationAck::kSync;
  delta_options_.ack_timeout = 60s;
  StartThree();
  const v1::Session s = Create("a", {{"k", "1"}});
  Crash("c");
  std::optional<Result<v1::Session>> result;
  Spawn(nodes_.at("a")->manager->Update(SetAttribute(s.id(), "k", "2")), &result);
  io_.poll();
  ASSERT_TRUE(RunUntil(io_, [&] { return Read("b", s.id())->attributes().at("k") == "2"; }));
  EXPECT_FALSE(result.has_value()) << "answered while live peer c had not confirmed";
  for (int i = 0; i < 4 && !result; ++i) Advance(600, {"a", "b"});  // c: suspect, then dead
  ASSERT_TRUE(RunUntil(io_, [&] { return result.has_value(); }));
  EXPECT_TRUE(result->ok()) << result->status().ToString();
}

TEST_F(DeltaManagerTest, SyncWriteNoPeerConfirmedAnswersUnavailable) {
  delta_options_.ack = ReplicationAck::kSync;
  delta_options_.ack_timeout = 50ms;
  StartThree();
  const v1::Session s = Create("a", {{"k", "1"}});
  Crash("b");
  Crash("c");
  // b and c are still alive to the failure detector (the clock does not move).
  const Result<v1::Session> result =
      Run(nodes_.at("a")->manager->Update(SetAttribute(s.id(), "k", "2")));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), v1::UNAVAILABLE);
  EXPECT_NE(result.status().message().find("did not confirm"), std::string::npos);
  EXPECT_EQ(nodes_.at("a")->manager->Stats().counters().at("sync_writes_unconfirmed"), 1u);
}

}  // namespace
}  // namespace sessiond
