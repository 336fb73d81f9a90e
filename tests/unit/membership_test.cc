#include "replication/cluster/membership.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sessiond {
namespace {

using Kind = MemberEvent::Kind;

class MembershipTest : public ::testing::Test {
 protected:
  MembershipTest() : view_(NodeIdentity{"prod", "a", 100}, "10.0.0.1:7500", 0) {
    view_.AddListener([this](const MemberEvent& e) { events_.push_back(e); });
  }

  std::vector<Kind> kinds() const {
    std::vector<Kind> out;
    for (const MemberEvent& e : events_) out.push_back(e.kind);
    return out;
  }

  Membership view_;
  std::vector<MemberEvent> events_;
};

TEST_F(MembershipTest, StartsWithSelfAlone) {
  ASSERT_EQ(view_.members().size(), 1u);
  const Member& self = view_.self();
  EXPECT_TRUE(self.self);
  EXPECT_EQ(self.node_id, "a");
  EXPECT_EQ(self.incarnation, 100u);
  EXPECT_EQ(self.address, "10.0.0.1:7500");
  EXPECT_EQ(self.state, MemberState::kAlive);
  EXPECT_TRUE(view_.LivePeers().empty());
}

TEST_F(MembershipTest, ContactJoinsAMember) {
  view_.OnContact(PeerIdentity{"b", 7, "10.0.0.2:7500"}, 50);
  ASSERT_EQ(kinds(), std::vector<Kind>{Kind::kJoined});
  EXPECT_EQ(events_[0].member.node_id, "b");
  EXPECT_EQ(events_[0].member.state, MemberState::kAlive);
  EXPECT_EQ(events_[0].member.since_ms, 50);
  const Member* b = view_.Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->address, "10.0.0.2:7500");
  EXPECT_EQ(view_.LivePeers(), std::vector<std::string>{"b"});
  // A second contact from the same incarnation of a live member is no news.
  view_.OnContact(PeerIdentity{"b", 7, "10.0.0.2:7500"}, 60);
  EXPECT_EQ(events_.size(), 1u);
}

TEST_F(MembershipTest, SuspectRecoversWhenHeard) {
  view_.OnContact(PeerIdentity{"b", 7, ""}, 0);
  view_.MarkSuspect("b", 1000);
  EXPECT_EQ(view_.Find("b")->state, MemberState::kSuspect);
  // Suspect members still count: modes keep replicating to them.
  EXPECT_EQ(view_.LivePeers(), std::vector<std::string>{"b"});
  view_.OnHeard("b", 7, 1100);
  EXPECT_EQ(view_.Find("b")->state, MemberState::kAlive);
  EXPECT_EQ(kinds(), (std::vector<Kind>{Kind::kJoined, Kind::kSuspected, Kind::kRecovered}));
  EXPECT_EQ(events_[2].previous_state, MemberState::kSuspect);
}

TEST_F(MembershipTest, DeadMemberIsNotLiveAndRecoversWithTheSameIncarnation) {
  view_.OnContact(PeerIdentity{"b", 7, ""}, 0);
  view_.MarkSuspect("b", 1000);
  view_.MarkDead("b", 1800);
  EXPECT_EQ(view_.Find("b")->state, MemberState::kDead);
  EXPECT_TRUE(view_.LivePeers().empty());
  // Once dead, no second death and no suspicion.
  view_.MarkDead("b", 1900);
  view_.MarkSuspect("b", 1900);
  view_.OnContact(PeerIdentity{"b", 7, ""}, 5000);  // the partition healed
  EXPECT_EQ(kinds(),
            (std::vector<Kind>{Kind::kJoined, Kind::kSuspected, Kind::kDied, Kind::kRecovered}));
  EXPECT_EQ(events_.back().previous_state, MemberState::kDead);
}

TEST_F(MembershipTest, NewIncarnationIsARestart) {
  view_.OnContact(PeerIdentity{"b", 7, "10.0.0.2:7500"}, 0);
  view_.MarkDead("b", 2000);
  view_.OnContact(PeerIdentity{"b", 8, "10.0.0.2:7501"}, 3000);
  ASSERT_EQ(events_.back().kind, Kind::kRestarted);
  EXPECT_EQ(events_.back().previous_incarnation, 7u);
  EXPECT_EQ(events_.back().member.incarnation, 8u);
  EXPECT_EQ(events_.back().member.state, MemberState::kAlive);
  EXPECT_EQ(view_.Find("b")->address, "10.0.0.2:7501");
  // A restart is news even when the old incarnation still looked alive.
  view_.OnContact(PeerIdentity{"b", 9, ""}, 4000);
  EXPECT_EQ(events_.back().kind, Kind::kRestarted);
  EXPECT_EQ(events_.back().previous_state, MemberState::kAlive);
}

TEST_F(MembershipTest, MessagesFromAnotherIncarnationOrStrangersChangeNothing) {
  view_.OnContact(PeerIdentity{"b", 7, ""}, 0);
  view_.MarkDead("b", 2000);
  view_.OnHeard("b", 6, 2100);  // the old instance's last words
  view_.OnHeard("zed", 1, 2100);
  EXPECT_EQ(view_.Find("b")->state, MemberState::kDead);
  EXPECT_EQ(view_.Find("zed"), nullptr);
}

TEST_F(MembershipTest, LeaveMarksLeftAtOnceAndSticks) {
  view_.OnContact(PeerIdentity{"b", 7, ""}, 0);
  view_.MarkLeft("b", 10);
  EXPECT_EQ(view_.Find("b")->state, MemberState::kLeft);
  EXPECT_TRUE(view_.LivePeers().empty());
  view_.OnHeard("b", 7, 20);
  view_.MarkDead("b", 3000);
  EXPECT_EQ(view_.Find("b")->state, MemberState::kLeft);
  EXPECT_EQ(kinds(), (std::vector<Kind>{Kind::kJoined, Kind::kLeft}));
  // It may come back as a new process.
  view_.OnContact(PeerIdentity{"b", 8, ""}, 4000);
  EXPECT_EQ(events_.back().kind, Kind::kRestarted);
}

TEST_F(MembershipTest, SelfCanLeaveButIsNeverSuspected) {
  view_.MarkSuspect("a", 10);
  view_.MarkDead("a", 10);
  view_.OnContact(PeerIdentity{"a", 100, ""}, 10);
  EXPECT_TRUE(events_.empty());
  view_.MarkLeft("a", 20);
  EXPECT_EQ(view_.self().state, MemberState::kLeft);
}

TEST_F(MembershipTest, ListenersMayRemoveListenersWhileNotified) {
  int second_calls = 0;
  Membership::ListenerId second = 0;
  view_.AddListener([&](const MemberEvent&) { view_.RemoveListener(second); });
  second = view_.AddListener([&](const MemberEvent&) { ++second_calls; });
  view_.OnContact(PeerIdentity{"b", 7, ""}, 0);
  EXPECT_EQ(second_calls, 0);  // removed by an earlier listener before its turn
  EXPECT_EQ(events_.size(), 1u);
}

TEST_F(MembershipTest, NamesForTheAdminEndpoint) {
  EXPECT_EQ(MemberStateName(MemberState::kSuspect), "suspect");
  EXPECT_EQ(MemberStateName(MemberState::kLeft), "left");
  EXPECT_EQ(MemberEventKindName(Kind::kRestarted), "restarted");
}

}  // namespace
}  // namespace sessiond
