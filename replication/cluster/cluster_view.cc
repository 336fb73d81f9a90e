#include "replication/cluster/cluster_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <string_view>

#include "replication/json_string.h"

namespace sessiond {
namespace {

// A Prometheus label value, quotes included.
std::string LabelValue(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string ReasonLabel(size_t reason) {
  std::string name = peer::v1::RefuseReason_Name(static_cast<peer::v1::RefuseReason>(reason));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

void Family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string ClusterView::ToJson() const {
  std::string out;
  auto o = std::back_inserter(out);
  fmt::format_to(o,
                 "{{\"cluster\":{},\"node_id\":{},\"incarnation\":{},\"listen\":{},"
                 "\"advertise\":{},\"members\":[",
                 JsonString(self.cluster), JsonString(self.node_id), self.incarnation,
                 JsonString(listen_address), JsonString(advertise_address));
  bool first = true;
  for (const MemberView& m : members) {
    if (!first) out += ',';
    first = false;
    fmt::format_to(o,
                   "{{\"node_id\":{},\"self\":{},\"state\":{},\"incarnation\":{},"
                   "\"address\":{},\"state_since_ms\":{}",
                   JsonString(m.member.node_id), m.member.self,
                   JsonString(MemberStateName(m.member.state)), m.member.incarnation,
                   JsonString(m.member.address), m.member.since_ms);
    if (!m.member.self) {
      fmt::format_to(o,
                     ",\"link\":{},\"link_direction\":{},\"remote_address\":{},"
                     "\"queue_frames\":{},\"queue_bytes\":{},\"sent_seq\":{},\"acked_seq\":{},"
                     "\"received_seq\":{},\"unacked\":{},\"rtt_ms\":{},\"heard_ago_ms\":{},"
                     "\"bytes_in\":{},\"bytes_out\":{},\"frames_in\":{},\"frames_out\":{},"
                     "\"queue_full\":{},\"dropped_on_close\":{}",
                     JsonString(m.linked ? "up" : "down"),
                     JsonString(!m.linked  ? ""
                                : m.dialed ? "dialed"
                                           : "accepted"),
                     JsonString(m.remote_address), m.queue_frames, m.queue_bytes, m.sent_seq,
                     m.acked_seq, m.received_seq, m.unacked(), m.rtt_ms, m.heard_ago_ms,
                     m.counters.bytes_in, m.counters.bytes_out, m.counters.frames_in,
                     m.counters.frames_out, m.counters.queue_full, m.counters.dropped_on_close);
    }
    out += '}';
  }
  fmt::format_to(o,
                 "],\"counters\":{{\"dials\":{},\"dial_failures\":{},\"accepted\":{},"
                 "\"handshakes\":{},\"duplicate_links\":{},\"sends_without_link\":{},"
                 "\"sends_queue_full\":{},\"messages_dropped_stale\":{},"
                 "\"messages_unhandled\":{},\"refused\":{{",
                 counters.dials, counters.dial_failures, counters.accepted, counters.handshakes,
                 counters.duplicate_links, counters.sends_without_link, counters.sends_queue_full,
                 counters.messages_dropped_stale, messages_unhandled);
  auto reasons = [&](const std::array<uint64_t, kRefuseReasonCount>& counts) {
    bool first_reason = true;
    for (size_t r = 0; r < kRefuseReasonCount; ++r) {
      if (counts[r] == 0) continue;
      if (!first_reason) out += ',';
      first_reason = false;
      fmt::format_to(o, "{}:{}", JsonString(ReasonLabel(r)), counts[r]);
    }
  };
  reasons(counters.refused);
  out += "},\"refused_by_peer\":{";
  reasons(counters.refused_by_peer);
  out += "}}}";
  return out;
}

void ClusterView::AppendPrometheus(std::string& out) const {
  auto o = std::back_inserter(out);
  Family(out, "sessiond_cluster_members", "gauge",
         "Members of the cluster in each state, as this node sees them (itself included).");
  for (MemberState state :
       {MemberState::kAlive, MemberState::kSuspect, MemberState::kDead, MemberState::kLeft}) {
    const auto n = std::count_if(members.begin(), members.end(),
                                 [&](const MemberView& m) { return m.member.state == state; });
    fmt::format_to(o, "sessiond_cluster_members{{state=\"{}\"}} {}\n", MemberStateName(state), n);
  }

  struct PerPeer {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const MemberView&);
  };
  static constexpr PerPeer kPerPeer[] = {
      {"sessiond_peer_up", "gauge", "1 while an established link to the peer exists.",
       [](const MemberView& m) { return m.linked ? 1.0 : 0.0; }},
      {"sessiond_peer_bytes_sent_total", "counter", "Bytes written to the peer's links.",
       [](const MemberView& m) { return static_cast<double>(m.counters.bytes_out); }},
      {"sessiond_peer_bytes_received_total", "counter", "Bytes read from the peer's links.",
       [](const MemberView& m) { return static_cast<double>(m.counters.bytes_in); }},
      {"sessiond_peer_frames_sent_total", "counter", "Frames written to the peer's links.",
       [](const MemberView& m) { return static_cast<double>(m.counters.frames_out); }},
      {"sessiond_peer_frames_received_total", "counter", "Frames read from the peer's links.",
       [](const MemberView& m) { return static_cast<double>(m.counters.frames_in); }},
      {"sessiond_peer_queue_frames", "gauge", "Frames waiting to be written to the peer.",
       [](const MemberView& m) { return static_cast<double>(m.queue_frames); }},
      {"sessiond_peer_queue_bytes", "gauge", "Bytes waiting to be written to the peer.",
       [](const MemberView& m) { return static_cast<double>(m.queue_bytes); }},
      {"sessiond_peer_unacked_messages", "gauge",
       "Sequenced messages sent to the peer and not yet acknowledged.",
       [](const MemberView& m) { return static_cast<double>(m.unacked()); }},
      {"sessiond_peer_queue_full_total", "counter",
       "Sends refused because the peer's outbound queue was full.",
       [](const MemberView& m) { return static_cast<double>(m.counters.queue_full); }},
  };
  for (const PerPeer& metric : kPerPeer) {
    Family(out, metric.name, metric.type, metric.help);
    for (const MemberView& m : members) {
      if (m.member.self) continue;
      fmt::format_to(o, "{}{{peer={}}} {}\n", metric.name, LabelValue(m.member.node_id),
                     metric.value(m));
    }
  }
  Family(out, "sessiond_peer_rtt_seconds", "gauge", "Last heartbeat round trip to the peer.");
  for (const MemberView& m : members) {
    if (m.member.self || m.rtt_ms < 0) continue;
    fmt::format_to(o, "sessiond_peer_rtt_seconds{{peer={}}} {}\n", LabelValue(m.member.node_id),
                   static_cast<double>(m.rtt_ms) / 1000.0);
  }

  struct Total {
    const char* name;
    const char* help;
    uint64_t value;
  };
  const Total totals[] = {
      {"sessiond_peer_dials_total", "TCP connection attempts to peers.", counters.dials},
      {"sessiond_peer_dial_failures_total", "Connection attempts to peers that failed.",
       counters.dial_failures},
      {"sessiond_peer_accepted_total", "Peer connections accepted.", counters.accepted},
      {"sessiond_peer_handshakes_total", "Peer handshakes completed.", counters.handshakes},
      {"sessiond_peer_duplicate_links_total",
       "Links drained because their pair of nodes had a preferred one.", counters.duplicate_links},
      {"sessiond_peer_messages_dropped_stale_total",
       "Messages dropped because they came from a replaced incarnation of their sender.",
       counters.messages_dropped_stale},
      {"sessiond_peer_messages_unhandled_total",
       "Messages of a kind no part of this node subscribed to.", messages_unhandled},
  };
  for (const Total& total : totals) {
    Family(out, total.name, "counter", total.help);
    fmt::format_to(o, "{} {}\n", total.name, total.value);
  }
  Family(out, "sessiond_peer_send_refusals_total", "counter",
         "Sends refused, by reason: no established link, or a full queue.");
  fmt::format_to(o, "sessiond_peer_send_refusals_total{{reason=\"no_link\"}} {}\n",
                 counters.sends_without_link);
  fmt::format_to(o, "sessiond_peer_send_refusals_total{{reason=\"queue_full\"}} {}\n",
                 counters.sends_queue_full);
  Family(out, "sessiond_peer_handshake_refusals_total", "counter",
         "Handshakes refused, by reason and by which side refused.");
  for (size_t r = 1; r < kRefuseReasonCount; ++r) {
    if (!peer::v1::RefuseReason_IsValid(static_cast<int>(r))) continue;
    fmt::format_to(o, "sessiond_peer_handshake_refusals_total{{reason=\"{}\",by=\"local\"}} {}\n",
                   ReasonLabel(r), counters.refused[r]);
    fmt::format_to(o, "sessiond_peer_handshake_refusals_total{{reason=\"{}\",by=\"peer\"}} {}\n",
                   ReasonLabel(r), counters.refused_by_peer[r]);
  }
}

}  // namespace sessiond
