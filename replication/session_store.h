// SessionStore: a node's sessions in memory, with their expiry and principal indexes.
//
// Every operation of the client protocol bottoms out here, for the standalone mode and, as
// the local replica, for the clustered ones. The store is passive and deterministic: callers
// pass the time (`now_ms`, Unix epoch milliseconds) and get back what changed; publishing
// events and replicating is the caller's job.
//
// Memory is the design constraint (a node may hold millions of sessions): a session is one
// 72-byte StoredSession plus one packed AttributeBlock, found through an open-addressing
// SessionTable keyed by the id's 16 decoded bytes, and tracked by one 24-byte ExpiryQueue
// entry. See stored_session.h.
//
// Expiry: a session's deadline is min(last access + max_idle_s, created + max_lifetime_s when
// set). Past it, a session is absent to every operation at once; ExpireDue reaps it (and lets
// the caller report it) later, in O(log n) per session, without scanning.
//
// Pointers to StoredSession returned by any method stay valid until the next call that
// changes the store.
//
// Threading: not thread-safe. A store belongs to one event loop, which makes every call.
#ifndef SESSIOND_REPLICATION_SESSION_STORE_H_
#define SESSIOND_REPLICATION_SESSION_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "replication/expiry_queue.h"
#include "replication/principal_index.h"
#include "replication/session_id.h"
#include "replication/session_limits.h"
#include "replication/session_table.h"
#include "replication/stored_session.h"
#include "sessiond/status.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

// A session as another node holds it, by views into the caller's buffer: what Restore takes
// from a state transfer without building protobuf objects.
struct SessionImage {
  std::string_view id;
  // SessionKey::FromText(id), when whoever made the image decoded it already (a state
  // transfer's worker does, so that the loop does not decode each id again); nullopt: Restore
  // decodes the id itself.
  std::optional<SessionKey> key;
  int64_t created_ms = 0;
  int64_t last_access_ms = 0;
  uint64_t version = 0;
  uint32_t max_idle_s = 0;
  uint32_t max_lifetime_s = 0;
  std::string_view principal;
  std::span<const AttributeBlock::Attribute> attributes;  // distinct names
};

class SessionStore {
 public:
  explicit SessionStore(const SessionLimits& limits);
  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  const SessionLimits& limits() const { return limits_; }

  // Sessions held, counting any past their deadline that ExpireDue has not reaped yet.
  size_t size() const { return table_.size(); }

  // The session `id` names, or nullptr when it is unknown, malformed or past its deadline.
  const StoredSession* Find(std::string_view id, int64_t now_ms) const;
  // The same, by the id's decoded key: what a caller holding keys uses, to skip the decoding.
  const StoredSession* Find(const SessionKey& key, int64_t now_ms) const;

  // Prefetch(key) asks the CPU to fetch the session `key` names; PrefetchAttributes(session)
  // its attribute block. A loop over many keys calls them some iterations ahead of its Find.
  void Prefetch(const SessionKey& key) const { table_.Prefetch(key); }
  // The same for a session about to be inserted: fetches where its slot will be.
  void PrefetchSlot(const SessionKey& key) const { table_.PrefetchSlot(key); }
  static void PrefetchAttributes(const StoredSession& session) { session.attributes().Prefetch(); }
  // The rest of the block, some iterations after PrefetchAttributes.
  static void PrefetchMoreAttributes(const StoredSession& session) {
    session.attributes().PrefetchRest();
  }

  // Makes room for `sessions` sessions in all, so a bulk fill (a state transfer) does not
  // rehash the table again and again as it grows.
  void Reserve(size_t sessions) {
    table_.Reserve(sessions);
    queue_.Reserve(sessions);
  }

  // Creates session `id` (a fresh id from an IdGenerator) from `request`, at version 1. A
  // max_idle_s of 0 means the limits' default. INVALID_ARGUMENT for a malformed id, a name or
  // timeout over its limit; TOO_LARGE for a value over its limit; RESOURCE_EXHAUSTED for too
  // many attributes or sessions; CONFLICT when `id` is already held.
  Result<const StoredSession*> Create(std::string_view id, const v1::CreateRequest& request,
                                      int64_t now_ms);

  // Create() under a fresh id from `ids`. 128 random bits make a taken id astronomically
  // unlikely, so one repeat is retried and a second means the generator is broken (INTERNAL).
  Result<const StoredSession*> CreateWithNewId(IdGenerator& ids, const v1::CreateRequest& request,
                                               int64_t now_ms);

  // Inserts `session` exactly as another node or a snapshot holds it (times, version and all),
  // for state transfer. The same checks as Create, except that max_idle_s must be given.
  Result<const StoredSession*> Restore(const v1::Session& session, int64_t now_ms);
  // The same from views; the attribute block is sized once and written in place.
  Result<const StoredSession*> Restore(const SessionImage& session);
  // The same with the block already built (AttributeBlock::Of(session.attributes), which is a
  // pure function: a bulk fill builds blocks on another thread, so that the loop neither copies
  // the attributes nor takes the page faults of their fresh memory). Dropped on an error.
  Result<const StoredSession*> Restore(const SessionImage& session, AttributeBlock attributes);

  struct UpdateResult {
    const StoredSession* session;
    // Whether anything but the access time changed (and so the version was bumped).
    bool changed;
  };
  // Applies every change of `request` or none. A change (an attribute set to a new value or
  // removed, a new principal or max_idle_s) bumps the version and counts as an access; a
  // `touch` alone only moves the access time. NOT_FOUND for an absent session; CONFLICT when
  // expected_version is neither 0 nor the session's version; the limits as in Create.
  Result<UpdateResult> Update(const v1::UpdateRequest& request, int64_t now_ms);

  // Records an access at `now_ms`, which pushes back the idle deadline (never the lifetime).
  // NOT_FOUND for an absent session.
  Result<const StoredSession*> Touch(std::string_view id, int64_t now_ms);
  // The same for a session whose key the caller has already decoded.
  Result<const StoredSession*> Touch(const SessionKey& key, int64_t now_ms);

  // Removes session `id` and returns the version it had. NOT_FOUND for an absent session.
  Result<uint64_t> Erase(std::string_view id, int64_t now_ms);

  // Moves session `id` to `new_id` (a fresh id), keeping everything else, the deadline
  // included. NOT_FOUND for an absent session; INVALID_ARGUMENT for a malformed `new_id`;
  // CONFLICT when `new_id` is already held.
  Result<const StoredSession*> Rename(std::string_view id, std::string_view new_id, int64_t now_ms);

  // Rename() to a fresh id from `ids`, retried once as in CreateWithNewId.
  Result<const StoredSession*> RenameToNewId(std::string_view id, IdGenerator& ids, int64_t now_ms);

  // The live sessions of `principal`, oldest first; none for "".
  std::vector<const StoredSession*> FindByPrincipal(std::string_view principal,
                                                    int64_t now_ms) const;

  // Calls fn(const StoredSession&) for every live session, in no particular order. `fn` must
  // not change the store.
  template <typename Fn>
  void ForEach(int64_t now_ms, Fn&& fn) const {
    table_.ForEach([&](const StoredSession& s) {
      if (!s.ExpiredAt(now_ms)) fn(s);
    });
  }

  // Removes every session whose deadline is at or before `now_ms`, calling on_expired with
  // each just before it goes (it must not change the store). Returns how many expired.
  size_t ExpireDue(int64_t now_ms, const std::function<void(const StoredSession&)>& on_expired);

  // No session expires before this (nullopt when the store is empty): when to call ExpireDue
  // next. It may be earlier than any real deadline, never later.
  std::optional<int64_t> NextDeadlineMs() const;
  // How long an expiry loop may sleep at `now_ms`: until NextDeadlineMs(), but never longer
  // than `max_wait`, so that a session expires at most that late even if the clock jumps.
  std::chrono::milliseconds ExpiryWait(int64_t now_ms, std::chrono::milliseconds max_wait) const;

  // The NOT_FOUND status every operation returns for `id`, naming it by its LogTag only.
  static Status NotFoundError(std::string_view id);

  // Index sizes, for leak checks in tests and for stats.
  size_t expiry_queue_size() const { return queue_.size(); }
  size_t principal_count() const { return principals_.principal_count(); }
  size_t principal_key_count() const { return principals_.key_count(); }

 private:
  StoredSession* FindLive(std::string_view id, int64_t now_ms) const;
  static const StoredSession* TouchFound(StoredSession* s, int64_t now_ms);
  Status CheckAttribute(std::string_view name, std::string_view value) const;
  Status CheckName(std::string_view name) const;
  Status CheckPrincipal(std::string_view principal) const;
  Status CheckSeconds(std::string_view field, uint32_t seconds) const;
  Status CheckAttributeCount(size_t count) const;
  // Checks that a new session `id` may be added; sets *key to its key. `decoded`: the id's key
  // when the caller has it, else nullopt.
  Status CheckNewId(std::string_view id, SessionKey* key,
                    const std::optional<SessionKey>& decoded = std::nullopt) const;
  // Restore, with `attributes` built from session.attributes when null.
  Result<const StoredSession*> RestoreImage(const SessionImage& session,
                                            AttributeBlock* attributes);
  // Adds a built session to the table and both indexes.
  const StoredSession* Insert(std::unique_ptr<StoredSession> session, std::string_view principal);
  // Queues the session's current deadline as its one live expiry entry.
  void Enqueue(StoredSession* session);
  // Takes the session out of the table and the principal index.
  void Remove(const SessionKey& key);
  // Drops stale expiry entries once they outnumber the sessions, so churn (sessions
  // invalidated or renamed long before their deadline) cannot grow the queue without bound.
  void MaybeCompactQueue();

  const SessionLimits limits_;
  SessionTable table_;
  ExpiryQueue queue_;
  PrincipalIndex principals_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_STORE_H_
