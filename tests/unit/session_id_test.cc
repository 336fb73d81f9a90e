#include "replication/session_id.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <unordered_set>

#include "replication/session_key.h"

namespace sessiond {
namespace {

TEST(RandomIdGeneratorTest, MakesWellFormed22CharacterUrlSafeIds) {
  RandomIdGenerator ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = ids.NewId();
    ASSERT_EQ(id.size(), kSessionIdTextBytes);
    EXPECT_EQ(
        id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos)
        << id;
    EXPECT_TRUE(IsWellFormedSessionId(id)) << id;
  }
}

TEST(RandomIdGeneratorTest, IdsDoNotRepeat) {
  RandomIdGenerator ids;
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(seen.insert(ids.NewId()).second);
}

TEST(RandomIdGeneratorTest, EveryCharacterPositionVaries) {
  // A generator stuck on some bytes (a bad encoder, a zeroed buffer) shows up as a position
  // that never changes.
  RandomIdGenerator ids;
  const std::string first = ids.NewId();
  std::array<bool, kSessionIdTextBytes> varied{};
  for (int i = 0; i < 200; ++i) {
    const std::string id = ids.NewId();
    for (size_t p = 0; p < id.size(); ++p) varied[p] = varied[p] || id[p] != first[p];
  }
  for (size_t p = 0; p < kSessionIdTextBytes; ++p) EXPECT_TRUE(varied[p]) << "position " << p;
}

TEST(IsWellFormedSessionIdTest, RejectsWrongLengthAndAlphabet) {
  EXPECT_FALSE(IsWellFormedSessionId(""));
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAA"));    // 21
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAAAA"));  // 23
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAA+A"));   // standard, not URL-safe
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAA/A"));
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAAA"));
  EXPECT_TRUE(IsWellFormedSessionId("-_-_-_-_-_-_-_-_-_-_-w"));
}

TEST(IsWellFormedSessionIdTest, RejectsNonCanonicalLastCharacter) {
  // The last character carries 2 bits of the 128; its low 4 bits must be zero, or two texts
  // would name one session.
  EXPECT_TRUE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAAQ"));
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAAB"));
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAA_"));
}

TEST(SessionKeyTest, RoundTripsBetweenTextAndBytes) {
  std::array<uint8_t, SessionKey::kBytes> bytes;
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0xF0 + i * 17);
  const SessionKey key(bytes);
  const std::string text = key.ToText();
  ASSERT_EQ(text.size(), kSessionIdTextBytes);
  const std::optional<SessionKey> back = SessionKey::FromText(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, key);
  EXPECT_EQ(back->bytes(), bytes);

  RandomIdGenerator ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = ids.NewId();
    const std::optional<SessionKey> k = SessionKey::FromText(id);
    ASSERT_TRUE(k.has_value());
    EXPECT_EQ(k->ToText(), id);
  }
}

TEST(SessionKeyTest, AllOnesAndAllZerosEncodeAsExpected) {
  std::array<uint8_t, SessionKey::kBytes> ones;
  ones.fill(0xFF);
  EXPECT_EQ(SessionKey(ones).ToText(), "_____________________w");
  EXPECT_EQ(SessionKey().ToText(), "AAAAAAAAAAAAAAAAAAAAAA");
}

TEST(LogTagTest, IsShortStableAndDoesNotContainTheId) {
  RandomIdGenerator ids;
  const std::string id = ids.NewId();
  const std::string tag = LogTag(id);
  EXPECT_EQ(tag.size(), 8u);
  EXPECT_EQ(tag.find_first_not_of("0123456789abcdef"), std::string::npos) << tag;
  EXPECT_EQ(LogTag(id), tag);
  EXPECT_EQ(id.find(tag), std::string::npos);
  EXPECT_EQ(tag.find(id.substr(0, 4)), std::string::npos);
}

TEST(LogTagTest, DifferentIdsGetDifferentTags) {
  RandomIdGenerator ids;
  std::unordered_set<std::string> tags;
  for (int i = 0; i < 1000; ++i) tags.insert(LogTag(ids.NewId()));
  // 32-bit tags: a collision among 1000 is possible (p ~ 1e-4) but more than one is not.
  EXPECT_GE(tags.size(), 999u);
}

TEST(LogTagTest, TagsAnythingAClientSends) {
  EXPECT_EQ(LogTag("").size(), 8u);
  EXPECT_EQ(LogTag(std::string(100000, 'x')).size(), 8u);
  EXPECT_NE(LogTag("a"), LogTag("b"));
}

}  // namespace
}  // namespace sessiond
