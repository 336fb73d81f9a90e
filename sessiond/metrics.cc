#include "sessiond/metrics.h"

#include <algorithm>
#include <map>

#include "sessiond/status.h"

namespace sessiond {
namespace {

void AppendHeader(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void AppendValue(std::string& out, std::string_view name, std::string_view labels, uint64_t value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(std::to_string(value)).append("\n");
}

// Label values may hold anything a mode or an operator chose: escape as the format requires.
std::string EscapeLabelValue(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

}  // namespace

std::string_view Metrics::OpName(Op op) {
  switch (op) {
    case Op::kCreate:
      return "create";
    case Op::kGet:
      return "get";
    case Op::kUpdate:
      return "update";
    case Op::kInvalidate:
      return "invalidate";
    case Op::kRotateId:
      return "rotate_id";
    case Op::kFindByPrincipal:
      return "find_by_principal";
    case Op::kWatch:
      return "watch";
    case Op::kPing:
      return "ping";
    case Op::kStats:
      return "stats";
  }
  return "unknown";
}

void Metrics::RecordRequest(Op op, v1::StatusCode status, std::chrono::nanoseconds latency) {
  const size_t i = static_cast<size_t>(op);
  const size_t s = static_cast<size_t>(status) < kStatusCount ? static_cast<size_t>(status)
                                                              : static_cast<size_t>(v1::INTERNAL);
  ++requests_[i][s];
  latency_[i].Record(latency);
}

uint64_t Metrics::requests(Op op, v1::StatusCode status) const {
  const size_t s = static_cast<size_t>(status);
  return s < kStatusCount ? requests_[static_cast<size_t>(op)][s] : 0;
}

std::string Metrics::RenderPrometheus(const v1::NodeStats& stats, bool ready) const {
  std::string out;
  out.reserve(16 << 10);

  AppendHeader(out, "sessiond_info", "gauge", "This node's id and mode; always 1.");
  AppendValue(out, "sessiond_info",
              "node_id=\"" + EscapeLabelValue(stats.node_id()) + "\",mode=\"" +
                  EscapeLabelValue(stats.mode()) + "\"",
              1);
  AppendHeader(out, "sessiond_ready", "gauge",
               "1 when the node has joined its cluster and caught up (see /readyz).");
  AppendValue(out, "sessiond_ready", "", ready ? 1 : 0);
  AppendHeader(out, "sessiond_sessions", "gauge", "Sessions this node holds.");
  AppendValue(out, "sessiond_sessions", "", stats.sessions());

  AppendHeader(out, "sessiond_requests_total", "counter",
               "Client requests answered, by operation and status.");
  for (size_t op = 0; op < kOpCount; ++op) {
    for (size_t s = 0; s < kStatusCount; ++s) {
      // Every operation shows an OK line so dashboards find it; other statuses once they happen.
      if (s != v1::OK && requests_[op][s] == 0) continue;
      std::string labels = "op=\"";
      labels.append(OpName(static_cast<Op>(op)));
      labels.append("\",status=\"");
      labels.append(StatusCodeName(static_cast<v1::StatusCode>(s)));
      labels.append("\"");
      AppendValue(out, "sessiond_requests_total", labels, requests_[op][s]);
    }
  }
  AppendHeader(out, "sessiond_requests_without_op_total", "counter",
               "Client requests with no operation set (answered INVALID_ARGUMENT).");
  AppendValue(out, "sessiond_requests_without_op_total", "", requests_without_op_);

  AppendHeader(out, "sessiond_request_duration_seconds", "histogram",
               "Time from decoding a client request to queuing its response, by operation.");
  for (size_t op = 0; op < kOpCount; ++op) {
    std::string labels = "op=\"";
    labels.append(OpName(static_cast<Op>(op)));
    labels.append("\"");
    latency_[op].AppendPrometheus(out, "sessiond_request_duration_seconds", labels);
  }

  AppendHeader(out, "sessiond_client_connections", "gauge", "Client connections open now.");
  AppendValue(out, "sessiond_client_connections", "", connections_current_);
  AppendHeader(out, "sessiond_client_connections_total", "counter",
               "Client connections accepted since start.");
  AppendValue(out, "sessiond_client_connections_total", "", connections_total_);
  AppendHeader(out, "sessiond_client_connections_refused_total", "counter",
               "Client connections turned away because --max-connections were open.");
  AppendValue(out, "sessiond_client_connections_refused_total", "", connections_refused_);
  AppendHeader(out, "sessiond_client_received_bytes_total", "counter",
               "Bytes received from clients.");
  AppendValue(out, "sessiond_client_received_bytes_total", "", bytes_in_);
  AppendHeader(out, "sessiond_client_sent_bytes_total", "counter", "Bytes sent to clients.");
  AppendValue(out, "sessiond_client_sent_bytes_total", "", bytes_out_);
  AppendHeader(out, "sessiond_client_received_frames_total", "counter",
               "Frames received from clients.");
  AppendValue(out, "sessiond_client_received_frames_total", "", frames_in_);
  AppendHeader(out, "sessiond_client_sent_frames_total", "counter",
               "Frames sent to clients (responses and watch events).");
  AppendValue(out, "sessiond_client_sent_frames_total", "", frames_out_);
  AppendHeader(out, "sessiond_client_bad_frames_total", "counter",
               "Client frames that could not be decoded; each closed its connection.");
  AppendValue(out, "sessiond_client_bad_frames_total", "", bad_frames_);

  if (!stats.counters().empty()) {
    AppendHeader(out, "sessiond_manager_counter", "untyped",
                 "Numbers the session manager of this node's mode keeps, by name.");
    // Sorted, so that the page reads the same from one scrape to the next.
    std::map<std::string, uint64_t> sorted(stats.counters().begin(), stats.counters().end());
    for (const auto& [name, value] : sorted) {
      AppendValue(out, "sessiond_manager_counter", "name=\"" + EscapeLabelValue(name) + "\"",
                  value);
    }
  }
  return out;
}

}  // namespace sessiond
