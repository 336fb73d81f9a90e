#include "replication/backup/backup_manager.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "replication/ack_waiter.h"
#include "replication/backup/flat_key_map.h"
#include "replication/backup/placement.h"
#include "replication/backup/placement_table.h"
#include "replication/cluster/message_subscriptions.h"
#include "replication/content_digest.h"
#include "replication/event_hub.h"
#include "replication/session_counters.h"
#include "replication/session_id.h"
#include "replication/session_key.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

using peer::v1::BackupAck;
using peer::v1::BackupChange;
using peer::v1::BackupCopy;
using peer::v1::BackupForward;
using peer::v1::BackupPlacement;
using peer::v1::BackupProxyUpdate;
using peer::v1::BackupPut;
using peer::v1::BackupReply;
using peer::v1::BackupRequest;
using peer::v1::PeerEnvelope;

// The reaper wakes at the earliest deadline but at least this often.
constexpr std::chrono::milliseconds kMaxExpiryWait{1000};
// A fetch or forward that found no reachable holder, or a holder that has not yet seen the
// failure this node saw, tries again after this long, until its deadline.
constexpr std::chrono::milliseconds kRetryWait{20};
// Sessions refilled per loop turn after a failure or a join.
constexpr size_t kRefillChunk = 2048;
// How many times one operation follows "not primary, ask X" before giving up.
constexpr int kMaxRedirects = 16;
// Sessions a node asks one other primary of them about at once after a partition healed.
constexpr size_t kYieldWindow = 64;

bool Contains(const std::vector<std::string>& list, std::string_view node) {
  return std::find(list.begin(), list.end(), node) != list.end();
}

void SetNodes(google::protobuf::RepeatedPtrField<std::string>* field,
              const std::vector<std::string>& nodes) {
  field->Clear();
  for (const std::string& node : nodes) field->Add()->assign(node);
}

// Orders session keys, for sets of them.
struct KeyLess {
  bool operator()(const SessionKey& a, const SessionKey& b) const { return a.bytes() < b.bytes(); }
};

// A vector of one copy, moved in (a braced list would copy the session).
std::vector<BackupCopy> OneCopy(BackupCopy copy) {
  std::vector<BackupCopy> copies;
  copies.push_back(std::move(copy));
  return copies;
}

std::vector<std::string> ToVector(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return std::vector<std::string>(field.begin(), field.end());
}

std::vector<std::string> Without(std::vector<std::string> list, std::string_view node) {
  list.erase(std::remove(list.begin(), list.end(), node), list.end());
  return list;
}

// The session a relayed answer carries, taken out of `response` (not copied).
Result<v1::Session> SessionFromResponse(v1::ClientResponse& response) {
  if (response.status() != v1::OK) return Status(response.status(), response.error());
  v1::Session session;
  session.Swap(response.mutable_session());
  return session;
}

// The id a forwarded client operation is about.
std::string IdOf(const v1::ClientRequest& request) {
  switch (request.op_case()) {
    case v1::ClientRequest::kGet:
      return request.get().id();
    case v1::ClientRequest::kUpdate:
      return request.update().id();
    case v1::ClientRequest::kInvalidate:
      return request.invalidate().id();
    case v1::ClientRequest::kRotateId:
      return request.rotate_id().id();
    default:
      return "";
  }
}

}  // namespace

class BackupManager::Impl : public std::enable_shared_from_this<BackupManager::Impl> {
 public:
  Impl(asio::any_io_executor executor, ManagerOptions options, Cluster* cluster,
       BackupOptions backup)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        backup_(backup),
        cluster_(cluster),
        self_(options_.node_id),
        store_(options_.limits),
        self_index_(table_.Intern(self_)),
        expiry_timer_(executor_),
        expiry_stopped_(executor_, asio::steady_timer::time_point::max()) {}

  // The owner goes away without Stop(): cut every tie to the cluster now, and let waiting
  // operations end on their own.
  void Abandon() {
    stopping_ = true;
    Unsubscribe();
    FailAllWaits("this node is shutting down");
    expiry_timer_.cancel();
  }

  Status Start() {
    if (started_) return Status::Ok();
    if (cluster_->self().node_id != self_) {
      return InvalidArgument(fmt::format(
          "the backup manager's node id {} differs from its cluster's {}: build both from the "
          "same --node-id",
          self_, cluster_->self().node_id));
    }
    Status subscribed =
        messages_.Add<Impl>(*cluster_, this,
                            {
                                {PeerEnvelope::kBackupPut, &Impl::OnPut},
                                {PeerEnvelope::kBackupChange, &Impl::OnChange},
                                {PeerEnvelope::kBackupChangeBatch, &Impl::OnChangeBatch},
                                {PeerEnvelope::kBackupAck, &Impl::OnAck},
                                {PeerEnvelope::kBackupProxyUpdate, &Impl::OnProxyUpdate},
                                {PeerEnvelope::kBackupRequest, &Impl::OnRequest},
                                {PeerEnvelope::kBackupReply, &Impl::OnReply},
                                {PeerEnvelope::kBackupWatchInterest, &Impl::OnWatchInterest},
                                {PeerEnvelope::kBackupWatchEvent, &Impl::OnWatchEvent},
                            });
    if (!subscribed.ok()) return subscribed;
    member_listener_ = cluster_->AddMemberListener([this](const MemberEvent& e) { OnMember(e); });
    subscribed_ = true;
    started_ = true;
    expiry_running_ = true;
    // Peers met before this manager started get our (empty) snapshot too.
    // Their snapshots, sent when they met this node, found no subscriber: ask again.
    for (const std::string& peer : cluster_->LivePeers()) SendSnapshot(peer, /*send_yours=*/true);
    asio::co_spawn(executor_, ExpiryLoop(shared_from_this()), asio::detached);
    spdlog::info("backup manager of node {} started ({} acks, {} backups, move on access {})",
                 self_, ReplicationAckName(backup_.ack), backup_.backups, backup_.move_on_access);
    return Status::Ok();
  }

  asio::awaitable<void> Stop() {
    auto self = shared_from_this();
    if (started_ && !stopping_) co_await Handoff();
    stopping_ = true;
    FlushProxies();
    Unsubscribe();
    FailAllWaits(
        "this node is stopping before its backups confirmed the change: read the session from "
        "another node to see whether it arrived");
    expiry_timer_.cancel();
    if (expiry_running_) {
      boost::system::error_code ec;
      co_await expiry_stopped_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // ---- The client operations ----

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) {
    auto self = shared_from_this();
    const int64_t now = options_.clock->NowMs();
    Result<const StoredSession*> created = store_.CreateWithNewId(*options_.ids, request, now);
    if (!created.ok()) co_return created.status();
    v1::Session session = (*created)->ToProto();
    const SessionKey key = (*created)->key();
    ++counters_.created;

    const std::vector<std::string> live = LiveMembers();
    std::vector<std::string> nodes{self_};
    for (std::string& b : PickByRendezvous(key, live, {self_}, TargetBackups(live))) {
      nodes.push_back(std::move(b));
    }
    table_.Set(key, nodes);
    primary_state_[key].touch_sent = now;
    std::shared_ptr<AckWaiter> waiter = NewWaiter();
    for (size_t i = 1; i < nodes.size(); ++i) {
      // The create counts as a replicated access (touch_sent): the copies run a window ahead.
      SendPut(nodes[i], OneCopy(CopyForBackup(**created, nodes)), waiter, /*fills=*/{});
    }
    // Sync: every proxy knows the session before the client does, so it can be read on any
    // node as soon as the create is answered.
    BroadcastPlacement(session.id(), nodes, /*removed=*/false, waiter, nodes);
    Publish(v1::SessionEvent::CREATED, session.id(), "", session.version(), now);
    Status acked = co_await AwaitAcks(waiter);
    if (!acked.ok()) co_return acked;
    co_return session;
  }

  asio::awaitable<Result<v1::Session>> Get(v1::GetRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    if (IsPrimary(*key)) {
      // The common case, without the routing coroutine: runs here.
      EndRun(*key);
      co_return LocalGet(*key, request);
    }
    Result<std::optional<v1::Session>> routed =
        co_await RouteUnlessPrimary(*key, request, &v1::ClientRequest::mutable_get);
    if (!routed.ok()) co_return routed.status();
    if (routed->has_value()) co_return std::move(**routed);
    co_return LocalGet(*key, request);
  }

  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    if (IsPrimary(*key)) {
      EndRun(*key);
      Result<AppliedUpdate> applied = ApplyUpdate(*key, std::move(request));
      if (!applied.ok()) co_return applied.status();
      Status acked = co_await AwaitAcks(applied->waiter);
      if (!acked.ok()) co_return acked;
      co_return std::move(applied->session);
    }
    Result<std::optional<v1::Session>> routed =
        co_await RouteUnlessPrimary(*key, request, &v1::ClientRequest::mutable_update);
    if (!routed.ok()) co_return routed.status();
    if (routed->has_value()) co_return std::move(**routed);
    co_return co_await LocalUpdate(std::move(request));
  }

  // Invalidation is forwarded to the primary even with move_on_access: moving a session only to
  // remove it would copy it twice for nothing.
  asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    if (!IsPrimary(*key)) {
      v1::ClientRequest forwarded;
      *forwarded.mutable_invalidate() = request;
      Result<v1::ClientResponse> answer = co_await Forward(*key, std::move(forwarded));
      if (!answer.ok()) co_return answer.status();
      if (answer->status() != v1::OK) co_return Status(answer->status(), answer->error());
      if (answer->request_id() != kLocalMarker) co_return Status::Ok();
    }
    EndRun(*key);
    co_return co_await LocalInvalidate(std::move(request));
  }

  asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    Result<std::optional<v1::Session>> routed =
        co_await RouteUnlessPrimary(*key, request, &v1::ClientRequest::mutable_rotate_id);
    if (!routed.ok()) co_return routed.status();
    if (routed->has_value()) co_return std::move(**routed);
    co_return co_await LocalRotateId(std::move(request));
  }

  // Scatter-gather: every live peer answers with the sessions of `principal` it is primary of.
  asio::awaitable<Result<v1::SessionList>> FindByPrincipal(v1::FindByPrincipalRequest request) {
    auto self = shared_from_this();
    if (request.principal().empty()) {
      co_return InvalidArgument(
          "find_by_principal needs a principal: name the user whose sessions you want");
    }
    auto gather = std::make_shared<Gather>(executor_);
    for (v1::Session& s : LocalPrimariesOf(request.principal())) {
      gather->found.emplace(s.id(), std::move(s));
    }
    const std::vector<std::string> peers = cluster_->LivePeers();
    gather->pending = peers.size();
    gather->timer.expires_after(backup_.fetch_timeout);
    for (const std::string& peer : peers) {
      BackupRequest query;
      query.mutable_find_by_principal()->set_principal(request.principal());
      asio::co_spawn(executor_, GatherOne(gather, peer, std::move(query)), asio::detached);
    }
    while (gather->pending > 0) {
      boost::system::error_code ec;
      co_await gather->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) break;  // the deadline: answer with what arrived
    }
    if (gather->pending > 0 || gather->failed > 0) ++counters_.principal_queries_partial;
    v1::SessionList list;
    std::vector<v1::Session*> sorted;
    for (auto& [id, s] : gather->found) sorted.push_back(&s);
    std::sort(sorted.begin(), sorted.end(), [](const v1::Session* a, const v1::Session* b) {
      return a->created_ms() != b->created_ms() ? a->created_ms() < b->created_ms()
                                                : a->id() < b->id();
    });
    for (v1::Session* s : sorted) *list.add_sessions() = std::move(*s);
    co_return list;
  }

  std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink);

  v1::NodeStats Stats() const {
    v1::NodeStats stats;
    stats.set_node_id(self_);
    stats.set_mode("backup");
    stats.set_sessions(store_.size());
    const RoleCounts roles = Roles();
    counters_.AddTo(stats);
    auto& c = *stats.mutable_counters();
    c["sessions_primary"] = roles.primary;
    c["sessions_backup"] = roles.backup;
    c["sessions_proxy"] = roles.proxy;
    c["sessions_under_replicated"] = roles.under_replicated;
    c["watchers"] = hub_.watch_count();
    c["principals"] = store_.principal_count();
    c["backup_fetches"] = counters_.fetches;
    c["backup_fetches_served"] = counters_.fetches_served;
    c["backup_moves_in"] = counters_.moves_in;
    c["backup_moves_out"] = counters_.moves_out;
    c["backup_forwards"] = counters_.forwards;
    c["backup_forwards_served"] = counters_.forwards_served;
    c["backup_failovers"] = counters_.failovers;
    c["backup_fills"] = counters_.fills;
    c["backup_handoffs"] = counters_.handoffs;
    c["backup_releases"] = counters_.releases;
    c["backup_puts_sent"] = counters_.puts_sent;
    c["backup_changes_sent"] = counters_.changes_sent;
    c["backup_change_batches_sent"] = counters_.change_batches_sent;
    c["backup_changes_applied"] = counters_.changes_applied;
    c["backup_change_gaps"] = counters_.change_gaps;
    c["backup_sessions_lost"] = counters_.sessions_lost;
    c["backup_placement_conflicts"] = counters_.placement_conflicts;
    c["backup_handovers_adopted"] = counters_.handovers_adopted;
    c["backup_primary_conflicts_won"] = counters_.primary_conflicts_won;
    c["backup_primary_conflicts_lost"] = counters_.primary_conflicts_lost;
    c["backup_sends_failed"] = counters_.sends_failed;
    c["sync_writes_unconfirmed"] = counters_.sync_unconfirmed;
    c["backup_proxy_acks_missed"] = counters_.proxy_acks_missed;
    c["principal_queries_partial"] = counters_.principal_queries_partial;
    c["proxy_table_bytes"] = table_.MemoryBytes();
    c["watch_peers_interested"] = peer_interest_.size();
    return stats;
  }

  Readiness Ready() const {
    if (!started_) return Readiness{false, "not started"};
    if (stopping_) return Readiness{false, "stopping"};
    std::vector<std::string> waiting;
    for (const std::string& peer : cluster_->LivePeers()) {
      if (snapshots_from_.count(peer) == 0) waiting.push_back(peer);
    }
    if (!waiting.empty()) {
      return Readiness{
          false, fmt::format("waiting for the session placements of {}", fmt::join(waiting, ", "))};
    }
    return Readiness{true, fmt::format("serving; {} backups over {} live peers", backup_.backups,
                                       cluster_->LivePeers().size())};
  }

  ContentDigest Digest() const { return DigestOf(store_, options_.clock->NowMs()); }

  RoleCounts Roles() const {
    RoleCounts roles;
    const int me = self_index_;
    const std::vector<std::string> live = LiveMembers();
    const size_t target = TargetBackups(live);
    std::vector<bool> alive;
    table_.ForEachPlacement(
        [&](PlacementTable::PlacementId, const PlacementTable::NodeList& nodes, size_t uses) {
          if (me >= 0 && nodes[0] == me) {
            roles.primary += uses;
            size_t live_backups = 0;
            for (size_t i = 1; i < nodes.size(); ++i) {
              live_backups += Contains(live, table_.NodeName(nodes[i])) ? 1 : 0;
            }
            if (live_backups < target) roles.under_replicated += uses;
          } else if (me >= 0 && std::find(nodes.begin() + 1, nodes.end(), me) != nodes.end()) {
            roles.backup += uses;
          } else {
            roles.proxy += uses;
          }
        });
    roles.under_replicated += filling_.size();
    return roles;
  }

  void AppendMetrics(std::string& out) const {
    const RoleCounts roles = Roles();
    auto gauge = [&](const char* name, const char* help, uint64_t value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, value);
    };
    auto counter = [&](const char* name, const char* help, uint64_t value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, value);
    };
    gauge("sessiond_sessions_primary", "Sessions this node holds as their primary.", roles.primary);
    gauge("sessiond_sessions_backup", "Sessions this node holds a backup copy of.", roles.backup);
    gauge("sessiond_sessions_proxy", "Sessions this node knows only the placement of.",
          roles.proxy);
    gauge("sessiond_sessions_under_replicated",
          "Sessions this node is primary of with fewer confirmed backups than --backups "
          "(bounded by the live peers) right now.",
          roles.under_replicated);
    gauge("sessiond_backup_placement_table_bytes",
          "Bytes of the table of session placements (the proxy entries).", table_.MemoryBytes());
    counter("sessiond_backup_fetches_total", "Sessions fetched from another node.",
            counters_.fetches);
    counter("sessiond_backup_moves_total", "Sessions this node took ownership of on access.",
            counters_.moves_in);
    counter("sessiond_backup_forwards_total", "Operations forwarded to a session's primary.",
            counters_.forwards);
    counter("sessiond_backup_failovers_total",
            "Sessions this node promoted itself to primary of after their primary failed.",
            counters_.failovers);
    counter("sessiond_backup_handoffs_total",
            "Sessions handed over to another node on a graceful stop.", counters_.handoffs);
    counter("sessiond_backup_fills_total", "Backup copies sent to restore redundancy.",
            counters_.fills);
    counter("sessiond_backup_sessions_lost_total",
            "Sessions whose primary and every backup failed together.", counters_.sessions_lost);
    counter("sessiond_backup_primary_conflicts_lost_total",
            "Sessions this node stopped being primary of because another node also claimed them "
            "(after a partition) and won: the writes made here since are discarded.",
            counters_.primary_conflicts_lost);
  }

  size_t ExpireDue() {
    const int64_t now = options_.clock->NowMs();
    std::vector<std::pair<SessionKey, uint64_t>> expired;
    store_.ExpireDue(now,
                     [&](const StoredSession& s) { expired.emplace_back(s.key(), s.version()); });
    size_t count = 0;
    for (const auto& [key, version] : expired) {
      const std::vector<std::string> nodes = table_.Nodes(key);
      const std::string id = key.ToText();
      table_.Erase(key);
      primary_state_.Erase(key);
      // A backup's deadline is never earlier than its primary's (touches replicate ahead), so
      // a backup copy expiring here has expired on the primary too; only the primary reports.
      if (nodes.empty() || nodes[0] != self_) continue;
      ++count;
      BackupChange change;
      change.set_kind(BackupChange::EXPIRE);
      change.set_id(id);
      change.set_version(version);
      for (size_t i = 1; i < nodes.size(); ++i) SendChange(nodes[i], change, nullptr);
      BroadcastPlacement(id, {}, /*removed=*/true, nullptr, nodes);
      Publish(v1::SessionEvent::EXPIRED, id, "", version, now);
    }
    counters_.expired += count;
    return count;
  }

  // ---- Watches ----

  class BackupWatch final : public WatchHandle {
   public:
    BackupWatch(std::unique_ptr<WatchHandle> inner, std::weak_ptr<Impl> impl, uint64_t id)
        : inner_(std::move(inner)), impl_(std::move(impl)), id_(id) {}
    ~BackupWatch() override {
      inner_.reset();
      if (auto impl = impl_.lock()) impl->EndWatch(id_);
    }

   private:
    std::unique_ptr<WatchHandle> inner_;
    std::weak_ptr<Impl> impl_;
    uint64_t id_;
  };

  void EndWatch(uint64_t id) {
    watches_.erase(id);
    AnnounceInterestSoon();
  }

 private:
  enum class Role { kUnknown, kPrimary, kBackup, kProxy };

  // Marks a ClientResponse that Forward() did not get from a peer: this node turned primary
  // while it asked, so the caller runs the operation itself.
  static constexpr uint64_t kLocalMarker = ~uint64_t{0};

  struct PrimaryState {
    int64_t touch_sent = 0;
    int32_t run_node = -1;  // a table_ node index; -1: no run
    uint32_t run_count = 0;
  };

  // A put, change or proxy update sent with want_ack, until its ack.
  struct Outstanding {
    std::string node;
    std::vector<std::shared_ptr<AckWaiter>> waiters;
    // Copies sent to restore redundancy: the sessions count as under-replicated until acked.
    std::vector<SessionKey> fills;
    bool fill_batch = false;  // counts against the node's fill window
    std::chrono::steady_clock::time_point sent;
  };

  // A request to one peer, until its reply, its deadline or the peer's death.
  struct Call {
    explicit Call(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    std::string node;
    bool done = false;
    std::optional<BackupReply> reply;
    Status status;
    // Called with the reply as it arrives, before any later message from the peer is handled
    // (the awaiting coroutine resumes only later).
    std::function<void(const BackupReply&)> on_reply;
  };

  struct Gather {
    explicit Gather(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    size_t pending = 0;
    size_t failed = 0;
    std::map<std::string, v1::Session> found;
  };

  // Per-peer changes of this event-loop turn.
  struct PendingChanges {
    peer::v1::BackupChangeBatch batch;
    std::vector<std::shared_ptr<AckWaiter>> waiters;
  };

  // Per-peer ProxyUpdate of this event-loop turn.
  struct PendingProxy {
    BackupProxyUpdate update;
    std::vector<std::shared_ptr<AckWaiter>> waiters;
  };

  struct PeerInterest {
    bool all = false;
    std::unordered_set<std::string> ids;
  };

  // The counts every mode keeps, and this mode's own.
  struct Counters : SessionCounters {
    uint64_t fetches = 0;
    uint64_t fetches_served = 0;
    uint64_t moves_in = 0;
    uint64_t moves_out = 0;
    uint64_t forwards = 0;
    uint64_t forwards_served = 0;
    uint64_t failovers = 0;
    uint64_t fills = 0;
    uint64_t handoffs = 0;
    uint64_t releases = 0;
    uint64_t puts_sent = 0;
    uint64_t changes_sent = 0;
    uint64_t change_batches_sent = 0;
    uint64_t changes_applied = 0;
    uint64_t change_gaps = 0;
    uint64_t sessions_lost = 0;
    uint64_t placement_conflicts = 0;
    uint64_t sends_failed = 0;
    uint64_t sync_unconfirmed = 0;
    uint64_t proxy_acks_missed = 0;
    uint64_t principal_queries_partial = 0;
    uint64_t handovers_adopted = 0;
    uint64_t primary_conflicts_won = 0;
    uint64_t primary_conflicts_lost = 0;
  };

  // ---- Roles and placement ----

  std::vector<std::string> LiveMembers() const {
    std::vector<std::string> live = cluster_->LivePeers();
    live.push_back(self_);
    return live;
  }

  // How many backups a session gets with `live` members (this node included).
  size_t TargetBackups(const std::vector<std::string>& live) const {
    return std::min<size_t>(backup_.backups, live.empty() ? 0 : live.size() - 1);
  }

  Role RoleOf(const std::vector<std::string>& nodes) const {
    if (nodes.empty()) return Role::kUnknown;
    if (nodes[0] == self_) return Role::kPrimary;
    return std::find(nodes.begin() + 1, nodes.end(), self_) != nodes.end() ? Role::kBackup
                                                                           : Role::kProxy;
  }
  // RoleOf(table_.Nodes(key)) without building the node list: by this node's interned index.
  Role RoleOf(const SessionKey& key) const {
    const PlacementTable::PlacementId id = table_.Find(key);
    if (id == 0) return Role::kUnknown;
    const PlacementTable::NodeList& nodes = table_.List(id);
    if (nodes[0] == self_index_) return Role::kPrimary;
    return std::find(nodes.begin() + 1, nodes.end(), self_index_) != nodes.end() ? Role::kBackup
                                                                                 : Role::kProxy;
  }
  // RoleOf(key) == kPrimary (every client operation asks).
  bool IsPrimary(const SessionKey& key) const {
    const PlacementTable::PlacementId id = table_.Find(key);
    return id != 0 && table_.List(id)[0] == self_index_;
  }

  // Records a placement learnt from a peer, dropping this node's copy when the placement no
  // longer includes it. A placement that would demote this node from primary is not applied
  // unless `trusted` (this node gave the session away: a move, a handoff): it is a conflict,
  // settled by ResolveConflict.
  void ApplyPlacement(const SessionKey& key, const std::vector<std::string>& nodes, bool trusted) {
    const bool was_primary = IsPrimary(key);
    if (!trusted && was_primary && !nodes.empty() && nodes[0] != self_) {
      ResolveConflict(key, nodes[0]);
      return;
    }
    if (!trusted && !nodes.empty() && nodes[0] == self_ && !was_primary &&
        store_.Find(key, options_.clock->NowMs()) == nullptr) {
      // A stale view naming this node primary of a session it holds no copy of (it gave the
      // session away since): believing it would answer NOT_FOUND for a live session.
      ++counters_.placement_conflicts;
      return;
    }
    if (nodes.empty()) {
      table_.Erase(key);
    } else {
      table_.Set(key, nodes);
    }
    if (nodes.empty() || nodes[0] != self_) EndRun(key);  // runs count on a primary
    if (!Contains(nodes, self_)) {
      // Most placements reach proxies, which hold no copy: no Erase (its NOT_FOUND status
      // costs an HMAC of the id for the log tag).
      const int64_t now = options_.clock->NowMs();
      if (store_.Find(key, now) != nullptr) (void)store_.Erase(key.ToText(), now);
      primary_state_.Erase(key);
    }
  }

  // ---- Two primaries of one session (after a partition heals) ----

  // Of two nodes that both claim to be primary of `key`, the one that stays primary: the one
  // rendezvous hashing ranks higher for the session (as PickByRendezvous orders nodes). It
  // depends on the key and the two names only, never on what either side did to the session
  // since, so both sides reach the same answer whenever and in whatever order they compare.
  static std::string ConflictWinner(const SessionKey& key, const std::string& a,
                                    const std::string& b) {
    return PickByRendezvous(key, {a, b}, {}, 1).front();
  }

  // This node is primary of `key` and `claimant` claims to be too (its placement, put or
  // change arrived). The winner re-asserts: its backups get whole copies again and every
  // node its placement. The loser first asks the claimant to confirm (a placement or put can
  // be stale: the claimant may have handed the session back since), then adopts its copy and
  // placement; its own writes since the two sides split are discarded.
  void ResolveConflict(const SessionKey& key, const std::string& claimant) {
    ++counters_.placement_conflicts;
    // A node handing its sessions over (Stop) hears the takers' placements before it has
    // applied their confirmations: not a conflict, they are taking over.
    if (claimant.empty() || claimant == self_ || handing_off_) return;
    if (ConflictWinner(key, self_, claimant) == self_) {
      if (reasserting_.insert(key).second) {
        ++counters_.primary_conflicts_won;
        reassert_claimant_ = claimant;  // for the log line
      }
      if (!reassert_posted_) {
        reassert_posted_ = true;
        asio::post(executor_, [weak = weak_from_this()] {
          if (auto self = weak.lock()) self->ReassertAll();
        });
      }
      return;
    }
    if (!yielding_.insert(key).second) return;  // already asking
    yield_queue_[claimant].push_back(key);
    PumpYields(claimant);
  }

  // Asks `claimant` about at most kYieldWindow sessions at a time, so that a heal with many
  // sessions both sides claim does not overflow the link's queue.
  void PumpYields(const std::string& claimant) {
    auto it = yield_queue_.find(claimant);
    while (it != yield_queue_.end() && !it->second.empty() &&
           yields_in_flight_[claimant] < kYieldWindow) {
      const SessionKey key = it->second.front();
      it->second.pop_front();
      ++yields_in_flight_[claimant];
      asio::co_spawn(executor_, YieldTo(key, claimant), asio::detached);
    }
    if (it != yield_queue_.end() && it->second.empty()) yield_queue_.erase(it);
  }

  void ReassertAll() {
    reassert_posted_ = false;
    const std::set<SessionKey, KeyLess> keys = std::move(reasserting_);
    reasserting_.clear();
    const std::vector<std::string> live = LiveMembers();
    const size_t target = TargetBackups(live);
    const int64_t now = options_.clock->NowMs();
    if (!keys.empty()) {
      spdlog::warn(
          "node {}: another node also claims to be primary of {} of this node's sessions (a "
          "partition healed?), e.g. {} claimed by {}; this node keeps them (rendezvous order) "
          "and sends its copies to their backups again",
          self_, keys.size(), LogTag(keys.begin()->ToText()), reassert_claimant_);
    }
    for (const SessionKey& key : keys) {
      const std::vector<std::string> nodes = table_.Nodes(key);
      if (RoleOf(nodes) != Role::kPrimary || store_.Find(key.ToText(), now) == nullptr) continue;
      std::vector<std::string> placed{self_};
      for (std::string& b :
           RefillBackups(key, self_, {nodes.begin() + 1, nodes.end()}, live, target)) {
        placed.push_back(std::move(b));
      }
      table_.Set(key, placed);
      // Whole copies: a backup may hold the loser's copy, at a version that would make it
      // ignore this node's next changes.
      for (size_t i = 1; i < placed.size(); ++i) QueueFill(placed[i], key);
      BroadcastPlacement(key.ToText(), placed, /*removed=*/false, nullptr, {});
    }
  }

  // The losing side of a conflict: asks `claimant` whether it is the primary (with `yielding`,
  // which makes it re-assert) and, when it is, takes its copy and placement.
  asio::awaitable<void> YieldTo(SessionKey key, std::string claimant) {
    auto self = shared_from_this();
    const std::string id = key.ToText();
    BackupRequest request;
    request.mutable_fetch()->set_id(id);
    request.mutable_fetch()->set_yielding(true);
    // Settled as the reply arrives: the winner's puts and changes sent after it find this
    // node a backup already.
    std::function<void(const BackupReply&)> settle = [this, key, claimant](const BackupReply& r) {
      YieldWith(key, claimant, r);
    };
    Result<BackupReply> reply = co_await CallPeerWith(claimant, std::move(request),
                                                      backup_.fetch_timeout, std::move(settle));
    (void)reply;
    yielding_.erase(key);
    if (--yields_in_flight_[claimant] == 0) yields_in_flight_.erase(claimant);
    PumpYields(claimant);
  }

  void YieldWith(const SessionKey& key, const std::string& claimant, const BackupReply& reply) {
    const std::vector<std::string> nodes = ToVector(reply.placement().nodes());
    if (stopping_ || reply.code() != v1::OK || reply.not_primary() || !reply.has_session() ||
        nodes.empty() || nodes[0] != claimant || RoleOf(key) != Role::kPrimary) {
      return;  // a stale claim, or settled meanwhile
    }
    ++counters_.primary_conflicts_lost;
    spdlog::warn(
        "node {}: {} is also primary of session {} (a partition healed?) and wins (rendezvous "
        "order): this node takes its copy; the writes made here since the split are discarded",
        self_, claimant, LogTag(key.ToText()));
    ApplyPlacement(key, nodes, /*trusted=*/true);
    if (Contains(nodes, self_)) (void)HoldCopy(reply.session(), options_.clock->NowMs());
  }

  // ---- Sending ----

  uint64_t NextRequestId() { return ++next_request_id_; }

  // The test hook: whether `envelope` to `node` is lost on the way.
  bool DroppedForTest(const std::string& node, const PeerEnvelope& envelope) const {
    return backup_.drop_for_test && backup_.drop_for_test(node, envelope);
  }

  bool SendEnvelope(const std::string& node, PeerEnvelope envelope) {
    if (DroppedForTest(node, envelope)) return true;
    Result<uint64_t> sent = cluster_->Send(node, std::move(envelope));
    if (sent.ok()) return true;
    ++counters_.sends_failed;
    spdlog::debug("node {}: backup message not sent to {}: {}", self_, node,
                  sent.status().ToString());
    return false;
  }

  std::shared_ptr<AckWaiter> NewWaiter() {
    if (backup_.ack != ReplicationAck::kSync) return nullptr;
    auto waiter = std::make_shared<AckWaiter>(executor_, backup_.ack_timeout);
    open_waiters_.push_back(waiter);
    waiter->OnFinish([this, w = waiter.get()] {
      open_waiters_.erase(std::remove_if(open_waiters_.begin(), open_waiters_.end(),
                                         [w](const auto& open) { return open.get() == w; }),
                          open_waiters_.end());
    });
    return waiter;
  }

  void Track(uint64_t request_id, const std::string& node, const std::shared_ptr<AckWaiter>& waiter,
             std::vector<SessionKey> fills, bool fill_batch) {
    Outstanding& o = outstanding_[request_id];
    o.node = node;
    if (waiter != nullptr && !waiter->done()) {
      waiter->Expect(node);
      o.waiters.push_back(waiter);
    }
    o.fills = std::move(fills);
    o.fill_batch = fill_batch;
    o.sent = std::chrono::steady_clock::now();
  }

  // Sends copies to `node`, which holds them as a backup. `fills` are the sessions whose
  // redundancy this restores.
  void SendPut(const std::string& node, std::vector<BackupCopy> copies,
               const std::shared_ptr<AckWaiter>& waiter, std::vector<SessionKey> fills,
               bool fill_batch = false) {
    PeerEnvelope envelope;
    BackupPut& put = *envelope.mutable_backup_put();
    const uint64_t request_id = NextRequestId();
    put.set_request_id(request_id);
    put.set_want_ack(true);
    for (BackupCopy& copy : copies) *put.add_copies() = std::move(copy);
    counters_.puts_sent += put.copies_size();
    Track(request_id, node, waiter, std::move(fills), fill_batch);
    (void)SendEnvelope(node, std::move(envelope));
  }

  // Queues `change` for `node`; the changes of one loop turn go out as one batch, acked once.
  void SendChange(const std::string& node, BackupChange change,
                  const std::shared_ptr<AckWaiter>& waiter) {
    PendingChanges& pending = pending_changes_[node];
    *pending.batch.add_changes() = std::move(change);
    if (waiter != nullptr && !waiter->done()) {
      waiter->Expect(node);
      pending.waiters.push_back(waiter);
    }
    ++counters_.changes_sent;
    if (static_cast<size_t>(pending.batch.changes_size()) >= backup_.batch_placements) {
      FlushChanges(node);
    }
    PostFlush();
  }

  void FlushChanges(const std::string& node) {
    auto it = pending_changes_.find(node);
    if (it == pending_changes_.end()) return;
    PendingChanges pending = std::move(it->second);
    pending_changes_.erase(it);
    PeerEnvelope envelope;
    const uint64_t request_id = NextRequestId();
    if (pending.batch.changes_size() == 1) {
      // The usual case (about one change per turn and backup): a lone BackupChange, acked the
      // same way, is one message level less to build, parse and free than a batch of one.
      BackupChange& change = *envelope.mutable_backup_change();
      change.Swap(pending.batch.mutable_changes(0));
      change.set_request_id(request_id);
      change.set_want_ack(true);
    } else {
      peer::v1::BackupChangeBatch& batch = *envelope.mutable_backup_change_batch();
      batch.Swap(&pending.batch);
      batch.set_request_id(request_id);
    }
    Outstanding& o = outstanding_[request_id];
    o.node = node;
    o.waiters = std::move(pending.waiters);
    o.sent = std::chrono::steady_clock::now();
    ++counters_.change_batches_sent;
    (void)SendEnvelope(node, std::move(envelope));
  }

  // The same by the session's placement (interned node names, no list built).
  void ChangeBackupsOf(PlacementTable::PlacementId placement, BackupChange change,
                       const std::shared_ptr<AckWaiter>& waiter) {
    const size_t n = table_.List(placement).size();
    for (size_t i = 1; i < n; ++i) {
      const std::string& node = table_.NodeName(table_.List(placement)[i]);
      SendChange(node, i + 1 < n ? change : std::move(change), waiter);
    }
  }

  // Sends `change` to every backup of the session this node is primary of.
  void ChangeBackups(const std::vector<std::string>& nodes, BackupChange change,
                     const std::shared_ptr<AckWaiter>& waiter) {
    for (size_t i = 1; i < nodes.size(); ++i) {
      // Copied for all but the last backup (the change carries the update's values).
      SendChange(nodes[i], i + 1 < nodes.size() ? change : std::move(change), waiter);
    }
  }

  // Queues the placement of `id` for every live peer not in `skip`; flushed at the end of the
  // loop turn, batched per peer.
  void BroadcastPlacement(const std::string& id, const std::vector<std::string>& nodes,
                          bool removed, const std::shared_ptr<AckWaiter>& waiter,
                          const std::vector<std::string>& skip) {
    for (const std::string& peer : cluster_->LivePeers()) {
      if (Contains(skip, peer)) continue;
      PendingProxy& pending = pending_proxies_[peer];
      BackupPlacement& p = *pending.update.add_placements();
      p.set_id(id);
      SetNodes(p.mutable_nodes(), nodes);
      p.set_removed(removed);
      if (waiter != nullptr && !waiter->done()) {
        // A proxy makes the session readable there at once, not durable: missing its ack at the
        // deadline does not fail the write (a proxy that is dying would otherwise fail every
        // create until it is declared dead).
        waiter->Expect(peer, /*required=*/false);
        pending.waiters.push_back(waiter);
      }
      if (static_cast<size_t>(pending.update.placements_size()) >= backup_.batch_placements) {
        FlushProxy(peer);
      }
    }
    PostFlush();
  }

  // Flushes this turn's proxy updates and change batches once the turn is over.
  void PostFlush() {
    if (flush_posted_ ||
        (pending_proxies_.empty() && pending_changes_.empty() && pending_acks_.empty())) {
      return;
    }
    flush_posted_ = true;
    asio::post(executor_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->FlushProxies();
    });
  }

  void FlushProxy(const std::string& peer) {
    auto it = pending_proxies_.find(peer);
    if (it == pending_proxies_.end()) return;
    PendingProxy pending = std::move(it->second);
    pending_proxies_.erase(it);
    PeerEnvelope envelope;
    BackupProxyUpdate& update = *envelope.mutable_backup_proxy_update();
    update.Swap(&pending.update);
    const uint64_t request_id = NextRequestId();
    update.set_request_id(request_id);
    update.set_want_ack(!pending.waiters.empty());
    if (!pending.waiters.empty()) {
      Outstanding& o = outstanding_[request_id];
      o.node = peer;
      o.waiters = std::move(pending.waiters);
      o.sent = std::chrono::steady_clock::now();
    }
    (void)SendEnvelope(peer, std::move(envelope));
  }

  void FlushAcks() {
    for (auto& [node, ids] : pending_acks_) {
      PeerEnvelope envelope;
      BackupAck& ack = *envelope.mutable_backup_ack();
      ack.set_request_id(ids.back());
      ack.set_ok(true);
      ids.pop_back();
      ack.mutable_more_request_ids()->Add(ids.begin(), ids.end());
      (void)SendEnvelope(node, std::move(envelope));
    }
    pending_acks_.clear();
  }

  void FlushProxies() {
    flush_posted_ = false;
    FlushAcks();
    std::vector<std::string> peers;
    for (const auto& [peer, pending] : pending_changes_) peers.push_back(peer);
    for (const std::string& peer : peers) FlushChanges(peer);
    peers.clear();
    for (const auto& [peer, pending] : pending_proxies_) peers.push_back(peer);
    for (const std::string& peer : peers) FlushProxy(peer);
  }

  // ---- Fills: restoring redundancy in bounded batches ----

  void QueueFill(const std::string& node, const SessionKey& key) {
    fill_queue_[node].push_back(key);
    ++filling_[key];
    ++counters_.fills;
    if (!fill_posted_) {
      fill_posted_ = true;
      asio::post(executor_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->PumpAllFills();
      });
    }
  }

  void Unfill(const SessionKey& key) {
    auto it = filling_.find(key);
    if (it == filling_.end()) return;
    if (--it->second == 0) filling_.erase(it);
  }

  void PumpAllFills() {
    fill_posted_ = false;
    std::vector<std::string> nodes;
    for (const auto& [node, queue] : fill_queue_) nodes.push_back(node);
    for (const std::string& node : nodes) PumpFills(node);
  }

  // Sends `node` its queued copies, at most fill_window batches awaiting acks at a time, so a
  // failover of many sessions cannot overflow the link's queue.
  void PumpFills(const std::string& node) {
    if (fill_queue_.empty()) return;  // every ack asks: nothing to fill is the usual answer
    const int64_t now = options_.clock->NowMs();
    while (fills_in_flight_[node] < backup_.fill_window) {
      auto it = fill_queue_.find(node);
      if (it == fill_queue_.end()) return;
      std::deque<SessionKey>& queue = it->second;
      std::vector<BackupCopy> copies;
      std::vector<SessionKey> keys;
      while (!queue.empty() && copies.size() < backup_.batch_sessions) {
        const SessionKey key = queue.front();
        queue.pop_front();
        const std::vector<std::string> nodes = table_.Nodes(key);
        const StoredSession* s = store_.Find(key.ToText(), now);
        // Gone, moved away, or no longer backed up there since it was queued.
        if (s == nullptr || RoleOf(nodes) != Role::kPrimary || !Contains(nodes, node)) {
          Unfill(key);
          continue;
        }
        copies.push_back(CopyForBackup(*s, nodes));
        keys.push_back(key);
      }
      if (queue.empty()) fill_queue_.erase(it);
      if (copies.empty()) return;
      ++fills_in_flight_[node];
      SendPut(node, std::move(copies), nullptr, std::move(keys), /*fill_batch=*/true);
    }
  }

  // ---- Acks ----

  // Waits for `waiter`'s acks (nullptr: nothing to wait for). Not a coroutine (one frame less
  // per sync write): the caller's frame holds `waiter` and this manager until the wait ends.
  asio::awaitable<Status> AwaitAcks(const std::shared_ptr<AckWaiter>& waiter) {
    if (waiter == nullptr) return NothingToAwait();
    // Every peer to wait for was named when the changes were queued: none means done.
    if (waiter->waiting().empty()) waiter->Finish(Status::Ok());
    return waiter->Wait([this](const AckWaiter& w) {
      if (w.OnlyBestEffortLeft()) {
        ++counters_.proxy_acks_missed;
        return Status::Ok();
      }
      ++counters_.sync_unconfirmed;
      return Unavailable(
          fmt::format("the change was applied on node {} but {} did not confirm it within {} ms "
                      "(--replication-ack sync): it may or may not have reached them; read the "
                      "session again before retrying",
                      self_, fmt::join(w.waiting(), ", "), backup_.ack_timeout.count()));
    });
  }
  static asio::awaitable<Status> NothingToAwait() { co_return Status::Ok(); }

  void OnAck(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const BackupAck& ack = envelope.backup_ack();
    for (uint64_t request_id : ack.more_request_ids()) AckOne(from, request_id, ack, true);
    AckOne(from, ack.request_id(), ack, ack.ok());
  }

  // Ends request `request_id` to `from`: `ok`, or else `ack`'s stale ids are sent whole.
  void AckOne(const PeerIdentity& from, uint64_t request_id, const BackupAck& ack, bool ok) {
    auto it = outstanding_.find(request_id);
    if (it == outstanding_.end()) return;
    Outstanding o = std::move(it->second);
    outstanding_.erase(it);
    if (o.fill_batch && fills_in_flight_[o.node] > 0) --fills_in_flight_[o.node];
    if (ok) {
      for (const auto& waiter : o.waiters) waiter->Release(from.node_id);
      for (const SessionKey& key : o.fills) Unfill(key);
    } else if (ack.stale_ids_size() > 0) {
      // The backup's copy is missing or behind: send it whole; the write's waiters and the
      // fills carry over to the new put.
      ++counters_.change_gaps;
      const int64_t now = options_.clock->NowMs();
      std::vector<BackupCopy> copies;
      for (const std::string& id : ack.stale_ids()) {
        const std::optional<SessionKey> key = SessionKey::FromText(id);
        if (!key) continue;
        const std::vector<std::string> nodes = table_.Nodes(*key);
        const StoredSession* s = store_.Find(id, now);
        if (s == nullptr || RoleOf(nodes) != Role::kPrimary) continue;
        copies.push_back(CopyForBackup(*s, nodes));
      }
      if (copies.empty()) {
        for (const auto& waiter : o.waiters) waiter->Release(from.node_id);
        for (const SessionKey& key : o.fills) Unfill(key);
      } else {
        PeerEnvelope put_envelope;
        BackupPut& put = *put_envelope.mutable_backup_put();
        const uint64_t request_id = NextRequestId();
        put.set_request_id(request_id);
        put.set_want_ack(true);
        for (BackupCopy& copy : copies) *put.add_copies() = std::move(copy);
        counters_.puts_sent += put.copies_size();
        Outstanding& again = outstanding_[request_id];
        again.node = o.node;
        again.waiters = std::move(o.waiters);
        again.fills = std::move(o.fills);
        again.sent = std::chrono::steady_clock::now();
        (void)SendEnvelope(o.node, std::move(put_envelope));
      }
    } else {
      // The backup could not hold the copy (its limits are lower): the write's waiters are not
      // released, so a sync write answers UNAVAILABLE rather than OK.
      for (const SessionKey& key : o.fills) Unfill(key);
      spdlog::warn("node {}: {} refused a backup copy (request {})", self_, from.node_id,
                   request_id);
    }
    PumpFills(o.node);
  }

  void SendAck(const std::string& node, uint64_t request_id, bool ok,
               std::vector<std::string> stale_ids = {}) {
    if (ok && stale_ids.empty()) {
      // Plain acks wait for the end of the loop turn and leave together, one message per peer.
      pending_acks_[node].push_back(request_id);
      PostFlush();
      return;
    }
    PeerEnvelope envelope;
    BackupAck& ack = *envelope.mutable_backup_ack();
    ack.set_request_id(request_id);
    ack.set_ok(ok);
    for (std::string& id : stale_ids) ack.add_stale_ids(std::move(id));
    (void)SendEnvelope(node, std::move(envelope));
  }

  // ---- Receiving copies and changes (this node as a backup or proxy) ----

  // Holds `session` as the copy `nodes` place here, replacing any older one.
  bool HoldCopy(const v1::Session& session, int64_t now) {
    if (store_.Find(session.id(), now) != nullptr) (void)store_.Erase(session.id(), now);
    Result<const StoredSession*> restored = store_.Restore(session, now);
    if (!restored.ok()) {
      spdlog::warn("node {}: could not hold a copy of session {}: {}", self_, LogTag(session.id()),
                   restored.status().ToString());
      return false;
    }
    return true;
  }

  void OnPut(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const BackupPut& put = envelope.backup_put();
    const int64_t now = options_.clock->NowMs();
    bool ok = true;
    for (const BackupCopy& copy : put.copies()) {
      const std::optional<SessionKey> key = SessionKey::FromText(copy.session().id());
      if (!key) continue;
      std::vector<std::string> nodes = ToVector(copy.nodes());
      if (RoleOf(*key) == Role::kPrimary) {
        // Another node, primary of this session too, sends its copy: refused until the
        // conflict is settled (the winner's copy comes again if this node loses).
        ResolveConflict(*key, nodes.empty() ? std::string() : nodes[0]);
        ok = ok && (nodes.empty() || nodes[0] == self_);
        continue;
      }
      table_.Set(*key, nodes);
      if (Contains(nodes, self_)) ok = HoldCopy(copy.session(), now) && ok;
    }
    if (put.want_ack()) SendAck(from.node_id, put.request_id(), ok);
  }

  void OnChange(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const BackupChange& change = envelope.backup_change();
    std::optional<std::string> stale = ApplyChange(from.node_id, change);
    if (!change.want_ack()) return;
    std::vector<std::string> stale_ids;
    if (stale) stale_ids.push_back(std::move(*stale));
    SendAck(from.node_id, change.request_id(), stale_ids.empty(), std::move(stale_ids));
  }

  void OnChangeBatch(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const peer::v1::BackupChangeBatch& batch = envelope.backup_change_batch();
    std::vector<std::string> stale_ids;
    for (const BackupChange& change : batch.changes()) {
      std::optional<std::string> stale = ApplyChange(from.node_id, change);
      if (stale) stale_ids.push_back(std::move(*stale));
    }
    SendAck(from.node_id, batch.request_id(), stale_ids.empty(), std::move(stale_ids));
  }

  // Applies one change of the primary `from` to this node's copy. Returns the id of a session
  // whose copy is missing or behind (the primary sends it whole), or nullopt when the copy is
  // current.
  std::optional<std::string> ApplyChange(const std::string& from, const BackupChange& change) {
    const int64_t now = options_.clock->NowMs();
    const std::optional<SessionKey> key = SessionKey::FromText(change.id());
    if (!key) return std::nullopt;
    const StoredSession* s = store_.Find(*key, now);
    // A change newer than this node's copy while this node is primary comes from another
    // primary of the session (after a partition): not applied. An update answers as a gap, so
    // its sender's write is not confirmed here. (An older one is a change the old primary sent
    // before it handed the session over here, overtaken by the hand-over's reply.)
    if (IsPrimary(*key) && ((change.kind() == BackupChange::UPDATE &&
                             (s == nullptr || change.version() > s->version())) ||
                            change.kind() == BackupChange::ROTATE_ID)) {
      ResolveConflict(*key, from);
      return change.kind() == BackupChange::UPDATE ? std::optional<std::string>(change.id())
                                                   : std::nullopt;
    }
    switch (change.kind()) {
      case BackupChange::UPDATE: {
        if (s == nullptr) return change.id();
        if (s->version() >= change.version()) return std::nullopt;  // a copy put after it
        if (s->version() + 1 != change.version()) return change.id();
        // The primary sends the update with expected_version 0 and touch false: applied as
        // it is, without copying its values (an older sender's is copied and cleared).
        std::optional<v1::UpdateRequest> cleared;
        if (change.update().expected_version() != 0 || change.update().touch()) {
          cleared.emplace(change.update());
          cleared->set_expected_version(0);
          cleared->set_touch(false);
        }
        Result<SessionStore::UpdateResult> updated =
            store_.Update(cleared ? *cleared : change.update(), now);
        if (!updated.ok() || updated->session->version() != change.version()) {
          return change.id();
        }
        CoverPrimaryAccesses(*key, change.at_ms(), now);
        ++counters_.changes_applied;
        return std::nullopt;
      }
      case BackupChange::TOUCH: {
        if (s == nullptr) return change.id();
        Result<const StoredSession*> touched = store_.Touch(*key, change.at_ms());
        if (!touched.ok()) (void)store_.Touch(*key, now);
        ++counters_.changes_applied;
        return std::nullopt;
      }
      case BackupChange::INVALIDATE:
      case BackupChange::EXPIRE: {
        if (RoleOf(*key) != Role::kPrimary) {
          (void)store_.Erase(change.id(), now);
          table_.Erase(*key);
          primary_state_.Erase(*key);  // an old primary's, kept as first backup after a move
        }
        ++counters_.changes_applied;
        return std::nullopt;
      }
      case BackupChange::ROTATE_ID: {
        const std::optional<SessionKey> new_key = SessionKey::FromText(change.new_id());
        if (!new_key) return std::nullopt;
        const std::vector<std::string> nodes = table_.Nodes(*key);
        table_.Erase(*key);
        primary_state_.Erase(*key);
        if (!nodes.empty()) table_.Set(*new_key, nodes);
        if (s == nullptr) return change.new_id();
        Result<const StoredSession*> renamed = store_.Rename(change.id(), change.new_id(), now);
        if (!renamed.ok() || (*renamed)->version() != change.version()) {
          return change.new_id();
        }
        CoverPrimaryAccesses(*new_key, change.at_ms(), now);
        ++counters_.changes_applied;
        return std::nullopt;
      }
      default:
        return std::nullopt;
    }
  }

  void OnProxyUpdate(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const BackupProxyUpdate& update = envelope.backup_proxy_update();
    for (const BackupPlacement& p : update.placements()) {
      const std::optional<SessionKey> key = SessionKey::FromText(p.id());
      if (!key) continue;
      if (p.removed()) {
        if (RoleOf(*key) == Role::kPrimary) continue;
        ApplyPlacement(*key, {}, /*trusted=*/false);
      } else {
        ApplyPlacement(*key, ToVector(p.nodes()), /*trusted=*/false);
      }
    }
    if (update.snapshot_done()) snapshots_from_.insert(from.node_id);
    if (update.send_yours()) SendSnapshot(from.node_id);
    if (update.want_ack()) SendAck(from.node_id, update.request_id(), true);
  }

  // ---- Requests to one peer ----

  asio::awaitable<Result<BackupReply>> CallPeer(std::string node, BackupRequest request,
                                                std::chrono::milliseconds timeout) {
    return CallPeerWith(std::move(node), std::move(request), timeout, nullptr);
  }

  asio::awaitable<Result<BackupReply>> CallPeerWith(
      std::string node, BackupRequest request, std::chrono::milliseconds timeout,
      std::function<void(const BackupReply&)> on_reply) {
    auto self = shared_from_this();
    const uint64_t request_id = NextRequestId();
    request.set_request_id(request_id);
    auto call = std::make_shared<Call>(executor_);
    call->node = node;
    call->on_reply = std::move(on_reply);
    call->timer.expires_after(timeout);
    PeerEnvelope envelope;
    envelope.mutable_backup_request()->Swap(&request);
    Result<uint64_t> sent = DroppedForTest(node, envelope)
                                ? Result<uint64_t>(uint64_t{0})
                                : cluster_->Send(node, std::move(envelope));
    if (!sent.ok()) {
      ++counters_.sends_failed;
      co_return sent.status();
    }
    calls_[request_id] = call;
    while (!call->done) {
      boost::system::error_code ec;
      co_await call->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (call->done || ec) continue;
      call->done = true;
      call->status = Unavailable(
          fmt::format("node {} did not answer within {} ms: retry", node, timeout.count()));
    }
    calls_.erase(request_id);
    if (call->reply) co_return std::move(*call->reply);
    co_return call->status;
  }

  void OnReply(const PeerIdentity& from, const PeerEnvelope& envelope) {
    auto it = calls_.find(envelope.backup_reply().request_id());
    if (it == calls_.end()) return;
    std::shared_ptr<Call> call = it->second;
    if (call->done || call->node != from.node_id) return;
    call->done = true;
    call->reply = envelope.backup_reply();
    call->timer.cancel();
    if (call->on_reply) call->on_reply(*call->reply);
  }

  void Reply(const std::string& node, BackupReply reply) {
    PeerEnvelope envelope;
    *envelope.mutable_backup_reply() = std::move(reply);
    (void)SendEnvelope(node, std::move(envelope));
  }

  // Asks the session's holders, primary first, to run `request`, following "not primary"
  // answers and retrying until fetch_timeout. nullopt: this node became the primary meanwhile.
  asio::awaitable<Result<std::optional<BackupReply>>> AskHolders(SessionKey key, std::string id,
                                                                 BackupRequest request) {
    auto self = shared_from_this();
    const auto deadline = std::chrono::steady_clock::now() + backup_.fetch_timeout;
    int redirects = 0;
    std::string tried;
    while (true) {
      const std::vector<std::string> nodes = table_.Nodes(key);
      if (nodes.empty()) co_return SessionStore::NotFoundError(id);
      if (nodes[0] == self_) co_return std::optional<BackupReply>();
      const std::vector<std::string> live = cluster_->LivePeers();
      bool redirected = false;
      for (const std::string& node : nodes) {
        if (node == self_ || !Contains(live, node)) continue;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        Result<BackupReply> reply = co_await CallPeer(node, request, left);
        if (!reply.ok()) {
          tried = reply.status().message();
          continue;
        }
        if (reply->not_primary()) {
          std::vector<std::string> hint = ToVector(reply->placement().nodes());
          if (hint.size() > 1 && hint[0] == self_ && RoleOf(key) != Role::kPrimary) {
            // A hand-over to this node whose reply was lost (the link broke after the primary
            // switched): the asked node believes this one is primary, this one believed the
            // opposite, and both would answer UNAVAILABLE until a failover. Accept it, with the
            // copy of the hint's next holder (the old primary, now the first backup).
            Status adopted = co_await AdoptLostHandOver(key, id, hint, deadline);
            if (adopted.ok()) co_return std::optional<BackupReply>();
            tried = adopted.message();
            continue;
          }
          // A backup keeps its copy whatever another node's view says; only the primary's own
          // placements (ProxyUpdate) move copies.
          if (!hint.empty() && hint[0] != self_ && hint != table_.Nodes(key) &&
              RoleOf(key) == Role::kProxy && ++redirects <= kMaxRedirects) {
            ApplyPlacement(key, hint, /*trusted=*/false);
            redirected = true;
            break;
          }
          tried = fmt::format("node {} is not the primary of the session yet", node);
          continue;
        }
        co_return std::optional<BackupReply>(std::move(*reply));
      }
      if (redirected) continue;
      if (std::chrono::steady_clock::now() >= deadline) {
        co_return Unavailable(fmt::format(
            "no node holding session {} answered within {} ms ({}): the cluster may be failing "
            "over; retry shortly",
            LogTag(id), backup_.fetch_timeout.count(), tried.empty() ? "none reachable" : tried));
      }
      asio::steady_timer wait(executor_);
      wait.expires_after(kRetryWait);
      boost::system::error_code ec;
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // Becomes the primary of `key` as `hint` (a peer's placement, this node first) says, after a
  // hand-over whose reply was lost. The hint's next holder must confirm it: it serves its copy
  // to the primary its own placement names (ServeFetch), and only when that is this node, so a
  // stale hint makes nobody primary. Every backup gets the whole session (the lost reply said
  // which needed one) and every other node the placement (the new primary tells them, and it
  // never did).
  asio::awaitable<Status> AdoptLostHandOver(SessionKey key, std::string id,
                                            std::vector<std::string> hint,
                                            std::chrono::steady_clock::time_point deadline) {
    auto self = shared_from_this();
    const std::string holder = hint[1];
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return Unavailable("no time left to take the session over");
    BackupRequest request;
    request.mutable_fetch()->set_id(id);
    Result<BackupReply> copy = co_await CallPeer(holder, std::move(request), left);
    if (!copy.ok()) co_return copy.status();
    if (RoleOf(key) == Role::kPrimary) co_return Status::Ok();  // it arrived meanwhile
    std::vector<std::string> nodes = ToVector(copy->placement().nodes());
    if (copy->code() != v1::OK || copy->not_primary() || !copy->has_session() || nodes.empty() ||
        nodes[0] != self_) {
      co_return Unavailable(
          fmt::format("node {} named this node primary of session {} but {} does not confirm it",
                      hint[0], LogTag(id), holder));
    }
    const int64_t now = options_.clock->NowMs();
    // This node's own copy (it was a backup) may be newer than the holder's: keep the newer.
    const StoredSession* mine = store_.Find(id, now);
    if ((mine == nullptr || mine->version() < copy->session().version()) &&
        !HoldCopy(copy->session(), now)) {
      co_return ResourceExhausted(
          "this node could not hold the session it took over (its limits are lower than the "
          "other nodes'): give every node the same limits");
    }
    table_.Set(key, nodes);
    primary_state_[key] = PrimaryState{kNoTouchSent};  // its first access sends a touch
    ++counters_.moves_in;
    ++counters_.handovers_adopted;
    spdlog::warn(
        "node {}: {} says this node is primary of session {} (a hand-over whose reply was "
        "lost); taking it over with {}'s copy",
        self_, hint[0], LogTag(id), holder);
    for (size_t i = 1; i < nodes.size(); ++i) QueueFill(nodes[i], key);
    BroadcastPlacement(id, nodes, /*removed=*/false, nullptr, nodes);
    co_return Status::Ok();
  }

  // Fetches the session from its holder and becomes its primary (move_on_access). A backup
  // says which version it holds, and gets no session back when that is the current one.
  asio::awaitable<Status> TakeOwnership(SessionKey key, std::string id) {
    auto self = shared_from_this();
    BackupRequest request;
    request.mutable_fetch()->set_id(id);
    request.mutable_fetch()->set_take_ownership(true);
    if (RoleOf(key) == Role::kBackup) {
      if (const StoredSession* held = store_.Find(id, options_.clock->NowMs())) {
        request.mutable_fetch()->set_have_version(held->version());
      }
    }
    ++counters_.fetches;
    Result<std::optional<BackupReply>> asked = co_await AskHolders(key, id, std::move(request));
    if (!asked.ok()) {
      if (asked.status().code() == v1::NOT_FOUND && RoleOf(key) != Role::kPrimary) {
        table_.Erase(key);
      }
      co_return asked.status();
    }
    if (!asked->has_value()) co_return Status::Ok();  // promoted meanwhile
    BackupReply& reply = **asked;
    if (reply.code() != v1::OK) {
      if (reply.code() == v1::NOT_FOUND && RoleOf(key) != Role::kPrimary) {
        ApplyPlacement(key, {}, /*trusted=*/false);
      }
      co_return Status(reply.code(), reply.error());
    }
    if (RoleOf(key) == Role::kPrimary) co_return Status::Ok();
    co_return co_await InstallTakeOver(key, id, std::move(reply), 0);
  }

  // Becomes the primary of `key` as the take-over `reply` (of a fetch or a forward) says: holds
  // its session, or keeps this node's copy when the reply left the session out (the copy must
  // be at `version` when that is not 0), puts copies to the backups that need one and tells
  // the others.
  asio::awaitable<Status> InstallTakeOver(SessionKey key, std::string id, BackupReply reply,
                                          uint64_t version) {
    auto self = shared_from_this();
    std::vector<std::string> nodes = ToVector(reply.placement().nodes());
    if (nodes.empty() || nodes[0] != self_) {
      co_return Internal(
          "the session's primary answered a take-over with another placement: "
          "report this as a bug");
    }
    // The node that answered: it is this session's first backup now.
    const std::string old_primary = nodes.size() > 1 ? nodes[1] : std::string();
    const int64_t now = options_.clock->NowMs();
    table_.Set(key, nodes);
    primary_state_[key].touch_sent = kNoTouchSent;
    const StoredSession* mine = store_.Find(id, now);
    if (reply.session_omitted() &&
        (mine == nullptr || (version != 0 && mine->version() != version)) && !old_primary.empty()) {
      // The copy this node offered went away meanwhile (rare): take the old primary's.
      BackupRequest again;
      again.mutable_fetch()->set_id(id);
      Result<BackupReply> copy =
          co_await CallPeer(old_primary, std::move(again), backup_.fetch_timeout);
      if (copy.ok() && copy->code() == v1::OK && copy->has_session()) {
        *reply.mutable_session() = std::move(*copy->mutable_session());
        reply.set_session_omitted(false);
      }
    }
    if (!reply.session_omitted() && !HoldCopy(reply.session(), now)) {
      co_return ResourceExhausted(
          "this node could not hold the session it took over (its limits are lower than the "
          "other nodes'): give every node the same limits");
    }
    const StoredSession* held = store_.Find(id, now);
    if (held == nullptr) {
      co_return Unavailable(fmt::format(
          "session {} moved to this node but its copy could not be read here: retry", LogTag(id)));
    }
    ++counters_.moves_in;
    for (const std::string& node : reply.put_to()) {
      if (!Contains(nodes, node) || node == self_) continue;
      ++filling_[key];
      SendPut(node, OneCopy(CopyForBackup(*held, nodes)), nullptr, {key});
    }
    // Everyone else, the kept backups included, hears the new placement; the old primary
    // made it.
    std::vector<std::string> skip{self_};
    if (!old_primary.empty()) skip.push_back(old_primary);
    for (const std::string& node : reply.put_to()) skip.push_back(node);
    BroadcastPlacement(id, nodes, /*removed=*/false, nullptr, skip);
    co_return Status::Ok();
  }

  // Runs a client operation on session `key` where the session lives when this node is not its
  // primary (RouteToPrimary): the session the primary answered with, or nullopt when the
  // operation is to run here (this node is primary, or the session just moved here). A local
  // access ends a run of forwarded accesses.
  template <typename Request>
  asio::awaitable<Result<std::optional<v1::Session>>> RouteUnlessPrimary(
      const SessionKey& key, const Request& request, Request* (v1::ClientRequest::*field)()) {
    if (!IsPrimary(key)) {
      v1::ClientRequest op;
      *(op.*field)() = request;
      Result<std::optional<v1::ClientResponse>> routed =
          co_await RouteToPrimary(key, std::move(op));
      if (!routed.ok()) co_return routed.status();
      if (routed->has_value()) {
        Result<v1::Session> session = SessionFromResponse(**routed);
        if (!session.ok()) co_return session.status();
        co_return std::optional<v1::Session>(std::move(*session));
      }
    }
    EndRun(key);
    co_return std::optional<v1::Session>();
  }

  // A local access ends a run of forwarded accesses to `key` (move_on_access).
  void EndRun(const SessionKey& key) {
    if (PrimaryState* state = primary_state_.Find(key)) EndRun(*state);
  }
  static void EndRun(PrimaryState& state) {
    state.run_node = -1;
    state.run_count = 0;
  }

  // Where an operation `op` on session `key`, which this node is not primary of, runs: with
  // move_on_access this node takes the session over and the operation runs here (nullopt);
  // otherwise it is forwarded and the primary's answer returned (or nullopt when this node
  // became the primary meanwhile).
  asio::awaitable<Result<std::optional<v1::ClientResponse>>> RouteToPrimary(SessionKey key,
                                                                            v1::ClientRequest op) {
    auto self = shared_from_this();
    if (backup_.move_on_access && backup_.move_after == 0) {
      const std::string id = IdOf(op);
      Status taken = co_await TakeOwnership(key, id);
      if (!taken.ok()) co_return taken;
      co_return std::optional<v1::ClientResponse>();
    }
    Result<v1::ClientResponse> answer = co_await Forward(key, std::move(op));
    if (!answer.ok()) co_return answer.status();
    if (answer->request_id() == kLocalMarker) co_return std::optional<v1::ClientResponse>();
    co_return std::optional<v1::ClientResponse>(std::move(answer).value());
  }

  // Runs a client operation on the session's primary (move_on_access false). The answer's
  // request_id is kLocalMarker when this node became the primary meanwhile.
  asio::awaitable<Result<v1::ClientResponse>> Forward(SessionKey key, v1::ClientRequest op) {
    auto self = shared_from_this();
    const std::string id = IdOf(op);
    BackupRequest request;
    BackupForward& forward = *request.mutable_forward();
    forward.set_client_request(op.SerializeAsString());
    if (backup_.move_on_access && op.op_case() != v1::ClientRequest::kInvalidate &&
        op.op_case() != v1::ClientRequest::kRotateId) {
      forward.set_move_on_access(true);
      forward.set_move_after(backup_.move_after);
      if (RoleOf(key) == Role::kBackup) {
        if (const StoredSession* held = store_.Find(id, options_.clock->NowMs())) {
          forward.set_have_version(held->version());
        }
      }
    }
    ++counters_.forwards;
    Result<std::optional<BackupReply>> asked = co_await AskHolders(key, id, std::move(request));
    if (!asked.ok()) co_return asked.status();
    v1::ClientResponse response;
    if (!asked->has_value()) {
      response.set_request_id(kLocalMarker);
      co_return response;
    }
    if ((*asked)->code() != v1::OK) co_return Status((*asked)->code(), (*asked)->error());
    if (!response.ParseFromString((*asked)->client_response())) {
      co_return Internal("a peer answered a forwarded operation with a malformed response");
    }
    if ((*asked)->handed_over() && RoleOf(key) != Role::kPrimary) {
      ++counters_.fetches;
      // The operation ran on the old primary; its answer stands whatever the take-over does.
      Status installed =
          co_await InstallTakeOver(key, id, std::move(**asked), response.session().version());
      if (!installed.ok()) {
        spdlog::warn("node {}: taking over session {} after a forward failed: {}", self_,
                     LogTag(id), installed.ToString());
      }
    }
    if (response.status() == v1::NOT_FOUND && RoleOf(key) == Role::kProxy) {
      ApplyPlacement(key, {}, false);
    }
    co_return response;
  }

  void OnRequest(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const BackupRequest& request = envelope.backup_request();
    switch (request.op_case()) {
      case BackupRequest::kFetch:
        return Reply(from.node_id, ServeFetch(from.node_id, request));
      case BackupRequest::kForward: {
        v1::ClientRequest op;
        if (!op.ParseFromString(request.forward().client_request())) {
          BackupReply reply;
          reply.set_request_id(request.request_id());
          reply.set_code(v1::INVALID_ARGUMENT);
          reply.set_error(
              "a forwarded operation did not parse: run the same version on every node");
          return Reply(from.node_id, std::move(reply));
        }
        if (op.op_case() == v1::ClientRequest::kGet) {
          // A read runs at once, without a coroutine.
          std::optional<ForwardRun> run = BeginForward(from.node_id, request, op);
          if (!run) return;
          v1::ClientResponse response;
          response.set_request_id(op.request_id());
          SetResult(response, LocalGet(run->key, op.get()));
          return FinishForward(from.node_id, request, op, *run, response);
        }
        asio::co_spawn(executor_, ServeForward(from.node_id, request, std::move(op)),
                       asio::detached);
        return;
      }
      case BackupRequest::kFindByPrincipal: {
        BackupReply reply;
        reply.set_request_id(request.request_id());
        for (v1::Session& s : LocalPrimariesOf(request.find_by_principal().principal())) {
          *reply.add_sessions() = std::move(s);
        }
        return Reply(from.node_id, std::move(reply));
      }
      case BackupRequest::kTakeover:
        return Reply(from.node_id, ServeTakeover(from.node_id, request));
      case BackupRequest::kRelease:
        return Reply(from.node_id, ServeRelease(from.node_id, request));
      default: {
        BackupReply reply;
        reply.set_request_id(request.request_id());
        reply.set_code(v1::INVALID_ARGUMENT);
        reply.set_error("unknown backup request: run the same sessiond version on every node");
        return Reply(from.node_id, std::move(reply));
      }
    }
  }

  // A reply saying this node is not the primary, and where it thinks the session lives.
  BackupReply NotPrimary(uint64_t request_id, const std::string& id,
                         const std::vector<std::string>& nodes) {
    BackupReply reply;
    reply.set_request_id(request_id);
    if (nodes.empty()) {
      reply.set_code(v1::NOT_FOUND);
      reply.set_error(SessionStore::NotFoundError(id).message());
      return reply;
    }
    reply.set_not_primary(true);
    reply.mutable_placement()->set_id(id);
    SetNodes(reply.mutable_placement()->mutable_nodes(), nodes);
    return reply;
  }

  BackupReply ServeFetch(const std::string& from, const BackupRequest& request) {
    const std::string& id = request.fetch().id();
    const std::optional<SessionKey> key = SessionKey::FromText(id);
    BackupReply reply;
    reply.set_request_id(request.request_id());
    if (!key) {
      reply.set_code(v1::NOT_FOUND);
      reply.set_error(SessionStore::NotFoundError(id).message());
      return reply;
    }
    const std::vector<std::string> nodes = table_.Nodes(*key);
    const int64_t now = options_.clock->NowMs();
    if (RoleOf(nodes) != Role::kPrimary) {
      // The primary itself asking its backup for the copy (a take-over whose own copy went
      // missing meanwhile): served from the backup copy.
      const StoredSession* held = store_.Find(id, now);
      if (request.fetch().take_ownership() || held == nullptr || nodes.empty() ||
          nodes[0] != from) {
        return NotPrimary(request.request_id(), id, nodes);
      }
      *reply.mutable_session() = held->ToProto();
      reply.mutable_placement()->set_id(id);
      SetNodes(reply.mutable_placement()->mutable_nodes(), nodes);
      return reply;
    }
    const StoredSession* s = store_.Find(id, now);
    if (s == nullptr) {
      reply.set_code(v1::NOT_FOUND);
      reply.set_error(SessionStore::NotFoundError(id).message());
      return reply;
    }
    ++counters_.fetches_served;
    if (request.fetch().yielding()) {
      // Another primary of this session gives way to this one: re-assert, so the loser's
      // backups and proxies learn this node's copy and placement.
      ResolveConflict(*key, from);
    }
    const bool current = request.fetch().have_version() != 0 &&
                         request.fetch().have_version() == s->version() && Contains(nodes, from);
    if (current) {
      reply.set_session_omitted(true);
    } else {
      *reply.mutable_session() = s->ToProto();
    }
    reply.mutable_placement()->set_id(id);
    if (!request.fetch().take_ownership()) {
      SetNodes(reply.mutable_placement()->mutable_nodes(), nodes);
      return reply;
    }
    HandOver(from, *key, id, nodes, reply);
    return reply;
  }

  // Makes `from` the primary of session `key` (held here as its primary, placed on `nodes`) and
  // fills `reply`'s placement and put_to. This node, whose copy is the current one, stays as
  // the first backup, then the old backups that hold a copy, then rendezvous picks: a move
  // copies as little as possible (nothing at all when the asker and this node are the
  // holders).
  void HandOver(const std::string& from, const SessionKey& key, const std::string& id,
                const std::vector<std::string>& nodes, BackupReply& reply) {
    std::vector<std::string> keep{self_};
    keep.insert(keep.end(), nodes.begin() + 1, nodes.end());
    std::vector<std::string> live = LiveMembers();
    if (!Contains(live, from)) live.push_back(from);
    std::vector<std::string> moved{from};
    for (std::string& b : RefillBackups(key, from, keep, live, TargetBackups(live))) {
      moved.push_back(std::move(b));
    }
    // An old backup holds a copy at most a change or two behind (its gaps heal as any backup's),
    // unless this node is still filling it: then it gets the session from the new primary.
    const bool filling = filling_.count(key) > 0;
    for (size_t i = 1; i < moved.size(); ++i) {
      if (moved[i] == self_) continue;
      if (filling || !Contains(nodes, moved[i])) reply.add_put_to(moved[i]);
    }
    // This node stays a backup: its copy must cover what it told the backups (the asker's copy
    // may run up to a touch window ahead of this one's access time).
    const int64_t now = options_.clock->NowMs();
    const PrimaryState* state = primary_state_.Find(key);
    if (const StoredSession* s = state ? store_.Find(key, now) : nullptr) {
      CoverPrimaryAccesses(key, state->touch_sent + TouchWindowMs(s->max_idle_s()), now);
    }
    reply.mutable_placement()->set_id(id);
    SetNodes(reply.mutable_placement()->mutable_nodes(), moved);
    ApplyPlacement(key, moved, /*trusted=*/true);
    EndRun(key);
    ++counters_.moves_out;
  }

  // A forwarded operation this node serves as the session's primary: what BeginForward found
  // before it runs, for FinishForward after.
  struct ForwardRun {
    std::string id;
    SessionKey key;
    bool move = false;
    std::vector<std::string> nodes;  // the placement before the operation, kept for a move only
  };

  // Checks that this node is the primary of a forwarded operation's session (else answers
  // "not primary" and returns nullopt) and counts the run of forwarded accesses: with
  // move_on_access the asker takes the session over when this access and the `move_after`
  // before it all came forwarded from it (a local access or another node's resets the run).
  std::optional<ForwardRun> BeginForward(const std::string& from, const BackupRequest& request,
                                         const v1::ClientRequest& op) {
    ForwardRun run;
    run.id = IdOf(op);
    const std::optional<SessionKey> key = SessionKey::FromText(run.id);
    if (!key || !IsPrimary(*key)) {
      Reply(from, NotPrimary(request.request_id(), run.id,
                             key ? table_.Nodes(*key) : std::vector<std::string>()));
      return std::nullopt;
    }
    run.key = *key;
    ++counters_.forwards_served;
    const bool movable =
        request.forward().move_on_access() &&
        (op.op_case() == v1::ClientRequest::kGet || op.op_case() == v1::ClientRequest::kUpdate);
    if (movable) {
      const int from_index = table_.Intern(from);
      PrimaryState& state = primary_state_[*key];
      if (state.run_node != from_index) {
        state.run_node = from_index;
        state.run_count = 0;
      }
      run.move = state.run_count >= request.forward().move_after();
      ++state.run_count;
    }
    if (run.move) run.nodes = table_.Nodes(*key);
    return run;
  }

  static void SetResult(v1::ClientResponse& response, Result<v1::Session>&& result) {
    if (result.ok()) {
      response.mutable_session()->Swap(&result.value());
    } else {
      response.set_status(result.status().code());
      response.set_error(result.status().message());
    }
  }

  // Answers a forwarded operation that ran here with `response`, and hands the session over
  // to the asker in the same reply when the run says so.
  void FinishForward(const std::string& from, const BackupRequest& request,
                     const v1::ClientRequest& op, const ForwardRun& run,
                     const v1::ClientResponse& response) {
    BackupReply reply;
    reply.set_request_id(request.request_id());
    const StoredSession* s = run.move && response.status() == v1::OK && IsPrimary(run.key)
                                 ? store_.Find(run.key, options_.clock->NowMs())
                                 : nullptr;
    if (s != nullptr) {
      const std::vector<std::string> now_nodes = table_.Nodes(run.key);
      // The asker's copy is current when it was at this version, or one behind and a sync
      // update it confirmed brought it here.
      const uint64_t have = request.forward().have_version();
      const bool confirmed = backup_.ack == ReplicationAck::kSync &&
                             op.op_case() == v1::ClientRequest::kUpdate && have + 1 == s->version();
      const bool current = have != 0 && Contains(now_nodes, from) && now_nodes == run.nodes &&
                           (have == s->version() || confirmed);
      if (current) {
        reply.set_session_omitted(true);
      } else {
        *reply.mutable_session() = s->ToProto();
      }
      reply.set_handed_over(true);
      HandOver(from, run.key, run.id, now_nodes, reply);
    }
    reply.set_client_response(response.SerializeAsString());
    Reply(from, std::move(reply));
  }

  // A forwarded get runs at once (OnRequest); the other operations wait for their acks here.
  asio::awaitable<void> ServeForward(std::string from, BackupRequest request,
                                     v1::ClientRequest op) {
    auto self = shared_from_this();
    std::optional<ForwardRun> run = BeginForward(from, request, op);
    if (!run) co_return;
    v1::ClientResponse response;
    response.set_request_id(op.request_id());
    switch (op.op_case()) {
      case v1::ClientRequest::kGet:
        SetResult(response, LocalGet(run->key, op.get()));
        break;
      case v1::ClientRequest::kUpdate: {
        Result<v1::Session> updated = co_await LocalUpdate(op.update());
        SetResult(response, std::move(updated));
        break;
      }
      case v1::ClientRequest::kInvalidate: {
        Status s = co_await LocalInvalidate(op.invalidate());
        response.set_status(s.code());
        response.set_error(s.message());
        break;
      }
      case v1::ClientRequest::kRotateId: {
        Result<v1::Session> rotated = co_await LocalRotateId(op.rotate_id());
        SetResult(response, std::move(rotated));
        break;
      }
      default:
        response.set_status(v1::INVALID_ARGUMENT);
        response.set_error("only get, update, invalidate and rotate_id are forwarded");
    }
    FinishForward(from, request, op, *run, response);
  }

  // ---- The operations on the primary ----

  Status NotPrimaryNow(const std::string& id) const {
    return Unavailable(fmt::format(
        "session {} moved to another node while this one served it: retry", LogTag(id)));
  }

  Result<v1::Session> LocalGet(const SessionKey& key, const v1::GetRequest& request) {
    if (!IsPrimary(key)) return NotPrimaryNow(request.id());
    const int64_t now = options_.clock->NowMs();
    if (request.touch()) {
      Result<const StoredSession*> s = store_.Touch(key, now);
      if (!s.ok()) return s.status();
      MaybeReplicateTouch(**s, nullptr, now);
      return (*s)->ToProto();
    }
    const StoredSession* s = store_.Find(request.id(), now);
    if (s == nullptr) return SessionStore::NotFoundError(request.id());
    return s->ToProto();
  }

  // An update on the primary, applied and sent to the backups: the session to answer with and
  // the waiter of the backups' acks (nullptr: nothing to wait for). Not a coroutine, so that
  // Update on the primary runs it without a frame of its own.
  struct AppliedUpdate {
    v1::Session session;
    std::shared_ptr<AckWaiter> waiter;
  };
  Result<AppliedUpdate> ApplyUpdate(const SessionKey& key, v1::UpdateRequest request) {
    const PlacementTable::PlacementId placement = table_.Find(key);
    if (placement == 0 || table_.List(placement)[0] != self_index_) {
      return NotPrimaryNow(request.id());
    }
    const int64_t now = options_.clock->NowMs();
    Result<SessionStore::UpdateResult> updated = store_.Update(request, now);
    if (!updated.ok()) {
      if (updated.status().code() == v1::CONFLICT) ++counters_.update_conflicts;
      return updated.status();
    }
    v1::Session session = updated->session->ToProto();
    if (!updated->changed) {
      if (request.touch()) MaybeReplicateTouch(*updated->session, nullptr, now);
      return AppliedUpdate{std::move(session), nullptr};
    }
    ++counters_.updated;
    BackupChange change;
    change.set_kind(BackupChange::UPDATE);
    change.set_id(session.id());
    change.set_version(session.version());
    // Backups count an applied change as an access (touch_sent below), a window ahead.
    change.set_at_ms(now + TouchWindowMs(updated->session->max_idle_s()));
    v1::UpdateRequest& carried = *change.mutable_update();
    carried = std::move(request);
    carried.set_expected_version(0);
    carried.set_touch(false);
    primary_state_[key].touch_sent = now;
    std::shared_ptr<AckWaiter> waiter = NewWaiter();
    ChangeBackupsOf(placement, std::move(change), waiter);
    Publish(v1::SessionEvent::CHANGED, session.id(), "", session.version(), now);
    return AppliedUpdate{std::move(session), std::move(waiter)};
  }

  asio::awaitable<Result<v1::Session>> LocalUpdate(v1::UpdateRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    Result<AppliedUpdate> applied = ApplyUpdate(*key, std::move(request));
    if (!applied.ok()) co_return applied.status();
    Status acked = co_await AwaitAcks(applied->waiter);
    if (!acked.ok()) co_return acked;
    co_return std::move(applied->session);
  }

  asio::awaitable<Status> LocalInvalidate(v1::InvalidateRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    const std::vector<std::string> nodes = table_.Nodes(*key);
    if (RoleOf(nodes) != Role::kPrimary) co_return NotPrimaryNow(request.id());
    const int64_t now = options_.clock->NowMs();
    Result<uint64_t> version = store_.Erase(request.id(), now);
    if (!version.ok()) co_return version.status();
    ++counters_.invalidated;
    table_.Erase(*key);
    primary_state_.Erase(*key);
    BackupChange change;
    change.set_kind(BackupChange::INVALIDATE);
    change.set_id(request.id());
    change.set_version(*version);
    std::shared_ptr<AckWaiter> waiter = NewWaiter();
    ChangeBackups(nodes, std::move(change), waiter);
    BroadcastPlacement(request.id(), {}, /*removed=*/true, nullptr, nodes);
    Publish(v1::SessionEvent::INVALIDATED, request.id(), "", *version, now);
    co_return co_await AwaitAcks(waiter);
  }

  asio::awaitable<Result<v1::Session>> LocalRotateId(v1::RotateIdRequest request) {
    auto self = shared_from_this();
    const std::optional<SessionKey> key = SessionKey::FromText(request.id());
    if (!key) co_return SessionStore::NotFoundError(request.id());
    const std::vector<std::string> nodes = table_.Nodes(*key);
    if (RoleOf(nodes) != Role::kPrimary) co_return NotPrimaryNow(request.id());
    const int64_t now = options_.clock->NowMs();
    Result<const StoredSession*> renamed = store_.RenameToNewId(request.id(), *options_.ids, now);
    if (!renamed.ok()) co_return renamed.status();
    v1::Session session = (*renamed)->ToProto();
    const SessionKey new_key = (*renamed)->key();
    ++counters_.rotated;
    table_.Erase(*key);
    table_.Set(new_key, nodes);
    primary_state_.Erase(*key);
    primary_state_[new_key].touch_sent = now;
    BackupChange change;
    change.set_kind(BackupChange::ROTATE_ID);
    change.set_id(request.id());
    change.set_new_id(session.id());
    change.set_version(session.version());
    change.set_at_ms(now + TouchWindowMs((*renamed)->max_idle_s()));
    std::shared_ptr<AckWaiter> waiter = NewWaiter();
    ChangeBackups(nodes, std::move(change), waiter);
    BroadcastPlacement(request.id(), {}, /*removed=*/true, nullptr, nodes);
    BroadcastPlacement(session.id(), nodes, /*removed=*/false, waiter, nodes);
    Publish(v1::SessionEvent::ID_CHANGED, request.id(), session.id(), session.version(), now);
    Status acked = co_await AwaitAcks(waiter);
    if (!acked.ok()) co_return acked;
    co_return session;
  }

  // ---- Touches: a backup never expires its copy before the primary ----
  //
  // A primary replicates an access at most once per touch window (max_idle_s / touch_divisor),
  // and what it sends runs a window ahead (touch_sent + window), so the accesses it does not
  // send are covered. Everything that counts as a replicated access (a create, an update, a
  // rotation) carries the window too; a node that becomes primary (a move, a failover, a
  // hand-over) has sent nothing yet, so its first access goes out.

  static constexpr int64_t kNoTouchSent = std::numeric_limits<int64_t>::min() / 2;

  int64_t TouchWindowMs(uint32_t max_idle_s) const {
    return int64_t{max_idle_s} * 1000 / std::max<uint32_t>(1, backup_.touch_divisor);
  }

  // A copy of `s` for a new or stale backup (a create, a fill, a gap, a move's put), its access
  // time covering the accesses this primary has not replicated.
  BackupCopy CopyForBackup(const StoredSession& s, const std::vector<std::string>& nodes) const {
    BackupCopy copy;
    *copy.mutable_session() = s.ToProto();
    SetNodes(copy.mutable_nodes(), nodes);
    if (const PrimaryState* state = primary_state_.Find(s.key())) {
      const int64_t covered = state->touch_sent + TouchWindowMs(s.max_idle_s());
      if (covered > copy.session().last_access_ms()) {
        copy.mutable_session()->set_last_access_ms(covered);
      }
    }
    return copy;
  }

  // Moves this node's copy (a backup's, or an old primary's staying on as first backup) up to
  // `at_ms`, the time its primary's accesses are covered to: a change the primary counts as an
  // access carries it (a window ahead; older primaries send their own time, which changes
  // nothing). Past the session's lifetime it is not live at that time, and the lifetime bounds
  // the deadline anyway.
  void CoverPrimaryAccesses(const SessionKey& key, int64_t at_ms, int64_t now) {
    if (at_ms > now) (void)store_.Touch(key, at_ms);
  }

  // Replicates an access unless one was replicated within the touch window (see above).
  // `known_nodes`: the session's placement, or nullptr to look it up (only when a touch goes).
  void MaybeReplicateTouch(const StoredSession& s, const std::vector<std::string>* known_nodes,
                           int64_t now) {
    const int64_t window = TouchWindowMs(s.max_idle_s());
    int64_t& sent = primary_state_[s.key()].touch_sent;
    if (now - sent < window) return;
    sent = now;
    const std::vector<std::string> nodes = known_nodes ? *known_nodes : table_.Nodes(s.key());
    BackupChange change;
    change.set_kind(BackupChange::TOUCH);
    change.set_id(s.id());
    change.set_version(s.version());
    change.set_at_ms(now + window);
    ChangeBackups(nodes, std::move(change), nullptr);
  }

  std::vector<v1::Session> LocalPrimariesOf(const std::string& principal) {
    std::vector<v1::Session> found;
    for (const StoredSession* s : store_.FindByPrincipal(principal, options_.clock->NowMs())) {
      if (RoleOf(s->key()) == Role::kPrimary) found.push_back(s->ToProto());
    }
    return found;
  }

  asio::awaitable<void> GatherOne(std::shared_ptr<Gather> gather, std::string peer,
                                  BackupRequest request) {
    auto self = shared_from_this();
    Result<BackupReply> reply = co_await CallPeer(peer, std::move(request), backup_.fetch_timeout);
    if (reply.ok()) {
      for (const v1::Session& s : reply->sessions()) gather->found.emplace(s.id(), s);
    } else {
      ++gather->failed;
    }
    if (--gather->pending == 0) gather->timer.cancel();
  }

  // ---- Membership: failover, refill, joins ----

  void OnMember(const MemberEvent& event) {
    using Kind = MemberEvent::Kind;
    const std::string& node = event.member.node_id;
    if (node == self_ || stopping_) return;
    switch (event.kind) {
      case Kind::kDied:
      case Kind::kLeft:
        OnPeerGone(node);
        return;
      case Kind::kRestarted:
        OnPeerGone(node);
        OnPeerJoined(node);
        return;
      case Kind::kJoined:
        OnPeerJoined(node);
        return;
      case Kind::kRecovered:
        // Back from the dead with the same incarnation: a partition healed. This node re-placed
        // the peer's sessions meanwhile and the peer did the same with this node's; the
        // snapshots both ways find the sessions both claim (ResolveConflict) and make this
        // node ready again.
        if (event.previous_state == MemberState::kDead) OnPeerJoined(node, /*send_yours=*/true);
        return;
      default:
        return;
    }
  }

  void OnPeerGone(const std::string& node) {
    const auto started = std::chrono::steady_clock::now();
    snapshots_from_.erase(node);
    peer_interest_.erase(node);
    // Requests to it fail now rather than at their deadline.
    for (auto& [id, call] : calls_) {
      if (call->node != node || call->done) continue;
      call->done = true;
      call->status = Unavailable(fmt::format("node {} left the cluster", node));
      call->timer.cancel();
    }
    // It is not waited for any more; its fills are dropped (the refill below picks anew).
    for (auto it = outstanding_.begin(); it != outstanding_.end();) {
      if (it->second.node != node) {
        ++it;
        continue;
      }
      for (const SessionKey& key : it->second.fills) Unfill(key);
      it = outstanding_.erase(it);
    }
    for (const auto& waiter : std::vector(open_waiters_)) waiter->Release(node);
    if (auto it = fill_queue_.find(node); it != fill_queue_.end()) {
      for (const SessionKey& key : it->second) Unfill(key);
      fill_queue_.erase(it);
    }
    fills_in_flight_.erase(node);
    pending_proxies_.erase(node);
    pending_changes_.erase(node);

    const int gone = table_.IndexOf(node);
    if (gone < 0) return;
    std::set<PlacementTable::PlacementId> affected;
    table_.ForEachPlacement(
        [&](PlacementTable::PlacementId id, const PlacementTable::NodeList& nodes, size_t) {
          if (std::find(nodes.begin(), nodes.end(), gone) != nodes.end()) affected.insert(id);
        });
    if (affected.empty()) return;
    auto work = std::make_shared<FailoverWork>();
    work->node = node;
    work->started = started;
    table_.ForEach([&](const SessionKey& key, PlacementTable::PlacementId id) {
      if (affected.count(id) > 0) work->keys.push_back(key);
    });
    FailoverChunk(std::move(work));
  }

  // The sessions a departed node held, re-placed a chunk per loop turn so that a failover of
  // many sessions does not hold up the requests that arrive meanwhile (they retry briefly).
  struct FailoverWork {
    std::string node;
    std::vector<SessionKey> keys;
    size_t next = 0;
    std::set<SessionKey, KeyLess> promoted;
    size_t lost = 0;
    std::chrono::steady_clock::time_point started;
  };

  void FailoverChunk(std::shared_ptr<FailoverWork> work) {
    if (stopping_) return;
    // A restarted node is alive again but lost its copies: it counts as gone here.
    const std::vector<std::string> live = Without(LiveMembers(), work->node);
    const int64_t now = options_.clock->NowMs();
    const size_t end = std::min(work->keys.size(), work->next + kRefillChunk);
    for (; work->next < end; ++work->next) {
      const SessionKey& key = work->keys[work->next];
      const std::vector<std::string> nodes = table_.Nodes(key);
      if (!Contains(nodes, work->node)) continue;  // re-placed meanwhile (a move, a removal)
      std::vector<std::string> survivors;
      for (const std::string& n : nodes) {
        if (Contains(live, n)) survivors.push_back(n);
      }
      if (survivors.empty()) {
        // The primary and every backup are gone: nobody holds it any more.
        table_.Erase(key);
        primary_state_.Erase(key);
        ++work->lost;
        continue;
      }
      if (nodes[0] != self_ && survivors[0] == self_) {
        // This node is the first surviving backup: it promotes itself. Every other node reaches
        // the same placement from its own view of the same failure.
        if (store_.Find(key.ToText(), now) == nullptr) {
          table_.Erase(key);
          continue;
        }
        ++counters_.failovers;
        work->promoted.insert(key);
        primary_state_[key].touch_sent = kNoTouchSent;
      }
      table_.Set(key, survivors);
      if (!Contains(survivors, self_)) {
        (void)store_.Erase(key.ToText(), now);
        primary_state_.Erase(key);
      }
    }
    if (work->next < work->keys.size()) {
      asio::post(executor_, [weak = weak_from_this(), work = std::move(work)]() mutable {
        if (auto self = weak.lock()) self->FailoverChunk(std::move(work));
      });
      return;
    }
    if (work->lost > 0) {
      counters_.sessions_lost += work->lost;
      spdlog::error(
          "node {}: {} sessions lost with node {}: their primary and all {} backups "
          "failed together",
          self_, work->lost, work->node, backup_.backups);
    }
    RefillPrimaries(live, work->promoted);
    spdlog::info("node {}: {} left; this node is now primary of {} of its sessions ({} ms)", self_,
                 work->node, work->promoted.size(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - work->started)
                     .count());
  }

  // Fills the backups of every session this node is primary of that has fewer live backups
  // than the target (and of `resync`, just promoted, whose surviving backups may be a change
  // apart from this node's copy: they get the whole session again). Placements that change are
  // broadcast.
  void RefillPrimaries(const std::vector<std::string>& live,
                       const std::set<SessionKey, KeyLess>& resync) {
    const int me = self_index_;
    if (me < 0) return;
    const size_t target = TargetBackups(live);
    std::set<PlacementTable::PlacementId> short_placements;  // or holding a node not live
    table_.ForEachPlacement(
        [&](PlacementTable::PlacementId id, const PlacementTable::NodeList& nodes, size_t) {
          if (nodes[0] != me) return;
          size_t live_backups = 0;
          for (size_t i = 1; i < nodes.size(); ++i) {
            live_backups += Contains(live, table_.NodeName(nodes[i])) ? 1 : 0;
          }
          if (live_backups < target || live_backups + 1 != nodes.size()) {
            short_placements.insert(id);
          }
        });
    std::vector<SessionKey> keys(resync.begin(), resync.end());
    if (!short_placements.empty()) {
      table_.ForEach([&](const SessionKey& key, PlacementTable::PlacementId id) {
        if (short_placements.count(id) > 0 && resync.count(key) == 0) keys.push_back(key);
      });
    }
    if (keys.empty()) return;
    auto work = std::make_shared<RefillWork>();
    work->keys = std::move(keys);
    work->resync = resync;
    work->live = live;
    RefillChunk(std::move(work));
  }

  // Sessions whose backups are being refilled, a chunk per loop turn, so that a failover of
  // many sessions does not hold up the requests that arrive meanwhile.
  struct RefillWork {
    std::vector<SessionKey> keys;
    size_t next = 0;
    std::set<SessionKey, KeyLess> resync;
    std::vector<std::string> live;  // when the work began; nodes that died since are dropped
  };

  void RefillChunk(std::shared_ptr<RefillWork> work) {
    if (stopping_) return;
    const std::vector<std::string> now_live = LiveMembers();
    std::vector<std::string> live;
    for (const std::string& node : work->live) {
      if (Contains(now_live, node)) live.push_back(node);
    }
    const size_t target = TargetBackups(live);
    const size_t end = std::min(work->keys.size(), work->next + kRefillChunk);
    for (; work->next < end; ++work->next) {
      const SessionKey& key = work->keys[work->next];
      const std::vector<std::string> nodes = table_.Nodes(key);
      // Not while asking another primary of it whether to give way (its claim would spread).
      if (RoleOf(nodes) != Role::kPrimary || yielding_.count(key) > 0) continue;
      std::vector<std::string> backups =
          RefillBackups(key, self_, {nodes.begin() + 1, nodes.end()}, live, target);
      std::vector<std::string> placed{self_};
      placed.insert(placed.end(), backups.begin(), backups.end());
      const bool full_resync = work->resync.count(key) > 0;
      if (placed == nodes && !full_resync) continue;
      table_.Set(key, placed);
      for (const std::string& b : backups) {
        if (full_resync || !Contains(nodes, b)) QueueFill(b, key);
      }
      BroadcastPlacement(key.ToText(), placed, /*removed=*/false, nullptr, {});
    }
    if (work->next >= work->keys.size()) return;
    asio::post(executor_, [weak = weak_from_this(), work = std::move(work)]() mutable {
      if (auto self = weak.lock()) self->RefillChunk(std::move(work));
    });
  }

  void OnPeerJoined(const std::string& node, bool send_yours = false) {
    if (!started_) return;
    SendSnapshot(node, send_yours);
    SendInterest(node);
    RefillPrimaries(LiveMembers(), {});
  }

  // Sends `node` the placements of every session this node is primary of, so it can serve
  // them; the last chunk says so (its Ready() waits for every peer's).
  void SendSnapshot(const std::string& node, bool send_yours = false) {
    PeerEnvelope envelope;
    BackupProxyUpdate* update = envelope.mutable_backup_proxy_update();
    const int me = self_index_;
    std::vector<std::pair<SessionKey, PlacementTable::PlacementId>> mine;
    if (me >= 0) {
      table_.ForEach([&](const SessionKey& key, PlacementTable::PlacementId id) {
        if (table_.List(id)[0] == me) mine.emplace_back(key, id);
      });
    }
    for (const auto& [key, id] : mine) {
      BackupPlacement& p = *update->add_placements();
      p.set_id(key.ToText());
      const std::vector<std::string> nodes = table_.NodesOf(id);
      SetNodes(p.mutable_nodes(), nodes);
      if (static_cast<size_t>(update->placements_size()) >= backup_.batch_placements) {
        (void)SendEnvelope(node, std::move(envelope));
        envelope.Clear();
        update = envelope.mutable_backup_proxy_update();
      }
    }
    update->set_snapshot_done(true);
    update->set_send_yours(send_yours);
    (void)SendEnvelope(node, std::move(envelope));
  }

  // ---- Graceful stop: handing over ----

  asio::awaitable<void> Handoff() {
    auto self = shared_from_this();
    handing_off_ = true;
    const auto deadline = std::chrono::steady_clock::now() + backup_.handoff_timeout;
    const std::vector<std::string> peers = cluster_->LivePeers();
    if (peers.empty()) co_return;
    FlushProxies();
    const int64_t now = options_.clock->NowMs();
    // Primaries go to their first live backup (it holds a copy), or to a rendezvous pick.
    std::map<std::string, std::vector<BackupCopy>> takeovers;
    std::map<std::string, std::vector<std::string>> releases;
    std::vector<SessionKey> keys;
    table_.ForEach(
        [&](const SessionKey& key, PlacementTable::PlacementId) { keys.push_back(key); });
    for (const SessionKey& key : keys) {
      const std::vector<std::string> nodes = table_.Nodes(key);
      const Role role = RoleOf(nodes);
      if (role == Role::kBackup) {
        if (Contains(peers, nodes[0])) releases[nodes[0]].push_back(key.ToText());
        continue;
      }
      if (role != Role::kPrimary) continue;
      const StoredSession* s = store_.Find(key.ToText(), now);
      if (s == nullptr) continue;
      std::vector<std::string> rest;
      for (size_t i = 1; i < nodes.size(); ++i) {
        if (Contains(peers, nodes[i])) rest.push_back(nodes[i]);
      }
      if (rest.empty()) rest = PickByRendezvous(key, peers, {}, 1);
      if (rest.empty()) continue;
      BackupCopy copy;
      *copy.mutable_session() = s->ToProto();
      SetNodes(copy.mutable_nodes(), rest);
      takeovers[rest[0]].push_back(std::move(copy));
    }
    size_t handed = 0;
    for (auto& [target, copies] : takeovers) {
      for (size_t first = 0; first < copies.size(); first += backup_.batch_sessions) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        BackupRequest request;
        const size_t last = std::min(copies.size(), first + backup_.batch_sessions);
        for (size_t i = first; i < last; ++i) *request.mutable_takeover()->add_copies() = copies[i];
        Result<BackupReply> reply = co_await CallPeer(target, std::move(request), left);
        if (!reply.ok() || reply->code() != v1::OK) {
          spdlog::warn("node {}: {} did not take over {} sessions: {}", self_, target, last - first,
                       reply.ok() ? reply->error() : reply.status().message());
          continue;
        }
        for (size_t i = first; i < last; ++i) {
          const std::optional<SessionKey> key = SessionKey::FromText(copies[i].session().id());
          if (key) ApplyPlacement(*key, ToVector(copies[i].nodes()), /*trusted=*/true);
        }
        handed += last - first;
      }
    }
    counters_.handoffs += handed;
    size_t released = 0;
    for (auto& [primary, ids] : releases) {
      for (size_t first = 0; first < ids.size(); first += backup_.batch_placements) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        BackupRequest request;
        const size_t last = std::min(ids.size(), first + backup_.batch_placements);
        for (size_t i = first; i < last; ++i) request.mutable_release()->add_ids(ids[i]);
        Result<BackupReply> reply = co_await CallPeer(primary, std::move(request), left);
        if (reply.ok() && reply->code() == v1::OK) released += last - first;
      }
    }
    counters_.releases += released;
    spdlog::info("node {}: handed {} primaries over and released {} backup copies", self_, handed,
                 released);
  }

  BackupReply ServeTakeover(const std::string& from, const BackupRequest& request) {
    BackupReply reply;
    reply.set_request_id(request.request_id());
    const std::vector<std::string> live = Without(LiveMembers(), from);
    const size_t target = TargetBackups(live);
    const int64_t now = options_.clock->NowMs();
    for (const BackupCopy& copy : request.takeover().copies()) {
      const std::optional<SessionKey> key = SessionKey::FromText(copy.session().id());
      if (!key || !HoldCopy(copy.session(), now)) continue;
      const std::vector<std::string> given = ToVector(copy.nodes());
      std::vector<std::string> backups = RefillBackups(
          *key, self_, {given.begin() + std::min<size_t>(1, given.size()), given.end()}, live,
          target);
      std::vector<std::string> placed{self_};
      placed.insert(placed.end(), backups.begin(), backups.end());
      table_.Set(*key, placed);
      primary_state_[*key].touch_sent = kNoTouchSent;
      for (const std::string& b : backups) {
        if (!Contains(given, b)) QueueFill(b, *key);
      }
      BroadcastPlacement(copy.session().id(), placed, /*removed=*/false, nullptr, {});
    }
    return reply;
  }

  BackupReply ServeRelease(const std::string& from, const BackupRequest& request) {
    BackupReply reply;
    reply.set_request_id(request.request_id());
    const std::vector<std::string> live = Without(LiveMembers(), from);
    const size_t target = TargetBackups(live);
    for (const std::string& id : request.release().ids()) {
      const std::optional<SessionKey> key = SessionKey::FromText(id);
      if (!key) continue;
      const std::vector<std::string> nodes = table_.Nodes(*key);
      if (RoleOf(nodes) != Role::kPrimary) continue;
      std::vector<std::string> backups =
          RefillBackups(*key, self_, Without({nodes.begin() + 1, nodes.end()}, from), live, target);
      std::vector<std::string> placed{self_};
      placed.insert(placed.end(), backups.begin(), backups.end());
      table_.Set(*key, placed);
      for (const std::string& b : backups) {
        if (!Contains(nodes, b)) QueueFill(b, *key);
      }
      BroadcastPlacement(id, placed, /*removed=*/false, nullptr, {});
    }
    return reply;
  }

  // ---- Watch events across the cluster ----

  void OnWatchInterest(const PeerIdentity& from, const PeerEnvelope& envelope) {
    const peer::v1::BackupWatchInterest& interest = envelope.backup_watch_interest();
    if (!interest.all() && interest.ids_size() == 0) {
      peer_interest_.erase(from.node_id);
      return;
    }
    PeerInterest& p = peer_interest_[from.node_id];
    p.all = interest.all();
    p.ids = {interest.ids().begin(), interest.ids().end()};
  }

  void OnWatchEvent(const PeerIdentity&, const PeerEnvelope& envelope) {
    DeliverLocally(envelope.backup_watch_event().event());
  }

  // This node's watchers: what they want, kept here so peers can be told.
  void FollowWatches(const v1::SessionEvent& event) {
    if (event.kind() != v1::SessionEvent::ID_CHANGED) return;
    bool changed = false;
    for (auto& [id, ids] : watches_) {
      for (std::string& watched : ids) {
        if (watched == event.id()) {
          watched = event.new_id();
          changed = true;
        }
      }
    }
    if (changed) AnnounceInterestSoon();
  }

  void DeliverLocally(const v1::SessionEvent& event) {
    FollowWatches(event);
    hub_.Publish(event);
  }

  // Publishes an event of a session this node is primary of: to its own watchers, and to the
  // peers whose watchers want it.
  void Publish(v1::SessionEvent::Kind kind, const std::string& id, const std::string& new_id,
               uint64_t version, int64_t now) {
    // Nobody watches (the usual case): no event to build.
    if (peer_interest_.empty() && watches_.empty() && hub_.watch_count() == 0) return;
    const v1::SessionEvent event = MakeSessionEvent(kind, id, new_id, version, now, self_);
    for (auto& [peer, interest] : peer_interest_) {
      const bool wanted = interest.all || interest.ids.count(id) > 0;
      if (kind == v1::SessionEvent::ID_CHANGED && interest.ids.erase(id) > 0) {
        interest.ids.insert(new_id);  // the peer's watch follows the id, as EventHub's does
      }
      if (!wanted) continue;
      PeerEnvelope envelope;
      *envelope.mutable_backup_watch_event()->mutable_event() = event;
      (void)SendEnvelope(peer, std::move(envelope));
    }
    DeliverLocally(event);
  }

 public:
  uint64_t AddWatch(std::vector<std::string> ids) {
    const uint64_t id = ++next_watch_id_;
    watches_[id] = std::move(ids);
    AnnounceInterestSoon();
    return id;
  }
  EventHub& hub() { return hub_; }

 private:
  void AnnounceInterestSoon() {
    if (announce_posted_) return;
    announce_posted_ = true;
    asio::post(executor_, [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self) return;
      self->announce_posted_ = false;
      for (const std::string& peer : self->cluster_->LivePeers()) self->SendInterest(peer);
    });
  }

  void SendInterest(const std::string& peer) {
    if (stopping_ || !subscribed_) return;
    PeerEnvelope envelope;
    peer::v1::BackupWatchInterest& interest = *envelope.mutable_backup_watch_interest();
    std::set<std::string> ids;
    for (const auto& [id, watched] : watches_) {
      if (watched.empty()) interest.set_all(true);
      ids.insert(watched.begin(), watched.end());
    }
    if (!interest.all()) {
      for (const std::string& id : ids) interest.add_ids(id);
    }
    if (!interest.all() && interest.ids_size() == 0 && !announced_interest_) return;
    announced_interest_ = interest.all() || interest.ids_size() > 0;
    (void)SendEnvelope(peer, std::move(envelope));
  }

  // ---- Housekeeping ----

  void Unsubscribe() {
    if (!subscribed_) return;
    subscribed_ = false;
    messages_.Clear();
    cluster_->RemoveMemberListener(member_listener_);
  }

  void FailAllWaits(const std::string& why) {
    for (const auto& waiter : std::vector(open_waiters_)) waiter->Finish(Unavailable(why));
    for (auto& [id, call] : calls_) {
      if (call->done) continue;
      call->done = true;
      call->status = Unavailable(why);
      call->timer.cancel();
    }
  }

  // Acks lost with a broken link never come: drop what waited too long, and send the fills
  // again (a sync write's own deadline answers it meanwhile).
  void RetryLostAcks() {
    const auto too_old = std::chrono::steady_clock::now() - 2 * backup_.ack_timeout;
    std::vector<uint64_t> stale;
    for (const auto& [id, o] : outstanding_) {
      if (o.sent < too_old) stale.push_back(id);
    }
    for (uint64_t id : stale) {
      Outstanding o = std::move(outstanding_[id]);
      outstanding_.erase(id);
      if (o.fill_batch && fills_in_flight_[o.node] > 0) --fills_in_flight_[o.node];
      for (const SessionKey& key : o.fills) {
        Unfill(key);
        if (RoleOf(key) == Role::kPrimary && Contains(table_.Nodes(key), o.node)) {
          QueueFill(o.node, key);
        }
      }
    }
  }

  asio::awaitable<void> ExpiryLoop(std::shared_ptr<Impl> self) {
    (void)self;
    while (!stopping_) {
      ExpireDue();
      RetryLostAcks();
      expiry_timer_.expires_after(store_.ExpiryWait(options_.clock->NowMs(), kMaxExpiryWait));
      boost::system::error_code ec;
      co_await expiry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    expiry_running_ = false;
    expiry_stopped_.cancel();
  }

  asio::any_io_executor executor_;
  const ManagerOptions options_;
  const BackupOptions backup_;
  Cluster* const cluster_;
  const std::string self_;
  SessionStore store_;    // full copies: primaries and backups
  PlacementTable table_;  // every session's placement: primaries, backups and proxies
  // This node's index in table_, interned at construction (node ids are never forgotten).
  const PlacementTable::NodeIndex self_index_;
  EventHub hub_;
  asio::steady_timer expiry_timer_;
  asio::steady_timer expiry_stopped_;
  Membership::ListenerId member_listener_ = 0;
  MessageSubscriptions messages_;
  bool subscribed_ = false;
  bool started_ = false;
  bool stopping_ = false;
  bool expiry_running_ = false;

  uint64_t next_request_id_ = 0;
  std::unordered_map<uint64_t, Outstanding> outstanding_;
  std::vector<std::shared_ptr<AckWaiter>> open_waiters_;
  std::map<uint64_t, std::shared_ptr<Call>> calls_;
  std::map<std::string, PendingProxy> pending_proxies_;
  std::map<std::string, PendingChanges> pending_changes_;
  // Plain acks of this loop turn, per peer.
  std::map<std::string, std::vector<uint64_t>> pending_acks_;
  bool flush_posted_ = false;
  // Fills: per node, the sessions to copy there; batches in flight; sessions awaiting a fill.
  std::map<std::string, std::deque<SessionKey>> fill_queue_;
  std::map<std::string, size_t> fills_in_flight_;
  std::unordered_map<SessionKey, uint32_t, SessionKeyHash> filling_;
  bool fill_posted_ = false;
  // Per session this node is primary of (entries may outlive that; they are dropped with the
  // copy): when an access last went to its backups, and with move_on_access the run of
  // forwarded accesses, the node they came from and how many in a row. One flat table, since
  // every client operation on a primary reads it.
  FlatKeyMap<PrimaryState> primary_state_;
  // Peers whose placements this node has received in full (see Ready()).
  std::set<std::string, std::less<>> snapshots_from_;
  // Watches: this node's (by watch id: the ids watched, empty = all) and the peers'.
  std::map<uint64_t, std::vector<std::string>> watches_;
  uint64_t next_watch_id_ = 0;
  bool announce_posted_ = false;
  bool announced_interest_ = false;
  std::map<std::string, PeerInterest, std::less<>> peer_interest_;
  // Sessions two nodes claim: those this node won, re-asserted once per loop turn, and those
  // it is asking the winner about.
  std::set<SessionKey, KeyLess> reasserting_;
  bool reassert_posted_ = false;
  bool handing_off_ = false;
  std::string reassert_claimant_;
  std::set<SessionKey, KeyLess> yielding_;
  std::map<std::string, std::deque<SessionKey>> yield_queue_;
  std::map<std::string, size_t> yields_in_flight_;
  Counters counters_;
};

std::unique_ptr<WatchHandle> BackupManager::Impl::Watch(std::vector<std::string> ids,
                                                        EventSink sink) {
  const uint64_t watch_id = AddWatch(ids);
  return std::make_unique<BackupWatch>(hub_.Subscribe(std::move(ids), std::move(sink)),
                                       weak_from_this(), watch_id);
}

BackupManager::BackupManager(asio::any_io_executor executor, ManagerOptions options,
                             Cluster* cluster, BackupOptions backup)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), cluster, backup)) {}

BackupManager::~BackupManager() { impl_->Abandon(); }

asio::awaitable<Status> BackupManager::Start() { co_return impl_->Start(); }

asio::awaitable<void> BackupManager::Stop() { co_await impl_->Stop(); }

asio::awaitable<Result<v1::Session>> BackupManager::Create(v1::CreateRequest request) {
  return impl_->Create(std::move(request));
}

asio::awaitable<Result<v1::Session>> BackupManager::Get(v1::GetRequest request) {
  return impl_->Get(std::move(request));
}

asio::awaitable<Result<v1::Session>> BackupManager::Update(v1::UpdateRequest request) {
  return impl_->Update(std::move(request));
}

asio::awaitable<Status> BackupManager::Invalidate(v1::InvalidateRequest request) {
  return impl_->Invalidate(std::move(request));
}

asio::awaitable<Result<v1::Session>> BackupManager::RotateId(v1::RotateIdRequest request) {
  return impl_->RotateId(std::move(request));
}

asio::awaitable<Result<v1::SessionList>> BackupManager::FindByPrincipal(
    v1::FindByPrincipalRequest request) {
  return impl_->FindByPrincipal(std::move(request));
}

std::unique_ptr<WatchHandle> BackupManager::Watch(std::vector<std::string> ids, EventSink sink) {
  return impl_->Watch(std::move(ids), std::move(sink));
}

v1::NodeStats BackupManager::Stats() const { return impl_->Stats(); }

Readiness BackupManager::Ready() const { return impl_->Ready(); }

std::optional<ContentDigest> BackupManager::Digest() const { return impl_->Digest(); }

void BackupManager::AppendMetrics(std::string& out) const { impl_->AppendMetrics(out); }

BackupManager::RoleCounts BackupManager::Roles() const { return impl_->Roles(); }

size_t BackupManager::ExpireDue() { return impl_->ExpireDue(); }

}  // namespace sessiond
