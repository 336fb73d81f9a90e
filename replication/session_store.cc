#include "replication/session_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "replication/session_id.h"

namespace sessiond {
namespace {

// Below this many queued entries compaction is not worth a pass.
constexpr size_t kMinQueueToCompact = 1024;

Status RepeatedIdError() {
  return Internal(
      "the session id generator repeated an id twice in a row, so this node's random source is "
      "broken: restart the node and report this as a bug");
}

}  // namespace

SessionStore::SessionStore(const SessionLimits& limits) : limits_(limits) {}

SessionStore::~SessionStore() = default;

Status SessionStore::NotFoundError(std::string_view id) {
  return NotFound(fmt::format(
      "session {} not found: it expired, was invalidated or never existed; create a new one",
      LogTag(id)));
}

StoredSession* SessionStore::FindLive(std::string_view id, int64_t now_ms) const {
  const std::optional<SessionKey> key = SessionKey::FromText(id);
  if (!key) return nullptr;
  StoredSession* s = table_.Find(*key);
  return s == nullptr || s->ExpiredAt(now_ms) ? nullptr : s;
}

const StoredSession* SessionStore::Find(std::string_view id, int64_t now_ms) const {
  return FindLive(id, now_ms);
}

const StoredSession* SessionStore::Find(const SessionKey& key, int64_t now_ms) const {
  const StoredSession* s = table_.Find(key);
  return s == nullptr || s->ExpiredAt(now_ms) ? nullptr : s;
}

Status SessionStore::CheckName(std::string_view name) const {
  if (name.empty()) {
    return InvalidArgument("attribute names must not be empty: give every attribute a name");
  }
  if (name.size() > limits_.max_name_bytes) {
    return InvalidArgument(fmt::format(
        "an attribute name of {} bytes is over this node's limit of {} bytes: use a shorter name",
        name.size(), limits_.max_name_bytes));
  }
  return Status::Ok();
}

Status SessionStore::CheckAttribute(std::string_view name, std::string_view value) const {
  if (Status s = CheckName(name); !s.ok()) return s;
  if (value.size() > limits_.max_value_bytes) {
    return TooLarge(fmt::format(
        "attribute '{}' is {} bytes, over this node's limit of {} bytes: keep large data "
        "outside the session, or raise the node's value size limit",
        name, value.size(), limits_.max_value_bytes));
  }
  return Status::Ok();
}

Status SessionStore::CheckAttributeCount(size_t count) const {
  if (count > limits_.max_attributes) {
    return ResourceExhausted(fmt::format(
        "the session would hold {} attributes, over this node's limit of {}: remove attributes "
        "no longer needed or group related values under one name",
        count, limits_.max_attributes));
  }
  return Status::Ok();
}

Status SessionStore::CheckPrincipal(std::string_view principal) const {
  if (principal.size() > limits_.max_principal_bytes) {
    return InvalidArgument(fmt::format(
        "a principal of {} bytes is over this node's limit of {} bytes: identify the user by a "
        "shorter key, such as a user id",
        principal.size(), limits_.max_principal_bytes));
  }
  return Status::Ok();
}

Status SessionStore::CheckSeconds(std::string_view field, uint32_t seconds) const {
  if (seconds > limits_.max_idle_limit_s) {
    return InvalidArgument(fmt::format(
        "{} of {} seconds is over this node's limit of {} seconds: ask for a shorter timeout",
        field, seconds, limits_.max_idle_limit_s));
  }
  return Status::Ok();
}

Status SessionStore::CheckNewId(std::string_view id, SessionKey* key,
                                const std::optional<SessionKey>& decoded) const {
  const std::optional<SessionKey> parsed = decoded ? decoded : SessionKey::FromText(id);
  if (!parsed) {
    return InvalidArgument(
        fmt::format("session id {} is not 22 URL-safe base64 characters: use ids this daemon made",
                    LogTag(id)));
  }
  if (table_.Find(*parsed) != nullptr) {
    return Conflict(
        fmt::format("session {} already exists: a new session needs a fresh id", LogTag(id)));
  }
  if (table_.size() >= limits_.max_sessions) {
    return ResourceExhausted(fmt::format(
        "this node already holds {} sessions, its limit: invalidate sessions no longer in use, "
        "shorten their max_idle_s, or raise the node's session limit",
        table_.size()));
  }
  *key = *parsed;
  return Status::Ok();
}

const StoredSession* SessionStore::Insert(std::unique_ptr<StoredSession> session,
                                          std::string_view principal) {
  if (!principal.empty()) session->principal_ = principals_.Add(principal, session->key());
  StoredSession* s = table_.Insert(std::move(session));
  Enqueue(s);
  return s;
}

Result<const StoredSession*> SessionStore::Create(std::string_view id,
                                                  const v1::CreateRequest& request,
                                                  int64_t now_ms) {
  if (Status s = CheckSeconds("max_idle_s", request.max_idle_s()); !s.ok()) return s;
  if (Status s = CheckSeconds("max_lifetime_s", request.max_lifetime_s()); !s.ok()) return s;
  if (Status s = CheckPrincipal(request.principal()); !s.ok()) return s;
  for (const auto& [name, value] : request.attributes()) {
    if (Status s = CheckAttribute(name, value); !s.ok()) return s;
  }
  if (Status s = CheckAttributeCount(request.attributes().size()); !s.ok()) return s;
  SessionKey key;
  if (Status s = CheckNewId(id, &key); !s.ok()) return s;

  auto session = std::make_unique<StoredSession>(key, now_ms);
  session->last_access_ms_ = now_ms;
  session->version_ = 1;
  session->max_idle_s_ =
      request.max_idle_s() == 0 ? limits_.default_max_idle_s : request.max_idle_s();
  session->max_lifetime_s_ = request.max_lifetime_s();
  AttributeBlock::Builder attributes;
  for (const auto& [name, value] : request.attributes()) attributes.Add(name, value);
  session->attributes_ = std::move(attributes).Build();
  return Insert(std::move(session), request.principal());
}

Result<const StoredSession*> SessionStore::Restore(const v1::Session& session, int64_t now_ms) {
  (void)now_ms;  // a restored session keeps its own times; readers judge expiry by theirs
  std::vector<AttributeBlock::Attribute> attributes;
  attributes.reserve(session.attributes().size());
  for (const auto& [name, value] : session.attributes()) attributes.push_back({name, value});
  SessionImage image;
  image.id = session.id();
  image.created_ms = session.created_ms();
  image.last_access_ms = session.last_access_ms();
  image.version = session.version();
  image.max_idle_s = session.max_idle_s();
  image.max_lifetime_s = session.max_lifetime_s();
  image.principal = session.principal();
  image.attributes = attributes;
  return Restore(image);
}

Result<const StoredSession*> SessionStore::Restore(const SessionImage& session) {
  return RestoreImage(session, nullptr);
}

Result<const StoredSession*> SessionStore::Restore(const SessionImage& session,
                                                   AttributeBlock attributes) {
  return RestoreImage(session, &attributes);
}

Result<const StoredSession*> SessionStore::RestoreImage(const SessionImage& session,
                                                        AttributeBlock* attributes) {
  if (session.max_idle_s == 0) {
    return InvalidArgument(
        "a restored session must carry its max_idle_s: send sessions as the store holds them");
  }
  if (Status s = CheckSeconds("max_idle_s", session.max_idle_s); !s.ok()) return s;
  if (Status s = CheckSeconds("max_lifetime_s", session.max_lifetime_s); !s.ok()) return s;
  if (Status s = CheckPrincipal(session.principal); !s.ok()) return s;
  // The same as CheckAttribute on each, without building a Status for each that passes: a state
  // transfer restores millions of attributes, and that was a tenth of its inserts' instructions.
  const bool attributes_fit = std::all_of(session.attributes.begin(), session.attributes.end(),
                                          [&](const AttributeBlock::Attribute& a) {
                                            return !a.name.empty() &&
                                                   a.name.size() <= limits_.max_name_bytes &&
                                                   a.value.size() <= limits_.max_value_bytes;
                                          });
  if (!attributes_fit) {
    for (const AttributeBlock::Attribute& a : session.attributes) {
      if (Status s = CheckAttribute(a.name, a.value); !s.ok()) return s;
    }
  }
  if (Status s = CheckAttributeCount(session.attributes.size()); !s.ok()) return s;
  SessionKey key;
  if (Status s = CheckNewId(session.id, &key, session.key); !s.ok()) return s;

  auto stored = std::make_unique<StoredSession>(key, session.created_ms);
  stored->last_access_ms_ = session.last_access_ms;
  stored->version_ = session.version;
  stored->max_idle_s_ = session.max_idle_s;
  stored->max_lifetime_s_ = session.max_lifetime_s;
  stored->attributes_ =
      attributes != nullptr ? std::move(*attributes) : AttributeBlock::Of(session.attributes);
  return Insert(std::move(stored), session.principal);
}

Result<SessionStore::UpdateResult> SessionStore::Update(const v1::UpdateRequest& request,
                                                        int64_t now_ms) {
  // Check the whole request before touching anything: an update applies entirely or not at all.
  for (const auto& [name, value] : request.set()) {
    if (Status s = CheckAttribute(name, value); !s.ok()) return s;
  }
  std::unordered_set<std::string_view> removed;
  for (const std::string& name : request.remove()) {
    if (Status s = CheckName(name); !s.ok()) return s;
    if (request.set().contains(name)) {
      return InvalidArgument(fmt::format(
          "attribute '{}' is both set and removed in one update: do one or the other", name));
    }
    removed.insert(name);
  }
  if (request.has_principal()) {
    if (Status s = CheckPrincipal(request.principal()); !s.ok()) return s;
  }
  if (request.has_max_idle_s()) {
    if (request.max_idle_s() == 0) {
      return InvalidArgument(
          "max_idle_s must be at least 1 second: to end a session now, invalidate it");
    }
    if (Status s = CheckSeconds("max_idle_s", request.max_idle_s()); !s.ok()) return s;
  }

  StoredSession* s = FindLive(request.id(), now_ms);
  if (s == nullptr) return NotFoundError(request.id());
  if (request.expected_version() != 0 && request.expected_version() != s->version_) {
    return Conflict(fmt::format(
        "session {} is at version {}, not the expected {}: another request changed it; read "
        "it again and redo the update",
        LogTag(request.id()), s->version_, request.expected_version()));
  }

  // The new attribute block, and whether it differs from the old one.
  bool attributes_changed = false;
  std::optional<AttributeBlock> new_attributes;
  if (!request.set().empty() || !removed.empty()) {
    AttributeBlock::Builder builder;
    size_t overwritten = 0;
    for (const AttributeBlock::Attribute& a : s->attributes_) {
      if (removed.contains(a.name)) {
        attributes_changed = true;
        continue;
      }
      // Protobuf maps look up by std::string; the names are short.
      auto it = request.set().find(std::string(a.name));
      if (it == request.set().end()) {
        builder.Add(a.name, a.value);
        continue;
      }
      ++overwritten;
      if (it->second != a.value) attributes_changed = true;
      builder.Add(a.name, it->second);
    }
    if (overwritten < static_cast<size_t>(request.set().size())) {
      attributes_changed = true;
      for (const auto& [name, value] : request.set()) {
        if (!s->attributes_.Find(name)) builder.Add(name, value);
      }
    }
    if (attributes_changed) {
      if (builder.count() > s->attributes_.count()) {
        if (Status st = CheckAttributeCount(builder.count()); !st.ok()) return st;
      }
      new_attributes = std::move(builder).Build();
    }
  }
  const bool principal_changed = request.has_principal() && request.principal() != s->principal();
  const bool idle_changed = request.has_max_idle_s() && request.max_idle_s() != s->max_idle_s_;
  const bool changed = attributes_changed || principal_changed || idle_changed;

  // Nothing can fail from here on.
  if (new_attributes) s->attributes_ = std::move(*new_attributes);
  if (principal_changed) {
    if (s->principal_ != nullptr) principals_.Remove(s->principal_, s->key_);
    s->principal_ =
        request.principal().empty() ? nullptr : principals_.Add(request.principal(), s->key_);
  }
  if (idle_changed) s->max_idle_s_ = request.max_idle_s();
  if (changed) ++s->version_;
  if (changed || request.touch()) s->last_access_ms_ = std::max(s->last_access_ms_, now_ms);
  // A shorter idle timeout can move the deadline before the queued one; queue the new one so
  // the reaper is not late (the old entry turns stale).
  if (s->DeadlineMs() < s->queued_deadline_ms_) {
    Enqueue(s);
    MaybeCompactQueue();
  }
  return UpdateResult{s, changed};
}

Result<const StoredSession*> SessionStore::Touch(std::string_view id, int64_t now_ms) {
  StoredSession* s = FindLive(id, now_ms);
  if (s == nullptr) return NotFoundError(id);
  return TouchFound(s, now_ms);
}

Result<const StoredSession*> SessionStore::Touch(const SessionKey& key, int64_t now_ms) {
  StoredSession* s = table_.Find(key);
  if (s == nullptr || s->ExpiredAt(now_ms)) return NotFoundError(key.ToText());
  return TouchFound(s, now_ms);
}

const StoredSession* SessionStore::TouchFound(StoredSession* s, int64_t now_ms) {
  // max(): a wall clock stepping back must not pull deadlines in under the expiry queue.
  s->last_access_ms_ = std::max(s->last_access_ms_, now_ms);
  return s;
}

Result<uint64_t> SessionStore::Erase(std::string_view id, int64_t now_ms) {
  StoredSession* s = FindLive(id, now_ms);
  if (s == nullptr) return NotFoundError(id);
  const uint64_t version = s->version_;
  Remove(s->key_);
  MaybeCompactQueue();
  return version;
}

Result<const StoredSession*> SessionStore::Rename(std::string_view id, std::string_view new_id,
                                                  int64_t now_ms) {
  StoredSession* s = FindLive(id, now_ms);
  if (s == nullptr) return NotFoundError(id);
  const std::optional<SessionKey> new_key = SessionKey::FromText(new_id);
  if (!new_key) {
    return InvalidArgument(
        fmt::format("session id {} is not 22 URL-safe base64 characters: use ids this daemon made",
                    LogTag(new_id)));
  }
  if (table_.Find(*new_key) != nullptr) {
    return Conflict(fmt::format("session {} already exists: rotate to a fresh id", LogTag(new_id)));
  }
  const SessionKey old_key = s->key_;
  std::unique_ptr<StoredSession> moved = table_.Remove(old_key);
  if (moved->principal_ != nullptr) {
    // Add before removing: removing the last key would free the interned string.
    const std::string* principal = principals_.Add(*moved->principal_, *new_key);
    principals_.Remove(principal, old_key);
    moved->principal_ = principal;
  }
  moved->key_ = *new_key;
  StoredSession* renamed = table_.Insert(std::move(moved));
  // Same deadline under the new key; the old key's entry is now stale.
  queue_.Push(renamed->queued_deadline_ms_, renamed->key_);
  MaybeCompactQueue();
  return renamed;
}

std::vector<const StoredSession*> SessionStore::FindByPrincipal(std::string_view principal,
                                                                int64_t now_ms) const {
  std::vector<const StoredSession*> found;
  if (principal.empty()) return found;
  const PrincipalIndex::KeySet* keys = principals_.Find(principal);
  if (keys == nullptr) return found;
  found.reserve(keys->size());
  for (const SessionKey& key : *keys) {
    const StoredSession* s = table_.Find(key);
    if (s != nullptr && !s->ExpiredAt(now_ms)) found.push_back(s);
  }
  std::sort(found.begin(), found.end(), [](const StoredSession* a, const StoredSession* b) {
    return a->created_ms() < b->created_ms();
  });
  return found;
}

size_t SessionStore::ExpireDue(int64_t now_ms,
                               const std::function<void(const StoredSession&)>& on_expired) {
  size_t expired = 0;
  while (!queue_.empty() && queue_.top().deadline_ms <= now_ms) {
    const ExpiryQueue::Entry entry = queue_.Pop();
    StoredSession* s = table_.Find(entry.key);
    // Erased, renamed, or superseded by an earlier entry: nothing to do.
    if (s == nullptr || s->queued_deadline_ms_ != entry.deadline_ms) continue;
    if (!s->ExpiredAt(now_ms)) {
      Enqueue(s);  // touched since it was queued
      continue;
    }
    if (on_expired) on_expired(*s);
    Remove(entry.key);
    ++expired;
  }
  return expired;
}

std::optional<int64_t> SessionStore::NextDeadlineMs() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.top().deadline_ms;
}

void SessionStore::Enqueue(StoredSession* session) {
  session->queued_deadline_ms_ = session->DeadlineMs();
  queue_.Push(session->queued_deadline_ms_, session->key_);
}

void SessionStore::Remove(const SessionKey& key) {
  std::unique_ptr<StoredSession> s = table_.Remove(key);
  if (s != nullptr && s->principal_ != nullptr) principals_.Remove(s->principal_, key);
}

void SessionStore::MaybeCompactQueue() {
  if (queue_.size() < kMinQueueToCompact || queue_.size() <= 2 * table_.size()) return;
  queue_.RemoveIf([this](const ExpiryQueue::Entry& e) {
    const StoredSession* s = table_.Find(e.key);
    return s == nullptr || s->queued_deadline_ms_ != e.deadline_ms;
  });
}

Result<const StoredSession*> SessionStore::CreateWithNewId(IdGenerator& ids,
                                                           const v1::CreateRequest& request,
                                                           int64_t now_ms) {
  Result<const StoredSession*> created = Create(ids.NewId(), request, now_ms);
  if (created.ok() || created.status().code() != v1::CONFLICT) return created;
  created = Create(ids.NewId(), request, now_ms);
  if (created.ok() || created.status().code() != v1::CONFLICT) return created;
  return RepeatedIdError();
}

Result<const StoredSession*> SessionStore::RenameToNewId(std::string_view id, IdGenerator& ids,
                                                         int64_t now_ms) {
  Result<const StoredSession*> renamed = Rename(id, ids.NewId(), now_ms);
  if (renamed.ok() || renamed.status().code() != v1::CONFLICT) return renamed;
  renamed = Rename(id, ids.NewId(), now_ms);
  if (renamed.ok() || renamed.status().code() != v1::CONFLICT) return renamed;
  return RepeatedIdError();
}

std::chrono::milliseconds SessionStore::ExpiryWait(int64_t now_ms,
                                                   std::chrono::milliseconds max_wait) const {
  const std::optional<int64_t> next = NextDeadlineMs();
  if (!next) return max_wait;
  return std::min(max_wait, std::chrono::milliseconds(std::max<int64_t>(0, *next - now_ms)));
}

}  // namespace sessiond
