#include "replication/cluster/cluster.h"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <cassert>
#include <map>
#include <utility>

#include "replication/log_errors.h"

namespace sessiond {
namespace {

using Envelope = peer::v1::PeerEnvelope;

// Fills in a fresh incarnation when none was given.
ClusterOptions WithIncarnation(ClusterOptions options) {
  if (options.network.self.incarnation == 0) {
    options.network.self.incarnation = Cluster::NewIncarnation();
  }
  return options;
}

}  // namespace

class Cluster::Impl final : public PeerNetwork::Observer,
                            public std::enable_shared_from_this<Cluster::Impl> {
 public:
  Impl(asio::any_io_executor executor, ClusterOptions options)
      : executor_(std::move(executor)),
        options_(WithIncarnation(std::move(options))),
        clock_(*options_.clock),
        membership_(options_.network.self, "", clock_.NowMs()),
        detector_(options_.detector),
        heartbeat_timer_(executor_),
        network_(executor_, options_.network, this) {}

  Status Start();
  asio::awaitable<void> Leave(std::string reason);
  void Stop();
  Result<uint64_t> Send(std::string_view node_id, Envelope envelope) {
    return network_.Send(node_id, std::move(envelope));
  }
  Status Subscribe(Envelope::BodyCase kind, MessageHandler handler);
  void Tick();
  ClusterView View() const;

  Membership& membership() { return membership_; }
  uint64_t AddLinkListener(LinkListener listener) {
    const uint64_t id = next_link_listener_id_++;
    link_listeners_.emplace(id, std::move(listener));
    return id;
  }
  void RemoveLinkListener(uint64_t id) { link_listeners_.erase(id); }
  std::optional<PeerLinkStatus> LinkStatus(std::string_view node_id) const {
    return network_.LinkStatus(node_id);
  }
  const NodeIdentity& self() const { return options_.network.self; }
  Endpoint listen_endpoint() const { return network_.listen_endpoint(); }

  // PeerNetwork::Observer.
  void OnPeerUp(const PeerIdentity& peer) override;
  void OnPeerDown(const PeerIdentity& peer, const Status& why) override;
  void OnPeerMessage(const PeerIdentity& peer, const Envelope& envelope) override;

 private:
  // Heartbeat bookkeeping per peer, for the round-trip time.
  struct Echo {
    int64_t peer_sent_ms = 0;  // sent_ms of the peer's last heartbeat; 0 = none yet
    int64_t received_ms = 0;   // when it arrived here
    int64_t rtt_ms = -1;
  };

  asio::awaitable<void> HeartbeatLoop(std::shared_ptr<Impl> self);
  void OnHeartbeat(const PeerIdentity& peer, const peer::v1::Heartbeat& heartbeat, int64_t now_ms);
  // Tells every linked peer which peers this node is linked to.
  void BroadcastMemberList();
  void NotifyLink(const PeerIdentity& peer, bool up);

  asio::any_io_executor executor_;
  const ClusterOptions options_;
  const Clock& clock_;
  Membership membership_;
  FailureDetector detector_;
  // By PeerEnvelope::BodyCase. Shared, so that a message holds its handler alive (a handler
  // may replace itself) for the price of a reference count, not a copy of the std::function
  // (a heap allocation when its captures are over 16 bytes, as MessageSubscriptions' are).
  std::map<int, std::shared_ptr<const MessageHandler>> handlers_;
  std::map<std::string, Echo, std::less<>> echoes_;
  std::map<uint64_t, LinkListener> link_listeners_;
  uint64_t next_link_listener_id_ = 1;
  uint64_t messages_unhandled_ = 0;
  asio::steady_timer heartbeat_timer_;
  bool started_ = false;
  bool leaving_ = false;
  bool stopped_ = false;
  // Last: destroyed first, so that no network callback reaches a member already gone.
  PeerNetwork network_;
};

Status Cluster::Impl::Start() {
  if (started_ || stopped_) return Internal("Cluster::Start called twice");
  const NodeIdentity& self = options_.network.self;
  if (self.node_id.empty()) {
    return InvalidArgument("the node has no id; give it one with --node-id");
  }
  if (self.cluster.empty()) {
    return InvalidArgument("the cluster has no name; give every node of it the same name");
  }
  if (Status s = options_.detector.Validate(); !s.ok()) return s;
  if (options_.heartbeat_interval.count() < 0 ||
      options_.heartbeat_interval.count() >= options_.detector.suspect_after_ms) {
    return InvalidArgument(fmt::format(
        "the heartbeat interval ({} ms) must be shorter than the time after which a silent peer "
        "is suspect ({} ms), or healthy peers would look suspect",
        options_.heartbeat_interval.count(), options_.detector.suspect_after_ms));
  }
  if (Status s = network_.Start(); !s.ok()) return s;
  membership_.SetSelfAddress(network_.advertise_address());
  started_ = true;
  if (options_.heartbeat_interval.count() > 0) {
    asio::co_spawn(executor_, HeartbeatLoop(shared_from_this()),
                   LogErrors("cluster heartbeat loop"));
  }
  return Status::Ok();
}

asio::awaitable<void> Cluster::Impl::HeartbeatLoop(std::shared_ptr<Impl> /*self*/) {
  while (!stopped_ && !leaving_) {
    heartbeat_timer_.expires_after(options_.heartbeat_interval);
    boost::system::error_code ec;
    co_await heartbeat_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_ || leaving_) co_return;
    Tick();
  }
}

void Cluster::Impl::Tick() {
  if (!started_ || stopped_ || leaving_) return;
  const int64_t now = clock_.NowMs();
  for (const std::string& node : network_.LinkedPeers()) {
    Envelope envelope;
    peer::v1::Heartbeat* heartbeat = envelope.mutable_heartbeat();
    heartbeat->set_sent_ms(now);
    auto it = echoes_.find(node);
    if (it != echoes_.end() && it->second.peer_sent_ms != 0) {
      heartbeat->set_echo_sent_ms(it->second.peer_sent_ms);
      heartbeat->set_echo_held_ms(now - it->second.received_ms);
    }
    // A full queue costs the peer one heartbeat; the queue's own traffic is a sign of life.
    (void)network_.Send(node, std::move(envelope));
  }
  // Verdicts may call listeners, which may change the view: walk a copy.
  for (const Member& member : membership_.members()) {
    if (member.self) continue;
    if (member.state != MemberState::kAlive && member.state != MemberState::kSuspect) continue;
    switch (detector_.Check(member.node_id, now)) {
      case FailureDetector::Verdict::kDead:
        spdlog::warn("peer {} is dead: nothing heard from it for {} ms", member.node_id,
                     options_.detector.dead_after_ms);
        membership_.MarkDead(member.node_id, now);
        break;
      case FailureDetector::Verdict::kSuspect:
        if (member.state == MemberState::kAlive) {
          spdlog::info("peer {} is suspect: nothing heard from it for {} ms", member.node_id,
                       options_.detector.suspect_after_ms);
          membership_.MarkSuspect(member.node_id, now);
        }
        break;
      case FailureDetector::Verdict::kAlive:
        break;
    }
  }
}

void Cluster::Impl::OnPeerUp(const PeerIdentity& peer) {
  const int64_t now = clock_.NowMs();
  detector_.Heard(peer.node_id, now);
  echoes_[peer.node_id] = Echo{};
  membership_.OnContact(peer, now);
  BroadcastMemberList();
  NotifyLink(peer, true);
}

void Cluster::Impl::OnPeerDown(const PeerIdentity& peer, const Status& /*why*/) {
  // The network logged why. Whether the peer is gone is the failure detector's call: a link
  // breaks and comes back without the member ever being in doubt.
  NotifyLink(peer, false);
}

void Cluster::Impl::NotifyLink(const PeerIdentity& peer, bool up) {
  // Listeners may add or remove listeners: walk a snapshot of the ids, and skip the removed.
  std::vector<uint64_t> ids;
  for (const auto& [id, listener] : link_listeners_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = link_listeners_.find(id);
    if (it == link_listeners_.end()) continue;
    const LinkListener listener = it->second;
    listener(peer, up);
  }
}

void Cluster::Impl::OnPeerMessage(const PeerIdentity& peer, const Envelope& envelope) {
  const int64_t now = clock_.NowMs();
  const Member* member = membership_.Find(peer.node_id);
  if (member != nullptr && member->state != MemberState::kLeft) {
    detector_.Heard(peer.node_id, now);
    membership_.OnHeard(peer.node_id, peer.incarnation, now);
  }
  switch (envelope.body_case()) {
    case Envelope::kHeartbeat:
      OnHeartbeat(peer, envelope.heartbeat(), now);
      return;
    case Envelope::kLeave:
      spdlog::info("peer {} leaves the cluster: {}", peer.node_id, envelope.leave().reason());
      detector_.Forget(peer.node_id);
      network_.ForgetPeerAddresses(peer.node_id);
      membership_.MarkLeft(peer.node_id, now);
      return;
    case Envelope::kMembers:
      for (const peer::v1::MemberInfo& info : envelope.members().members()) {
        network_.AddPeerAddress(info.listen_address(), info.node_id());
      }
      return;
    case Envelope::kHello:
    case Envelope::kHelloAck:
    case Envelope::kHelloProof:
    case Envelope::kRefuse:
    case Envelope::BODY_NOT_SET:
      spdlog::debug("peer {} sent a handshake or empty message on an established link",
                    peer.node_id);
      return;
    default:
      break;
  }
  auto it = handlers_.find(envelope.body_case());
  if (it == handlers_.end()) {
    ++messages_unhandled_;
    return;
  }
  // A reference: the handler may replace itself.
  const std::shared_ptr<const MessageHandler> handler = it->second;
  (*handler)(peer, envelope);
}

void Cluster::Impl::OnHeartbeat(const PeerIdentity& peer, const peer::v1::Heartbeat& heartbeat,
                                int64_t now_ms) {
  Echo& echo = echoes_[peer.node_id];
  echo.peer_sent_ms = heartbeat.sent_ms();
  echo.received_ms = now_ms;
  if (heartbeat.echo_sent_ms() != 0) {
    // Both timestamps are this node's clock; a step of that clock can make it negative.
    echo.rtt_ms =
        std::max<int64_t>(0, now_ms - heartbeat.echo_sent_ms() - heartbeat.echo_held_ms());
  }
}

void Cluster::Impl::BroadcastMemberList() {
  Envelope envelope;
  peer::v1::MemberList* list = envelope.mutable_members();
  for (const PeerLinkStatus& status : network_.Peers()) {
    if (!status.linked) continue;
    peer::v1::MemberInfo* info = list->add_members();
    info->set_node_id(status.identity.node_id);
    info->set_incarnation(status.identity.incarnation);
    info->set_listen_address(status.identity.listen_address);
  }
  for (const std::string& node : network_.LinkedPeers()) (void)network_.Send(node, envelope);
}

Status Cluster::Impl::Subscribe(Envelope::BodyCase kind, MessageHandler handler) {
  if (kind < Envelope::kProbe) {
    return InvalidArgument(fmt::format(
        "message kind {} belongs to the cluster itself; modes subscribe to Probe and kinds "
        "from 20 up",
        static_cast<int>(kind)));
  }
  if (handler) {
    handlers_[kind] = std::make_shared<const MessageHandler>(std::move(handler));
  } else {
    handlers_.erase(kind);
  }
  return Status::Ok();
}

asio::awaitable<void> Cluster::Impl::Leave(std::string reason) {
  if (!started_ || stopped_ || leaving_) co_return;
  leaving_ = true;
  heartbeat_timer_.cancel();
  spdlog::info("node {} leaves the cluster: {}", self().node_id, reason);
  membership_.MarkLeft(self().node_id, clock_.NowMs());
  Envelope envelope;
  envelope.mutable_leave()->set_reason(std::move(reason));
  for (const std::string& node : network_.LinkedPeers()) (void)network_.Send(node, envelope);
  network_.Drain();
  co_await network_.WaitIdle(options_.leave_timeout);
  Stop();
}

void Cluster::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  heartbeat_timer_.cancel();
  network_.Stop();
}

ClusterView Cluster::Impl::View() const {
  ClusterView view;
  view.self = options_.network.self;
  if (started_) {
    view.listen_address = network_.listen_endpoint().ToString();
    view.advertise_address = network_.advertise_address();
  }
  view.counters = network_.counters();
  view.messages_unhandled = messages_unhandled_;
  std::map<std::string, PeerLinkStatus> links;
  for (PeerLinkStatus& status : network_.Peers()) {
    std::string id = status.identity.node_id;
    links.emplace(std::move(id), std::move(status));
  }
  const int64_t now = clock_.NowMs();
  for (const Member& member : membership_.members()) {
    MemberView m;
    m.member = member;
    if (!member.self) {
      if (auto it = links.find(member.node_id); it != links.end()) {
        const PeerLinkStatus& link = it->second;
        m.linked = link.linked;
        m.dialed = link.dialed;
        m.remote_address = link.remote_address;
        m.queue_frames = link.queue_frames;
        m.queue_bytes = link.queue_bytes;
        m.sent_seq = link.sent_seq;
        m.acked_seq = link.acked_seq;
        m.received_seq = link.received_seq;
        m.counters = link.counters;
      }
      if (auto it = echoes_.find(member.node_id); it != echoes_.end()) m.rtt_ms = it->second.rtt_ms;
      if (auto heard = detector_.last_heard_ms(member.node_id)) m.heard_ago_ms = now - *heard;
    }
    view.members.push_back(std::move(m));
  }
  return view;
}

uint64_t Cluster::NewIncarnation() {
  uint64_t incarnation = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&incarnation), sizeof incarnation) != 1) {
    // Any value that differs from the last start will do; the time almost surely does.
    incarnation =
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  }
  return incarnation == 0 ? 1 : incarnation;
}

// The facade: the Impl is shared with its coroutines, which may outlive this object by a few
// turns of the event loop after Stop().

Cluster::Cluster(asio::any_io_executor executor, ClusterOptions options) {
  assert(options.clock != nullptr && "ClusterOptions::clock is required");
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(options));
}

Cluster::~Cluster() { impl_->Stop(); }

Status Cluster::Start() { return impl_->Start(); }
asio::awaitable<void> Cluster::Leave(std::string reason) {
  const std::shared_ptr<Impl> impl = impl_;
  co_await impl->Leave(std::move(reason));
}
void Cluster::Stop() { impl_->Stop(); }
Result<uint64_t> Cluster::Send(std::string_view node_id, peer::v1::PeerEnvelope envelope) {
  return impl_->Send(node_id, std::move(envelope));
}
Status Cluster::Subscribe(peer::v1::PeerEnvelope::BodyCase kind, MessageHandler handler) {
  return impl_->Subscribe(kind, std::move(handler));
}
const Membership& Cluster::membership() const { return impl_->membership(); }
Membership::ListenerId Cluster::AddMemberListener(Membership::Listener listener) {
  return impl_->membership().AddListener(std::move(listener));
}
void Cluster::RemoveMemberListener(Membership::ListenerId id) {
  impl_->membership().RemoveListener(id);
}
std::vector<std::string> Cluster::LivePeers() const { return impl_->membership().LivePeers(); }
uint64_t Cluster::AddLinkListener(LinkListener listener) {
  return impl_->AddLinkListener(std::move(listener));
}
void Cluster::RemoveLinkListener(uint64_t id) { impl_->RemoveLinkListener(id); }
std::optional<PeerLinkStatus> Cluster::LinkStatus(std::string_view node_id) const {
  return impl_->LinkStatus(node_id);
}
void Cluster::Tick() { impl_->Tick(); }
ClusterView Cluster::View() const { return impl_->View(); }
const NodeIdentity& Cluster::self() const { return impl_->self(); }
Endpoint Cluster::listen_endpoint() const { return impl_->listen_endpoint(); }

}  // namespace sessiond
