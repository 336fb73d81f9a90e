#include "tools/sessionctl/session_printer.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>

namespace sessiond::sessionctl {
namespace {

// Longest attribute value shown whole; longer ones are cut with their size shown.
constexpr size_t kShownValueBytes = 120;

std::string TimeText(int64_t epoch_ms) {
  if (epoch_ms <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[8];
  std::snprintf(millis, sizeof(millis), ".%03dZ", static_cast<int>(epoch_ms % 1000));
  return std::string(text) + millis;
}

bool IsPrintable(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte != 0x7f;  // printable ASCII, or part of UTF-8 text
  });
}

// Attribute values are bytes the daemon never interprets: show text as text, the rest as hex.
std::string ValueText(std::string_view value) {
  const bool cut = value.size() > kShownValueBytes;
  const std::string_view shown = value.substr(0, kShownValueBytes);
  std::string text;
  if (IsPrintable(shown)) {
    text.reserve(shown.size() + 5);
    text.push_back('"');
    text.append(shown);
    text.append(cut ? "...\"" : "\"");
  } else {
    text = "0x";
    char hex[3];
    for (char c : shown.substr(0, kShownValueBytes / 2)) {
      std::snprintf(hex, sizeof(hex), "%02x", static_cast<unsigned char>(c));
      text += hex;
    }
    if (value.size() > kShownValueBytes / 2) text += "...";
  }
  if (cut || !IsPrintable(shown)) text += " (" + std::to_string(value.size()) + " bytes)";
  return text;
}

std::string_view KindName(v1::SessionEvent::Kind kind) {
  switch (kind) {
    case v1::SessionEvent::CREATED:
      return "CREATED";
    case v1::SessionEvent::CHANGED:
      return "CHANGED";
    case v1::SessionEvent::EXPIRED:
      return "EXPIRED";
    case v1::SessionEvent::INVALIDATED:
      return "INVALIDATED";
    case v1::SessionEvent::ID_CHANGED:
      return "ID_CHANGED";
    default:
      return "UNKNOWN";
  }
}

const google::protobuf::Value* Field(const google::protobuf::Struct& object, const char* name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? nullptr : &it->second;
}

std::string StringField(const google::protobuf::Struct& object, const char* name) {
  const google::protobuf::Value* value = Field(object, name);
  if (value == nullptr) return "";
  if (value->has_string_value()) return value->string_value();
  if (value->has_number_value()) return std::to_string(static_cast<int64_t>(value->number_value()));
  if (value->has_bool_value()) return value->bool_value() ? "true" : "false";
  return "";
}

}  // namespace

void SessionPrinter::PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  out_ << json << "\n";
}

void SessionPrinter::PrintSession(const v1::Session& session) {
  if (json_) {
    PrintJson(session);
    return;
  }
  out_ << "id           " << session.id() << "\n";
  out_ << "version      " << session.version() << "\n";
  out_ << "principal    " << (session.principal().empty() ? "-" : session.principal()) << "\n";
  out_ << "created      " << TimeText(session.created_ms()) << "\n";
  out_ << "last access  " << TimeText(session.last_access_ms()) << "\n";
  out_ << "max idle     " << session.max_idle_s() << " s\n";
  out_ << "lifetime     "
       << (session.max_lifetime_s() == 0 ? std::string("unlimited")
                                         : std::to_string(session.max_lifetime_s()) + " s")
       << "\n";
  out_ << "attributes   " << session.attributes_size() << "\n";
  // Sorted by name: the wire map has no order, a person reading wants one.
  std::map<std::string, std::string> sorted(session.attributes().begin(),
                                            session.attributes().end());
  for (const auto& [name, value] : sorted) {
    out_ << "  " << name << " = " << ValueText(value) << "\n";
  }
}

void SessionPrinter::PrintSessions(const std::vector<v1::Session>& sessions) {
  if (json_) {
    v1::SessionList list;
    for (const v1::Session& session : sessions) *list.add_sessions() = session;
    PrintJson(list);
    return;
  }
  out_ << sessions.size() << (sessions.size() == 1 ? " session" : " sessions") << "\n";
  for (const v1::Session& session : sessions) {
    out_ << "\n";
    PrintSession(session);
  }
}

void SessionPrinter::PrintEvent(const v1::SessionEvent& event) {
  if (json_) {
    PrintJson(event);
  } else {
    out_ << TimeText(event.at_ms()) << "  " << KindName(event.kind()) << "  " << event.id();
    if (!event.new_id().empty()) out_ << " -> " << event.new_id();
    out_ << "  version " << event.version();
    if (!event.origin_node().empty()) out_ << "  from " << event.origin_node();
    out_ << "\n";
  }
  out_.flush();
}

void SessionPrinter::PrintStats(const v1::NodeStats& stats) {
  if (json_) {
    PrintJson(stats);
    return;
  }
  out_ << "node      " << stats.node_id() << "\n";
  out_ << "mode      " << stats.mode() << "\n";
  out_ << "sessions  " << stats.sessions() << "\n";
  if (stats.counters().empty()) return;
  std::map<std::string, uint64_t> sorted(stats.counters().begin(), stats.counters().end());
  size_t width = 0;
  for (const auto& [name, value] : sorted) width = std::max(width, name.size());
  out_ << "counters\n";
  for (const auto& [name, value] : sorted) {
    out_ << "  " << name << std::string(width - name.size() + 2, ' ') << value << "\n";
  }
}

Status SessionPrinter::PrintCluster(std::string_view cluster_json) {
  if (json_) {
    out_ << cluster_json;
    if (!cluster_json.empty() && cluster_json.back() != '\n') out_ << "\n";
    return Status::Ok();
  }
  google::protobuf::Struct cluster;
  if (!google::protobuf::util::JsonStringToMessage(std::string(cluster_json), &cluster).ok()) {
    return Internal("the admin endpoint's /cluster answer is not JSON; is --admin the admin port?");
  }
  out_ << "node         " << StringField(cluster, "node_id") << "\n";
  out_ << "mode         " << StringField(cluster, "mode") << "\n";
  out_ << "incarnation  " << StringField(cluster, "incarnation") << "\n";
  out_ << "ready        " << StringField(cluster, "ready") << "\n";
  if (const google::protobuf::Value* listen = Field(cluster, "listen");
      listen != nullptr && listen->has_struct_value()) {
    const google::protobuf::Struct& ports = listen->struct_value();
    out_ << "clients      " << StringField(ports, "client");
    if (const std::string unix_path = StringField(ports, "unix"); !unix_path.empty()) {
      out_ << ", unix:" << unix_path;
    }
    out_ << "\n";
    out_ << "peer port    " << StringField(ports, "peer_port") << "\n";
    out_ << "admin port   " << StringField(ports, "admin_port") << "\n";
  }
  const google::protobuf::Value* members = Field(cluster, "members");
  if (members == nullptr || !members->has_list_value()) return Status::Ok();
  out_ << "members      " << members->list_value().values_size() << "\n";
  for (const google::protobuf::Value& value : members->list_value().values()) {
    if (!value.has_struct_value()) continue;
    const google::protobuf::Struct& member = value.struct_value();
    out_ << "  " << StringField(member, "node_id") << "  " << StringField(member, "state")
         << "  incarnation " << StringField(member, "incarnation");
    if (const std::string peer = StringField(member, "peer_address"); !peer.empty()) {
      out_ << "  peer " << peer;
    }
    if (StringField(member, "self") == "true") {
      out_ << "  (this node)";
    } else if (const std::string link = StringField(member, "link"); !link.empty()) {
      out_ << "  link " << link << "  queue " << StringField(member, "queue_frames") << "  unacked "
           << StringField(member, "unacked") << "  rtt " << StringField(member, "rtt_ms") << " ms";
    }
    out_ << "\n";
  }
  return Status::Ok();
}

Status SessionPrinter::PrintDigest(std::string_view digest_json) {
  if (json_) {
    out_ << digest_json;
    if (!digest_json.empty() && digest_json.back() != '\n') out_ << "\n";
    return Status::Ok();
  }
  google::protobuf::Struct digest;
  if (!google::protobuf::util::JsonStringToMessage(std::string(digest_json), &digest).ok()) {
    return Internal("the admin endpoint's /digest answer is not JSON; is --admin the admin port?");
  }
  out_ << StringField(digest, "digest") << "  " << StringField(digest, "sessions")
       << " sessions  node " << StringField(digest, "node_id") << "\n";
  return Status::Ok();
}

void SessionPrinter::PrintDone(std::string_view sentence, std::string_view json_object) {
  if (json_) {
    out_ << json_object << "\n";
  } else {
    out_ << sentence << "\n";
  }
}

}  // namespace sessiond::sessionctl
