// The pieces anti-entropy and state transfer stand on: the StampTable's bucket digests (equal
// exactly when the stamps are, whatever order they were made in) and the chunk writer (its
// hand-written wire format parses back as the StampedSessionList it claims to be).
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "replication/delta/session_chunk.h"
#include "replication/delta/stamp_table.h"
#include "replication/session_id.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

TEST(DeltaStampDigestTest, EqualStampsGiveEqualBucketsWhateverTheOrder) {
  StampTable one(100);
  StampTable two(100);
  one.Set("s1", StampedField::kAttribute, "a", 5, "n1");
  one.Set("s1", StampedField::kPrincipal, "", 3, "n2");
  one.Set("s2", StampedField::kAttribute, "b", 7, "n1", /*removed=*/true);
  two.Set("s2", StampedField::kAttribute, "b", 7, "n1", /*removed=*/true);
  two.Set("s1", StampedField::kPrincipal, "", 3, "n2");
  two.Set("s1", StampedField::kAttribute, "a", 1, "n3");
  EXPECT_NE(one.bucket_hashes(), two.bucket_hashes()) << "a stamp differs";
  two.Set("s1", StampedField::kAttribute, "a", 5, "n1");
  EXPECT_EQ(one.bucket_hashes(), two.bucket_hashes());

  // A tombstone is not the value it replaced.
  one.Set("s1", StampedField::kAttribute, "a", 5, "n1", /*removed=*/true);
  EXPECT_NE(one.bucket_hashes(), two.bucket_hashes());
}

TEST(DeltaStampDigestTest, RemovingAndRenamingMoveTheDigest) {
  StampTable table(100);
  const StampTable::BucketHashes empty = table.bucket_hashes();
  table.Set("s1", StampedField::kAttribute, "a", 5, "n1");
  table.Remove("s1");
  EXPECT_EQ(table.bucket_hashes(), empty);

  StampTable direct(100);
  direct.Set("s2", StampedField::kAttribute, "a", 5, "n1");
  table.Set("s3", StampedField::kAttribute, "a", 5, "n1");
  table.Rename("s3", "s2");
  EXPECT_EQ(table.bucket_hashes(), direct.bucket_hashes());
}

TEST(DeltaStampDigestTest, AdoptIsTheSameAsSettingEachStamp) {
  StampTable one(100);
  one.Set("s1", StampedField::kAttribute, "a", 5, "n1");
  one.Set("s1", StampedField::kAttribute, "gone", 6, "n2", /*removed=*/true);
  one.Set("s1", StampedField::kMaxIdle, "", 2, "n1");
  StampTable two(100);
  two.Set("s1", StampedField::kAttribute, "stale", 1, "n9");  // replaced by Adopt
  two.Adopt("s1",
            std::vector<StampRecord>{StampRecord{StampedField::kAttribute, "a", 5, "n1", false},
                                     StampRecord{StampedField::kAttribute, "gone", 6, "n2", true},
                                     StampRecord{StampedField::kMaxIdle, "", 2, "n1", false}},
            /*touch_sent_ms=*/42);
  EXPECT_EQ(one.bucket_hashes(), two.bucket_hashes());
  EXPECT_TRUE(two.IsTombstone("s1", "gone"));
  EXPECT_EQ(two.Get("s1", StampedField::kAttribute, "stale").clock, 0u);
  EXPECT_EQ(two.touch_sent_ms("s1"), 42);
}

// Adopt remembers the names (and node) the last adopted session had; sessions that list them in
// other orders, fewer or more of them, or new ones, still get each stamp under its own name.
TEST(DeltaStampDigestTest, AdoptInAnyNameOrderIsTheSameAsSettingEachStamp) {
  const std::vector<std::vector<std::string>> orders = {
      {"a", "b", "c", "d"},           {"d", "c", "b", "a"}, {"b", "a", "d", "c"}, {"c", "e"},
      {"a", "b", "c", "d", "e", "f"}, {"f", "a"},           {"a", "b", "c", "d"}};
  StampTable set(100);
  StampTable adopted(100);
  for (size_t s = 0; s < orders.size(); ++s) {
    const std::string id = "s" + std::to_string(s);
    const std::string node = s % 3 == 0 ? "n1" : "n2";
    std::vector<StampRecord> records;
    for (size_t i = 0; i < orders[s].size(); ++i) {
      const uint64_t clock = 10 * s + i + 1;
      set.Set(id, StampedField::kAttribute, orders[s][i], clock, node, /*removed=*/i == 1);
      records.push_back(StampRecord{StampedField::kAttribute, orders[s][i], clock, node, i == 1});
    }
    set.Set(id, StampedField::kMaxIdle, "", 7, "n3");
    records.push_back(StampRecord{StampedField::kMaxIdle, "", 7, "n3", false});
    adopted.Adopt(id, records, /*touch_sent_ms=*/0);
  }
  EXPECT_EQ(set.bucket_hashes(), adopted.bucket_hashes());
  for (size_t s = 0; s < orders.size(); ++s) {
    const std::string id = "s" + std::to_string(s);
    for (size_t i = 0; i < orders[s].size(); ++i) {
      const Stamp stamp = adopted.Get(id, StampedField::kAttribute, orders[s][i]);
      EXPECT_EQ(stamp.clock, 10 * s + i + 1) << id << " " << orders[s][i];
      EXPECT_EQ(stamp.node, s % 3 == 0 ? "n1" : "n2");
      EXPECT_EQ(adopted.IsTombstone(id, orders[s][i]), i == 1);
    }
    EXPECT_EQ(adopted.Get(id, StampedField::kMaxIdle).node, "n3");
  }
}

TEST(DeltaStampDigestTest, BucketsSpreadIds) {
  RandomIdGenerator ids;
  std::vector<int> counts(StampTable::kBuckets);
  for (int i = 0; i < 25'600; ++i) ++counts[StampTable::Bucket(ids.NewId())];
  for (int c : counts) {
    EXPECT_GT(c, 40);
    EXPECT_LT(c, 200);
  }
}

TEST(DeltaStampDigestTest, ChunkWriterOutputParsesAsTheSessionsItWrote) {
  SessionStore store{SessionLimits{}};
  StampTable stamps(100);
  RandomIdGenerator ids;
  std::vector<std::string> written;
  StampedSessionWriter writer;
  for (int i = 0; i < 3; ++i) {
    v1::CreateRequest request;
    request.set_max_idle_s(600 + i);
    request.set_max_lifetime_s(i == 2 ? 7200 : 0);
    if (i == 1) request.set_principal("alice");
    (*request.mutable_attributes())["k"] = std::string(200 * i + 1, static_cast<char>('x' + i));
    (*request.mutable_attributes())["empty"] = "";
    Result<const StoredSession*> s = store.Create(ids.NewId(), request, 1'000 + i);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    const std::string id = (*s)->id();
    stamps.Set(id, StampedField::kAttribute, "k", 10 + i, i == 0 ? "n1" : "node-two");
    stamps.Set(id, StampedField::kAttribute, "old", 300, "n1", /*removed=*/true);
    stamps.Set(id, StampedField::kPrincipal, "", 5, "n1");
    writer.AddSession(**s, id, stamps);
    written.push_back(id);
  }
  writer.AddRemovedId("removed-id");
  EXPECT_EQ(writer.sessions(), 3u);

  peer::v1::StateTransferChunk chunk;
  ASSERT_TRUE(CompressSessionChunk(std::move(writer).Finish(), &chunk).ok());
  peer::v1::StampedSessionList list;
  const Status decoded = DecodeSessionChunk(chunk, 1 << 20, &list);
  ASSERT_TRUE(decoded.ok()) << decoded.ToString();

  ASSERT_EQ(list.sessions_size(), 3);
  ASSERT_EQ(list.removed_ids_size(), 1);
  EXPECT_EQ(list.removed_ids(0), "removed-id");
  for (int i = 0; i < 3; ++i) {
    const peer::v1::StampedSession& got = list.sessions(i);
    const v1::Session expected = store.Find(written[i], 0)->ToProto();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got.session(), expected))
        << i << ": " << got.session().ShortDebugString() << " vs " << expected.ShortDebugString();
    ASSERT_EQ(got.stamps_size(), 3) << i;
    bool saw_tombstone = false;
    for (const peer::v1::FieldStamp& f : got.stamps()) {
      ASSERT_LT(static_cast<int>(f.node()), list.nodes_size());
      const std::string& node = list.nodes(static_cast<int>(f.node()));
      if (f.field() == peer::v1::FieldStamp::ATTRIBUTE && f.name() == "k") {
        EXPECT_EQ(f.clock(), static_cast<uint64_t>(10 + i));
        EXPECT_EQ(node, i == 0 ? "n1" : "node-two");
      }
      if (f.name() == "old") {
        saw_tombstone = f.removed() && f.clock() == 300 && node == "n1";
      }
      if (f.field() == peer::v1::FieldStamp::PRINCIPAL) {
        EXPECT_EQ(f.clock(), 5u);
      }
    }
    EXPECT_TRUE(saw_tombstone) << i;
  }
}

TEST(DeltaStampDigestTest, CorruptChunkIsRefused) {
  peer::v1::StateTransferChunk chunk;
  chunk.set_raw_size(100);
  chunk.set_lz4_payload("not lz4 at all");
  peer::v1::StampedSessionList list;
  EXPECT_EQ(DecodeSessionChunk(chunk, 1 << 20, &list).code(), v1::INVALID_ARGUMENT);
  chunk.set_raw_size(2u << 20);
  EXPECT_EQ(DecodeSessionChunk(chunk, 1 << 20, &list).code(), v1::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sessiond
