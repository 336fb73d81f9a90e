// LostWriteLedger: every write the benchmark sent, so that after a crash it can say exactly which
// acknowledged writes, and which sessions, the cluster lost.
//
// Each written value carries a unique write id (EncodeValue), so the value read back at the end
// names the write that produced it. For every acknowledged write A of an attribute, Check reads the
// attribute's final value F and calls A lost when:
//   - the session is gone (NOT_FOUND), or the attribute is missing;
//   - F is not a value any recorded write produced (corrupted or foreign);
//   - F was produced by a write W that was acknowledged before A was sent: W strictly happened
//     before A, so F showing W means A was applied and then lost (or never applied).
// A is not lost when F is A's own value, or comes from a write sent after A was sent or
// concurrently with it (last writer wins may legitimately pick either of two overlapping writes),
// or from a write that failed at the client (it may have been applied at any time after it was
// sent, so it proves nothing).
//
// Threading: not thread-safe. Each load thread keeps its own ledger; Merge them at the end.
#ifndef SESSIOND_TOOLS_BENCH_LOST_WRITE_LEDGER_H_
#define SESSIOND_TOOLS_BENCH_LOST_WRITE_LEDGER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sessiond/status.h"

namespace sessiond::bench {

class LostWriteLedger {
 public:
  using Clock = std::chrono::steady_clock;

  // A value of `size` bytes (at least enough for the id) that carries `write_id`.
  static std::string EncodeValue(uint64_t write_id, size_t size);
  // The write id carried by `value`, or nullopt when it is not a value EncodeValue made.
  static std::optional<uint64_t> DecodeValue(std::string_view value);

  // A session whose create was acknowledged; `home_node` is the node that created it (Check
  // passes it to the reader, which reads there while that node is alive). Its initial
  // attributes are recorded with RecordWrite.
  void RecordSession(std::string_view session_id, uint32_t home_node);

  // A write of `attribute` on `session_id` whose value carries `write_id`, sent at `sent`.
  // `acked` is when the daemon answered OK, or nullopt when the write failed or timed out (it may
  // or may not have been applied). Writes to sessions never recorded are recorded as if created.
  void RecordWrite(std::string_view session_id, std::string_view attribute, uint64_t write_id,
                   Clock::time_point sent, std::optional<Clock::time_point> acked);

  // Takes every record of `other`.
  void Merge(LostWriteLedger&& other);

  // What a reader saw for one session: OK with its attributes, NOT_FOUND when it is gone, any
  // other status when it could not be read (its writes then count as unverified, not lost).
  struct Observation {
    Status status;
    std::map<std::string, std::string> attributes;
  };
  using Reader = std::function<Observation(const std::string& session_id, uint32_t home_node)>;

  struct Verdict {
    uint64_t sessions_checked = 0;
    uint64_t sessions_lost = 0;              // NOT_FOUND at the end
    uint64_t sessions_with_lost_writes = 0;  // present, but missing an acknowledged write
    uint64_t sessions_unreadable = 0;        // the reader failed for another reason
    uint64_t acknowledged_writes = 0;
    uint64_t writes_lost = 0;        // acknowledged, and lost (see the header comment)
    uint64_t writes_unverified = 0;  // acknowledged, on unreadable sessions
    uint64_t failed_writes = 0;      // not acknowledged (errors or timeouts)
    uint64_t unexpected_values = 0;  // attributes whose final value no write produced
  };

  // Reads every recorded session once through `reader` and judges every acknowledged write.
  Verdict Check(const Reader& reader) const;

  // Every recorded session with its home node, e.g. to read them all concurrently before Check.
  std::vector<std::pair<std::string, uint32_t>> Sessions() const;

  size_t session_count() const { return sessions_.size(); }
  uint64_t write_count() const { return writes_; }

 private:
  struct Write {
    uint64_t id;
    int64_t sent_ns;
    int64_t acked_ns;  // kNotAcked when not acknowledged
  };
  static constexpr int64_t kNotAcked = -1;
  struct Attribute {
    std::string name;
    std::vector<Write> writes;
  };
  struct SessionRecord {
    uint32_t home_node = 0;
    std::vector<Attribute> attributes;  // few per session: a linear search beats a map
  };

  SessionRecord& SessionFor(std::string_view session_id);

  std::unordered_map<std::string, SessionRecord> sessions_;
  uint64_t writes_ = 0;
};

}  // namespace sessiond::bench

#endif  // SESSIOND_TOOLS_BENCH_LOST_WRITE_LEDGER_H_
