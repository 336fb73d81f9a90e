#include "replication/delta/delta_manager.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "replication/ack_waiter.h"
#include "replication/cluster/message_subscriptions.h"
#include "replication/content_digest.h"
#include "replication/delta/session_chunk.h"
#include "replication/delta/stamp_table.h"
#include "replication/event_hub.h"
#include "replication/session_counters.h"
#include "replication/session_id.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

using peer::v1::DeltaBatch;
using peer::v1::PeerEnvelope;
using peer::v1::SessionDelta;
using peer::v1::StateTransferChunk;
using SteadyTime = std::chrono::steady_clock::time_point;

// The reaper wakes at the earliest deadline but at least this often, so a session expires at
// most this late even if the clock jumps.
constexpr std::chrono::milliseconds kMaxExpiryWait{1000};
// How often the manager checks its transfers, pending resyncs and the anti-entropy schedule.
constexpr std::chrono::milliseconds kMaintenanceInterval{100};
// A peer that said it is joining too is asked again after this.
constexpr std::chrono::milliseconds kNotReadyRetry{500};
// The largest serialized chunk a receiver accepts: chunks aim at transfer_chunk_bytes, and
// overshoot by at most one session.
constexpr size_t kMaxChunkRawBytes = 256u << 20;

// A chunk on its way through the worker: serialized on the loop and compressed on the worker
// (sender), or decompressed and parsed into views on the worker and merged on the loop
// (receiver). The job goes back to the pool on the worker too, so freeing what a chunk left
// (blocks the loop did not take) does not hold up the loop.
struct ChunkJob {
  DecodedChunk decoded;       // receiver: the parsed list
  bool build_blocks = false;  // receiver: build the sessions' attribute blocks on the worker
  std::string raw;            // sender: the serialized list
  std::string compressed;     // sender: lz4's output before it goes into the envelope
  PeerEnvelope envelope;      // the chunk itself
  Status status;

  // Readies the job for another chunk, keeping its buffers' capacity. On the worker: it frees the
  // blocks the loop did not take.
  void Recycle() {
    decoded.blocks.clear();
    build_blocks = false;
    raw.clear();
    if (envelope.has_state_transfer_chunk()) {
      envelope.mutable_state_transfer_chunk()->Clear();  // keeps the payload string's capacity
    }
    status = Status::Ok();
  }
};

// Chunk jobs kept for reuse with their buffers. A transfer of a million sessions passes some
// 1,200 chunks through each side; with fresh buffers for each (the decompressed list, its views,
// the serialized list, the compressed copy: several MB), glibc hands the memory back to the OS
// and the kernel zeroes it again for the next chunk, which cost the receiver's worker a fifth of
// its time. Taken on the loop, given back on the worker.
class ChunkJobPool {
 public:
  std::shared_ptr<ChunkJob> Take() {
    std::lock_guard lock(mutex_);
    if (free_.empty()) return std::make_shared<ChunkJob>();
    std::shared_ptr<ChunkJob> job = std::move(free_.back());
    free_.pop_back();
    return job;
  }
  // Drops every kept job (on the caller's thread).
  void Clear() {
    std::vector<std::shared_ptr<ChunkJob>> dropped;
    std::lock_guard lock(mutex_);
    dropped.swap(free_);
  }
  // Keeps `job` unless enough are kept already (a window's worth, and the jobs in flight).
  void Give(std::shared_ptr<ChunkJob> job) {
    job->Recycle();
    std::lock_guard lock(mutex_);
    if (free_.size() < kMaxKept) free_.push_back(std::move(job));
  }

 private:
  static constexpr size_t kMaxKept = 8;
  std::mutex mutex_;
  std::vector<std::shared_ptr<ChunkJob>> free_;
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
        expiry_stopped_(executor_, asio::steady_timer::time_point::max()),
        maintenance_timer_(executor_),
        worker_(1) {}

  // The owner goes away without Stop(): cut every tie to the cluster now (it may be destroyed
  // next), and let the expiry loop and any waiting write end on their own.
  void Abandon() {
    stopping_ = true;
    Unsubscribe();
    for (auto& [id, waiter] : std::map(waiters_)) {
      waiter->Finish(
          Unavailable("this node is shutting down before its peers confirmed the "
                      "change: read the session from another node"));
    }
    if (pending_waiter_) pending_waiter_->Finish(Unavailable("this node is shutting down"));
    expiry_timer_.cancel();
    maintenance_timer_.cancel();
    StopWorker();
  }

  Status Start() {
    if (started_) return Status::Ok();
    Status subscribed =
        messages_.Add<Impl>(*cluster_, this,
                            {
                                {PeerEnvelope::kDeltaBatch, &Impl::OnDeltaBatch},
                                {PeerEnvelope::kDeltaAck, &Impl::OnDeltaAck},
                                {PeerEnvelope::kStateTransferRequest, &Impl::OnTransferRequest},
                                {PeerEnvelope::kStateTransferChunk, &Impl::OnTransferChunk},
                                {PeerEnvelope::kStateTransferAck, &Impl::OnTransferAck},
                                {PeerEnvelope::kDigestRequest, &Impl::OnDigestRequest},
                                {PeerEnvelope::kDigest, &Impl::OnDigest},
                            });
    if (!subscribed.ok()) return subscribed;
    member_listener_ = cluster_->AddMemberListener([this](const MemberEvent& e) { OnMember(e); });
    link_listener_ =
        cluster_->AddLinkListener([this](const PeerIdentity& peer, bool up) { OnLink(peer, up); });
    subscribed_ = true;
    started_ = true;
    ready_ = !(delta_.join_cluster && delta_.state_transfer);
    ready_detail_ = delta_.join_cluster ? "joined without a state transfer (disabled)"
                                        : "first node of the cluster";
    join_deadline_ = std::chrono::steady_clock::now() + delta_.join_window;
    next_anti_entropy_ = std::chrono::steady_clock::now() + delta_.anti_entropy_interval;
    expiry_running_ = true;
    asio::co_spawn(executor_, ExpiryLoop(shared_from_this()), asio::detached);
    ScheduleMaintenance();
    spdlog::info("delta manager of node {} started ({} acks{})", options_.node_id,
                 delta_.ack == ReplicationAck::kSync ? "sync" : "async",
                 ready_ ? "" : "; joining: asks a peer for its sessions");
    MaybeStartJoin();
    return Status::Ok();
  }

  asio::awaitable<void> Stop() {
    stopping_ = true;
    Flush();
    Unsubscribe();
    maintenance_timer_.cancel();
    StopWorker();
    for (auto& [id, waiter] : std::map(waiters_)) {
      waiter->Finish(
          Unavailable("this node is stopping before its peers confirmed the change: "
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
    Result<const StoredSession*> created = store_.CreateWithNewId(*options_.ids, request, now);
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
    Result<const StoredSession*> renamed = store_.RenameToNewId(request.id(), *options_.ids, now);
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
    counters_.AddTo(stats);
    auto& c = *stats.mutable_counters();
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
    c["deltas_buffered"] = counters_.deltas_buffered;
    c["state_transfers_started"] = counters_.transfers_started;
    c["state_transfers_completed"] = counters_.transfers_completed;
    c["state_transfers_restarted"] = counters_.transfers_restarted;
    c["state_transfer_sessions_received"] = counters_.transfer_sessions_received;
    c["state_transfer_bytes_received"] = counters_.transfer_bytes_received;
    c["state_transfers_served"] = counters_.transfers_served;
    c["state_transfer_chunks_sent"] = counters_.chunks_sent;
    c["state_transfer_sessions_sent"] = counters_.transfer_sessions_sent;
    c["delta_batches_resent"] = counters_.batches_resent;
    c["resyncs"] = counters_.resyncs;
    c["anti_entropy_rounds"] = counters_.anti_entropy_rounds;
    c["anti_entropy_rounds_in_sync"] = counters_.anti_entropy_in_sync;
    c["anti_entropy_buckets_differing"] = counters_.buckets_differing;
    c["anti_entropy_repairs"] = counters_.repairs;
    return stats;
  }

  Readiness Ready() const {
    if (!started_) return Readiness{false, "not started"};
    if (stopping_) return Readiness{false, "stopping"};
    if (!ready_) return Readiness{false, JoinProgress()};
    return Readiness{true, fmt::format("serving ({}); delta replication to {} live peers",
                                       ready_detail_, cluster_->LivePeers().size())};
  }

  void AppendMetrics(std::string& out) const {
    auto o = std::back_inserter(out);
    const Pull* join = JoinPull();
    auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                      uint64_t value) {
      fmt::format_to(o, "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
    };
    family("sessiond_state_transfer_active", "gauge",
           "1 while this node is taking in its state transfer (not ready yet).",
           started_ && !ready_ ? 1 : 0);
    family("sessiond_state_transfer_sessions_expected", "gauge",
           "Sessions the running state transfer carries (0 when none runs).",
           join ? join->sessions_expected : 0);
    family("sessiond_state_transfer_sessions_received_total", "counter",
           "Sessions received by state transfers.", counters_.transfer_sessions_received);
    family("sessiond_state_transfer_bytes_received_total", "counter",
           "Serialized session bytes (before lz4) received by state transfers.",
           counters_.transfer_bytes_received);
    family("sessiond_state_transfer_restarts_total", "counter",
           "State transfers asked of another peer after their sender failed.",
           counters_.transfers_restarted);
    family("sessiond_delta_batches_resent_total", "counter",
           "Delta batches sent again after a peer's link came back.", counters_.batches_resent);
    family("sessiond_delta_resyncs_total", "counter",
           "Resyncs with a peer (anti-entropy at once) because resending could not close a gap.",
           counters_.resyncs);
    family("sessiond_anti_entropy_rounds_total", "counter",
           "Digest comparisons started with a peer.", counters_.anti_entropy_rounds);
    family("sessiond_anti_entropy_buckets_differing_total", "counter",
           "Digest buckets found to differ from a peer's.", counters_.buckets_differing);
    family("sessiond_anti_entropy_repairs_total", "counter",
           "Sessions created, changed or removed here by anti-entropy.", counters_.repairs);
  }

  size_t ExpireDue() {
    const int64_t now = options_.clock->NowMs();
    std::vector<v1::SessionEvent> events;
    const size_t expired = store_.ExpireDue(now, [&](const StoredSession& s) {
      events.push_back(MakeSessionEvent(v1::SessionEvent::EXPIRED, s.id(), "", s.version(), now,
                                        options_.node_id));
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

  // Compares digests with every live peer (a joining node has nothing to compare yet).
  void RunAntiEntropy() {
    if (!ready_ || stopping_ || !started_) return;
    for (const std::string& peer : cluster_->LivePeers()) SendDigest(peer);
  }

  ContentDigest Digest() const { return DigestOf(store_, options_.clock->NowMs()); }

 private:
  // The counts every mode keeps, and this mode's own.
  struct Counters : SessionCounters {
    uint64_t batches_sent = 0;
    uint64_t batches_received = 0;
    uint64_t deltas_sent = 0;
    uint64_t deltas_applied = 0;
    uint64_t deltas_superseded = 0;
    uint64_t deltas_unknown = 0;
    uint64_t sends_failed = 0;
    uint64_t touches_sent = 0;
    uint64_t sync_unconfirmed = 0;
    uint64_t deltas_buffered = 0;
    uint64_t transfers_started = 0;
    uint64_t transfers_completed = 0;
    uint64_t transfers_restarted = 0;
    uint64_t transfer_sessions_received = 0;
    uint64_t transfer_bytes_received = 0;
    uint64_t transfers_served = 0;
    uint64_t chunks_sent = 0;
    uint64_t transfer_sessions_sent = 0;
    uint64_t batches_resent = 0;
    uint64_t resyncs = 0;
    uint64_t anti_entropy_rounds = 0;
    uint64_t anti_entropy_in_sync = 0;
    uint64_t buckets_differing = 0;
    uint64_t repairs = 0;
  };

  // A transfer this node receives from `peer`: its join (every session) or an anti-entropy
  // repair (some buckets). At most one per peer.
  struct Pull {
    uint64_t transfer_id = 0;
    bool join = false;
    uint64_t chunks_merged = 0;
    uint64_t chunk_count = 0;  // known when the last chunk arrived
    uint64_t sessions_expected = 0;
    uint64_t sessions_received = 0;
    SteadyTime last_progress;
  };

  // A transfer this node sends to a peer. The ids are taken when the request arrives; a session
  // changed or removed later is sent as it is then (or not at all), and its deltas reach the
  // peer anyway, since the peer is live.
  struct Push {
    uint64_t transfer_id = 0;
    std::vector<SessionKey> keys;
    size_t next_key = 0;
    std::vector<std::string> removed;
    size_t next_removed = 0;
    uint64_t built = 0;  // chunks built (the next chunk's index)
    uint64_t acked = 0;  // chunks the peer merged
    bool last_built = false;
    SteadyTime last_progress;
  };

  // The batches sent to one peer's incarnation, by seq, for resending after a broken link.
  struct SentBatches {
    uint64_t incarnation = 0;
    std::deque<std::pair<uint64_t, std::shared_ptr<const PeerEnvelope>>> batches;
    // The highest seq dropped for room before the peer acked it: a gap above the peer's ack up
    // to here cannot be resent.
    uint64_t evicted_through = 0;
  };

  void Unsubscribe() {
    if (!subscribed_) return;
    subscribed_ = false;
    messages_.Clear();
    cluster_->RemoveMemberListener(member_listener_);
    cluster_->RemoveLinkListener(link_listener_);
  }

  // Ends the worker; jobs not started are dropped. Blocks for at most one chunk's work.
  void StopWorker() {
    worker_.stop();
    worker_.join();
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
      // Every write of an event-loop turn joins the same batch, so they share one waiter.
      pending_waiter_ = std::make_shared<AckWaiter>(executor_, delta_.ack_timeout);
    }
    return pending_waiter_;
  }

  // Sends this turn's batch to every live peer.
  void Flush() {
    flush_posted_ = false;
    if (pending_.deltas_size() == 0) return;
    PeerEnvelope envelope;
    DeltaBatch& outgoing = *envelope.mutable_delta_batch();
    outgoing.Swap(&pending_);
    pending_.Clear();
    std::shared_ptr<AckWaiter> waiter = std::move(pending_waiter_);
    pending_waiter_.reset();
    outgoing.set_batch_id(++next_batch_id_);
    outgoing.set_want_ack(waiter != nullptr);
    const std::vector<std::string> peers = cluster_->LivePeers();
    auto shared = std::make_shared<const PeerEnvelope>(std::move(envelope));
    for (const std::string& peer : peers) {
      Result<uint64_t> sent = cluster_->Send(peer, *shared);
      if (sent.ok()) {
        ++counters_.batches_sent;
        counters_.deltas_sent += shared->delta_batch().deltas_size();
        Remember(peer, *sent, shared);
      } else {
        // The peer is alive by the failure detector yet unreachable now: a sync write keeps
        // waiting for it (it may die, or the write answers UNAVAILABLE at its deadline), and
        // the peer misses this batch, so the two resync when they can.
        ++counters_.sends_failed;
        resync_wanted_.insert(peer);
        spdlog::debug("node {}: delta batch {} not sent to {}: {}", options_.node_id,
                      shared->delta_batch().batch_id(), peer, sent.status().ToString());
      }
    }
    const DeltaBatch& batch = shared->delta_batch();
    if (waiter == nullptr || waiter->done()) return;
    for (const std::string& peer : peers) waiter->Expect(peer);
    if (peers.empty()) {
      waiter->Finish(Status::Ok());
      return;
    }
    const uint64_t batch_id = batch.batch_id();
    waiter->OnFinish([this, batch_id] { waiters_.erase(batch_id); });
    waiters_[batch_id] = std::move(waiter);
  }

  // Sync mode: waits until every live peer acked the write's batch, or the deadline.
  asio::awaitable<Status> AwaitAcks(std::shared_ptr<AckWaiter> waiter) {
    if (waiter == nullptr) co_return Status::Ok();
    auto self = shared_from_this();  // the coroutine may outlive the manager's owner
    std::function<Status(const AckWaiter&)> at_deadline = [this](const AckWaiter& w) {
      ++counters_.sync_unconfirmed;
      return Unavailable(fmt::format(
          "the change was applied on node {} but {} did not confirm it within {} ms "
          "(--replication-ack sync): it may or may not have reached them; read the session "
          "again before retrying",
          options_.node_id,
          w.waiting().empty() ? std::string("the peers")
                              : fmt::format("{}", fmt::join(w.waiting(), ", ")),
          delta_.ack_timeout.count()));
    };
    co_return co_await waiter->Wait(std::move(at_deadline));
  }

  void OnDeltaAck(const PeerIdentity& from, const PeerEnvelope& envelope) {
    auto it = waiters_.find(envelope.delta_ack().batch_id());
    if (it == waiters_.end()) return;
    std::shared_ptr<AckWaiter> waiter = it->second;
    waiter->Release(from.node_id);
  }

  void OnMember(const MemberEvent& event) {
    using Kind = MemberEvent::Kind;
    if (event.kind == Kind::kJoined || event.kind == Kind::kRecovered) MaybeStartJoin();
    // A dead or departed peer is not waited for; a restarted one lost the batch with its state
    // and will get the session by state transfer.
    if (event.kind != Kind::kDied && event.kind != Kind::kLeft && event.kind != Kind::kRestarted) {
      return;
    }
    for (auto& [id, waiter] : std::map(waiters_)) waiter->Release(event.member.node_id);
    DropTransfersWith(event.member.node_id, "it is gone");
    // A peer that left resends nothing when it comes back (it takes a state transfer), and a
    // new incarnation starts a new seq stream. A dead one keeps its batches: a healed partition
    // brings it back as it was.
    if (event.kind == Kind::kLeft || event.kind == Kind::kRestarted) {
      sent_.erase(event.member.node_id);
    }
  }

  void OnDeltaBatch(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const DeltaBatch& batch = envelope.delta_batch();
    ++counters_.batches_received;
    // A joining node holds live batches until its snapshot is merged, and acks them now: it is
    // no replica yet (not ready), and the origin and the transfer's sender hold the change.
    if (!ready_ && buffered_deltas_ + batch.deltas_size() <= delta_.max_buffered_deltas) {
      buffered_.emplace_back(from.node_id, batch);
      buffered_deltas_ += batch.deltas_size();
      counters_.deltas_buffered += batch.deltas_size();
    } else {
      for (const SessionDelta& d : batch.deltas()) Apply(from.node_id, d);
    }
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

  // ---- Readiness and the join -------------------------------------------------------------

  const Pull* JoinPull() const {
    if (join_peer_.empty()) return nullptr;
    auto it = pulls_.find(join_peer_);
    return it == pulls_.end() ? nullptr : &it->second;
  }

  std::string JoinProgress() const {
    const Pull* p = JoinPull();
    if (p == nullptr) return "joining: waiting for a ready peer to send its sessions";
    if (p->sessions_expected == 0)
      return fmt::format("state transfer from {} starting", join_peer_);
    return fmt::format("state transfer {}% from {} ({} of {} sessions)",
                       p->sessions_received * 100 / p->sessions_expected, join_peer_,
                       p->sessions_received, p->sessions_expected);
  }

  // Asks a ready peer for every session unless a transfer runs or this node is ready. With no
  // peer to ask past the join window, this node is the first of its cluster (or the last one
  // standing) and serves what it has.
  void MaybeStartJoin() {
    if (ready_ || stopping_ || !started_ || !join_peer_.empty()) return;
    std::optional<std::string> source = PickSource();
    if (source && StartPull(*source, /*join=*/true, {})) return;
    if (std::chrono::steady_clock::now() < join_deadline_) return;
    BecomeReady(counters_.transfers_started == 0
                    ? "no ready peer answered within the join window: first node of the cluster"
                    : "every peer that could send sessions is gone: serving what was received");
  }

  // A linked live peer that did not lately say it is joining too, preferring one that did not
  // just fail a transfer.
  std::optional<std::string> PickSource() const {
    const SteadyTime now = std::chrono::steady_clock::now();
    std::optional<std::string> fallback;
    for (const std::string& peer : cluster_->LivePeers()) {
      auto busy = not_ready_peers_.find(peer);
      if (busy != not_ready_peers_.end() && now - busy->second < kNotReadyRetry) continue;
      std::optional<PeerLinkStatus> link = cluster_->LinkStatus(peer);
      if (!link || !link->linked) continue;
      if (peer != last_failed_source_) return peer;
      fallback = peer;
    }
    return fallback;
  }

  void BecomeReady(std::string detail) {
    if (ready_) return;
    ready_ = true;
    ready_detail_ = std::move(detail);
    // The batches that arrived during the transfer, in their order; stamps make those the
    // snapshot already held harmless.
    std::vector<std::pair<std::string, DeltaBatch>> buffered;
    buffered.swap(buffered_);
    buffered_deltas_ = 0;
    for (const auto& [origin, batch] : buffered) {
      for (const SessionDelta& d : batch.deltas()) Apply(origin, d);
    }
    spdlog::info("node {} is ready: {}; {} sessions, {} buffered batches applied", options_.node_id,
                 ready_detail_, store_.size(), buffered.size());
  }

  // ---- Transfers, receiving side ----------------------------------------------------------

  // Asks `peer` for its sessions (of `buckets`; all when empty). false if it could not be asked.
  bool StartPull(const std::string& peer, bool join, const std::vector<uint32_t>& buckets) {
    PeerEnvelope request;
    auto* r = request.mutable_state_transfer_request();
    r->set_transfer_id(++next_transfer_id_);
    for (uint32_t b : buckets) r->add_buckets(b);
    const uint64_t transfer_id = r->transfer_id();
    Result<uint64_t> sent = cluster_->Send(peer, std::move(request));
    if (!sent.ok()) {
      spdlog::debug("node {}: could not ask {} for sessions: {}", options_.node_id, peer,
                    sent.status().ToString());
      return false;
    }
    Pull& pull = pulls_[peer];
    pull = Pull{};
    pull.transfer_id = transfer_id;
    pull.join = join;
    pull.last_progress = std::chrono::steady_clock::now();
    if (join) {
      join_peer_ = peer;
      ++counters_.transfers_started;
      spdlog::info("node {}: state transfer from {} requested", options_.node_id, peer);
    }
    return true;
  }

  // Abandons the transfers to and from `node` (dead, gone, or its link broke: chunks in flight
  // may be lost). A join asks another peer and keeps what it merged.
  void DropTransfersWith(const std::string& node, std::string_view why) {
    pushes_.erase(node);
    auto it = pulls_.find(node);
    if (it == pulls_.end()) return;
    const bool join = it->second.join;
    pulls_.erase(it);
    if (!join) return;
    join_peer_.clear();
    last_failed_source_ = node;
    join_deadline_ = std::chrono::steady_clock::now() + delta_.join_window;
    ++counters_.transfers_restarted;
    spdlog::warn("node {}: state transfer from {} interrupted ({}); asking another peer",
                 options_.node_id, node, why);
    MaybeStartJoin();
  }

  void OnTransferChunk(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const StateTransferChunk& chunk = envelope.state_transfer_chunk();
    auto it = pulls_.find(from.node_id);
    if (it == pulls_.end() || it->second.transfer_id != chunk.transfer_id()) return;
    Pull& pull = it->second;
    pull.last_progress = std::chrono::steady_clock::now();
    if (chunk.not_ready()) {
      not_ready_peers_[from.node_id] = pull.last_progress;
      const bool join = pull.join;
      pulls_.erase(it);
      if (join) {
        join_peer_.clear();
        MaybeStartJoin();
      }
      return;
    }
    if (pull.join && pull.sessions_expected == 0) {
      stamps_.Reserve(stamps_.session_count() + chunk.total_sessions());
      store_.Reserve(
          std::min<size_t>(store_.size() + chunk.total_sessions(), store_.limits().max_sessions));
    }
    pull.sessions_expected = chunk.total_sessions();
    lamport_ = std::max(lamport_, chunk.clock());
    std::shared_ptr<ChunkJob> job = jobs_->Take();
    *job->envelope.mutable_state_transfer_chunk() = chunk;
    // A join inserts nearly every session it receives; a repair mostly merges into held ones.
    job->build_blocks = pull.join;
    OnWorker(
        job,
        [](ChunkJob& j) {
          j.status =
              DecodeSessionChunk(j.envelope.state_transfer_chunk(), kMaxChunkRawBytes, &j.decoded);
          if (j.status.ok() && j.build_blocks) BuildBlocks(&j.decoded);
        },
        [peer = from.node_id](Impl& self, ChunkJob& j) { self.MergeChunk(peer, j); });
  }

  // Runs work(job) on the worker, then done(*this, job) back on the loop, unless the manager
  // stopped meanwhile.
  void OnWorker(std::shared_ptr<ChunkJob> job, void (*work)(ChunkJob&),
                std::function<void(Impl&, ChunkJob&)> done) {
    if (stopping_) return;
    asio::post(worker_, [weak = weak_from_this(), executor = executor_, job = std::move(job), work,
                         done = std::move(done)]() mutable {
      work(*job);
      asio::post(executor, [weak, job = std::move(job), done = std::move(done)]() mutable {
        std::shared_ptr<Impl> self = weak.lock();
        if (!self || self->stopping_) return;
        done(*self, *job);
        if (!self->stopping_) {
          asio::post(self->worker_,
                     [job = std::move(job), jobs = self->jobs_]() mutable { jobs->Give(job); });
        }
      });
    });
  }

  void MergeChunk(const std::string& peer, ChunkJob& job) {
    const StateTransferChunk& chunk = job.envelope.state_transfer_chunk();
    auto it = pulls_.find(peer);
    const bool current = it != pulls_.end() && it->second.transfer_id == chunk.transfer_id();
    if (!job.status.ok()) {
      spdlog::warn("node {}: dropped a state-transfer chunk from {}: {}", options_.node_id, peer,
                   job.status.ToString());
      if (current) DropTransfersWith(peer, "it sent a chunk that did not decode");
      return;
    }
    const bool join = current && it->second.join;
    // A chunk of an abandoned transfer is merged all the same: merges are idempotent.
    const size_t changed = MergeList(job.decoded, peer, now_ms());
    if (!join) counters_.repairs += changed;
    if (!current) return;
    Pull& pull = it->second;
    pull.sessions_received += job.decoded.sessions.size();
    pull.last_progress = std::chrono::steady_clock::now();
    ++pull.chunks_merged;
    if (join) {
      counters_.transfer_sessions_received += job.decoded.sessions.size();
      counters_.transfer_bytes_received += chunk.raw_size();
    }
    if (chunk.last()) pull.chunk_count = chunk.index() + 1;
    PeerEnvelope ack;
    ack.mutable_state_transfer_ack()->set_transfer_id(chunk.transfer_id());
    ack.mutable_state_transfer_ack()->set_index(chunk.index());
    Result<uint64_t> sent = cluster_->Send(peer, std::move(ack));
    if (!sent.ok()) {
      // The link is down or full: the sender stalls, and the link listener or the stall check
      // restarts the transfer.
      spdlog::debug("node {}: ack of chunk {} not sent to {}: {}", options_.node_id, chunk.index(),
                    peer, sent.status().ToString());
    }
    if (pull.chunk_count == 0 || pull.chunks_merged < pull.chunk_count) return;
    const uint64_t received = pull.sessions_received;
    pulls_.erase(it);
    if (!join) return;
    join_peer_.clear();
    ++counters_.transfers_completed;
    BecomeReady(fmt::format("state transfer of {} sessions from {} done", received, peer));
  }

  // Merges every session and removal of `list` (sent by `peer`); returns how many changed
  // something here.
  size_t MergeList(DecodedChunk& list, const std::string& peer, int64_t now) {
    size_t changed = 0;
    for (std::string_view id : list.removed_ids) {
      if (MergeRemoval(std::string(id), peer, now)) ++changed;
    }
    // The slots each insert touches lie all over two large tables: fetch them a few sessions
    // ahead, as the sender does. So are the bytes of the chunk the loop reads (the id, which the
    // stamps' digest hashes, and the stamps' names, which Adopt compares): the worker wrote
    // them, on another core.
    constexpr size_t kAhead = 4;
    auto prefetch = [&](size_t i) {
      const DecodedSession& s = list.sessions[i];
      if (const std::optional<SessionKey>& key = s.session.key) {
        store_.PrefetchSlot(*key);
        stamps_.Prefetch(*key);
      }
      __builtin_prefetch(s.session.id.data());
      if (!s.stamps.empty()) {
        const char* first = s.stamps.front().name.data();
        const char* last = s.stamps.back().name.data();
        // A session's stamps lie together, after its attributes (a few hundred bytes).
        if (first != nullptr && last != nullptr && first < last && last - first < 1024) {
          for (const char* p = first; p < last; p += 64) __builtin_prefetch(p);
        }
        if (last != nullptr) __builtin_prefetch(last);
      }
    };
    for (size_t i = 0; i < std::min(kAhead, list.sessions.size()); ++i) prefetch(i);
    for (size_t i = 0; i < list.sessions.size(); ++i) {
      if (i + kAhead < list.sessions.size()) prefetch(i + kAhead);
      AttributeBlock* block = i < list.blocks.size() ? &list.blocks[i] : nullptr;
      if (MergeSession(list.sessions[i], block, peer, now)) ++changed;
    }
    return changed;
  }

  // `peer` removed session `id` lately: removal wins over any state of the session.
  bool MergeRemoval(const std::string& id, const std::string& peer, int64_t now) {
    if (stamps_.WasRemoved(id)) return false;
    stamps_.Remove(id);
    Result<uint64_t> version = store_.Erase(id, now);
    if (!version.ok()) return false;
    Publish(v1::SessionEvent::INVALIDATED, id, "", *version, now, peer);
    return true;
  }

  // Merges a session as `peer` holds it: adopted whole when this node does not hold it, else
  // field by field where the peer's stamp is newer. Returns whether anything changed. `block`:
  // the session's attributes built ahead, or null.
  bool MergeSession(const DecodedSession& stamped, AttributeBlock* block, const std::string& peer,
                    int64_t now) {
    const SessionImage& session = stamped.session;
    const std::string_view id = session.id;
    if (stamps_.WasRemoved(id)) return false;
    for (const StampRecord& f : stamped.stamps) lamport_ = std::max(lamport_, f.clock);
    // Mostly new here (a join takes in every session): insert first, merge only if held.
    Result<const StoredSession*> restored =
        block != nullptr ? store_.Restore(session, std::move(*block)) : store_.Restore(session);
    if (restored.ok()) {
      stamps_.Adopt(id, stamped.stamps, now, session.key);
      if (hub_.watch_count() > 0) {
        Publish(v1::SessionEvent::CREATED, std::string(id), "", session.version, now, peer);
      }
      return true;
    }
    const StoredSession* held = store_.Find(id, now);
    if (restored.status().code() != v1::CONFLICT || held == nullptr) {
      // Past its deadline here (the reaper takes it), or over this node's limits.
      spdlog::debug("node {}: could not take session {} from {}: {}", options_.node_id, LogTag(id),
                    peer, restored.status().ToString());
      return false;
    }
    const int64_t last_access = session.last_access_ms;
    if (last_access > held->last_access_ms()) (void)store_.Touch(id, last_access);
    v1::UpdateRequest request;
    request.set_id(std::string(id));
    std::vector<const StampRecord*> won;
    for (const StampRecord& f : stamped.stamps) {
      const Stamp theirs{f.clock, f.node};
      if (!StampAfter(theirs, stamps_.Get(id, f.field, f.name))) continue;
      if (f.field == StampedField::kPrincipal) {
        request.set_principal(std::string(session.principal));
      } else if (f.field == StampedField::kMaxIdle) {
        request.set_max_idle_s(session.max_idle_s);
      } else if (f.removed) {
        request.add_remove(std::string(f.name));
      } else {
        auto value =
            std::find_if(session.attributes.begin(), session.attributes.end(),
                         [&](const AttributeBlock::Attribute& a) { return a.name == f.name; });
        if (value == session.attributes.end()) continue;  // a stamp without its value
        (*request.mutable_set())[std::string(f.name)] = std::string(value->value);
      }
      won.push_back(&f);
    }
    if (won.empty()) return false;
    // Removing an attribute this node does not hold is no change to the store, only a stamp.
    const StoredSession* current = store_.Find(id, now);
    auto* removes = request.mutable_remove();
    removes->erase(std::remove_if(removes->begin(), removes->end(),
                                  [&](const std::string& name) {
                                    return !current->attributes().Find(name).has_value();
                                  }),
                   removes->end());
    if (!request.set().empty() || !request.remove().empty() || request.has_principal() ||
        request.has_max_idle_s()) {
      Result<SessionStore::UpdateResult> updated = store_.Update(request, now);
      if (!updated.ok()) {
        spdlog::warn("node {}: could not merge session {} from {}: {}", options_.node_id,
                     LogTag(id), peer, updated.status().ToString());
        return false;
      }
      if (updated->changed) {
        Publish(v1::SessionEvent::CHANGED, std::string(id), "", updated->session->version(), now,
                peer);
      }
    }
    for (const StampRecord* f : won)
      stamps_.Set(id, f->field, f->name, f->clock, f->node, f->removed);
    return true;
  }

  // ---- Transfers, sending side ------------------------------------------------------------

  void OnTransferRequest(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const auto& request = envelope.state_transfer_request();
    if (!ready_) {
      // Joining too: what this node holds may be partial. The requester asks someone else.
      PeerEnvelope refusal;
      auto* chunk = refusal.mutable_state_transfer_chunk();
      chunk->set_transfer_id(request.transfer_id());
      chunk->set_last(true);
      chunk->set_not_ready(true);
      (void)cluster_->Send(from.node_id, std::move(refusal));
      return;
    }
    std::vector<bool> wanted;
    if (request.buckets_size() > 0) {
      wanted.assign(StampTable::kBuckets, false);
      for (uint32_t b : request.buckets()) {
        if (b < StampTable::kBuckets) wanted[b] = true;
      }
    }
    auto in_wanted = [&](std::string_view id) {
      return wanted.empty() || wanted[StampTable::Bucket(id)];
    };
    Push push;
    push.transfer_id = request.transfer_id();
    push.last_progress = std::chrono::steady_clock::now();
    push.keys.reserve(wanted.empty() ? store_.size() : 0);
    store_.ForEach(now_ms(), [&](const StoredSession& s) {
      if (wanted.empty() || in_wanted(s.id())) push.keys.push_back(s.key());
    });
    // Sent in the store's slot order: the receiver's table scrambles hashes with a seed of its
    // own (see SessionTable), so this order does not pile its inserts into one probe run.
    stamps_.ForEachRemoved([&](const std::string& id) {
      if (in_wanted(id)) push.removed.push_back(id);
    });
    ++counters_.transfers_served;
    spdlog::log(wanted.empty() ? spdlog::level::info : spdlog::level::debug,
                "node {}: sending {} sessions and {} removals to {}", options_.node_id,
                push.keys.size(), push.removed.size(), from.node_id);
    pushes_[from.node_id] = std::move(push);
    Pump(from.node_id);
  }

  void OnTransferAck(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const auto& ack = envelope.state_transfer_ack();
    auto it = pushes_.find(from.node_id);
    if (it == pushes_.end() || it->second.transfer_id != ack.transfer_id()) return;
    Push& push = it->second;
    push.acked = std::max(push.acked, ack.index() + 1);
    push.last_progress = std::chrono::steady_clock::now();
    if (push.last_built && push.acked >= push.built) {
      pushes_.erase(it);
      return;
    }
    Pump(from.node_id);
  }

  // Builds chunks for `peer` while its window has room; the worker encodes them.
  void Pump(const std::string& peer) {
    auto it = pushes_.find(peer);
    if (it == pushes_.end()) return;
    Push& push = it->second;
    const uint32_t window = std::max<uint32_t>(1, delta_.transfer_window);
    while (!push.last_built && push.built - push.acked < window) {
      std::shared_ptr<ChunkJob> job = jobs_->Take();
      BuildChunk(push, *job);
      OnWorker(
          job,
          [](ChunkJob& j) {
            j.status = CompressSessionChunk(j.raw, j.envelope.mutable_state_transfer_chunk(),
                                            kSessionChunkLz4Acceleration, &j.compressed);
          },
          [peer](Impl& self, ChunkJob& j) { self.SendChunk(peer, j); });
    }
  }

  // Serializes the next sessions (then removals) of `push`, up to a chunk's bytes, into job.raw.
  void BuildChunk(Push& push, ChunkJob& job) {
    const int64_t now = now_ms();
    // The last session may go past the chunk's size; the rest is headroom against regrowth.
    StampedSessionWriter writer(delta_.transfer_chunk_bytes + (64u << 10), std::move(job.raw));
    // The sessions, their attributes and stamps lie all over memory: fetch them some keys
    // ahead, in steps (a pointer must be at hand before what it points to can be fetched), so
    // that the loop does not wait for memory on each: the tables' slots 12 keys ahead, the
    // session and its stamps 8 ahead, the block's first bytes 4 ahead and the rest of it 2.
    // (With two steps, slots and session 8 ahead, block 4, the loop still spent a fifth of its
    // time waiting for the table's slots, and a quarter reading blocks.)
    constexpr size_t kSlotAhead = 12, kSessionAhead = 8, kBlockAhead = 4, kRestAhead = 2;
    const size_t keys = push.keys.size();
    const size_t first = push.next_key;
    // What the steps below would have fetched for the first keys of this chunk.
    for (size_t i = first; i < std::min(keys, first + kSlotAhead); ++i) {
      store_.PrefetchSlot(push.keys[i]);
      stamps_.Prefetch(push.keys[i]);
    }
    auto ahead = [&](size_t distance) -> const SessionKey* {
      const size_t i = push.next_key + distance;
      return i < keys ? &push.keys[i] : nullptr;
    };
    while (push.next_key < keys && writer.bytes() < delta_.transfer_chunk_bytes) {
      if (const SessionKey* k = ahead(kSlotAhead)) {
        store_.PrefetchSlot(*k);
        stamps_.Prefetch(*k);
      }
      if (const SessionKey* k = ahead(kSessionAhead)) {
        store_.Prefetch(*k);
        stamps_.PrefetchStamps(*k);
      }
      if (const SessionKey* k = ahead(kBlockAhead)) {
        if (const StoredSession* s = store_.Find(*k, now)) SessionStore::PrefetchAttributes(*s);
      }
      if (const SessionKey* k = ahead(kRestAhead)) {
        if (const StoredSession* s = store_.Find(*k, now)) {
          SessionStore::PrefetchMoreAttributes(*s);
        }
      }
      const SessionKey& key = push.keys[push.next_key++];
      const StoredSession* s = store_.Find(key, now);
      if (s == nullptr) continue;  // removed or expired since the request: its delta went out
      char id[kSessionIdTextBytes];
      key.ToText(id);
      writer.AddSession(*s, std::string_view(id, sizeof id), stamps_);
    }
    while (push.next_key >= push.keys.size() && push.next_removed < push.removed.size() &&
           writer.bytes() < delta_.transfer_chunk_bytes) {
      writer.AddRemovedId(push.removed[push.next_removed++]);
    }
    push.last_built = push.next_key >= push.keys.size() && push.next_removed >= push.removed.size();
    StateTransferChunk& chunk = *job.envelope.mutable_state_transfer_chunk();
    chunk.set_transfer_id(push.transfer_id);
    chunk.set_index(push.built++);
    chunk.set_last(push.last_built);
    chunk.set_total_sessions(push.keys.size());
    chunk.set_clock(lamport_);
    chunk.set_sessions(writer.sessions());
    job.raw = std::move(writer).Finish();
  }

  void SendChunk(const std::string& peer, ChunkJob& job) {
    auto it = pushes_.find(peer);
    const StateTransferChunk& chunk = job.envelope.state_transfer_chunk();
    if (it == pushes_.end() || it->second.transfer_id != chunk.transfer_id()) return;
    if (!job.status.ok()) {
      spdlog::error("node {}: state transfer to {} failed: {}", options_.node_id, peer,
                    job.status.ToString());
      pushes_.erase(it);
      return;
    }
    const uint32_t sessions = chunk.sessions();
    Result<uint64_t> sent = cluster_->Send(peer, std::move(job.envelope));
    if (!sent.ok()) {
      // The receiver notices (its link listener or its stall check) and asks again.
      spdlog::info("node {}: state transfer to {} abandoned: {}", options_.node_id, peer,
                   sent.status().ToString());
      pushes_.erase(it);
      return;
    }
    ++counters_.chunks_sent;
    counters_.transfer_sessions_sent += sessions;
  }

  // ---- Healing ----------------------------------------------------------------------------

  // Keeps a batch sent to `peer` as `seq` for resending, dropping those the peer acked.
  void Remember(const std::string& peer, uint64_t seq, std::shared_ptr<const PeerEnvelope> batch) {
    SentBatches& sent = sent_[peer];
    std::optional<PeerLinkStatus> link = cluster_->LinkStatus(peer);
    if (link) {
      if (link->identity.incarnation != sent.incarnation) {
        sent = SentBatches{};
        sent.incarnation = link->identity.incarnation;
      }
      while (!sent.batches.empty() && sent.batches.front().first <= link->acked_seq) {
        sent.batches.pop_front();
      }
    }
    sent.batches.emplace_back(seq, std::move(batch));
    while (sent.batches.size() > std::max<size_t>(1, delta_.resend_buffer_batches)) {
      sent.evicted_through = sent.batches.front().first;
      sent.batches.pop_front();
    }
  }

  void OnLink(const PeerIdentity& peer, bool up) {
    if (stopping_) return;
    if (!up) {
      DropTransfersWith(peer.node_id, "its link broke");
      return;
    }
    Resend(peer);
    if (resync_wanted_.erase(peer.node_id) > 0) Resync(peer.node_id);
    MaybeStartJoin();
  }

  // The link to `peer` is back: sends again every kept batch it may not have received.
  void Resend(const PeerIdentity& peer) {
    auto it = sent_.find(peer.node_id);
    if (it == sent_.end()) return;
    SentBatches& sent = it->second;
    if (sent.incarnation != peer.incarnation) {
      sent_.erase(it);  // a new incarnation: it takes a state transfer instead
      return;
    }
    std::optional<PeerLinkStatus> link = cluster_->LinkStatus(peer.node_id);
    const uint64_t acked = link ? link->acked_seq : 0;
    // Batches evicted before the peer acked them are lost for good: only a resync helps.
    bool gap = sent.evicted_through > acked;
    bool link_full = false;
    std::deque<std::pair<uint64_t, std::shared_ptr<const PeerEnvelope>>> kept;
    kept.swap(sent.batches);
    for (auto& [seq, batch] : kept) {
      if (seq <= acked || link_full) continue;
      Result<uint64_t> resent = cluster_->Send(peer.node_id, *batch);
      if (!resent.ok()) {
        link_full = true;
        continue;
      }
      ++counters_.batches_resent;
      sent.batches.emplace_back(*resent, std::move(batch));
    }
    if (gap || link_full) resync_wanted_.insert(peer.node_id);
  }

  // The peer may have missed batches that cannot be resent: compare digests with it now.
  void Resync(const std::string& peer) {
    ++counters_.resyncs;
    spdlog::info("node {}: resync with {}: it may have missed delta batches", options_.node_id,
                 peer);
    SendDigest(peer);
  }

  // ---- Anti-entropy -----------------------------------------------------------------------

  void SendDigest(const std::string& peer) {
    if (!ready_) return;  // a joining node's digest means nothing yet
    PeerEnvelope envelope;
    auto* request = envelope.mutable_digest_request();
    request->set_round(++digest_round_);
    for (uint64_t h : stamps_.bucket_hashes()) request->add_buckets(h);
    Result<uint64_t> sent = cluster_->Send(peer, std::move(envelope));
    if (sent.ok()) ++counters_.anti_entropy_rounds;
  }

  void OnDigestRequest(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const auto& request = envelope.digest_request();
    if (!ready_ || request.buckets_size() != static_cast<int>(StampTable::kBuckets)) return;
    PeerEnvelope reply;
    auto* digest = reply.mutable_digest();
    digest->set_round(request.round());
    const StampTable::BucketHashes& mine = stamps_.bucket_hashes();
    std::vector<uint32_t> differing;
    for (uint32_t b = 0; b < StampTable::kBuckets; ++b) {
      if (request.buckets(static_cast<int>(b)) != mine[b]) differing.push_back(b);
    }
    for (uint32_t b : differing) digest->add_differing_buckets(b);
    (void)cluster_->Send(from.node_id, std::move(reply));
    PullBuckets(from.node_id, differing);
  }

  void OnDigest(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const auto& digest = envelope.digest();
    if (!ready_) return;
    if (digest.differing_buckets().empty()) ++counters_.anti_entropy_in_sync;
    PullBuckets(from.node_id,
                {digest.differing_buckets().begin(), digest.differing_buckets().end()});
  }

  // Pulls the peer's sessions of the buckets where the two differ, unless a pull from it runs
  // (the next round finds what that one leaves).
  void PullBuckets(const std::string& peer, const std::vector<uint32_t>& buckets) {
    if (buckets.empty() || pulls_.contains(peer)) return;
    counters_.buckets_differing += buckets.size();
    spdlog::debug("node {}: {} digest buckets differ from {}", options_.node_id, buckets.size(),
                  peer);
    (void)StartPull(peer, /*join=*/false, buckets);
  }

  // ---- Maintenance ------------------------------------------------------------------------

  void ScheduleMaintenance() {
    maintenance_timer_.expires_after(kMaintenanceInterval);
    maintenance_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      std::shared_ptr<Impl> self = weak.lock();
      if (ec || !self || self->stopping_) return;
      self->Maintain();
      self->ScheduleMaintenance();
    });
  }

  void Maintain() {
    const SteadyTime now = std::chrono::steady_clock::now();
    MaybeStartJoin();
    std::vector<std::string> stalled;
    for (const auto& [peer, pull] : pulls_) {
      if (now - pull.last_progress > delta_.transfer_stall_timeout) stalled.push_back(peer);
    }
    for (const std::string& peer : stalled) DropTransfersWith(peer, "nothing arrived in time");
    // A receiver that stopped acknowledging asks again if it still wants the sessions.
    std::erase_if(pushes_, [&](const auto& entry) {
      return now - entry.second.last_progress > delta_.transfer_stall_timeout;
    });
    if (ready_) {
      for (const std::string& peer : std::set(resync_wanted_)) {
        std::optional<PeerLinkStatus> link = cluster_->LinkStatus(peer);
        if (!link || !link->linked) continue;
        resync_wanted_.erase(peer);
        Resync(peer);
      }
    }
    if (delta_.anti_entropy_interval.count() > 0 && now >= next_anti_entropy_) {
      next_anti_entropy_ = now + delta_.anti_entropy_interval;
      RunAntiEntropy();
    }
    // The kept chunk buffers (some MB) serve a transfer; none runs, so give them back.
    if (pulls_.empty() && pushes_.empty()) jobs_->Clear();
  }

  int64_t now_ms() const { return options_.clock->NowMs(); }

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

  void Publish(v1::SessionEvent::Kind kind, std::string id, std::string new_id, uint64_t version,
               int64_t now, const std::string& origin) {
    hub_.Publish(MakeSessionEvent(kind, std::move(id), std::move(new_id), version, now, origin));
  }

  // Holds `self` so that the manager's owner may drop it before the loop has seen stopping_.
  asio::awaitable<void> ExpiryLoop(std::shared_ptr<Impl> self) {
    (void)self;
    while (!stopping_) {
      ExpireDue();
      expiry_timer_.expires_after(store_.ExpiryWait(options_.clock->NowMs(), kMaxExpiryWait));
      boost::system::error_code ec;
      co_await expiry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    expiry_running_ = false;
    expiry_stopped_.cancel();
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
  MessageSubscriptions messages_;
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

  uint64_t link_listener_ = 0;
  asio::steady_timer maintenance_timer_;
  // Encodes and decodes transfer chunks off the loop.
  asio::thread_pool worker_;
  const std::shared_ptr<ChunkJobPool> jobs_ = std::make_shared<ChunkJobPool>();

  // Readiness: false while a joining node waits for, or takes in, its state transfer.
  bool ready_ = false;
  std::string ready_detail_;
  SteadyTime join_deadline_;
  std::string join_peer_;  // the peer the join's transfer comes from; "" when none runs
  std::string last_failed_source_;
  std::map<std::string, SteadyTime, std::less<>> not_ready_peers_;
  // Live batches held during the join, with their origin.
  std::vector<std::pair<std::string, DeltaBatch>> buffered_;
  size_t buffered_deltas_ = 0;
  uint64_t next_transfer_id_ = 0;
  std::map<std::string, Pull, std::less<>> pulls_;
  std::map<std::string, Push, std::less<>> pushes_;

  // Healing.
  std::map<std::string, SentBatches, std::less<>> sent_;
  std::set<std::string, std::less<>> resync_wanted_;
  uint64_t digest_round_ = 0;
  SteadyTime next_anti_entropy_;
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

std::optional<ContentDigest> DeltaManager::Digest() const { return impl_->Digest(); }

void DeltaManager::AppendMetrics(std::string& out) const { impl_->AppendMetrics(out); }

void DeltaManager::RunAntiEntropy() { impl_->RunAntiEntropy(); }

}  // namespace sessiond
