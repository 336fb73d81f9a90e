// Cluster: membership, heartbeats, failure detection and leave, over real sockets on 127.0.0.1
// with several nodes in one io_context. Time for the failure detector comes from a ManualClock
// moved by the test, and heartbeats are sent by explicit Tick() calls: nothing sleeps, and a
// slow machine cannot make a healthy peer look suspect.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "replication/clock.h"
#include "replication/cluster/cluster.h"
#include "tests/unit/test_cluster_support.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using Kind = MemberEvent::Kind;
using peer::v1::PeerEnvelope;

using testing::RunUntil;

class ClusterTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<Cluster> cluster;
    std::vector<MemberEvent> events;
    std::vector<std::string> link_events;  // "b up", "b down"

    Cluster* operator->() { return cluster.get(); }
    MemberState state_of(const std::string& id) const {
      const Member* m = cluster->membership().Find(id);
      return m == nullptr ? MemberState::kDead : m->state;
    }
    bool knows_alive(const std::string& id) const {
      const Member* m = cluster->membership().Find(id);
      return m != nullptr && m->state == MemberState::kAlive;
    }
    std::vector<Kind> kinds_for(const std::string& id) const {
      std::vector<Kind> out;
      for (const MemberEvent& e : events) {
        if (e.member.node_id == id) out.push_back(e.kind);
      }
      return out;
    }
    // How long ago (by the test's clock) `id` was last heard; -1 if never.
    int64_t heard_ago(const std::string& id) const {
      for (const MemberView& m : cluster->View().members) {
        if (m.member.node_id == id) return m.heard_ago_ms;
      }
      return -1;
    }
  };

  ClusterOptions Options(std::string id, std::vector<Endpoint> seeds = {}) {
    ClusterOptions options;
    options.network.self = NodeIdentity{"prod", std::move(id), 0};
    options.network.listen = Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", 0, ""};
    options.network.seeds = std::move(seeds);
    options.network.reconnect_min = 10ms;
    options.network.reconnect_max = 100ms;
    // Links must not time out on their own while the test holds the manual clock still.
    options.network.link.read_timeout = 60s;
    options.heartbeat_interval = 0ms;  // the test ticks
    options.clock = &clock_;
    return options;
  }

  Node& Start(ClusterOptions options) {
    const std::string id = options.network.self.node_id;
    auto node = std::make_unique<Node>();
    node->cluster = std::make_unique<Cluster>(io_.get_executor(), std::move(options));
    Node* raw = node.get();
    node->cluster->AddMemberListener([raw](const MemberEvent& e) { raw->events.push_back(e); });
    node->cluster->AddLinkListener([raw](const PeerIdentity& peer, bool up) {
      raw->link_events.push_back(peer.node_id + (up ? " up" : " down"));
    });
    const Status s = node->cluster->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    nodes_[id] = std::move(node);
    return *raw;
  }

  Endpoint EndpointOf(const std::string& id) { return nodes_.at(id)->cluster->listen_endpoint(); }

  // Moves the clock, has every running node in `ids` send its heartbeats and judge its peers,
  // and runs the loop until each of them has heard each other one at the new time.
  void AdvanceAndExchange(int64_t ms, const std::vector<std::string>& ids) {
    clock_.AdvanceMs(ms);
    for (const std::string& id : ids) nodes_.at(id)->cluster->Tick();
    ASSERT_TRUE(RunUntil(io_, [&] {
      for (const std::string& from : ids) {
        for (const std::string& to : ids) {
          if (from != to && nodes_.at(to)->heard_ago(from) != 0) return false;
        }
      }
      return true;
    }));
  }

  bool AllLinked(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) {
      for (const std::string& other : ids) {
        if (id != other && !nodes_.at(id)->knows_alive(other)) return false;
      }
    }
    return true;
  }

  // Three nodes: b and c know only a; c finds b through a's member list.
  void StartThree() {
    Start(Options("a"));
    Start(Options("b", {EndpointOf("a")}));
    Start(Options("c", {EndpointOf("a")}));
    ASSERT_TRUE(RunUntil(io_, [&] { return AllLinked({"a", "b", "c"}); }));
  }

  asio::io_context io_;
  ManualClock clock_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(ClusterTest, NodesGivenOneSeedFindTheWholeCluster) {
  StartThree();
  for (const char* id : {"a", "b", "c"}) {
    EXPECT_EQ(nodes_.at(id)->cluster->LivePeers().size(), 2u) << id;
  }
  EXPECT_EQ(nodes_.at("b")->kinds_for("c"), std::vector<Kind>{Kind::kJoined});
  EXPECT_EQ(nodes_.at("a")->link_events, (std::vector<std::string>{"b up", "c up"}));
  const std::optional<PeerLinkStatus> link = nodes_.at("a")->cluster->LinkStatus("b");
  ASSERT_TRUE(link.has_value());
  EXPECT_TRUE(link->linked);
  EXPECT_FALSE(nodes_.at("a")->cluster->LinkStatus("nobody").has_value());
}

TEST_F(ClusterTest, HeartbeatsKeepPeersAlive) {
  StartThree();
  // Six seconds of cluster time, three times the dead threshold.
  for (int round = 0; round < 20; ++round) AdvanceAndExchange(300, {"a", "b", "c"});
  for (const char* id : {"a", "b", "c"}) {
    const Node& node = *nodes_.at(id);
    for (const MemberEvent& e : node.events) {
      EXPECT_EQ(e.kind, Kind::kJoined)
          << id << " saw " << MemberEventKindName(e.kind) << " of " << e.member.node_id;
    }
    EXPECT_EQ(node.cluster->LivePeers().size(), 2u);
  }
}

TEST_F(ClusterTest, StoppedPeerBecomesSuspectThenDead) {
  StartThree();
  nodes_.at("c")->cluster->Stop();
  AdvanceAndExchange(600, {"a", "b"});
  EXPECT_EQ(nodes_.at("a")->state_of("c"), MemberState::kAlive);
  AdvanceAndExchange(600, {"a", "b"});  // 1200 ms of silence
  EXPECT_EQ(nodes_.at("a")->state_of("c"), MemberState::kSuspect);
  EXPECT_EQ(nodes_.at("b")->state_of("c"), MemberState::kSuspect);
  EXPECT_EQ(nodes_.at("a")->cluster->LivePeers().size(), 2u);  // suspect still counts
  AdvanceAndExchange(600, {"a", "b"});                         // 1800 ms
  for (const char* id : {"a", "b"}) {
    const Node& node = *nodes_.at(id);
    EXPECT_EQ(node.state_of("c"), MemberState::kDead) << id;
    EXPECT_EQ(node.kinds_for("c"),
              (std::vector<Kind>{Kind::kJoined, Kind::kSuspected, Kind::kDied}))
        << id;
    EXPECT_EQ(node.cluster->LivePeers().size(), 1u);
  }
  EXPECT_EQ(nodes_.at("a")->state_of("b"), MemberState::kAlive);
}

TEST_F(ClusterTest, DeadPeerThatComesBackWithTheSameIncarnationRecovers) {
  Start(Options("a"));
  Start(Options("b", {EndpointOf("a")}));
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinked({"a", "b"}); }));
  // b's heartbeats stop reaching a (a partition, say) while the link stays up.
  clock_.AdvanceMs(2000);
  nodes_.at("a")->cluster->Tick();
  EXPECT_EQ(nodes_.at("a")->state_of("b"), MemberState::kDead);
  AdvanceAndExchange(100, {"a", "b"});
  EXPECT_EQ(nodes_.at("a")->state_of("b"), MemberState::kAlive);
  EXPECT_EQ(nodes_.at("a")->kinds_for("b"),
            (std::vector<Kind>{Kind::kJoined, Kind::kDied, Kind::kRecovered}));
}

TEST_F(ClusterTest, RestartWithANewIncarnationIsSeenAsNew) {
  StartThree();
  const uint64_t first = nodes_.at("c")->cluster->self().incarnation;
  nodes_.erase("c");                       // crash
  Start(Options("c", {EndpointOf("a")}));  // a new process, a new port, a new incarnation
  const uint64_t second = nodes_.at("c")->cluster->self().incarnation;
  ASSERT_NE(first, second);
  ASSERT_TRUE(RunUntil(io_, [&] {
    for (const char* id : {"a", "b"}) {
      const Member* m = nodes_.at(id)->cluster->membership().Find("c");
      if (m == nullptr || m->incarnation != second || m->state != MemberState::kAlive) {
        return false;
      }
    }
    return AllLinked({"a", "b", "c"});
  }));
  for (const char* id : {"a", "b"}) {
    const Node& node = *nodes_.at(id);
    ASSERT_FALSE(node.events.empty());
    const MemberEvent& last = node.events.back();
    EXPECT_EQ(last.kind, Kind::kRestarted) << id;
    EXPECT_EQ(last.previous_incarnation, first);
    EXPECT_EQ(last.member.incarnation, second);
  }
}

TEST_F(ClusterTest, GracefulLeaveMarksLeftAtOnce) {
  StartThree();
  bool left = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await nodes_.at("c")->cluster->Leave("SIGTERM");
        left = true;
      },
      asio::detached);
  // The clock does not move: the failure detector cannot be what marks c.
  ASSERT_TRUE(RunUntil(io_, [&] {
    return left && nodes_.at("a")->state_of("c") == MemberState::kLeft &&
           nodes_.at("b")->state_of("c") == MemberState::kLeft;
  }));
  for (const char* id : {"a", "b"}) {
    EXPECT_EQ(nodes_.at(id)->kinds_for("c"), (std::vector<Kind>{Kind::kJoined, Kind::kLeft}));
    EXPECT_EQ(nodes_.at(id)->cluster->LivePeers().size(), 1u);
  }
  EXPECT_EQ(nodes_.at("c")->cluster->membership().self().state, MemberState::kLeft);
  ASSERT_TRUE(RunUntil(io_, [&] { return nodes_.at("a")->link_events.back() == "c down"; }));
  // The leaver is not judged by the failure detector later.
  AdvanceAndExchange(3000, {"a", "b"});
  EXPECT_EQ(nodes_.at("a")->state_of("c"), MemberState::kLeft);
}

TEST_F(ClusterTest, SubscribersReceiveTheirKindAndOthersAreCounted) {
  Start(Options("a"));
  Start(Options("b", {EndpointOf("a")}));
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinked({"a", "b"}); }));
  Node& a = *nodes_.at("a");
  Node& b = *nodes_.at("b");
  std::vector<std::string> received;
  ASSERT_TRUE(b->Subscribe(PeerEnvelope::kProbe, [&](const PeerIdentity& from,
                                                     const PeerEnvelope& envelope) {
                 EXPECT_EQ(from.node_id, "a");
                 received.push_back(envelope.probe().payload());
               }).ok());
  EXPECT_EQ(b->Subscribe(PeerEnvelope::kHeartbeat, nullptr).code(), v1::INVALID_ARGUMENT);

  PeerEnvelope probe;
  probe.mutable_probe()->set_payload("hello b");
  ASSERT_TRUE(a->Send("b", probe).ok());
  PeerEnvelope batch;
  batch.mutable_delta_batch();  // nobody on b handles deltas
  ASSERT_TRUE(a->Send("b", batch).ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return b->View().messages_unhandled == 1; }));
  EXPECT_EQ(received, std::vector<std::string>{"hello b"});
}

TEST_F(ClusterTest, ViewShowsMembersLinksAndCounters) {
  Start(Options("a"));
  Start(Options("b", {EndpointOf("a")}));
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinked({"a", "b"}); }));
  AdvanceAndExchange(200, {"a", "b"});
  AdvanceAndExchange(200, {"a", "b"});  // the second round carries echoes

  const ClusterView view = nodes_.at("a")->cluster->View();
  EXPECT_EQ(view.self.node_id, "a");
  ASSERT_EQ(view.members.size(), 2u);
  EXPECT_TRUE(view.members[0].member.self);
  const MemberView& b = view.members[1];
  EXPECT_EQ(b.member.node_id, "b");
  EXPECT_TRUE(b.linked);
  EXPECT_GT(b.counters.frames_out, 0u);
  EXPECT_GT(b.counters.bytes_in, 0u);
  EXPECT_EQ(b.rtt_ms, 0);  // the manual clock did not move during the round trip
  EXPECT_EQ(b.heard_ago_ms, 0);

  const std::string json = view.ToJson();
  EXPECT_NE(json.find("\"node_id\":\"b\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"alive\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"link\":\"up\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"queue_frames\":0"), std::string::npos) << json;
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');

  std::string metrics;
  view.AppendPrometheus(metrics);
  EXPECT_NE(metrics.find("sessiond_cluster_members{state=\"alive\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sessiond_peer_up{peer=\"b\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sessiond_peer_handshake_refusals_total{reason=\"secret_mismatch\","
                         "by=\"local\"} 0"),
            std::string::npos)
      << metrics;
}

TEST_F(ClusterTest, BadOptionsAreRefusedWithAReason) {
  ClusterOptions options = Options("a");
  options.heartbeat_interval = 1500ms;  // longer than the suspect time
  Cluster slow(io_.get_executor(), options);
  const Status s = slow.Start();
  EXPECT_EQ(s.code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("heartbeat"), std::string::npos) << s.message();

  options = Options("");
  Cluster anonymous(io_.get_executor(), options);
  EXPECT_EQ(anonymous.Start().code(), v1::INVALID_ARGUMENT);
}

// The one test on the real timers: a short configured timeout, driven by the io_context.
TEST_F(ClusterTest, HeartbeatTimerDrivesDetectionOnTheSystemClock) {
  SystemClock system_clock;
  auto options = [&](std::string id, std::vector<Endpoint> seeds) {
    ClusterOptions o = Options(std::move(id), std::move(seeds));
    o.clock = &system_clock;
    o.heartbeat_interval = 20ms;
    o.detector.suspect_after_ms = 500;
    o.detector.dead_after_ms = 1000;
    return o;
  };
  Start(options("a", {}));
  Start(options("b", {EndpointOf("a")}));
  ASSERT_TRUE(RunUntil(io_, [&] { return AllLinked({"a", "b"}); }));
  nodes_.at("b")->cluster->Stop();
  ASSERT_TRUE(RunUntil(io_, [&] { return nodes_.at("a")->state_of("b") == MemberState::kDead; }));
  EXPECT_EQ(nodes_.at("a")->kinds_for("b"),
            (std::vector<Kind>{Kind::kJoined, Kind::kSuspected, Kind::kDied}));
}

}  // namespace
}  // namespace sessiond
