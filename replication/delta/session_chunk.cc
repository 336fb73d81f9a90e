#include "replication/delta/session_chunk.h"

#include <fmt/format.h>
#include <lz4.h>

#include <cassert>
#include <cstring>

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

// Writers at a cursor into a buffer sized ahead; each returns the cursor past what it wrote.
char* PutVarintTo(char* p, uint64_t value) {
  while (value >= 0x80) {
    *p++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *p++ = static_cast<char>(value);
  return p;
}

// A length-delimited field of a number below 16, and a varint one (left out when 0).
char* PutBytesTo(char* p, uint32_t field, std::string_view bytes) {
  *p++ = static_cast<char>((field << 3) | kLengthDelimited);
  p = PutVarintTo(p, bytes.size());
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return p + bytes.size();
}
char* PutNumberTo(char* p, uint32_t field, uint64_t value) {
  if (value == 0) return p;
  *p++ = static_cast<char>((field << 3) | kVarint);
  return PutVarintTo(p, value);
}

size_t BytesFieldSize(size_t size) { return 1 + VarintSize(size) + size; }
size_t NumberFieldSize(uint64_t value) { return value == 0 ? 0 : 1 + VarintSize(value); }
// The length of a map entry {1: name, 2: value}.
size_t EntrySize(const AttributeBlock::Attribute& a) {
  return BytesFieldSize(a.name.size()) + BytesFieldSize(a.value.size());
}

void PutTag(std::string& out, uint32_t field, uint32_t wire_type) {
  PutVarint(out, (field << 3) | wire_type);
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

// Reads protobuf wire format. Any error ends the input (so every loop stops) and sticks.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool ok() const { return ok_; }

  // The next field's number and wire type; false at the end of the input or on an error.
  bool Next(uint32_t* field, uint32_t* wire_type) {
    if (p_ == end_) return false;
    uint64_t tag = 0;
    if (!Varint(&tag)) return false;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) return Fail();
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return true;
  }

  bool Varint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return Fail();
      const auto byte = static_cast<uint8_t>(*p_++);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return Fail();  // more than ten bytes
  }

  bool Bytes(std::string_view* out) {
    uint64_t size = 0;
    if (!Varint(&size)) return false;
    if (size > static_cast<uint64_t>(end_ - p_)) return Fail();
    *out = std::string_view(p_, static_cast<size_t>(size));
    p_ += size;
    return true;
  }

  // Skips a field of `wire_type` (an unknown field, or a known one sent with another type, as
  // the generated parser does). Groups are refused: nothing in these messages uses them.
  bool Skip(uint32_t wire_type) {
    uint64_t ignored = 0;
    std::string_view bytes;
    switch (wire_type) {
      case 0:
        return Varint(&ignored);
      case 1:
        return Advance(8);
      case 2:
        return Bytes(&bytes);
      case 5:
        return Advance(4);
      default:
        return Fail();
    }
  }

  bool Fail() {
    ok_ = false;
    p_ = end_;
    return false;
  }

 private:
  bool Advance(size_t n) {
    if (n > static_cast<size_t>(end_ - p_)) return Fail();
    p_ += n;
    return true;
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
};

// Structurally valid UTF-8, as proto3 requires of string fields (the generated parser refuses a
// message with one that is not).
bool IsUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* end = p + s.size();
  while (p < end) {
    const uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t n = 0;
    uint32_t code = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1, code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, code = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[n] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

bool String(WireReader& in, std::string_view* out) {
  return in.Bytes(out) && (IsUtf8(*out) || in.Fail());
}

// Where one session's attributes and stamps lie in a DecodedChunk's vectors while it is parsed
// (the vectors may still move).
struct SessionExtent {
  size_t first_attribute = 0;
  size_t first_stamp = 0;
};

bool ParseAttribute(std::string_view bytes, size_t first, DecodedChunk& out) {
  WireReader in(bytes);
  AttributeBlock::Attribute a;
  uint32_t field = 0, wire_type = 0;
  while (in.Next(&field, &wire_type)) {
    if (field == 1 && wire_type == kLengthDelimited) {
      String(in, &a.name);
    } else if (field == 2 && wire_type == kLengthDelimited) {
      in.Bytes(&a.value);
    } else {
      in.Skip(wire_type);
    }
  }
  if (!in.ok()) return false;
  // A map keeps the last value of a repeated key.
  for (size_t i = first; i < out.attributes.size(); ++i) {
    if (out.attributes[i].name == a.name) {
      out.attributes[i].value = a.value;
      return true;
    }
  }
  out.attributes.push_back(a);
  return true;
}

bool ParseSession(std::string_view bytes, size_t first_attribute, DecodedChunk& out,
                  SessionImage& session) {
  using namespace session_field;
  WireReader in(bytes);
  uint32_t field = 0, wire_type = 0;
  uint64_t v = 0;
  std::string_view entry;
  while (in.Next(&field, &wire_type)) {
    if (wire_type == kVarint && field >= kCreated && field <= kVersion && field != kPrincipal) {
      if (!in.Varint(&v)) break;
      if (field == kCreated) session.created_ms = static_cast<int64_t>(v);
      if (field == kLastAccess) session.last_access_ms = static_cast<int64_t>(v);
      if (field == kMaxIdle) session.max_idle_s = static_cast<uint32_t>(v);
      if (field == kMaxLifetime) session.max_lifetime_s = static_cast<uint32_t>(v);
      if (field == kVersion) session.version = v;
    } else if (wire_type == kLengthDelimited && field == kId) {
      String(in, &session.id);
    } else if (wire_type == kLengthDelimited && field == kPrincipal) {
      String(in, &session.principal);
    } else if (wire_type == kLengthDelimited && field == kAttributes) {
      if (in.Bytes(&entry) && !ParseAttribute(entry, first_attribute, out)) in.Fail();
    } else {
      in.Skip(wire_type);
    }
  }
  return in.ok();
}

bool ParseStamp(std::string_view bytes, StampRecord& stamp, uint32_t& node) {
  WireReader in(bytes);
  uint32_t field = 0, wire_type = 0;
  uint64_t v = 0;
  while (in.Next(&field, &wire_type)) {
    if (wire_type == kVarint && field != stamp_field::kName) {
      if (!in.Varint(&v)) break;
      if (field == stamp_field::kField) {
        stamp.field =
            static_cast<uint32_t>(v) == peer::v1::FieldStamp::PRINCIPAL  ? StampedField::kPrincipal
            : static_cast<uint32_t>(v) == peer::v1::FieldStamp::MAX_IDLE ? StampedField::kMaxIdle
                                                                         : StampedField::kAttribute;
      }
      if (field == stamp_field::kClock) stamp.clock = v;
      if (field == stamp_field::kNode) node = static_cast<uint32_t>(v);
      if (field == stamp_field::kRemoved) stamp.removed = v != 0;
    } else if (wire_type == kLengthDelimited && field == stamp_field::kName) {
      String(in, &stamp.name);
    } else {
      in.Skip(wire_type);
    }
  }
  return in.ok();
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

// The length of a FieldStamp.
size_t StampSize(StampedField field, std::string_view name, uint64_t clock, uint32_t node,
                 bool removed) {
  return NumberFieldSize(WireField(field)) + (name.empty() ? 0 : BytesFieldSize(name.size())) +
         NumberFieldSize(clock) + NumberFieldSize(node) + NumberFieldSize(removed ? 1 : 0);
}

// The most a FieldStamp field takes besides its name: tag and length, field, the name's tag and
// length, clock, node, removed.
constexpr size_t kMaxStampBytes = (1 + 5) + 2 + (1 + 5) + (1 + 10) + (1 + 5) + 2;

// Writes a FieldStamp field (tag, length, stamp) at p; returns the cursor past it. Writes at
// most kMaxStampBytes + name.size() bytes.
char* PutStampTo(char* p, StampedField field, std::string_view name, uint64_t clock, uint32_t node,
                 bool removed) {
  *p++ = static_cast<char>((stamped_field::kStamps << 3) | kLengthDelimited);
  // One byte of length while the stamp is under 128 bytes, as it is unless its name is long.
  char* length = p++;
  char* body = p;
  p = PutNumberTo(p, stamp_field::kField, WireField(field));
  if (!name.empty()) p = PutBytesTo(p, stamp_field::kName, name);
  p = PutNumberTo(p, stamp_field::kClock, clock);
  p = PutNumberTo(p, stamp_field::kNode, node);
  p = PutNumberTo(p, stamp_field::kRemoved, removed ? 1 : 0);
  const auto n = static_cast<size_t>(p - body);
  if (n < 0x80) {
    *length = static_cast<char>(n);
    return p;
  }
  const size_t extra = VarintSize(n) - 1;
  std::memmove(body + extra, body, n);
  PutVarintTo(length, n);
  return p + extra;
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
  // Everything is sized first and written once, straight into out_: the attributes are most of
  // a chunk's bytes, and copying them through scratch buffers cost the sender's loop a fifth of
  // its time; the stamps went through two std::strings, a tenth. Every field number here is
  // below 16: its tag is one byte. The stamps (ten or so of a few dozen bytes) are written first,
  // onto the stack, since the StampedSession's length needs theirs; when they do not fit there
  // (many long names), a pass of their own sizes them and they are written in place.
  char buffered[kStampBufferBytes];
  char* end = buffered;
  bool fit = true;
  stamps.ForEachOfKey(
      s.key(), [&](StampedField field, std::string_view name, const Stamp& st, bool removed) {
        if (!fit) return;
        if (static_cast<size_t>(buffered + sizeof buffered - end) < kMaxStampBytes + name.size()) {
          fit = false;
          return;
        }
        end = PutStampTo(end, field, name, st.clock, NodeIndex(st.node), removed);
      });
  size_t stamps_size = static_cast<size_t>(end - buffered);
  if (!fit) {
    stamps_size = 0;
    stamps.ForEachOfKey(s.key(), [&](StampedField field, std::string_view name, const Stamp& st,
                                     bool removed) {
      stamps_size += BytesFieldSize(StampSize(field, name, st.clock, NodeIndex(st.node), removed));
    });
  }
  const auto created = static_cast<uint64_t>(s.created_ms());
  const auto last_access = static_cast<uint64_t>(s.last_access_ms());
  size_t session_size = BytesFieldSize(id.size()) + NumberFieldSize(created) +
                        NumberFieldSize(last_access) + NumberFieldSize(s.max_idle_s()) +
                        NumberFieldSize(s.max_lifetime_s()) + NumberFieldSize(s.version()) +
                        (s.principal().empty() ? 0 : BytesFieldSize(s.principal().size()));
  for (const AttributeBlock::Attribute& a : s.attributes()) {
    session_size += BytesFieldSize(EntrySize(a));
  }
  const size_t stamped_size = BytesFieldSize(session_size) + stamps_size;
  const size_t start = out_.size();
  out_.resize(start + BytesFieldSize(stamped_size));
  char* p = out_.data() + start;
  *p++ = static_cast<char>((list_field::kSessions << 3) | kLengthDelimited);
  p = PutVarintTo(p, stamped_size);
  *p++ = static_cast<char>((stamped_field::kSession << 3) | kLengthDelimited);
  p = PutVarintTo(p, session_size);
  p = PutBytesTo(p, kId, id);
  p = PutNumberTo(p, kCreated, created);
  p = PutNumberTo(p, kLastAccess, last_access);
  p = PutNumberTo(p, kMaxIdle, s.max_idle_s());
  p = PutNumberTo(p, kMaxLifetime, s.max_lifetime_s());
  if (!s.principal().empty()) p = PutBytesTo(p, kPrincipal, s.principal());
  p = PutNumberTo(p, kVersion, s.version());
  for (const AttributeBlock::Attribute& a : s.attributes()) {
    // A map entry is a message {1: key, 2: value}.
    p = PutVarintTo(p, (kAttributes << 3) | kLengthDelimited);
    p = PutVarintTo(p, EntrySize(a));
    p = PutBytesTo(p, 1, a.name);
    p = PutBytesTo(p, 2, a.value);
  }
  if (fit) {
    std::memcpy(p, buffered, stamps_size);
    p += stamps_size;
  } else {
    stamps.ForEachOfKey(
        s.key(), [&](StampedField field, std::string_view name, const Stamp& st, bool removed) {
          p = PutStampTo(p, field, name, st.clock, NodeIndex(st.node), removed);
        });
  }
  assert(p == out_.data() + out_.size());
  (void)p;
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

Status CompressSessionChunk(std::string_view raw, peer::v1::StateTransferChunk* chunk,
                            int acceleration) {
  std::string scratch;
  return CompressSessionChunk(raw, chunk, acceleration, &scratch);
}

Status CompressSessionChunk(std::string_view raw, peer::v1::StateTransferChunk* chunk,
                            int acceleration, std::string* scratch) {
  if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    return Internal(fmt::format(
        "a state-transfer chunk of {} bytes is too large for lz4; this is a bug in chunking: "
        "report it",
        raw.size()));
  }
  const int bound = LZ4_compressBound(static_cast<int>(raw.size()));
  // Only ever grown: resizing the payload to the bound for each chunk zero-filled a megabyte
  // that lz4 then mostly did not write (a chunk compresses to an eighth of that here).
  if (scratch->size() < static_cast<size_t>(bound)) scratch->resize(static_cast<size_t>(bound));
  const int compressed = LZ4_compress_fast(raw.data(), scratch->data(),
                                           static_cast<int>(raw.size()), bound, acceleration);
  if (compressed <= 0 && !raw.empty()) {
    return Internal("lz4 failed to compress a state-transfer chunk: report this as a bug");
  }
  chunk->mutable_lz4_payload()->assign(scratch->data(),
                                       static_cast<size_t>(std::max(compressed, 0)));
  chunk->set_raw_size(static_cast<uint32_t>(raw.size()));
  return Status::Ok();
}

namespace {

// Decompresses a chunk's payload into `raw` (reusing its capacity), within `max_raw_bytes`.
Status DecompressChunk(const peer::v1::StateTransferChunk& chunk, size_t max_raw_bytes,
                       std::string& raw) {
  if (chunk.raw_size() > max_raw_bytes) {
    return InvalidArgument(fmt::format(
        "a state-transfer chunk claims {} bytes, over the limit of {}: the peers run different "
        "releases or the peer is broken",
        chunk.raw_size(), max_raw_bytes));
  }
  raw.resize(chunk.raw_size());
  if (chunk.raw_size() > 0) {
    const int n = LZ4_decompress_safe(chunk.lz4_payload().data(), raw.data(),
                                      static_cast<int>(chunk.lz4_payload().size()),
                                      static_cast<int>(raw.size()));
    if (n != static_cast<int>(raw.size())) {
      return InvalidArgument(
          "a state-transfer chunk did not decompress to its stated size: the peer is broken");
    }
  }
  return Status::Ok();
}

}  // namespace

Status DecodeSessionChunk(const peer::v1::StateTransferChunk& chunk, size_t max_raw_bytes,
                          peer::v1::StampedSessionList* list) {
  std::string raw;
  if (Status s = DecompressChunk(chunk, max_raw_bytes, raw); !s.ok()) return s;
  if (!list->ParseFromString(raw)) {
    return InvalidArgument("a state-transfer chunk did not parse as a StampedSessionList");
  }
  return Status::Ok();
}

}  // namespace sessiond

namespace sessiond {

Status ParseSessionList(DecodedChunk* decoded) {
  DecodedChunk& out = *decoded;
  out.nodes.clear();
  out.sessions.clear();
  out.removed_ids.clear();
  out.attributes.clear();
  out.stamps.clear();
  out.blocks.clear();
  // Sized for sessions of about 1 KB with ten stamps, so that a typical chunk does not regrow.
  out.sessions.reserve(out.raw.size() / 1024 + 1);
  out.attributes.reserve(out.raw.size() / 128 + 1);
  out.stamps.reserve(out.raw.size() / 96 + 1);
  std::vector<SessionExtent> extents;
  extents.reserve(out.sessions.capacity());
  std::vector<uint32_t> stamp_nodes;  // each stamp's node index, resolved once the table is read
  stamp_nodes.reserve(out.stamps.capacity());

  WireReader in(out.raw);
  uint32_t field = 0, wire_type = 0;
  std::string_view bytes;
  while (in.Next(&field, &wire_type)) {
    if (wire_type != kLengthDelimited) {
      in.Skip(wire_type);
    } else if (field == list_field::kNodes) {
      if (String(in, &bytes)) out.nodes.push_back(bytes);
    } else if (field == list_field::kRemovedIds) {
      if (String(in, &bytes)) out.removed_ids.push_back(bytes);
    } else if (field == list_field::kSessions) {
      if (!in.Bytes(&bytes)) break;
      SessionExtent extent{out.attributes.size(), out.stamps.size()};
      DecodedSession& session = out.sessions.emplace_back();
      WireReader stamped(bytes);
      uint32_t f = 0, type = 0;
      std::string_view part;
      while (stamped.Next(&f, &type)) {
        if (type != kLengthDelimited ||
            (f != stamped_field::kSession && f != stamped_field::kStamps)) {
          stamped.Skip(type);
          continue;
        }
        if (!stamped.Bytes(&part)) break;
        // A message field that comes twice is merged, as the generated parser does.
        if (f == stamped_field::kSession) {
          if (!ParseSession(part, extent.first_attribute, out, session.session)) stamped.Fail();
        } else {
          StampRecord& stamp = out.stamps.emplace_back();
          uint32_t& node = stamp_nodes.emplace_back(0);
          if (!ParseStamp(part, stamp, node)) stamped.Fail();
        }
      }
      if (!stamped.ok()) in.Fail();
      // Decoded here, on the worker, while the id is in cache: the loop's inserts need the key.
      session.session.key = SessionKey::FromText(session.session.id);
      extents.push_back(extent);
    } else {
      in.Skip(wire_type);
    }
  }
  if (!in.ok()) {
    return InvalidArgument("a state-transfer chunk did not parse as a StampedSessionList");
  }
  for (size_t i = 0; i < out.stamps.size(); ++i) {
    out.stamps[i].node = stamp_nodes[i] < out.nodes.size() ? out.nodes[stamp_nodes[i]] : "";
  }
  for (size_t i = 0; i < out.sessions.size(); ++i) {
    const size_t attributes_end =
        i + 1 < extents.size() ? extents[i + 1].first_attribute : out.attributes.size();
    const size_t stamps_end =
        i + 1 < extents.size() ? extents[i + 1].first_stamp : out.stamps.size();
    out.sessions[i].session.attributes =
        std::span<const AttributeBlock::Attribute>(out.attributes)
            .subspan(extents[i].first_attribute, attributes_end - extents[i].first_attribute);
    out.sessions[i].stamps =
        std::span<const StampRecord>(out.stamps)
            .subspan(extents[i].first_stamp, stamps_end - extents[i].first_stamp);
  }
  return Status::Ok();
}

void BuildBlocks(DecodedChunk* decoded) {
  decoded->blocks.clear();
  decoded->blocks.reserve(decoded->sessions.size());
  for (const DecodedSession& s : decoded->sessions) {
    decoded->blocks.push_back(AttributeBlock::Of(s.session.attributes));
  }
}

Status DecodeSessionChunk(const peer::v1::StateTransferChunk& chunk, size_t max_raw_bytes,
                          DecodedChunk* decoded) {
  if (Status s = DecompressChunk(chunk, max_raw_bytes, decoded->raw); !s.ok()) return s;
  return ParseSessionList(decoded);
}

}  // namespace sessiond
