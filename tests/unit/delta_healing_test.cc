// Delta mode's healing: batches a broken link swallowed are resent when it comes back; a gap the
// resend buffer no longer covers, and any other divergence, is found by anti-entropy (bucket
// digests of ids and stamps) and repaired by exchanging the differing buckets; removed sessions
// stay removed.
//
// Nodes "a" and "b" reach each other only through Relays: each advertises the address of a relay
// in front of it, and b's seed is a's relay, so whichever link they keep runs through a relay,
// which the test can have swallow traffic or cut.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "tests/unit/delta_test_cluster.h"

namespace sessiond::testing {
namespace {

class DeltaHealingTest : public DeltaClusterTest {
 protected:
  // Starts a and b, each behind a relay, and waits until they are linked.
  void StartPair() {
    Relay& to_a = AddRelay();
    Relay& to_b = AddRelay();
    Start("a", {}, delta_options_, &to_a);
    Start("b", {to_a.endpoint()}, delta_options_, &to_b);
    ASSERT_TRUE(RunUntil(io_, [&] { return Linked("a", "b") && Linked("b", "a"); }));
  }

  void SetRelays(Relay::Mode mode) {
    for (auto& relay : relays_) relay->set_mode(mode);
  }
  uint64_t Dropped() {
    uint64_t dropped = 0;
    for (auto& relay : relays_) dropped += relay->dropped();
    return dropped;
  }

  // Swallows the traffic between a and b while `writes` run, then cuts their link and lets it
  // come back.
  void LoseTraffic(const std::function<void()>& writes) {
    SetRelays(Relay::Mode::kBlackhole);
    const uint64_t dropped = Dropped();
    writes();
    ASSERT_TRUE(RunUntil(io_, [&] { return Dropped() > dropped; }));
    SetRelays(Relay::Mode::kPass);
    for (auto& relay : relays_) relay->Cut();
    ASSERT_TRUE(RunUntil(io_, [&] { return !Linked("a", "b"); }));
    ASSERT_TRUE(RunUntil(io_, [&] { return Linked("a", "b") && Linked("b", "a"); }));
  }
};

TEST_F(DeltaHealingTest, ResendClosesTheGapAfterALinkBreaks) {
  StartPair();
  const v1::Session s = Create("a", {{"k", "1"}});
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", s.id(), "k") == "1"; }));

  v1::Session lost;
  LoseTraffic([&] {
    ASSERT_TRUE(SetAttribute("a", s.id(), "k", "2").ok());
    lost = Create("a", {{"x", "lost"}});
  });
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", s.id(), "k") == "2"; }));
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", lost.id(), "x") == "lost"; }));
  EXPECT_GE(Counter("a", "delta_batches_resent"), 2u);
  EXPECT_EQ(Counter("a", "resyncs"), 0u) << "the resend buffer covered the gap";
  EXPECT_TRUE(DigestsEqual({"a", "b"}));
}

TEST_F(DeltaHealingTest, ResentBatchesAppliedTwiceAreHarmless) {
  StartPair();
  const v1::Session s = Create("a", {{"k", "1"}});
  v1::RotateIdRequest rotate;
  rotate.set_id(s.id());
  const Result<v1::Session> rotated = Run(M("a").RotateId(rotate));
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(SetAttribute("a", rotated->id(), "k", "2").ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", rotated->id(), "k") == "2"; }));
  // b received all of it, but swallows its acks so a cannot know: a resends create, rotate and
  // update, which b already applied.
  LoseTraffic([&] {
    nodes_.at("b")->cluster->Tick();  // a heartbeat from b, with its ack, into the blackhole
  });
  ASSERT_TRUE(SetAttribute("a", rotated->id(), "after", "1").ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", rotated->id(), "after") == "1"; }));
  EXPECT_GE(Counter("a", "delta_batches_resent"), 3u) << "create, rotate and update again";
  EXPECT_EQ(AttributeOn("b", rotated->id(), "k"), "2");
  EXPECT_FALSE(Read("b", s.id()).has_value());
  EXPECT_TRUE(DigestsEqual({"a", "b"}));
}

TEST_F(DeltaHealingTest, GapBeyondTheResendBufferHealsByResync) {
  delta_options_.resend_buffer_batches = 1;
  StartPair();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Create("a", {{"k", "0"}}).id());
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b"}); }));

  LoseTraffic([&] {
    // One batch per write: the buffer keeps only the last.
    for (const std::string& id : ids) ASSERT_TRUE(SetAttribute("a", id, "k", "1").ok());
  });
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b"}); }));
  for (const std::string& id : ids) EXPECT_EQ(AttributeOn("b", id, "k"), "1") << id;
  EXPECT_GE(Counter("a", "resyncs"), 1u);
  EXPECT_GE(Counter("b", "anti_entropy_repairs"), 2u);
}

TEST_F(DeltaHealingTest, AntiEntropyRepairsDivergenceBothWays) {
  // a and b each create sessions while they cannot reach each other; then they link. No delta
  // carries those sessions across: only anti-entropy can.
  Relay& relay = AddRelay();
  relay.set_mode(Relay::Mode::kRefuse);
  Start("b", {}, delta_options_, &relay);
  const std::vector<std::string> on_b = CreateMany("b", 50);
  Start("a", {relay.endpoint()}, delta_options_);
  const std::vector<std::string> on_a = CreateMany("a", 70);
  relay.set_mode(Relay::Mode::kPass);
  ASSERT_TRUE(RunUntil(io_, [&] { return Linked("a", "b") && Linked("b", "a"); }));
  EXPECT_FALSE(DigestsEqual({"a", "b"}));

  M("a").RunAntiEntropy();
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b"}); }));
  EXPECT_EQ(M("a").Stats().sessions(), 120u);
  EXPECT_EQ(M("b").Stats().sessions(), 120u);
  EXPECT_EQ(AttributeOn("a", on_b[7], "attr2"), Attributes(7).at("attr2"));
  EXPECT_EQ(AttributeOn("b", on_a[65], "attr5"), Attributes(65).at("attr5"));
  EXPECT_EQ(Counter("a", "anti_entropy_repairs"), 50u);
  EXPECT_EQ(Counter("b", "anti_entropy_repairs"), 70u);
  EXPECT_GT(Counter("a", "anti_entropy_buckets_differing"), 0u);

  // Converged: another round finds nothing to repair.
  M("b").RunAntiEntropy();
  ASSERT_TRUE(RunUntil(io_, [&] { return Counter("b", "anti_entropy_rounds_in_sync") == 1; }));
  EXPECT_EQ(Counter("a", "anti_entropy_repairs"), 50u);
  EXPECT_EQ(Counter("b", "anti_entropy_repairs"), 70u);
}

TEST_F(DeltaHealingTest, RemovedSessionIsNotResurrectedByAntiEntropy) {
  delta_options_.resend_buffer_batches = 1;
  StartPair();
  const v1::Session doomed = Create("a", {{"k", "1"}});
  const v1::Session kept = Create("a", {{"k", "1"}});
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b"}); }));

  LoseTraffic([&] {
    v1::InvalidateRequest invalidate;
    invalidate.set_id(doomed.id());
    ASSERT_TRUE(Run(M("a").Invalidate(invalidate)).ok());
    // A later batch pushes the invalidation out of a's resend buffer: only anti-entropy can
    // tell b, and b still offers the session back to a.
    ASSERT_TRUE(SetAttribute("a", kept.id(), "k", "2").ok());
  });
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b"}); }));
  M("b").RunAntiEntropy();
  M("a").RunAntiEntropy();
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b"}); }));
  EXPECT_FALSE(Read("a", doomed.id()).has_value());
  EXPECT_FALSE(Read("b", doomed.id()).has_value());
  EXPECT_EQ(AttributeOn("b", kept.id(), "k"), "2");
  EXPECT_EQ(M("a").Stats().sessions(), 1u);
  EXPECT_EQ(M("b").Stats().sessions(), 1u);
  EXPECT_GE(Counter("b", "anti_entropy_repairs"), 1u) << "b should have learned of the removal";
  EXPECT_EQ(Counter("a", "anti_entropy_repairs"), 0u) << "a took the removed session back";
}

TEST_F(DeltaHealingTest, UpdateForASessionNotHeldYetHealsByAntiEntropy) {
  // c joins without a state transfer, so it never got a's create; b's update of that session
  // then reaches c, which cannot apply it (it does not hold the session), as when an update
  // overtakes its create on another link.
  Start("a", {}, delta_options_);
  Start("b", {EndpointOf("a")}, delta_options_);
  ASSERT_TRUE(RunUntil(io_, [&] { return nodes_.at("a")->cluster->LivePeers().size() == 1; }));
  const v1::Session s = Create("a", {{"k", "1"}, {"other", "x"}});
  ASSERT_TRUE(RunUntil(io_, [&] { return AttributeOn("b", s.id(), "k") == "1"; }));
  Start("c", {EndpointOf("a"), EndpointOf("b")}, delta_options_);
  ASSERT_TRUE(RunUntil(io_, [&] {
    const std::vector<std::string> peers = nodes_.at("b")->cluster->LivePeers();
    return std::find(peers.begin(), peers.end(), "c") != peers.end() && Linked("c", "b");
  }));
  ASSERT_TRUE(SetAttribute("b", s.id(), "k", "2").ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return Counter("c", "deltas_for_unknown_sessions") >= 1; }));
  EXPECT_FALSE(Read("c", s.id()).has_value());

  M("c").RunAntiEntropy();
  ASSERT_TRUE(RunUntil(io_, [&] { return DigestsEqual({"a", "b", "c"}); }));
  EXPECT_EQ(AttributeOn("c", s.id(), "k"), "2");
  EXPECT_EQ(AttributeOn("c", s.id(), "other"), "x");
}

}  // namespace
}  // namespace sessiond::testing
