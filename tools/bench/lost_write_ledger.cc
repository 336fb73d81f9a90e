#include "tools/bench/lost_write_ledger.h"

#include <algorithm>
#include <charconv>

namespace sessiond::bench {
namespace {

// "w<16 hex digits>;" then filler: readable in a debugger, and cheap to parse.
constexpr char kPrefix = 'w';
constexpr size_t kIdDigits = 16;
constexpr size_t kHeaderBytes = 1 + kIdDigits + 1;

int64_t Nanos(LostWriteLedger::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string LostWriteLedger::EncodeValue(uint64_t write_id, size_t size) {
  std::string value(std::max(size, kHeaderBytes), '.');
  value[0] = kPrefix;
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < kIdDigits; ++i) {
    value[1 + i] = kHex[(write_id >> (4 * (kIdDigits - 1 - i))) & 0xf];
  }
  value[kHeaderBytes - 1] = ';';
  return value;
}

std::optional<uint64_t> LostWriteLedger::DecodeValue(std::string_view value) {
  if (value.size() < kHeaderBytes || value[0] != kPrefix || value[kHeaderBytes - 1] != ';') {
    return std::nullopt;
  }
  uint64_t id = 0;
  const char* begin = value.data() + 1;
  const char* end = begin + kIdDigits;
  auto [ptr, ec] = std::from_chars(begin, end, id, 16);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return id;
}

LostWriteLedger::SessionRecord& LostWriteLedger::SessionFor(std::string_view session_id) {
  auto it = sessions_.find(std::string(session_id));
  if (it == sessions_.end()) it = sessions_.emplace(std::string(session_id), SessionRecord{}).first;
  return it->second;
}

void LostWriteLedger::RecordSession(std::string_view session_id, uint32_t home_node) {
  SessionFor(session_id).home_node = home_node;
}

void LostWriteLedger::RecordWrite(std::string_view session_id, std::string_view attribute,
                                  uint64_t write_id, Clock::time_point sent,
                                  std::optional<Clock::time_point> acked) {
  SessionRecord& session = SessionFor(session_id);
  auto it = std::find_if(session.attributes.begin(), session.attributes.end(),
                         [&](const Attribute& a) { return a.name == attribute; });
  if (it == session.attributes.end()) {
    session.attributes.push_back(Attribute{std::string(attribute), {}});
    it = std::prev(session.attributes.end());
  }
  it->writes.push_back(Write{write_id, Nanos(sent), acked ? Nanos(*acked) : kNotAcked});
  ++writes_;
}

void LostWriteLedger::Merge(LostWriteLedger&& other) {
  for (auto& [id, theirs] : other.sessions_) {
    auto [it, inserted] = sessions_.try_emplace(id, std::move(theirs));
    if (inserted) continue;
    SessionRecord& ours = it->second;
    for (auto& attribute : theirs.attributes) {
      auto mine = std::find_if(ours.attributes.begin(), ours.attributes.end(),
                               [&](const Attribute& a) { return a.name == attribute.name; });
      if (mine == ours.attributes.end()) {
        ours.attributes.push_back(std::move(attribute));
      } else {
        mine->writes.insert(mine->writes.end(), attribute.writes.begin(), attribute.writes.end());
      }
    }
  }
  writes_ += other.writes_;
  other.sessions_.clear();
  other.writes_ = 0;
}

std::vector<std::pair<std::string, uint32_t>> LostWriteLedger::Sessions() const {
  std::vector<std::pair<std::string, uint32_t>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, record] : sessions_) out.emplace_back(id, record.home_node);
  return out;
}

LostWriteLedger::Verdict LostWriteLedger::Check(const Reader& reader) const {
  Verdict verdict;
  for (const auto& [id, session] : sessions_) {
    ++verdict.sessions_checked;
    uint64_t acked_here = 0;
    for (const auto& attribute : session.attributes) {
      for (const auto& w : attribute.writes) {
        if (w.acked_ns == kNotAcked) {
          ++verdict.failed_writes;
        } else {
          ++acked_here;
        }
      }
    }
    verdict.acknowledged_writes += acked_here;

    const Observation seen = reader(id, session.home_node);
    if (seen.status.code() == v1::NOT_FOUND) {
      ++verdict.sessions_lost;
      verdict.writes_lost += acked_here;
      continue;
    }
    if (!seen.status.ok()) {
      ++verdict.sessions_unreadable;
      verdict.writes_unverified += acked_here;
      continue;
    }

    uint64_t lost_here = 0;
    for (const auto& attribute : session.attributes) {
      const Write* final_write = nullptr;
      auto value = seen.attributes.find(attribute.name);
      if (value != seen.attributes.end()) {
        const std::optional<uint64_t> write_id = DecodeValue(value->second);
        if (write_id) {
          for (const auto& w : attribute.writes) {
            if (w.id == *write_id) {
              final_write = &w;
              break;
            }
          }
        }
        if (final_write == nullptr) ++verdict.unexpected_values;
      }
      for (const auto& w : attribute.writes) {
        if (w.acked_ns == kNotAcked) continue;
        const bool superseded_legitimately =
            final_write != nullptr && (final_write == &w || final_write->acked_ns == kNotAcked ||
                                       final_write->acked_ns >= w.sent_ns);
        if (!superseded_legitimately) ++lost_here;
      }
    }
    verdict.writes_lost += lost_here;
    if (lost_here > 0) ++verdict.sessions_with_lost_writes;
  }
  return verdict;
}

}  // namespace sessiond::bench
