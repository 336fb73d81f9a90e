#include "replication/redis/redis_session_layout.h"

#include <charconv>
#include <vector>

namespace sessiond {
namespace {

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

RedisSessionLayout::RedisSessionLayout(std::string prefix, uint32_t db)
    : prefix_(std::move(prefix)),
      session_prefix_(prefix_ + "s:"),
      events_channel_(prefix_ + "ev"),
      expired_channel_("__keyevent@" + std::to_string(db) + "__:expired"),
      evicted_channel_("__keyevent@" + std::to_string(db) + "__:evicted") {}

std::optional<std::string_view> RedisSessionLayout::IdOfKey(std::string_view key) const {
  if (key.size() <= session_prefix_.size() ||
      key.substr(0, session_prefix_.size()) != session_prefix_) {
    return std::nullopt;
  }
  return key.substr(session_prefix_.size());
}

Result<v1::Session> RedisSessionLayout::DecodeSession(std::string id, const RedisReply& fields) {
  v1::Session session;
  session.set_id(std::move(id));
  const auto& items = fields.elements();
  bool has_version = false, has_created = false, has_access = false, has_idle = false;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const std::string& name = items[i].text();
    const std::string& value = items[i + 1].text();
    if (name.size() > 1 && name[0] == '.') {
      (*session.mutable_attributes())[name.substr(1)] = value;
      continue;
    }
    if (name.size() != 1) continue;  // not ours; tolerate it
    bool ok = true;
    switch (name[0]) {
      case 'v': {
        uint64_t v = 0;
        ok = has_version = ParseNumber(value, &v);
        session.set_version(v);
        break;
      }
      case 'c': {
        int64_t v = 0;
        ok = has_created = ParseNumber(value, &v);
        session.set_created_ms(v);
        break;
      }
      case 'a': {
        int64_t v = 0;
        ok = has_access = ParseNumber(value, &v);
        session.set_last_access_ms(v);
        break;
      }
      case 'i': {
        uint32_t v = 0;
        ok = has_idle = ParseNumber(value, &v);
        session.set_max_idle_s(v);
        break;
      }
      case 'l': {
        uint32_t v = 0;
        ok = ParseNumber(value, &v);
        session.set_max_lifetime_s(v);
        break;
      }
      case 'p':
        session.set_principal(value);
        break;
      default:
        break;
    }
    if (!ok) break;
  }
  if (!has_version || !has_created || !has_access || !has_idle) {
    return Internal(
        "a session hash in Redis lacks the fields sessiond writes (version, times, idle "
        "timeout): another program wrote keys under sessiond's prefix; give sessiond a prefix "
        "or database of its own");
  }
  return session;
}

std::string RedisSessionLayout::EncodeEvent(const v1::SessionEvent& event) {
  return std::to_string(static_cast<int>(event.kind())) + "\n" + std::to_string(event.version()) +
         "\n" + std::to_string(event.at_ms()) + "\n" + event.id() + "\n" + event.new_id() + "\n" +
         event.origin_node();
}

std::optional<v1::SessionEvent> RedisSessionLayout::DecodeEvent(std::string_view payload) {
  // The origin node comes last, so it alone may hold any character.
  std::vector<std::string_view> parts;
  for (int i = 0; i < 5; ++i) {
    size_t newline = payload.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    parts.push_back(payload.substr(0, newline));
    payload.remove_prefix(newline + 1);
  }
  int kind = 0;
  uint64_t version = 0;
  int64_t at_ms = 0;
  if (!ParseNumber(parts[0], &kind) || !v1::SessionEvent::Kind_IsValid(kind) ||
      !ParseNumber(parts[1], &version) || !ParseNumber(parts[2], &at_ms) || parts[3].empty()) {
    return std::nullopt;
  }
  v1::SessionEvent event;
  event.set_kind(static_cast<v1::SessionEvent::Kind>(kind));
  event.set_version(version);
  event.set_at_ms(at_ms);
  event.set_id(std::string(parts[3]));
  event.set_new_id(std::string(parts[4]));
  event.set_origin_node(std::string(payload));
  return event;
}

}  // namespace sessiond
