#include "replication/delta/stamp_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "replication/session_key.h"

namespace sessiond {
namespace {

TEST(StampTableTest, StampsOrderByClockThenNodeId) {
  EXPECT_TRUE(StampAfter(Stamp{2, "a"}, Stamp{1, "z"}));
  EXPECT_TRUE(StampAfter(Stamp{2, "b"}, Stamp{2, "a"}));
  EXPECT_FALSE(StampAfter(Stamp{2, "a"}, Stamp{2, "a"}));
  EXPECT_TRUE(StampAfter(Stamp{1, "a"}, Stamp{}));
}

TEST(StampTableTest, KeepsOneStampPerFieldWithTombstones) {
  StampTable table(10);
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 0u);
  table.Set("s", StampedField::kAttribute, "k", 5, "n1");
  table.Set("s", StampedField::kPrincipal, "", 3, "n2");
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 5u);
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").node, "n1");
  EXPECT_EQ(table.Get("s", StampedField::kPrincipal).node, "n2");
  EXPECT_FALSE(table.IsTombstone("s", "k"));
  table.Set("s", StampedField::kAttribute, "k", 7, "n2", /*removed=*/true);
  EXPECT_TRUE(table.IsTombstone("s", "k"));
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 7u);
}

TEST(StampTableTest, RenameMovesStampsAndRemembersTheOldId) {
  StampTable table(10);
  table.Set("old", StampedField::kAttribute, "k", 5, "n1");
  table.Rename("old", "new");
  EXPECT_EQ(table.Get("new", StampedField::kAttribute, "k").clock, 5u);
  EXPECT_EQ(table.Get("old", StampedField::kAttribute, "k").clock, 0u);
  EXPECT_TRUE(table.WasRemoved("old"));
  EXPECT_FALSE(table.WasRemoved("new"));
  EXPECT_EQ(table.session_count(), 1u);
}

TEST(StampTableTest, RemovedIdsAreBounded) {
  StampTable table(2);
  table.Remove("s1");
  table.Remove("s2");
  table.Remove("s3");
  EXPECT_FALSE(table.WasRemoved("s1"));
  EXPECT_TRUE(table.WasRemoved("s2"));
  EXPECT_TRUE(table.WasRemoved("s3"));
  EXPECT_EQ(table.session_count(), 0u);
}

// Real ids are keyed by their 16 bytes, other ids by their text; both behave alike, and a session
// can be renamed from one kind to the other.
TEST(StampTableTest, KeysRealIdsAndOtherIdsAlike) {
  std::array<uint8_t, SessionKey::kBytes> bytes{};
  bytes[0] = 1;
  const std::string real = SessionKey(bytes).ToText();
  bytes[0] = 2;
  const std::string other_real = SessionKey(bytes).ToText();
  StampTable table(10);
  table.Set(real, StampedField::kAttribute, "k", 5, "n1");
  table.Set("s", StampedField::kAttribute, "k", 6, "n2");
  EXPECT_EQ(table.Get(real, StampedField::kAttribute, "k").clock, 5u);
  EXPECT_EQ(table.Get("s", StampedField::kAttribute, "k").clock, 6u);
  EXPECT_EQ(table.Get(other_real, StampedField::kAttribute, "k").clock, 0u);
  EXPECT_EQ(table.Get(real, StampedField::kAttribute, "never-seen").clock, 0u);
  EXPECT_EQ(table.session_count(), 2u);
  table.Rename(real, "t");
  EXPECT_EQ(table.Get("t", StampedField::kAttribute, "k").clock, 5u);
  table.Rename("s", other_real);
  EXPECT_EQ(table.Get(other_real, StampedField::kAttribute, "k").node, "n2");
  EXPECT_TRUE(table.WasRemoved(real));
  EXPECT_TRUE(table.WasRemoved("s"));
  EXPECT_EQ(table.session_count(), 2u);
  table.Remove("t");
  table.Remove(other_real);
  EXPECT_EQ(table.session_count(), 0u);
  for (uint64_t h : table.bucket_hashes()) EXPECT_EQ(h, 0u);
}

// Adopt and Set reach the same digest, whatever names earlier adoptions used at each position.
TEST(StampTableTest, AdoptMatchesSetWithVaryingNames) {
  std::array<uint8_t, SessionKey::kBytes> bytes{};
  StampTable adopted(10);
  StampTable set(10);
  for (int i = 0; i < 20; ++i) {
    bytes[3] = static_cast<uint8_t>(i);
    const std::string id = SessionKey(bytes).ToText();
    const std::string a = "a" + std::to_string(i % 3), b = "b" + std::to_string(i % 2);
    std::vector<StampRecord> records = {
        {StampedField::kAttribute, a, 3, "n1", false},
        {StampedField::kAttribute, b, 4, "n2", i % 2 == 0},
        {StampedField::kPrincipal, "", 5, "n1", false},
    };
    // Half of them with the key decoded by the caller, as a state transfer's worker does.
    if (i % 2 == 0) {
      adopted.Adopt(id, records, 0, SessionKey::FromText(id));
    } else {
      adopted.Adopt(id, records, 0);
    }
    for (const StampRecord& r : records) set.Set(id, r.field, r.name, r.clock, r.node, r.removed);
    EXPECT_EQ(adopted.Get(id, StampedField::kAttribute, b).clock, 4u);
    EXPECT_EQ(adopted.IsTombstone(id, b), i % 2 == 0);
  }
  EXPECT_EQ(adopted.bucket_hashes(), set.bucket_hashes());
}

// More names than Adopt's name cache has slots, so that names share slots and evict each other:
// every stamp still lands on its own name.
TEST(StampTableTest, AdoptKeepsNamesApartWhenMoreNamesThanCacheSlots) {
  std::array<uint8_t, SessionKey::kBytes> bytes{};
  StampTable adopted(10);
  StampTable set(10);
  std::vector<std::string> names;
  for (size_t n = 0; n < 3 * StampTable::kAdoptNameSlots; ++n) {
    names.push_back(n % 2 == 0 ? "n" + std::to_string(n) : std::string(n % 7 + 1, 'x') + "y");
  }
  names.push_back("é");  // a multi-byte name of one character
  for (int i = 0; i < 30; ++i) {
    bytes[5] = static_cast<uint8_t>(i);
    const std::string id = SessionKey(bytes).ToText();
    std::vector<StampRecord> records;
    for (size_t k = 0; k < 12; ++k) {
      const std::string& name = names[(i * 13 + k * 17) % names.size()];
      if (std::any_of(records.begin(), records.end(),
                      [&](const StampRecord& r) { return r.name == name; })) {
        continue;
      }
      records.push_back({StampedField::kAttribute, name, 100 + k, k % 2 ? "n1" : "n2", k == 3});
    }
    records.push_back({StampedField::kMaxIdle, "", 7, "n1", false});
    adopted.Adopt(id, records, 0, SessionKey::FromText(id));
    for (const StampRecord& r : records) set.Set(id, r.field, r.name, r.clock, r.node, r.removed);
    for (const StampRecord& r : records) {
      const Stamp got = adopted.Get(id, r.field, r.name);
      EXPECT_EQ(got.clock, r.clock) << r.name;
      EXPECT_EQ(got.node, r.node) << r.name;
      EXPECT_EQ(adopted.IsTombstone(id, r.name), r.field == StampedField::kAttribute && r.removed);
    }
  }
  EXPECT_EQ(adopted.bucket_hashes(), set.bucket_hashes());
}

}  // namespace
}  // namespace sessiond
