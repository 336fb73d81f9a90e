// The payload of a StateTransferChunk: a StampedSessionList, serialized and compressed as one
// lz4 block.
//
// The sender writes the list's wire format straight from the store (StampedSessionWriter)
// instead of building protobuf objects: a million sessions of eight attributes would otherwise
// cost some thirty allocations each on the event loop. The receiver parses it with the generated
// code, on the worker thread. Compressing and decoding are pure functions, run on the worker.
#ifndef SESSIOND_REPLICATION_DELTA_SESSION_CHUNK_H_
#define SESSIOND_REPLICATION_DELTA_SESSION_CHUNK_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "replication/delta/stamp_table.h"
#include "replication/session_store.h"
#include "replication/stored_session.h"
#include "sessiond/peer/v1/peer.pb.h"
#include "sessiond/status.h"

namespace sessiond {

// Writes a serialized StampedSessionList, one session or removed id at a time.
class StampedSessionWriter {
 public:
  // `expected_bytes`: room to reserve, so that building a chunk does not reallocate (and copy)
  // its buffer as it grows.
  // `buffer`: storage to reuse (its contents are dropped).
  explicit StampedSessionWriter(size_t expected_bytes = 0, std::string buffer = {})
      : out_(std::move(buffer)) {
    out_.clear();
    out_.reserve(expected_bytes);
  }

  // Appends `session` (whose text id is `id`) with every stamp `stamps` holds for it.
  void AddSession(const StoredSession& session, std::string_view id, const StampTable& stamps);
  // Appends a removed session id.
  void AddRemovedId(std::string_view id);

  // Serialized bytes so far, and sessions written.
  size_t bytes() const { return out_.size(); }
  uint32_t sessions() const { return sessions_; }

  // Appends the node table and returns the whole serialized list. The writer is spent.
  std::string Finish() &&;

 private:
  // Room on the stack for a session's stamps (AddSession).
  static constexpr size_t kStampBufferBytes = 1024;

  uint32_t NodeIndex(std::string_view node);
  uint32_t NodeIndexSlow(std::string_view node);

  std::string out_;
  std::vector<std::string> nodes_;
  // The node NodeIndex saw last, as the StampTable's view (compared by address: the table
  // keeps its node ids at one address for its life), and its index.
  std::string_view last_node_;
  uint32_t last_node_index_ = 0;
  uint32_t sessions_ = 0;
};

// A StampedSessionList decoded into views of its own serialized bytes (`raw`): what the
// receiver merges. Parsing into protobuf objects would copy every string onto an arena (some
// thirty allocations per session of eight attributes) for the loop to copy once more into the
// store; these views cost a few vector entries per session, and the loop reads them in order.
struct DecodedSession {
  SessionImage session;  // attribute names distinct (the last value of a repeated name wins)
  std::span<const StampRecord> stamps;
};
struct DecodedChunk {
  std::string raw;  // the serialized list every view points into
  std::vector<std::string_view> nodes;
  std::vector<DecodedSession> sessions;
  std::vector<std::string_view> removed_ids;
  // What the sessions' spans point into.
  std::vector<AttributeBlock::Attribute> attributes;
  std::vector<StampRecord> stamps;
  // Empty, or by BuildBlocks each session's AttributeBlock::Of(session.attributes).
  std::vector<AttributeBlock> blocks;
};

// lz4's acceleration for state-transfer chunks (1 is LZ4_compress_default). At 4, compressing
// costs 10% less CPU on very repetitive values and 40% less on random text, for chunks 0.5-11%
// larger (DeltaChunkCompressionBenchmark; docs/delta.md "Cost").
inline constexpr int kSessionChunkLz4Acceleration = 4;

// Sets chunk->raw_size and chunk->lz4_payload from a serialized StampedSessionList, compressed
// with lz4 at `acceleration` (LZ4_compress_fast: higher is faster and compresses less; the
// receiver decompresses any). INTERNAL if lz4 cannot take it (over 2 GB, which chunking never
// builds).
Status CompressSessionChunk(std::string_view raw, peer::v1::StateTransferChunk* chunk,
                            int acceleration = kSessionChunkLz4Acceleration);
// The same, compressing into `scratch` first (kept by the caller from chunk to chunk; its size
// only grows) and copying the result into the chunk, so that no buffer is zero-filled per chunk.
Status CompressSessionChunk(std::string_view raw, peer::v1::StateTransferChunk* chunk,
                            int acceleration, std::string* scratch);

// Parses the list a chunk carries into *list. INVALID_ARGUMENT when raw_size is over
// `max_raw_bytes` or the payload does not decompress or parse: the peer sent garbage.
Status DecodeSessionChunk(const peer::v1::StateTransferChunk& chunk, size_t max_raw_bytes,
                          peer::v1::StampedSessionList* list);

// The same into views (see DecodedChunk), with the same checks the generated parser makes:
// INVALID_ARGUMENT for malformed wire format or a string field that is not UTF-8. Unknown
// fields are skipped. A stamp's node index past the node table reads as "".
Status DecodeSessionChunk(const peer::v1::StateTransferChunk& chunk, size_t max_raw_bytes,
                          DecodedChunk* decoded);
// Fills decoded->blocks: the store's form of every session's attributes, built on the worker
// for sessions the loop will mostly insert (a join), so the loop only moves them in.
void BuildBlocks(DecodedChunk* decoded);
// The last step of the above, on a serialized list: *decoded's raw must hold it.
Status ParseSessionList(DecodedChunk* decoded);

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_DELTA_SESSION_CHUNK_H_
