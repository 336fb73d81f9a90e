#include "replication/delta/delta_manager.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "replication/delta/stamp_table.h"
#include "replication/event_hub.h"
#include "replication/session_id.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

using peer::v1::DeltaBatch;
using peer::v1::PeerEnvelope;
using peer::v1::SessionDelta;

// The reaper wakes at the earliest deadline but at least this often, so a session expires at
// most this late even if the clock jumps.
constexpr std::chrono::milliseconds kMaxExpiryWait{1000};

Status RepeatedIdError() {
  return Internal(
      "the session id generator repeated an id twice in a row, so this node's random source is "
      "broken: restart the node and report this as a bug");
}

// FNV-1a, for the content digest: stable across processes and builds, unlike std::hash.
class Fnv {
 public:
  void Add(std::string_view bytes) {
    AddNumber(bytes.size());
    for (unsigned char c : bytes) {
      hash_ ^= c;
      hash_ *= 1099511628211ull;
    }
  }
  void AddNumber(uint64_t n) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (n >> (8 * i)) & 0xff;
      hash_ *= 1099511628211ull;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

}  // namespace

class DeltaManager::Impl : public std::enable_shared_from_this<DeltaManager::Impl> {
 public:
  Impl(asio::any_io_executor executor, ManagerOptions options, Cluster* cluster, DeltaOptions delta)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        delta_(delta),
        cluster_(cluster),
        store_(options_.limits),
        stamps_(delta_.max_removed_ids),
        expiry_timer_(executor_),
        expiry_stopped_(executor_, asio::steady_timer::time_point::max()) {}

  // The owner goes away without Stop(): cut every tie to the cluster now (it may be destroyed
  // next), and let the expiry loop and any waiting write end on their own.
  void Abandon() {
    stopping_ = true;
    Unsubscribe();
    for (auto& [id, waiter] : std::map(waiters_)) {
      Finish(waiter, Unavailable("this node is shutting down before its peers confirmed the "
                                 "change: read the session from another node"));
    }
    if (pending_waiter_) Finish(pending_waiter_, Unavailable("this node is shutting down"));
    expiry_timer_.cancel();
  }

  Status Start() {
    if (started_) return Status::Ok();
    Status s = cluster_->Subscribe(PeerEnvelope::kDeltaBatch,
                                   [this](const PeerIdentity& from, const PeerEnvelope& e) {
                                     OnDeltaBatch(from, e.delta_batch());
                                   });
    if (!s.ok()) return s;
    s = cluster_->Subscribe(PeerEnvelope::kDeltaAck,
                            [this](const PeerIdentity& from, const PeerEnvelope& e) {
                              OnDeltaAck(from, e.delta_ack().batch_id());
                            });
    if (!s.ok()) return s;
    member_listener_ = cluster_->AddMemberListener([this](const MemberEvent& e) { OnMember(e); });
    subscribed_ = true;
    started_ = true;
    expiry_running_ = true;
    asio::co_spawn(executor_, ExpiryLoop(shared_from_this()), asio::detached);
    spdlog::info("delta manager of node {} started ({} acks)", options_.node_id,
                 delta_.ack == ReplicationAck::kSync ? "sync" : "async");
    return Status::Ok();
  }

  asio::awaitable<void> Stop() {
    stopping_ = true;
    Flush();
    Unsubscribe();
    for (auto& [id, waiter] : std::map(waiters_)) {
      Finish(waiter, Unavailable("this node is stopping before its peers confirmed the change: "
                                 "read the session from another node to see whether it arrived"));
    }
    expiry_timer_.cancel();
    if (expiry_running_) {
      boost::system::error_code ec;
      co_await expiry_stopped_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) {
    const int64_t now = options_.clock->NowMs();
    Result<const StoredSession*> created = store_.Create(options_.ids->NewId(), request, now);
    if (!created.ok() && created.status().code() == v1::CONFLICT) {
      created = store_.Create(options_.ids->NewId(), request, now);
      if (!created.ok() && created.status().code() == v1::CONFLICT) co_return RepeatedIdError();
    }
    if (!created.ok()) co_return created.status();
    v1::Session session = (*created)->ToProto();
    ++counters_.created;

    SessionDelta& d = AddDelta(SessionDelta::CREATE, session.id(), now);
    *d.mutable_session() = session;
    for (const auto& [name, value] : session.attributes()) {
      stamps_.Set(session.id(), StampedField::kAttribute, name, d.clock(), options_.node_id);
    }
    stamps_.Set(session.id(), StampedField::kPrincipal, "", d.clock(), options_.node_id);
    stamps_.Set(session.id(), StampedField::kMaxIdle, "", d.clock(), options_.node_id);
    stamps_.set_touch_sent_ms(session.id(), now);
    std::shared_ptr<AckWaiter> waiter = JoinBatch();
    Publish(v1::SessionEvent::CREATED, session.id(), "", session.version(), now, options_.node_id);
    if (Status s = co_await AwaitAcks(std::move(waiter)); !s.ok()) co_return s;
    co_return session;
  }

  Result<v1::Session> Get(const v1::GetRequest& request) {
    const int64_t now = options_.clock->NowMs();
    if (request.touch()) {
      Result<const StoredSession*> s = store_.Touch(request.id(), now);
      if (!s.ok()) return s.status();
      MaybeReplicateTouch(**s, now);
      return (*s)->ToProto();
    }
    const StoredSession* s = store_.Find(request.id(), now);
    if (s == nullptr) return SessionStore::NotFoundError(request.id());
    return s->ToProto();
  }

  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) {
    const int64_t now = options_.clock->NowMs();
    Result<SessionStore::UpdateResult> updated = store_.Update(request, now);
    if (!updated.ok()) {
      if (updated.status().code() == v1::CONFLICT) ++counters_.update_conflicts;
      co_return updated.status();
    }
    v1::Session session = updated->session->ToProto();
    if (!updated->changed) {
      if (request.touch()) MaybeReplicateTouch(*updated->session, now);
      co_return session;
    }
    ++counters_.updated;
    SessionDelta& d = AddDelta(SessionDelta::UPDATE, session.id(), now);
    for (const auto& [name, value] : request.set()) {
      peer::v1::AttributeChange* c = d.add_changes();
      c->set_name(name);
      c->set_value(value);
      stamps_.Set(session.id(), StampedField::kAttribute, name, d.clock(), options_.node_id);
    }
    for (const std::string& name : request.remove()) {
      peer::v1::AttributeChange* c = d.add_changes();
      c->set_name(name);
      c->set_removed(true);
      stamps_.Set(session.id(), StampedField::kAttribute, name, d.clock(), options_.node_id,
                  /*removed=*/true);
    }
    if (request.has_principal()) {
      d.set_principal(request.principal());
      stamps_.Set(session.id(), StampedField::kPrincipal, "", d.clock(), options_.node_id);
    }
    if (request.has_max_idle_s()) {
      d.set_max_idle_s(request.max_idle_s());
      stamps_.Set(session.id(), StampedField::kMaxIdle, "", d.clock(), options_.node_id);
    }
    // Peers count an applied change as an access.
    stamps_.set_touch_sent_ms(session.id(), now);
    std::shared_ptr<AckWaiter> waiter = JoinBatch();
    Publish(v1::SessionEvent::CHANGED, session.id(), "", session.version(), now, options_.node_id);
    if (Status s = co_await AwaitAcks(std::move(waiter)); !s.ok()) co_return s;
    co_return session;
  }

  asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) {
    const int64_t now = options_.clock->NowMs();
    Result<uint64_t> version = store_.Erase(request.id(), now);
    if (!version.ok()) co_return version.status();
    ++counters_.invalidated;
    AddDelta(SessionDelta::INVALIDATE, request.id(), now);
    stamps_.Remove(request.id());
    std::shared_ptr<AckWaiter> waiter = JoinBatch();
    Publish(v1::SessionEvent::INVALIDATED, request.id(), "", *version, now, options_.node_id);
    co_return co_await AwaitAcks(std::move(waiter));
  }

  asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) {
    const int64_t now = options_.clock->NowMs();
    Result<const StoredSession*> renamed = store_.Rename(request.id(), options_.ids->NewId(), now);
    if (!renamed.ok() && renamed.status().code() == v1::CONFLICT) {
      renamed = store_.Rename(request.id(), options_.ids->NewId(), now);
      if (!renamed.ok() && renamed.status().code() == v1::CONFLICT) co_return RepeatedIdError();
    }
    if (!renamed.ok()) co_return renamed.status();
    v1::Session session = (*renamed)->ToProto();
    ++counters_.rotated;
    SessionDelta& d = AddDelta(SessionDelta::ROTATE_ID, request.id(), now);
    d.set_new_id(session.id());
    stamps_.Rename(request.id(), session.id());
    std::shared_ptr<AckWaiter> waiter = JoinBatch();
    Publish(v1::SessionEvent::ID_CHANGED, request.id(), session.id(), session.version(), now,
            options_.node_id);
    if (Status s = co_await AwaitAcks(std::move(waiter)); !s.ok()) co_return s;
    co_return session;
  }

  Result<v1::SessionList> FindByPrincipal(const v1::FindByPrincipalRequest& request) {
    if (request.principal().empty()) {
      return InvalidArgument(
          "find_by_principal needs a principal: name the user whose sessions you want");
    }
    v1::SessionList list;
    for (const StoredSession* s :
         store_.FindByPrincipal(request.principal(), options_.clock->NowMs())) {
      *list.add_sessions() = s->ToProto();
    }
    return list;
  }

  std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink) {
    return hub_.Subscribe(std::move(ids), std::move(sink));
  }

  v1::NodeStats Stats() const {
    v1::NodeStats stats;
    stats.set_node_id(options_.node_id);
    stats.set_mode("delta");
    stats.set_sessions(store_.size());
    auto& c = *stats.mutable_counters();
    c["sessions_created"] = counters_.created;
    c["sessions_updated"] = counters_.updated;
    c["sessions_rotated"] = counters_.rotated;
    c["sessions_invalidated"] = counters_.invalidated;
    c["sessions_expired"] = counters_.expired;
    c["update_conflicts"] = counters_.update_conflicts;
    c["watchers"] = hub_.watch_count();
    c["principals"] = store_.principal_count();
    c["delta_batches_sent"] = counters_.batches_sent;
    c["delta_batches_received"] = counters_.batches_received;
    c["deltas_sent"] = counters_.deltas_sent;
    c["deltas_applied"] = counters_.deltas_applied;
    c["deltas_superseded"] = counters_.deltas_superseded;
    c["deltas_for_unknown_sessions"] = counters_.deltas_unknown;
    c["delta_sends_failed"] = counters_.sends_failed;
    c["touches_replicated"] = counters_.touches_sent;
    c["sync_writes_unconfirmed"] = counters_.sync_unconfirmed;
    c["lamport_clock"] = lamport_;
    return stats;
  }

  Readiness Ready() const {
    if (!started_) return Readiness{false, "not started"};
    if (stopping_) return Readiness{false, "stopping"};
    return Readiness{true, fmt::format("serving; delta replication to {} live peers",
                                       cluster_->LivePeers().size())};
  }

  size_t ExpireDue() {
    const int64_t now = options_.clock->NowMs();
    std::vector<v1::SessionEvent> events;
    const size_t expired = store_.ExpireDue(now, [&](const StoredSession& s) {
      events.push_back(
          MakeEvent(v1::SessionEvent::EXPIRED, s.id(), "", s.version(), now, options_.node_id));
    });
    counters_.expired += expired;
    for (const v1::SessionEvent& e : events) {
      // The first node to expire a session tells the others, whose own deadline may be later
      // (a throttled touch) or whose reaper has not run yet.
      AddDelta(SessionDelta::EXPIRE, e.id(), now);
      stamps_.Remove(e.id());
    }
    for (const v1::SessionEvent& e : events) hub_.Publish(e);
    if (expired > 0) spdlog::debug("node {}: {} sessions expired", options_.node_id, expired);
    return expired;
  }

  uint64_t ContentDigest() const {
    std::vector<const StoredSession*> sessions;
    const int64_t now = options_.clock->NowMs();
    store_.ForEach(now, [&](const StoredSession& s) { sessions.push_back(&s); });
    std::vector<std::pair<std::string, const StoredSession*>> sorted;
    sorted.reserve(sessions.size());
    for (const StoredSession* s : sessions) sorted.emplace_back(s->id(), s);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    Fnv fnv;
    for (const auto& [id, s] : sorted) {
      fnv.Add(id);
      fnv.AddNumber(static_cast<uint64_t>(s->created_ms()));
      fnv.AddNumber(s->max_idle_s());
      fnv.AddNumber(s->max_lifetime_s());
      fnv.Add(s->principal());
      std::vector<std::pair<std::string_view, std::string_view>> attributes;
      for (const AttributeBlock::Attribute& a : s->attributes()) {
        attributes.emplace_back(a.name, a.value);
      }
      std::sort(attributes.begin(), attributes.end());
      fnv.AddNumber(attributes.size());
      for (const auto& [name, value] : attributes) {
        fnv.Add(name);
        fnv.Add(value);
      }
    }
    return fnv.value();
  }

 private:
  // Writes waiting for the peers' acks of one batch (sync mode). Every write of an event-loop
  // turn joins the same batch, so they share one waiter.
  struct AckWaiter {
    explicit AckWaiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;  // the deadline; cancelled when the outcome is known
    uint64_t batch_id = 0;     // 0 until flushed
    std::set<std::string, std::less<>> waiting;
    bool done = false;
    Status status;
  };

  struct Counters {
    uint64_t created = 0;
    uint64_t updated = 0;
    uint64_t rotated = 0;
    uint64_t invalidated = 0;
    uint64_t expired = 0;
    uint64_t update_conflicts = 0;
    uint64_t batches_sent = 0;
    uint64_t batches_received = 0;
    uint64_t deltas_sent = 0;
    uint64_t deltas_applied = 0;
    uint64_t deltas_superseded = 0;
    uint64_t deltas_unknown = 0;
    uint64_t sends_failed = 0;
    uint64_t touches_sent = 0;
    uint64_t sync_unconfirmed = 0;
  };

  void Unsubscribe() {
    if (!subscribed_) return;
    subscribed_ = false;
    (void)cluster_->Subscribe(PeerEnvelope::kDeltaBatch, nullptr);
    (void)cluster_->Subscribe(PeerEnvelope::kDeltaAck, nullptr);
    cluster_->RemoveMemberListener(member_listener_);
  }

  // A new delta of this turn's batch, stamped with the next Lamport clock value. The reference
  // is valid until the next AddDelta.
  SessionDelta& AddDelta(SessionDelta::Kind kind, std::string_view id, int64_t now) {
    SessionDelta* d = pending_.add_deltas();
    d->set_kind(kind);
    d->set_id(std::string(id));
    d->set_clock(++lamport_);
    d->set_at_ms(now);
    if (!flush_posted_) {
      flush_posted_ = true;
      asio::post(executor_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->Flush();
      });
    }
    return *d;
  }

  // The waiter of this turn's batch in sync mode; nullptr in async mode.
  std::shared_ptr<AckWaiter> JoinBatch() {
    if (delta_.ack != ReplicationAck::kSync) return nullptr;
    if (!pending_waiter_) {
      pending_waiter_ = std::make_shared<AckWaiter>(executor_);
      pending_waiter_->timer.expires_after(delta_.ack_timeout);
    }
    return pending_waiter_;
  }

  // Sends this turn's batch to every live peer.
  void Flush() {
    flush_posted_ = false;
    if (pending_.deltas_size() == 0) return;
    PeerEnvelope envelope;
    DeltaBatch& batch = *envelope.mutable_delta_batch();
    batch.Swap(&pending_);
    pending_.Clear();
    std::shared_ptr<AckWaiter> waiter = std::move(pending_waiter_);
    pending_waiter_.reset();
    batch.set_batch_id(++next_batch_id_);
    batch.set_want_ack(waiter != nullptr);
    const std::vector<std::string> peers = cluster_->LivePeers();
    for (const std::string& peer : peers) {
      Result<uint64_t> sent = cluster_->Send(peer, envelope);
      if (sent.ok()) {
        ++counters_.batches_sent;
        counters_.deltas_sent += batch.deltas_size();
      } else {
        // The peer is alive by the failure detector yet unreachable now: a sync write keeps
        // waiting for it (it may die, or the write answers UNAVAILABLE at its deadline).
        ++counters_.sends_failed;
        spdlog::debug("node {}: delta batch {} not sent to {}: {}", options_.node_id,
                      batch.batch_id(), peer, sent.status().ToString());
      }
    }
    if (waiter == nullptr || waiter->done) return;
    waiter->batch_id = batch.batch_id();
    waiter->waiting.insert(peers.begin(), peers.end());
    if (waiter->waiting.empty()) {
      Finish(waiter, Status::Ok());
      return;
    }
    waiters_[waiter->batch_id] = std::move(waiter);
  }

  // Sync mode: waits until every live peer acked the write's batch, or the deadline.
  asio::awaitable<Status> AwaitAcks(std::shared_ptr<AckWaiter> waiter) {
    if (waiter == nullptr) co_return Status::Ok();
    auto self = shared_from_this();  // the coroutine may outlive the manager's owner
    while (!waiter->done) {
      boost::system::error_code ec;
      co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (waiter->done || ec) continue;
      ++counters_.sync_unconfirmed;
      Finish(waiter,
             Unavailable(fmt::format(
                 "the change was applied on node {} but {} did not confirm it within {} ms "
                 "(--replication-ack sync): it may or may not have reached them; read the "
                 "session again before retrying",
                 options_.node_id,
                 waiter->waiting.empty() ? std::string("the peers")
                                         : fmt::format("{}", fmt::join(waiter->waiting, ", ")),
                 delta_.ack_timeout.count())));
    }
    co_return waiter->status;
  }

  void Finish(const std::shared_ptr<AckWaiter>& waiter, Status status) {
    if (waiter->done) return;
    waiter->done = true;
    waiter->status = std::move(status);
    waiter->timer.cancel();
    if (waiter->batch_id != 0) waiters_.erase(waiter->batch_id);
  }

  // `node` no longer holds up `waiter` (it acked, died or left).
  void Release(const std::shared_ptr<AckWaiter>& waiter, std::string_view node) {
    auto it = waiter->waiting.find(node);
    if (it == waiter->waiting.end()) return;
    waiter->waiting.erase(it);
    if (waiter->waiting.empty()) Finish(waiter, Status::Ok());
  }

  void OnDeltaAck(const PeerIdentity& from, uint64_t batch_id) {
    auto it = waiters_.find(batch_id);
    if (it == waiters_.end()) return;
    std::shared_ptr<AckWaiter> waiter = it->second;
    Release(waiter, from.node_id);
  }

  void OnMember(const MemberEvent& event) {
    using Kind = MemberEvent::Kind;
    // A dead or departed peer is not waited for; a restarted one lost the batch with its state
    // and will get the session by state transfer.
    if (event.kind != Kind::kDied && event.kind != Kind::kLeft && event.kind != Kind::kRestarted) {
      return;
    }
    for (auto& [id, waiter] : std::map(waiters_)) Release(waiter, event.member.node_id);
  }

  void OnDeltaBatch(const PeerIdentity& from, const DeltaBatch& batch) {
    ++counters_.batches_received;
    for (const SessionDelta& d : batch.deltas()) Apply(from.node_id, d);
    if (batch.want_ack()) {
      PeerEnvelope ack;
      ack.mutable_delta_ack()->set_batch_id(batch.batch_id());
      Result<uint64_t> sent = cluster_->Send(from.node_id, std::move(ack));
      if (!sent.ok()) {
        spdlog::debug("node {}: ack of batch {} not sent to {}: {}", options_.node_id,
                      batch.batch_id(), from.node_id, sent.status().ToString());
      }
    }
  }

  // Applies one delta from `origin`, field by field where its stamp is the newer.
  void Apply(const std::string& origin, const SessionDelta& d) {
    lamport_ = std::max(lamport_, d.clock());
    const int64_t now = options_.clock->NowMs();
    switch (d.kind()) {
      case SessionDelta::CREATE:
        return ApplyCreate(origin, d, now);
      case SessionDelta::UPDATE:
        return ApplyUpdate(origin, d, now);
      case SessionDelta::TOUCH: {
        const StoredSession* s = store_.Find(d.id(), now);
        if (s == nullptr) {
          ++counters_.deltas_unknown;
          return;
        }
        (void)store_.Touch(d.id(), d.at_ms());
        stamps_.set_touch_sent_ms(d.id(), std::max(now, stamps_.touch_sent_ms(d.id())));
        ++counters_.deltas_applied;
        return;
      }
      case SessionDelta::INVALIDATE:
      case SessionDelta::EXPIRE: {
        stamps_.Remove(d.id());
        Result<uint64_t> version = store_.Erase(d.id(), now);
        if (!version.ok()) return;
        ++counters_.deltas_applied;
        if (d.kind() == SessionDelta::EXPIRE) ++counters_.expired;
        Publish(d.kind() == SessionDelta::EXPIRE ? v1::SessionEvent::EXPIRED
                                                 : v1::SessionEvent::INVALIDATED,
                d.id(), "", *version, now, origin);
        return;
      }
      case SessionDelta::ROTATE_ID: {
        Result<const StoredSession*> renamed = store_.Rename(d.id(), d.new_id(), now);
        if (!renamed.ok()) {
          stamps_.Remove(d.id());
          ++counters_.deltas_unknown;
          return;
        }
        stamps_.Rename(d.id(), d.new_id());
        ++counters_.deltas_applied;
        Publish(v1::SessionEvent::ID_CHANGED, d.id(), d.new_id(), (*renamed)->version(), now,
                origin);
        return;
      }
      default:
        spdlog::warn("node {}: ignored a delta of unknown kind {} from {}", options_.node_id,
                     static_cast<int>(d.kind()), origin);
    }
  }

  void ApplyCreate(const std::string& origin, const SessionDelta& d, int64_t now) {
    const v1::Session& session = d.session();
    if (stamps_.WasRemoved(session.id()) || store_.Find(session.id(), now) != nullptr) {
      ++counters_.deltas_superseded;
      return;
    }
    Result<const StoredSession*> restored = store_.Restore(session, now);
    if (!restored.ok()) {
      spdlog::warn("node {}: could not hold session {} created on {}: {}", options_.node_id,
                   LogTag(session.id()), origin, restored.status().ToString());
      return;
    }
    for (const auto& [name, value] : session.attributes()) {
      stamps_.Set(session.id(), StampedField::kAttribute, name, d.clock(), origin);
    }
    stamps_.Set(session.id(), StampedField::kPrincipal, "", d.clock(), origin);
    stamps_.Set(session.id(), StampedField::kMaxIdle, "", d.clock(), origin);
    stamps_.set_touch_sent_ms(session.id(), now);
    ++counters_.deltas_applied;
    Publish(v1::SessionEvent::CREATED, session.id(), "", session.version(), now, origin);
  }

  void ApplyUpdate(const std::string& origin, const SessionDelta& d, int64_t now) {
    if (store_.Find(d.id(), now) == nullptr) {
      ++counters_.deltas_unknown;
      return;
    }
    const Stamp stamp{d.clock(), origin};
    v1::UpdateRequest request;
    request.set_id(d.id());
    std::vector<const peer::v1::AttributeChange*> won;
    for (const peer::v1::AttributeChange& c : d.changes()) {
      if (!StampAfter(stamp, stamps_.Get(d.id(), StampedField::kAttribute, c.name()))) continue;
      won.push_back(&c);
      if (c.removed()) {
        request.add_remove(c.name());
      } else {
        (*request.mutable_set())[c.name()] = c.value();
      }
    }
    const bool principal_won =
        d.has_principal() && StampAfter(stamp, stamps_.Get(d.id(), StampedField::kPrincipal));
    if (principal_won) request.set_principal(d.principal());
    const bool idle_won =
        d.has_max_idle_s() && StampAfter(stamp, stamps_.Get(d.id(), StampedField::kMaxIdle));
    if (idle_won) request.set_max_idle_s(d.max_idle_s());
    if (won.empty() && !principal_won && !idle_won) {
      ++counters_.deltas_superseded;
      return;
    }
    Result<SessionStore::UpdateResult> updated = store_.Update(request, now);
    if (!updated.ok()) {
      // Only a difference in limits between nodes gets here: the origin accepted it.
      spdlog::warn("node {}: could not apply an update of session {} from {}: {}", options_.node_id,
                   LogTag(d.id()), origin, updated.status().ToString());
      return;
    }
    for (const peer::v1::AttributeChange* c : won) {
      stamps_.Set(d.id(), StampedField::kAttribute, c->name(), d.clock(), origin, c->removed());
    }
    if (principal_won) stamps_.Set(d.id(), StampedField::kPrincipal, "", d.clock(), origin);
    if (idle_won) stamps_.Set(d.id(), StampedField::kMaxIdle, "", d.clock(), origin);
    stamps_.set_touch_sent_ms(d.id(), now);
    ++counters_.deltas_applied;
    if (updated->changed) {
      Publish(v1::SessionEvent::CHANGED, d.id(), "", updated->session->version(), now, origin);
    }
  }

  // Replicates an access unless one was replicated within max_idle_s / touch_divisor. The
  // access sent is that far ahead, so the peers' deadline is never earlier than this node's.
  void MaybeReplicateTouch(const StoredSession& s, int64_t now) {
    const int64_t window =
        int64_t{s.max_idle_s()} * 1000 / std::max<uint32_t>(1, delta_.touch_divisor);
    const std::string id = s.id();
    if (now - stamps_.touch_sent_ms(id) < window) return;
    stamps_.set_touch_sent_ms(id, now);
    AddDelta(SessionDelta::TOUCH, id, now).set_at_ms(now + window);
    ++counters_.touches_sent;
  }

  v1::SessionEvent MakeEvent(v1::SessionEvent::Kind kind, std::string id, std::string new_id,
                             uint64_t version, int64_t now, const std::string& origin) const {
    v1::SessionEvent e;
    e.set_kind(kind);
    e.set_id(std::move(id));
    e.set_new_id(std::move(new_id));
    e.set_version(version);
    e.set_origin_node(origin);
    e.set_at_ms(now);
    return e;
  }

  void Publish(v1::SessionEvent::Kind kind, std::string id, std::string new_id, uint64_t version,
               int64_t now, const std::string& origin) {
    hub_.Publish(MakeEvent(kind, std::move(id), std::move(new_id), version, now, origin));
  }

  // Holds `self` so that the manager's owner may drop it before the loop has seen stopping_.
  asio::awaitable<void> ExpiryLoop(std::shared_ptr<Impl> self) {
    (void)self;
    while (!stopping_) {
      ExpireDue();
      expiry_timer_.expires_after(NextExpiryWait());
      boost::system::error_code ec;
      co_await expiry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    expiry_running_ = false;
    expiry_stopped_.cancel();
  }

  std::chrono::milliseconds NextExpiryWait() const {
    const std::optional<int64_t> next = store_.NextDeadlineMs();
    if (!next) return kMaxExpiryWait;
    const int64_t wait_ms = std::max<int64_t>(0, *next - options_.clock->NowMs());
    return std::min(kMaxExpiryWait, std::chrono::milliseconds(wait_ms));
  }

  asio::any_io_executor executor_;
  const ManagerOptions options_;
  const DeltaOptions delta_;
  Cluster* const cluster_;
  SessionStore store_;
  StampTable stamps_;
  EventHub hub_;
  asio::steady_timer expiry_timer_;
  asio::steady_timer expiry_stopped_;
  Membership::ListenerId member_listener_ = 0;
  bool subscribed_ = false;
  bool started_ = false;
  bool stopping_ = false;
  bool expiry_running_ = false;

  // This node's Lamport clock: above every stamp it has made or seen.
  uint64_t lamport_ = 0;
  // The batch of the current event-loop turn, flushed by a posted Flush().
  DeltaBatch pending_;
  std::shared_ptr<AckWaiter> pending_waiter_;
  bool flush_posted_ = false;
  uint64_t next_batch_id_ = 0;
  // Flushed sync batches still waiting for acks, by batch id.
  std::map<uint64_t, std::shared_ptr<AckWaiter>> waiters_;
  Counters counters_;
};

DeltaManager::DeltaManager(asio::any_io_executor executor, ManagerOptions options, Cluster* cluster,
                           DeltaOptions delta)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), cluster, delta)) {}

DeltaManager::~DeltaManager() { impl_->Abandon(); }

asio::awaitable<Status> DeltaManager::Start() { co_return impl_->Start(); }

asio::awaitable<void> DeltaManager::Stop() { co_await impl_->Stop(); }

asio::awaitable<Result<v1::Session>> DeltaManager::Create(v1::CreateRequest request) {
  return impl_->Create(std::move(request));
}

asio::awaitable<Result<v1::Session>> DeltaManager::Get(v1::GetRequest request) {
  co_return impl_->Get(request);
}

asio::awaitable<Result<v1::Session>> DeltaManager::Update(v1::UpdateRequest request) {
  return impl_->Update(std::move(request));
}

asio::awaitable<Status> DeltaManager::Invalidate(v1::InvalidateRequest request) {
  return impl_->Invalidate(std::move(request));
}

asio::awaitable<Result<v1::Session>> DeltaManager::RotateId(v1::RotateIdRequest request) {
  return impl_->RotateId(std::move(request));
}

asio::awaitable<Result<v1::SessionList>> DeltaManager::FindByPrincipal(
    v1::FindByPrincipalRequest request) {
  co_return impl_->FindByPrincipal(request);
}

std::unique_ptr<WatchHandle> DeltaManager::Watch(std::vector<std::string> ids, EventSink sink) {
  return impl_->Watch(std::move(ids), std::move(sink));
}

v1::NodeStats DeltaManager::Stats() const { return impl_->Stats(); }

Readiness DeltaManager::Ready() const { return impl_->Ready(); }

size_t DeltaManager::ExpireDue() { return impl_->ExpireDue(); }

uint64_t DeltaManager::ContentDigest() const { return impl_->ContentDigest(); }

}  // namespace sessiond
