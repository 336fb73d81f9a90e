// The receiver's decoder of state-transfer chunks into views (DecodeSessionChunk into a
// DecodedChunk) against the generated protobuf parser: the same content for what the writer
// builds and for valid but unusual wire format, and the same verdict on malformed input.
#include <gtest/gtest.h>
#include <lz4.h>

#include <map>
#include <string>
#include <vector>

#include "replication/delta/session_chunk.h"
#include "replication/delta/stamp_table.h"
#include "replication/session_id.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

using peer::v1::StampedSessionList;

// Protobuf wire format, by hand, for input the generated serializer does not write.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Tag(uint32_t field, uint32_t wire_type) { return Varint((field << 3) | wire_type); }
std::string Bytes(uint32_t field, const std::string& bytes) {
  return Tag(field, 2) + Varint(bytes.size()) + bytes;
}
std::string Number(uint32_t field, uint64_t v) { return Tag(field, 0) + Varint(v); }

std::map<std::string, std::string> AttributesOf(const SessionImage& s) {
  std::map<std::string, std::string> out;
  for (const AttributeBlock::Attribute& a : s.attributes) {
    EXPECT_TRUE(out.emplace(a.name, a.value).second) << "repeated name " << a.name;
  }
  return out;
}

// The views hold what the generated parser read.
void ExpectSame(const DecodedChunk& d, const StampedSessionList& list) {
  ASSERT_EQ(d.nodes.size(), static_cast<size_t>(list.nodes_size()));
  for (int i = 0; i < list.nodes_size(); ++i) EXPECT_EQ(d.nodes[i], list.nodes(i));
  ASSERT_EQ(d.removed_ids.size(), static_cast<size_t>(list.removed_ids_size()));
  for (int i = 0; i < list.removed_ids_size(); ++i) {
    EXPECT_EQ(d.removed_ids[i], list.removed_ids(i));
  }
  ASSERT_EQ(d.sessions.size(), static_cast<size_t>(list.sessions_size()));
  for (int i = 0; i < list.sessions_size(); ++i) {
    const v1::Session& want = list.sessions(i).session();
    const SessionImage& got = d.sessions[i].session;
    EXPECT_EQ(got.id, want.id());
    // Decoded on the worker for the loop; nullopt for an id that is not a session key.
    EXPECT_EQ(got.key, SessionKey::FromText(want.id())) << want.id();
    EXPECT_EQ(got.created_ms, want.created_ms());
    EXPECT_EQ(got.last_access_ms, want.last_access_ms());
    EXPECT_EQ(got.version, want.version());
    EXPECT_EQ(got.max_idle_s, want.max_idle_s());
    EXPECT_EQ(got.max_lifetime_s, want.max_lifetime_s());
    EXPECT_EQ(got.principal, want.principal());
    const std::map<std::string, std::string> want_attributes(want.attributes().begin(),
                                                             want.attributes().end());
    EXPECT_EQ(AttributesOf(got), want_attributes);
    const auto& stamps = list.sessions(i).stamps();
    ASSERT_EQ(d.sessions[i].stamps.size(), static_cast<size_t>(stamps.size())) << i;
    for (int j = 0; j < stamps.size(); ++j) {
      const StampRecord& s = d.sessions[i].stamps[j];
      const peer::v1::FieldStamp& f = stamps.Get(j);
      const StampedField field =
          f.field() == peer::v1::FieldStamp::PRINCIPAL  ? StampedField::kPrincipal
          : f.field() == peer::v1::FieldStamp::MAX_IDLE ? StampedField::kMaxIdle
                                                        : StampedField::kAttribute;
      EXPECT_EQ(s.field, field);
      EXPECT_EQ(s.name, f.name());
      EXPECT_EQ(s.clock, f.clock());
      EXPECT_EQ(s.node, static_cast<int>(f.node()) < list.nodes_size()
                            ? list.nodes(static_cast<int>(f.node()))
                            : "");
      EXPECT_EQ(s.removed, f.removed());
    }
  }
}

// Parses `raw` both ways; they must agree on whether it is valid, and on what it holds.
void ExpectParsersAgree(const std::string& raw, bool valid) {
  StampedSessionList list;
  EXPECT_EQ(list.ParseFromString(raw), valid) << "the generated parser";
  DecodedChunk decoded;
  decoded.raw = raw;
  const Status status = ParseSessionList(&decoded);
  EXPECT_EQ(status.ok(), valid) << status.ToString();
  if (!valid) {
    EXPECT_EQ(status.code(), v1::INVALID_ARGUMENT);
    return;
  }
  ExpectSame(decoded, list);
}

TEST(DeltaSessionChunkTest, WriterOutputDecodesAsTheGeneratedParserReadsIt) {
  SessionStore store(SessionLimits{});
  StampTable stamps(100);
  RandomIdGenerator ids;
  StampedSessionWriter writer;
  for (int i = 0; i < 4; ++i) {
    v1::CreateRequest request;
    request.set_max_idle_s(600 + i);
    request.set_max_lifetime_s(i == 2 ? 7200 : 0);
    if (i == 1) request.set_principal("alice é");
    for (int a = 0; a < i + 1; ++a) {
      (*request.mutable_attributes())["k" + std::to_string(a)] =
          std::string(100 * a, static_cast<char>('a' + i));
    }
    Result<const StoredSession*> s = store.Create(ids.NewId(), request, 1'000 + i);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    const std::string id = (*s)->id();
    stamps.Set(id, StampedField::kAttribute, "k0", 10 + i, i == 0 ? "n1" : "node-two");
    stamps.Set(id, StampedField::kAttribute, "old", 300, "n1", /*removed=*/true);
    stamps.Set(id, StampedField::kPrincipal, "", 5, "n1");
    // A stamp of over 127 bytes (a two-byte length), and stamps that do not fit the writer's
    // buffer on the stack (written in place after a sizing pass).
    if (i == 2) stamps.Set(id, StampedField::kAttribute, std::string(200, 'L'), 7, "n1");
    for (int k = 0; i == 3 && k < 12; ++k) {
      stamps.Set(id, StampedField::kAttribute, std::string(100, static_cast<char>('a' + k)), 8 + k,
                 k % 2 == 0 ? "n1" : "node-three");
    }
    writer.AddSession(**s, id, stamps);
  }
  writer.AddRemovedId("removed-id");
  const std::string raw = std::move(writer).Finish();
  ExpectParsersAgree(raw, true);

  // Through lz4, with the blocks built as the worker builds them.
  peer::v1::StateTransferChunk chunk;
  ASSERT_TRUE(CompressSessionChunk(raw, &chunk).ok());
  DecodedChunk decoded;
  ASSERT_TRUE(DecodeSessionChunk(chunk, 1 << 20, &decoded).ok());
  BuildBlocks(&decoded);
  ASSERT_EQ(decoded.blocks.size(), decoded.sessions.size());
  for (size_t i = 0; i < decoded.sessions.size(); ++i) {
    const StoredSession* held = store.Find(decoded.sessions[i].session.id, 0);
    ASSERT_NE(held, nullptr);
    std::vector<std::pair<std::string_view, std::string_view>> want, got;
    for (const auto& a : held->attributes()) want.emplace_back(a.name, a.value);
    for (const auto& a : decoded.blocks[i]) got.emplace_back(a.name, a.value);
    EXPECT_EQ(got, want) << i;
  }

  // A chunk decoded into a reused DecodedChunk holds only its own sessions.
  StampedSessionWriter second;
  second.AddRemovedId("another");
  peer::v1::StateTransferChunk small;
  ASSERT_TRUE(CompressSessionChunk(std::move(second).Finish(), &small).ok());
  ASSERT_TRUE(DecodeSessionChunk(small, 1 << 20, &decoded).ok());
  EXPECT_TRUE(decoded.sessions.empty());
  EXPECT_TRUE(decoded.blocks.empty());
  ASSERT_EQ(decoded.removed_ids.size(), 1u);
  EXPECT_EQ(decoded.removed_ids[0], "another");
}

TEST(DeltaSessionChunkTest, UnusualButValidWireFormatReadsAsTheGeneratedParserReadsIt) {
  v1::Session base;
  base.set_id("AAAAAAAAAAAAAAAAAAAAAA");
  base.set_created_ms(-5);  // a ten-byte varint
  base.set_max_idle_s(60);
  (*base.mutable_attributes())["k"] = "old";
  (*base.mutable_attributes())["other"] = std::string("\xff\x00 bytes", 8);
  const std::string session =
      base.SerializeAsString() + Number(20, 5) +                 // unknown varint
      Tag(21, 1) + std::string(8, 'x') +                         // unknown fixed64
      Bytes(22, "unknown") + Tag(23, 5) + std::string(4, 'y') +  // unknown bytes, fixed32
      Bytes(2, "created as bytes") +              // a known field with the wrong wire type: skipped
      Bytes(8, Bytes(1, "k") + Bytes(2, "new"));  // a repeated map key: the last value wins
  // The session field twice: the generated parser merges the second into the first.
  const std::string session_again = Bytes(6, "bob") + Bytes(8, Bytes(1, "late") + Bytes(2, "v"));
  const std::string stamp = Number(1, 1) + Number(3, 9) + Number(4, 99) /* past the table */ +
                            Number(5, 1) + Number(30, 1);
  const std::string attribute_stamp = Bytes(2, "k") + Number(3, 12) + Number(4, 0);
  const std::string stamped = Bytes(1, session) + Bytes(2, stamp) + Number(9, 3) +
                              Bytes(1, session_again) + Bytes(2, attribute_stamp);
  const std::string list = Bytes(2, stamped) + Bytes(3, "gone") + Number(7, 1) +
                           Bytes(2, Bytes(1, Bytes(1, "BBBBBBBBBBBBBBBBBBBBBB"))) + Bytes(1, "n1");
  ExpectParsersAgree(list, true);
  ExpectParsersAgree("", true);
}

TEST(DeltaSessionChunkTest, MalformedInputIsRefusedAsTheGeneratedParserRefusesIt) {
  const std::string session = Bytes(1, "AAAAAAAAAAAAAAAAAAAAAA") + Number(4, 60);
  const std::string valid = Bytes(2, Bytes(1, session)) + Bytes(1, "n1");
  ExpectParsersAgree(valid, true);
  // Cut short, at every length.
  for (size_t n = 1; n < valid.size(); ++n) {
    SCOPED_TRACE(n);
    StampedSessionList list;
    if (!list.ParseFromString(valid.substr(0, n))) ExpectParsersAgree(valid.substr(0, n), false);
  }
  const std::string bad_utf8 = "\xc3\x28";
  ExpectParsersAgree(Bytes(1, bad_utf8), false);                                // a node
  ExpectParsersAgree(Bytes(3, "id\xff"), false);                                // a removed id
  ExpectParsersAgree(Bytes(2, Bytes(1, session + Bytes(6, bad_utf8))), false);  // a principal
  ExpectParsersAgree(Bytes(2, Bytes(1, session + Bytes(8, Bytes(1, bad_utf8)))), false);
  ExpectParsersAgree(Bytes(2, Bytes(2, Bytes(2, "\xed\xa0\x80"))), false);        // a surrogate
  ExpectParsersAgree(Bytes(2, Bytes(1, session + Bytes(6, "\xc0\xaf"))), false);  // overlong
  ExpectParsersAgree(Tag(2, 2) + Varint(50) + "short", false);  // a length past the end
  ExpectParsersAgree(Tag(0, 0) + Varint(1), false);             // field number 0
  ExpectParsersAgree(Tag(5, 0) + std::string(11, '\x80') + Varint(1), false);  // an endless varint
  ExpectParsersAgree(Tag(5, 7) + Varint(1), false);                            // no such wire type
  // Valid UTF-8 of every length is taken.
  ExpectParsersAgree(Bytes(1, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), true);
}

TEST(DeltaSessionChunkTest, ChunkThatDoesNotDecompressIsRefused) {
  peer::v1::StateTransferChunk chunk;
  chunk.set_raw_size(100);
  chunk.set_lz4_payload("not lz4 at all");
  DecodedChunk decoded;
  EXPECT_EQ(DecodeSessionChunk(chunk, 1 << 20, &decoded).code(), v1::INVALID_ARGUMENT);
  chunk.set_raw_size(2u << 20);
  EXPECT_EQ(DecodeSessionChunk(chunk, 1 << 20, &decoded).code(), v1::INVALID_ARGUMENT);
}

// A scratch buffer reused from chunk to chunk, large then small then large, leaves nothing of one
// chunk in the next: each decompresses to its own bytes, as without the scratch buffer.
TEST(DeltaSessionChunkTest, CompressingThroughAReusedScratchBufferGivesTheSameChunks) {
  std::string scratch;
  peer::v1::StateTransferChunk chunk;  // reused as the manager reuses its chunk jobs
  for (const size_t size : {size_t{300000}, size_t{10}, size_t{0}, size_t{70000}}) {
    std::string raw(size, '\0');
    for (size_t i = 0; i < size; ++i) raw[i] = static_cast<char>((i * 7919) % 251);
    chunk.Clear();
    ASSERT_TRUE(CompressSessionChunk(raw, &chunk, kSessionChunkLz4Acceleration, &scratch).ok());
    peer::v1::StateTransferChunk plain;
    ASSERT_TRUE(CompressSessionChunk(raw, &plain).ok());
    EXPECT_EQ(chunk.lz4_payload(), plain.lz4_payload()) << size;
    EXPECT_EQ(chunk.raw_size(), size);
    std::string back(size, 'x');
    const int n = LZ4_decompress_safe(chunk.lz4_payload().data(), back.data(),
                                      static_cast<int>(chunk.lz4_payload().size()),
                                      static_cast<int>(back.size()));
    EXPECT_EQ(n, static_cast<int>(size));
    EXPECT_EQ(back, raw) << size;
  }
}

}  // namespace
}  // namespace sessiond
