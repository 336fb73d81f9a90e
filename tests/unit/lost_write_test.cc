// LostWriteLedger on synthetic histories whose losses are known by construction.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tools/bench/lost_write_ledger.h"

namespace sessiond::bench {
namespace {

using Clock = LostWriteLedger::Clock;
using Observation = LostWriteLedger::Observation;

Clock::time_point At(int64_t ms) { return Clock::time_point(std::chrono::milliseconds(ms)); }

std::string Value(uint64_t id) { return LostWriteLedger::EncodeValue(id, 64); }

// A reader that returns one fixed observation per session id.
LostWriteLedger::Reader FixedReader(std::map<std::string, Observation> seen) {
  return [seen = std::move(seen)](const std::string& id, uint32_t) {
    auto it = seen.find(id);
    if (it == seen.end()) return Observation{NotFound("no such session"), {}};
    return it->second;
  };
}

Observation Has(std::map<std::string, std::string> attributes) {
  return Observation{Status::Ok(), std::move(attributes)};
}

TEST(LostWriteLedgerTest, ValueCarriesItsWriteId) {
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{0xdeadbeef}, ~uint64_t{0}}) {
    const std::string v = LostWriteLedger::EncodeValue(id, 100);
    EXPECT_EQ(v.size(), 100u);
    ASSERT_TRUE(LostWriteLedger::DecodeValue(v).has_value());
    EXPECT_EQ(*LostWriteLedger::DecodeValue(v), id);
  }
  // Too small a size still fits the id.
  EXPECT_EQ(*LostWriteLedger::DecodeValue(LostWriteLedger::EncodeValue(7, 1)), 7u);
  EXPECT_FALSE(LostWriteLedger::DecodeValue("hello").has_value());
  EXPECT_FALSE(LostWriteLedger::DecodeValue("wzzzzzzzzzzzzzzzz;....").has_value());
}

// Three sequential acknowledged writes: t = [0,1], [2,3], [4,5].
LostWriteLedger SequentialHistory() {
  LostWriteLedger ledger;
  ledger.RecordSession("s1", 0);
  ledger.RecordWrite("s1", "cart", 1, At(0), At(1));
  ledger.RecordWrite("s1", "cart", 2, At(2), At(3));
  ledger.RecordWrite("s1", "cart", 3, At(4), At(5));
  return ledger;
}

TEST(LostWriteLedgerTest, LatestValueMeansNothingLost) {
  auto v = SequentialHistory().Check(FixedReader({{"s1", Has({{"cart", Value(3)}})}}));
  EXPECT_EQ(v.sessions_checked, 1u);
  EXPECT_EQ(v.acknowledged_writes, 3u);
  EXPECT_EQ(v.writes_lost, 0u);
  EXPECT_EQ(v.sessions_lost, 0u);
  EXPECT_EQ(v.sessions_with_lost_writes, 0u);
}

TEST(LostWriteLedgerTest, StaleValueLosesEveryLaterAcknowledgedWrite) {
  auto v = SequentialHistory().Check(FixedReader({{"s1", Has({{"cart", Value(2)}})}}));
  EXPECT_EQ(v.writes_lost, 1u);  // write 3
  EXPECT_EQ(v.sessions_with_lost_writes, 1u);
  v = SequentialHistory().Check(FixedReader({{"s1", Has({{"cart", Value(1)}})}}));
  EXPECT_EQ(v.writes_lost, 2u);  // writes 2 and 3
}

TEST(LostWriteLedgerTest, MissingAttributeLosesAllItsWrites) {
  auto v = SequentialHistory().Check(FixedReader({{"s1", Has({})}}));
  EXPECT_EQ(v.writes_lost, 3u);
  EXPECT_EQ(v.sessions_lost, 0u);
  EXPECT_EQ(v.sessions_with_lost_writes, 1u);
}

TEST(LostWriteLedgerTest, VanishedSessionLosesTheSessionAndItsWrites) {
  auto v = SequentialHistory().Check(FixedReader({}));
  EXPECT_EQ(v.sessions_lost, 1u);
  EXPECT_EQ(v.writes_lost, 3u);
}

TEST(LostWriteLedgerTest, UnreadableSessionIsUnverifiedNotLost) {
  auto v =
      SequentialHistory().Check(FixedReader({{"s1", Observation{Unavailable("node down"), {}}}}));
  EXPECT_EQ(v.sessions_unreadable, 1u);
  EXPECT_EQ(v.writes_unverified, 3u);
  EXPECT_EQ(v.writes_lost, 0u);
}

TEST(LostWriteLedgerTest, ValueNoWriteProducedIsUnexpectedAndLosesTheWrites) {
  auto v = SequentialHistory().Check(FixedReader({{"s1", Has({{"cart", "garbage"}})}}));
  EXPECT_EQ(v.unexpected_values, 1u);
  EXPECT_EQ(v.writes_lost, 3u);
  v = SequentialHistory().Check(FixedReader({{"s1", Has({{"cart", Value(99)}})}}));
  EXPECT_EQ(v.unexpected_values, 1u);
}

TEST(LostWriteLedgerTest, OverlappingWritesMayWinEitherWay) {
  // Write 1 spans [0,10], write 2 spans [5,6]: they overlap, so last-writer-wins may keep
  // either, and neither outcome loses anything.
  LostWriteLedger ledger;
  ledger.RecordWrite("s1", "a", 1, At(0), At(10));
  ledger.RecordWrite("s1", "a", 2, At(5), At(6));
  EXPECT_EQ(ledger.Check(FixedReader({{"s1", Has({{"a", Value(1)}})}})).writes_lost, 0u);
  EXPECT_EQ(ledger.Check(FixedReader({{"s1", Has({{"a", Value(2)}})}})).writes_lost, 0u);
}

TEST(LostWriteLedgerTest, FailedWriteMayLandButProvesNothing) {
  LostWriteLedger ledger;
  ledger.RecordWrite("s1", "a", 1, At(0), At(1));
  ledger.RecordWrite("s1", "a", 2, At(2), std::nullopt);  // timed out; applied after all
  auto v = ledger.Check(FixedReader({{"s1", Has({{"a", Value(2)}})}}));
  EXPECT_EQ(v.failed_writes, 1u);
  EXPECT_EQ(v.acknowledged_writes, 1u);
  EXPECT_EQ(v.writes_lost, 0u);
  // Not applied: the acknowledged write is there, nothing lost either.
  v = ledger.Check(FixedReader({{"s1", Has({{"a", Value(1)}})}}));
  EXPECT_EQ(v.writes_lost, 0u);
}

TEST(LostWriteLedgerTest, ReaderIsToldTheHomeNode) {
  LostWriteLedger ledger;
  ledger.RecordSession("s1", 2);
  ledger.RecordWrite("s1", "a", 1, At(0), At(1));
  uint32_t asked = 99;
  ledger.Check([&](const std::string&, uint32_t home) {
    asked = home;
    return Has({{"a", Value(1)}});
  });
  EXPECT_EQ(asked, 2u);
}

// A three-node cluster with asynchronous replication: node 2 crashes at t = 1000 ms, and every
// write it acknowledged within the 30 ms before the crash had not reached a replica yet. The
// ledger must count exactly those writes, and no session (the sessions themselves replicated).
TEST(LostWriteLedgerTest, CrashWithAsyncReplicationLosesExactlyTheUnreplicatedWindow) {
  constexpr int kSessions = 30;
  constexpr int kAttributes = 3;
  constexpr int64_t kCrashMs = 1000;
  constexpr int64_t kWindowMs = 30;
  LostWriteLedger ledgers[2];  // two load threads, merged at the end
  std::map<std::string, std::map<std::string, std::string>> surviving;  // what replicas hold
  uint64_t next_id = 1;
  uint64_t expected_lost = 0;
  std::map<std::string, bool> expected_damaged;
  for (int s = 0; s < kSessions; ++s) {
    const std::string id = "session-" + std::to_string(s);
    const uint32_t home = static_cast<uint32_t>(s % 3);
    LostWriteLedger& ledger = ledgers[s % 2];
    ledger.RecordSession(id, home);
    for (int a = 0; a < kAttributes; ++a) {
      const std::string attribute = "attr" + std::to_string(a);
      // Non-overlapping writes every 7 ms, until the crash for the dead node's sessions.
      for (int64_t t = s + a; t < kCrashMs + 200; t += 7) {
        if (home == 2 && t >= kCrashMs) break;  // the node is gone: its sessions get no writes
        const uint64_t write_id = next_id++;
        ledger.RecordWrite(id, attribute, write_id, At(t), At(t + 2));
        const bool in_window = home == 2 && t + 2 > kCrashMs - kWindowMs;
        if (in_window) {
          ++expected_lost;
          expected_damaged[id] = true;
        } else {
          surviving[id][attribute] = Value(write_id);
        }
      }
    }
  }
  // A failed request too: sent to node 2 as it died, never acknowledged, never applied.
  ledgers[0].RecordWrite("session-2", "attr0", next_id++, At(kCrashMs - 1), std::nullopt);

  ledgers[0].Merge(std::move(ledgers[1]));
  EXPECT_EQ(ledgers[0].session_count(), static_cast<size_t>(kSessions));
  LostWriteLedger::Verdict v = ledgers[0].Check([&](const std::string& id, uint32_t home) {
    EXPECT_LT(home, 3u);
    return Has(surviving[id]);
  });
  EXPECT_GT(expected_lost, 0u);
  EXPECT_EQ(v.writes_lost, expected_lost);
  EXPECT_EQ(v.sessions_with_lost_writes, expected_damaged.size());
  EXPECT_EQ(v.sessions_lost, 0u);
  EXPECT_EQ(v.failed_writes, 1u);
  EXPECT_EQ(v.unexpected_values, 0u);
  EXPECT_EQ(v.acknowledged_writes + v.failed_writes, ledgers[0].write_count());
}

TEST(LostWriteLedgerTest, StandaloneCrashLosesTheDeadNodesSessions) {
  LostWriteLedger ledger;
  for (int s = 0; s < 9; ++s) {
    std::string id = "s";  // not "s" + to_string(): GCC 12 warns falsely (-Wrestrict) on that
    id += std::to_string(s);
    ledger.RecordSession(id, static_cast<uint32_t>(s % 3));
    ledger.RecordWrite(id, "a", static_cast<uint64_t>(s) + 1, At(0), At(1));
  }
  // Node 1 died and nobody else had its sessions.
  auto v = ledger.Check([](const std::string& id, uint32_t home) {
    if (home == 1) return Observation{NotFound("gone"), {}};
    return Has({{"a", Value(std::stoull(id.substr(1)) + 1)}});
  });
  EXPECT_EQ(v.sessions_lost, 3u);
  EXPECT_EQ(v.writes_lost, 3u);
  EXPECT_EQ(v.sessions_with_lost_writes, 0u);
}

}  // namespace
}  // namespace sessiond::bench
