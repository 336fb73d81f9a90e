#include "replication/delta/session_chunk.h"

#include <fmt/format.h>
#include <lz4.h>

namespace sessiond {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

void PutVarint(std::string& out, uint64_t value) {
  char buffer[10];
  size_t n = 0;
  while (value >= 0x80) {
    buffer[n++] = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  buffer[n++] = static_cast<char>(value);
  out.append(buffer, n);
}

size_t VarintSize(uint64_t value) {
  size_t n = 1;
  for (; value >= 0x80; value >>= 7) ++n;
  return n;
}

void PutTag(std::string& out, uint32_t field, uint32_t wire_type) {
  PutVarint(out, (field << 3) | wire_type);
}

// A varint field; proto3 leaves zeros out.
void PutNumber(std::string& out, uint32_t field, uint64_t value) {
  if (value == 0) return;
  PutTag(out, field, kVarint);
  PutVarint(out, value);
}

void PutBytes(std::string& out, uint32_t field, std::string_view bytes) {
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, bytes.size());
  out.append(bytes);
}

// Field numbers, from peer.proto and sessiond.proto.
namespace list_field {
constexpr uint32_t kNodes = 1, kSessions = 2, kRemovedIds = 3;
}
namespace stamped_field {
constexpr uint32_t kSession = 1, kStamps = 2;
}
namespace session_field {
constexpr uint32_t kId = 1, kCreated = 2, kLastAccess = 3, kMaxIdle = 4, kMaxLifetime = 5,
                   kPrincipal = 6, kVersion = 7, kAttributes = 8;
}
namespace stamp_field {
constexpr uint32_t kField = 1, kName = 2, kClock = 3, kNode = 4, kRemoved = 5;
}

peer::v1::FieldStamp::Field WireField(StampedField field) {
  switch (field) {
    case StampedField::kPrincipal:
      return peer::v1::FieldStamp::PRINCIPAL;
    case StampedField::kMaxIdle:
      return peer::v1::FieldStamp::MAX_IDLE;
    default:
      return peer::v1::FieldStamp::ATTRIBUTE;
  }
}

}  // namespace

uint32_t StampedSessionWriter::NodeIndex(std::string_view node) {
  // Every stamp's node is a view of the StampTable's interned copy, which keeps its address for
  // the table's life, and a chunk's stamps mostly name one node: comparing the view first spares
  // a memcmp call per stamp.
  if (node.data() == last_node_.data() && node.size() == last_node_.size()) {
    return last_node_index_;
  }
  last_node_ = node;
  last_node_index_ = NodeIndexSlow(node);
  return last_node_index_;
}

uint32_t StampedSessionWriter::NodeIndexSlow(std::string_view node) {
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return i;
  }
  nodes_.emplace_back(node);
  return static_cast<uint32_t>(nodes_.size() - 1);
}

void StampedSessionWriter::AddSession(const StoredSession& s, std::string_view id,
                                      const StampTable& stamps) {
  using namespace session_field;
  session_.clear();
  PutBytes(session_, kId, id);
  PutNumber(session_, kCreated, static_cast<uint64_t>(s.created_ms()));
  PutNumber(session_, kLastAccess, static_cast<uint64_t>(s.last_access_ms()));
  PutNumber(session_, kMaxIdle, s.max_idle_s());
  PutNumber(session_, kMaxLifetime, s.max_lifetime_s());
  if (!s.principal().empty()) PutBytes(session_, kPrincipal, s.principal());
  PutNumber(session_, kVersion, s.version());
  for (const AttributeBlock::Attribute& a : s.attributes()) {
    // A map entry is a message {1: key, 2: value}; its tags take one byte each.
    PutTag(session_, kAttributes, kLengthDelimited);
    PutVarint(session_, 2 + VarintSize(a.name.size()) + a.name.size() + VarintSize(a.value.size()) +
                            a.value.size());
    PutBytes(session_, 1, a.name);
    PutBytes(session_, 2, a.value);
  }

  stamped_.clear();
  PutBytes(stamped_, stamped_field::kSession, session_);
  stamps.ForEach(id, [&](StampedField field, std::string_view name, const Stamp& st, bool removed) {
    std::string& stamp = stamp_;
    stamp.clear();
    PutNumber(stamp, stamp_field::kField, WireField(field));
    if (!name.empty()) PutBytes(stamp, stamp_field::kName, name);
    PutNumber(stamp, stamp_field::kClock, st.clock);
    PutNumber(stamp, stamp_field::kNode, NodeIndex(st.node));
    PutNumber(stamp, stamp_field::kRemoved, removed ? 1 : 0);
    PutBytes(stamped_, stamped_field::kStamps, stamp);
  });
  PutBytes(out_, list_field::kSessions, stamped_);
  ++sessions_;
}

void StampedSessionWriter::AddRemovedId(std::string_view id) {
  PutBytes(out_, list_field::kRemovedIds, id);
}

std::string StampedSessionWriter::Finish() && {
  // Repeated fields may come in any order on the wire: the node table can follow the sessions
  // that refer to it.
  for (const std::string& node : nodes_) PutBytes(out_, list_field::kNodes, node);
  return std::move(out_);
}

Status CompressSessionChunk(std::string_view raw, peer::v1::StateTransferChunk* chunk) {
  if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    return Internal(fmt::format(
        "a state-transfer chunk of {} bytes is too large for lz4; this is a bug in chunking: "
        "report it",
        raw.size()));
  }
  const int bound = LZ4_compressBound(static_cast<int>(raw.size()));
  std::string* payload = chunk->mutable_lz4_payload();
  payload->resize(static_cast<size_t>(bound));
  const int compressed =
      LZ4_compress_default(raw.data(), payload->data(), static_cast<int>(raw.size()), bound);
  if (compressed <= 0 && !raw.empty()) {
    return Internal("lz4 failed to compress a state-transfer chunk: report this as a bug");
  }
  payload->resize(static_cast<size_t>(std::max(compressed, 0)));
  chunk->set_raw_size(static_cast<uint32_t>(raw.size()));
  return Status::Ok();
}

Status DecodeSessionChunk(const peer::v1::StateTransferChunk& chunk, size_t max_raw_bytes,
                          peer::v1::StampedSessionList* list) {
  if (chunk.raw_size() > max_raw_bytes) {
    return InvalidArgument(fmt::format(
        "a state-transfer chunk claims {} bytes, over the limit of {}: the peers run different "
        "releases or the peer is broken",
        chunk.raw_size(), max_raw_bytes));
  }
  std::string raw(chunk.raw_size(), '\0');
  if (chunk.raw_size() > 0) {
    const int n = LZ4_decompress_safe(chunk.lz4_payload().data(), raw.data(),
                                      static_cast<int>(chunk.lz4_payload().size()),
                                      static_cast<int>(raw.size()));
    if (n != static_cast<int>(raw.size())) {
      return InvalidArgument(
          "a state-transfer chunk did not decompress to its stated size: the peer is broken");
    }
  }
  if (!list->ParseFromString(raw)) {
    return InvalidArgument("a state-transfer chunk did not parse as a StampedSessionList");
  }
  return Status::Ok();
}

}  // namespace sessiond
