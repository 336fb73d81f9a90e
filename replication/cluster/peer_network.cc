#include "replication/cluster/peer_network.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <random>
#include <utility>

#include "replication/log_errors.h"

namespace sessiond {
namespace {

using Envelope = peer::v1::PeerEnvelope;
using asio::ip::tcp;
using TimePoint = std::chrono::steady_clock::time_point;
using Role = PeerLink::Role;

auto Now() { return std::chrono::steady_clock::now(); }

// Messages of the replication modes are numbered; handshake and membership messages are not.
bool IsSequenced(Envelope::BodyCase kind) { return kind >= Envelope::kProbe; }

// One address this node dials. Shared with its dial loop, which outlives its removal.
struct DialTarget {
  DialTarget(asio::any_io_executor executor, std::string address, Endpoint endpoint, bool seed)
      : address(std::move(address)), endpoint(std::move(endpoint)), seed(seed), wake(executor) {}

  const std::string address;
  const Endpoint endpoint;
  const bool seed;
  std::string node_id;  // who answered there last; "" until a handshake completed
  bool self = false;    // the address is this node's own
  bool removed = false;
  std::shared_ptr<PeerLink> pending;  // the link dialed from here, until it closes
  int failures = 0;                   // consecutive dials that did not end in a link
  TimePoint next_dial_at{};
  // Cancelled whenever the loop should look again: a link closed, removal, shutdown.
  asio::steady_timer wake;
};

}  // namespace

class PeerNetwork::Impl final : public PeerLink::Observer,
                                public std::enable_shared_from_this<PeerNetwork::Impl> {
 public:
  Impl(asio::any_io_executor executor, PeerNetworkOptions options, PeerNetwork::Observer* observer)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        observer_(observer),
        acceptor_(executor_),
        jitter_(static_cast<std::minstd_rand::result_type>(options_.self.incarnation)),
        idle_timer_(executor_) {}

  Status Start();
  void Drain();
  asio::awaitable<void> WaitIdle(std::chrono::milliseconds timeout);
  void Stop();
  Result<uint64_t> Send(std::string_view node_id, Envelope envelope);
  void AddPeerAddress(std::string_view address, std::string_view node_id);
  void ForgetPeerAddresses(std::string_view node_id);

  const Endpoint& listen_endpoint() const { return listen_endpoint_; }
  const std::string& advertise_address() const { return advertise_address_; }
  std::vector<std::string> LinkedPeers() const;
  std::vector<PeerLinkStatus> Peers() const;
  std::optional<PeerLinkStatus> LinkStatus(std::string_view node_id) const;
  const NetworkCounters& counters() const { return counters_; }

  // PeerLink::Observer.
  void OnLinkEstablished(PeerLink& link) override;
  void OnLinkRefused(PeerLink& link, peer::v1::RefuseReason reason, const Status& why,
                     bool by_peer) override;
  void OnLinkMessage(PeerLink& link, const Envelope& envelope) override;
  void OnLinkClosed(PeerLink& link, const Status& why) override;

 private:
  // A node this network has had an established link with.
  struct Peer {
    PeerIdentity identity;
    std::shared_ptr<PeerLink> link;  // the active link; null while down
    uint64_t next_seq = 1;
    uint64_t acked_seq = 0;
    uint64_t received_seq = 0;
    LinkCounters closed_totals;  // of its links already closed
  };
  PeerLinkStatus StatusOf(const Peer& peer) const;

  struct LinkEntry {
    std::shared_ptr<PeerLink> link;
    std::shared_ptr<DialTarget> target;  // null for accepted links
    bool established = false;
  };

  asio::awaitable<void> AcceptLoop(std::shared_ptr<Impl> self);
  asio::awaitable<void> DialLoop(std::shared_ptr<Impl> self, std::shared_ptr<DialTarget> target);
  asio::awaitable<Result<tcp::socket>> Connect(const Endpoint& endpoint);

  void AddTarget(std::string address, Endpoint endpoint, bool seed, std::string_view node_id);
  void RemoveTarget(std::map<std::string, std::shared_ptr<DialTarget>>::iterator it);
  void WakeTargetsOf(const std::string& node_id);
  bool HasActiveLink(const std::string& node_id) const;
  // Whether `candidate` should replace `existing`, two established links of one pair and one
  // incarnation. Both nodes reach the same answer for the same two links.
  bool Prefer(const PeerLink& candidate, const PeerLink& existing) const;
  std::chrono::milliseconds Backoff(int failures);
  HandshakeConfig handshake_config() const {
    return HandshakeConfig{options_.self, advertise_address_, options_.secret};
  }

  asio::any_io_executor executor_;
  const PeerNetworkOptions options_;
  PeerNetwork::Observer* observer_;
  tcp::acceptor acceptor_;
  Endpoint listen_endpoint_;
  std::string advertise_address_;
  bool started_ = false;
  bool draining_ = false;
  bool stopped_ = false;

  std::map<std::string, std::shared_ptr<DialTarget>> targets_;  // by address
  std::map<PeerLink*, LinkEntry> links_;  // every live link: handshaking, established, draining
  std::map<std::string, Peer, std::less<>> peers_;
  NetworkCounters counters_;
  std::minstd_rand jitter_;
  asio::steady_timer idle_timer_;  // cancelled when the last link closes
};

Status PeerNetwork::Impl::Start() {
  if (started_ || stopped_) return Internal("PeerNetwork::Start called twice");
  if (options_.listen.kind != Endpoint::Kind::kTcp) {
    return InvalidArgument(fmt::format(
        "peer links are TCP only, but the peer listen address is '{}'; give it as HOST:PORT",
        options_.listen.ToString()));
  }
  boost::system::error_code ec;
  tcp::resolver resolver(executor_);
  const auto resolved =
      resolver.resolve(options_.listen.host, std::to_string(options_.listen.port), ec);
  if (ec || resolved.empty()) {
    return InvalidArgument(fmt::format("cannot resolve the peer listen host '{}': {}",
                                       options_.listen.host, ec.message()));
  }
  const tcp::endpoint endpoint = resolved.begin()->endpoint();
  const auto fail = [&](const char* step) {
    return Unavailable(
        fmt::format("cannot listen for peers on {} ({} failed: {}); pick a free "
                    "port or 0",
                    options_.listen.ToString(), step, ec.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return fail("open");
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail("setsockopt");
  if (acceptor_.bind(endpoint, ec); ec) return fail("bind");
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen");
  const tcp::endpoint bound = acceptor_.local_endpoint(ec);
  listen_endpoint_.kind = Endpoint::Kind::kTcp;
  listen_endpoint_.host = bound.address().to_string();
  listen_endpoint_.port = bound.port();
  advertise_address_ =
      options_.advertise_address.empty() ? listen_endpoint_.ToString() : options_.advertise_address;
  if (options_.advertise_address.empty() && bound.address().is_unspecified()) {
    spdlog::warn(
        "peers are told to dial {}, a wildcard address that only works on this host; "
        "listen for peers on a specific address for a multi-host cluster",
        advertise_address_);
  }
  started_ = true;
  spdlog::info("node {} (cluster '{}', incarnation {}) listens for peers on {}",
               options_.self.node_id, options_.self.cluster, options_.self.incarnation,
               listen_endpoint_.ToString());
  asio::co_spawn(executor_, AcceptLoop(shared_from_this()), LogErrors("peer accept loop"));
  for (const Endpoint& seed : options_.seeds) {
    // The same --peers list is often given to every node; this node's own entry is skipped
    // here when it is spelled the same, and found out by the handshake otherwise.
    if (seed.ToString() == advertise_address_) continue;
    AddTarget(seed.ToString(), seed, true, "");
  }
  return Status::Ok();
}

asio::awaitable<void> PeerNetwork::Impl::AcceptLoop(std::shared_ptr<Impl> /*self*/) {
  asio::steady_timer pause(executor_);
  while (!stopped_ && !draining_) {
    tcp::socket socket(executor_);
    boost::system::error_code ec;
    co_await acceptor_.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_ || draining_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors, most likely: pause rather than spin.
      spdlog::warn("accepting a peer connection failed: {}; retrying in 100 ms", ec.message());
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    ++counters_.accepted;
    const size_t pending = std::count_if(links_.begin(), links_.end(),
                                         [](const auto& e) { return !e.second.established; });
    if (pending >= options_.max_pending_handshakes) {
      spdlog::warn("closing a peer connection from {}: {} handshakes are already under way",
                   socket.remote_endpoint(ec).address().to_string(), pending);
      socket.close(ec);
      continue;
    }
    auto link = std::make_shared<PeerLink>(std::move(socket), Role::kAcceptor, handshake_config(),
                                           options_.link, this);
    links_.emplace(link.get(), LinkEntry{link, nullptr, false});
    link->Start();
  }
}

void PeerNetwork::Impl::AddTarget(std::string address, Endpoint endpoint, bool seed,
                                  std::string_view node_id) {
  auto [it, inserted] = targets_.try_emplace(address);
  if (!inserted) {
    if (it->second->node_id.empty()) it->second->node_id = std::string(node_id);
    return;
  }
  it->second =
      std::make_shared<DialTarget>(executor_, std::move(address), std::move(endpoint), seed);
  it->second->node_id = std::string(node_id);
  asio::co_spawn(executor_, DialLoop(shared_from_this(), it->second), LogErrors("peer dial loop"));
}

void PeerNetwork::Impl::RemoveTarget(
    std::map<std::string, std::shared_ptr<DialTarget>>::iterator it) {
  it->second->removed = true;
  it->second->wake.cancel();
  targets_.erase(it);
}

void PeerNetwork::Impl::AddPeerAddress(std::string_view address, std::string_view node_id) {
  if (!started_ || stopped_ || draining_ || address.empty() || address == advertise_address_ ||
      node_id == options_.self.node_id) {
    return;
  }
  Result<Endpoint> endpoint = Endpoint::Parse(address);
  if (!endpoint.ok() || endpoint->kind != Endpoint::Kind::kTcp) {
    spdlog::warn("ignoring the peer address '{}' of node '{}': not HOST:PORT", address, node_id);
    return;
  }
  if (!node_id.empty()) {
    // A learned address of the same node elsewhere is stale: the node restarted there.
    for (auto it = targets_.begin(); it != targets_.end();) {
      const DialTarget& t = *it->second;
      auto next = std::next(it);
      if (!t.seed && t.node_id == node_id && t.address != address) RemoveTarget(it);
      it = next;
    }
  }
  AddTarget(std::string(address), std::move(*endpoint), false, node_id);
}

void PeerNetwork::Impl::ForgetPeerAddresses(std::string_view node_id) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    auto next = std::next(it);
    if (!it->second->seed && it->second->node_id == node_id) RemoveTarget(it);
    it = next;
  }
}

bool PeerNetwork::Impl::HasActiveLink(const std::string& node_id) const {
  auto it = peers_.find(node_id);
  return it != peers_.end() && it->second.link != nullptr;
}

void PeerNetwork::Impl::WakeTargetsOf(const std::string& node_id) {
  for (auto& [address, target] : targets_) {
    if (target->node_id == node_id) target->wake.cancel();
  }
}

std::chrono::milliseconds PeerNetwork::Impl::Backoff(int failures) {
  const int doublings = std::clamp(failures - 1, 0, 20);
  const auto base = std::min<int64_t>(options_.reconnect_max.count(), options_.reconnect_min.count()
                                                                          << doublings);
  // Jitter, so that nodes restarted together do not dial in lockstep.
  std::uniform_int_distribution<int64_t> spread(base * 8 / 10, base * 12 / 10);
  return std::chrono::milliseconds(spread(jitter_));
}

asio::awaitable<void> PeerNetwork::Impl::DialLoop(std::shared_ptr<Impl> /*self*/,
                                                  std::shared_ptr<DialTarget> target) {
  DialTarget& t = *target;
  boost::system::error_code ec;
  while (!stopped_ && !draining_ && !t.removed && !t.self) {
    if (t.pending != nullptr || (!t.node_id.empty() && HasActiveLink(t.node_id))) {
      t.wake.expires_at(TimePoint::max());
      co_await t.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (Now() < t.next_dial_at) {
      t.wake.expires_at(t.next_dial_at);
      co_await t.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    ++counters_.dials;
    Result<tcp::socket> socket = co_await Connect(t.endpoint);
    if (stopped_ || draining_ || t.removed) co_return;
    if (!socket.ok()) {
      ++counters_.dial_failures;
      ++t.failures;
      t.next_dial_at = Now() + Backoff(t.failures);
      // The first failure is news; the repeats of a peer that stays down are not.
      if (t.failures == 1) {
        spdlog::info("{}; retrying with backoff", socket.status().message());
      } else {
        spdlog::debug("{} (attempt {})", socket.status().message(), t.failures);
      }
      continue;
    }
    auto link = std::make_shared<PeerLink>(std::move(*socket), Role::kDialer, handshake_config(),
                                           options_.link, this);
    links_.emplace(link.get(), LinkEntry{link, target, false});
    t.pending = link;
    link->Start();
  }
}

asio::awaitable<Result<tcp::socket>> PeerNetwork::Impl::Connect(const Endpoint& endpoint) {
  // The timer's handler may run after this coroutine has finished, so what it touches is
  // shared with it rather than owned by this frame.
  auto resolver = std::make_shared<tcp::resolver>(executor_);
  auto socket = std::make_shared<tcp::socket>(executor_);
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer timer(executor_, options_.connect_timeout);
  timer.async_wait([resolver, socket, timed_out](boost::system::error_code ec) {
    if (ec) return;
    *timed_out = true;
    resolver->cancel();
    boost::system::error_code ignored;
    socket->close(ignored);
  });
  boost::system::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(endpoint.host, ec);
  if (!ec) {
    // A literal address needs no resolver (whose lookups run on a helper thread).
    co_await socket->async_connect(tcp::endpoint(ip, endpoint.port),
                                   asio::redirect_error(asio::use_awaitable, ec));
  } else {
    ec.clear();
    const auto resolved =
        co_await resolver->async_resolve(endpoint.host, std::to_string(endpoint.port),
                                         asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !*timed_out) {
      co_await asio::async_connect(*socket, resolved,
                                   asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  timer.cancel();
  if (*timed_out || (!ec && !socket->is_open())) {
    co_return Unavailable(fmt::format("connecting to peer {} timed out after {} ms",
                                      endpoint.ToString(), options_.connect_timeout.count()));
  }
  if (ec) {
    co_return Unavailable(
        fmt::format("cannot connect to peer {}: {}", endpoint.ToString(), ec.message()));
  }
  co_return std::move(*socket);
}

bool PeerNetwork::Impl::Prefer(const PeerLink& candidate, const PeerLink& existing) const {
  if (candidate.role() == existing.role()) {
    // Two dials in the same direction (two addresses of one node): any rule both sides share.
    return candidate.dialer_nonce() < existing.dialer_nonce();
  }
  // The link dialed by the node with the lower id wins.
  const bool self_is_lower = options_.self.node_id < candidate.peer().node_id;
  return candidate.role() == (self_is_lower ? Role::kDialer : Role::kAcceptor);
}

void PeerNetwork::Impl::OnLinkEstablished(PeerLink& link) {
  auto entry_it = links_.find(&link);
  if (entry_it == links_.end()) return;
  entry_it->second.established = true;
  const std::shared_ptr<PeerLink> shared = entry_it->second.link;
  const std::shared_ptr<DialTarget> target = entry_it->second.target;
  const PeerIdentity id = link.peer();
  ++counters_.handshakes;
  if (target != nullptr) {
    target->node_id = id.node_id;
    target->failures = 0;
  }
  if (draining_) {
    link.Drain();
    return;
  }
  // Learn where to dial this peer back, should the link break.
  AddPeerAddress(id.listen_address, id.node_id);

  Peer& peer = peers_[id.node_id];
  const std::shared_ptr<PeerLink> existing = peer.link;
  if (existing != nullptr) {
    if (id.incarnation == peer.identity.incarnation) {
      ++counters_.duplicate_links;
      // A link the peer has begun to close is never worth keeping.
      if (existing->state() == PeerLink::State::kEstablished && !Prefer(link, *existing)) {
        spdlog::debug("peer {}: draining a duplicate link ({})", id.node_id,
                      link.role() == Role::kDialer ? "dialed" : "accepted");
        link.Drain();
        return;
      }
      spdlog::debug("peer {}: switching to the preferred link ({})", id.node_id,
                    link.role() == Role::kDialer ? "dialed" : "accepted");
      for (std::string& frame : existing->TakeQueued()) (void)link.SendFrame(std::move(frame));
      peer.link = shared;
      existing->Drain();
      return;
    }
    // The peer restarted (the newest handshake is the truth: incarnations are not ordered);
    // its old link leads to a process that is gone.
    peer.link.reset();
    existing->Close(Unavailable(fmt::format("peer {} restarted", id.node_id)));
    if (observer_ != nullptr) {
      observer_->OnPeerDown(peer.identity,
                            Unavailable(fmt::format("peer {} restarted with incarnation {}",
                                                    id.node_id, id.incarnation)));
    }
    if (stopped_) return;
  }
  if (id.incarnation != peer.identity.incarnation) {
    // A new incarnation: both message streams start over.
    peer.next_seq = 1;
    peer.acked_seq = 0;
    peer.received_seq = 0;
  }
  peer.identity = id;
  peer.link = shared;
  spdlog::info("linked to peer {} (incarnation {}) at {}, {}", id.node_id, id.incarnation,
               link.remote_address(), link.role() == Role::kDialer ? "dialed" : "accepted");
  if (observer_ != nullptr) observer_->OnPeerUp(peer.identity);
}

void PeerNetwork::Impl::OnLinkRefused(PeerLink& link, peer::v1::RefuseReason reason,
                                      const Status& why, bool by_peer) {
  const size_t index = static_cast<size_t>(reason) < kRefuseReasonCount ? reason : 0;
  ++(by_peer ? counters_.refused_by_peer : counters_.refused)[index];
  if (reason == peer::v1::SELF_CONNECTION) {
    auto it = links_.find(&link);
    if (it != links_.end() && it->second.target != nullptr) {
      it->second.target->self = true;
      spdlog::info("{} is this node's own peer address; not dialing it",
                   it->second.target->address);
    }
    return;
  }
  spdlog::warn("peer link with {} refused{} ({}): {}", link.remote_address(),
               by_peer ? " by the peer" : "", peer::v1::RefuseReason_Name(reason), why.message());
}

void PeerNetwork::Impl::OnLinkMessage(PeerLink& link, const Envelope& envelope) {
  const PeerIdentity& id = link.peer();
  auto it = peers_.find(id.node_id);
  if (it == peers_.end() || it->second.identity.incarnation != id.incarnation) {
    ++counters_.messages_dropped_stale;
    return;
  }
  Peer& peer = it->second;
  // An ack can only cover what was sent; a larger one is from before a restart of this node.
  peer.acked_seq = std::max(peer.acked_seq, std::min(envelope.ack(), peer.next_seq - 1));
  peer.received_seq = std::max(peer.received_seq, envelope.seq());
  if (observer_ != nullptr) observer_->OnPeerMessage(peer.identity, envelope);
}

void PeerNetwork::Impl::OnLinkClosed(PeerLink& link, const Status& why) {
  auto entry_it = links_.find(&link);
  if (entry_it == links_.end()) return;
  const LinkEntry entry = std::move(entry_it->second);
  links_.erase(entry_it);
  if (entry.target != nullptr) {
    DialTarget& t = *entry.target;
    if (t.pending.get() == &link) t.pending.reset();
    if (entry.established) {
      t.failures = 0;
      // Even a link that was fine gets a short pause, so a peer that accepts and then drops
      // every link is not dialed in a tight loop.
      t.next_dial_at = Now() + options_.reconnect_min;
    } else {
      ++t.failures;
      t.next_dial_at = Now() + Backoff(t.failures);
    }
    t.wake.cancel();
  }
  if (entry.established) {
    const PeerIdentity& id = link.peer();
    auto peer_it = peers_.find(id.node_id);
    if (peer_it != peers_.end()) {
      Peer& peer = peer_it->second;
      peer.closed_totals += link.counters();
      if (peer.link.get() == &link) {
        peer.link.reset();
        spdlog::info("link to peer {} closed: {}", id.node_id,
                     why.ok() ? std::string("graceful close") : why.message());
        WakeTargetsOf(id.node_id);
        if (observer_ != nullptr) observer_->OnPeerDown(peer.identity, why);
      }
    }
  }
  if (links_.empty()) idle_timer_.cancel();
}

Result<uint64_t> PeerNetwork::Impl::Send(std::string_view node_id, Envelope envelope) {
  auto it = peers_.find(node_id);
  if (it == peers_.end() || it->second.link == nullptr) {
    ++counters_.sends_without_link;
    return Unavailable(
        fmt::format("no link to peer {}: it is down, leaving, or not connected yet", node_id));
  }
  Peer& peer = it->second;
  const uint64_t seq = IsSequenced(envelope.body_case()) ? peer.next_seq : 0;
  envelope.set_seq(seq);
  envelope.set_ack(peer.received_seq);
  if (Status s = peer.link->Send(envelope); !s.ok()) {
    if (s.code() == v1::RESOURCE_EXHAUSTED) ++counters_.sends_queue_full;
    if (s.code() == v1::UNAVAILABLE) ++counters_.sends_without_link;
    return s;
  }
  if (seq != 0) ++peer.next_seq;
  return seq;
}

void PeerNetwork::Impl::Drain() {
  if (stopped_ || draining_) return;
  draining_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& [address, target] : targets_) target->wake.cancel();
  std::vector<std::shared_ptr<PeerLink>> links;
  for (auto& [ptr, entry] : links_) links.push_back(entry.link);
  // Drain may close a link at once (one still handshaking), which edits links_.
  for (auto& link : links) link->Drain();
}

asio::awaitable<void> PeerNetwork::Impl::WaitIdle(std::chrono::milliseconds timeout) {
  const TimePoint deadline = Now() + timeout;
  while (!links_.empty() && Now() < deadline) {
    idle_timer_.expires_at(deadline);
    boost::system::error_code ec;
    co_await idle_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void PeerNetwork::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  observer_ = nullptr;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& [address, target] : targets_) {
    target->removed = true;
    target->wake.cancel();
  }
  targets_.clear();
  const std::map<PeerLink*, LinkEntry> links = std::exchange(links_, {});
  for (const auto& [ptr, entry] : links) {
    entry.link->Detach();
    entry.link->Close(Unavailable("this node is stopping"));
  }
  for (auto& [id, peer] : peers_) peer.link.reset();
  idle_timer_.cancel();
}

std::vector<std::string> PeerNetwork::Impl::LinkedPeers() const {
  std::vector<std::string> ids;
  for (const auto& [id, peer] : peers_) {
    if (peer.link != nullptr) ids.push_back(id);
  }
  return ids;
}

PeerLinkStatus PeerNetwork::Impl::StatusOf(const Peer& peer) const {
  PeerLinkStatus s;
  s.identity = peer.identity;
  s.sent_seq = peer.next_seq - 1;
  s.acked_seq = peer.acked_seq;
  s.received_seq = peer.received_seq;
  s.counters = peer.closed_totals;
  for (const auto& [ptr, entry] : links_) {
    if (entry.established && entry.link->peer().node_id == peer.identity.node_id) {
      s.counters += entry.link->counters();
    }
  }
  if (peer.link != nullptr) {
    s.linked = true;
    s.dialed = peer.link->role() == Role::kDialer;
    s.remote_address = peer.link->remote_address();
    s.queue_frames = peer.link->queue_frames();
    s.queue_bytes = peer.link->queue_bytes();
  }
  return s;
}

std::vector<PeerLinkStatus> PeerNetwork::Impl::Peers() const {
  std::vector<PeerLinkStatus> out;
  out.reserve(peers_.size());
  for (const auto& [id, peer] : peers_) out.push_back(StatusOf(peer));
  return out;
}

std::optional<PeerLinkStatus> PeerNetwork::Impl::LinkStatus(std::string_view node_id) const {
  auto it = peers_.find(node_id);
  if (it == peers_.end()) return std::nullopt;
  return StatusOf(it->second);
}

// The facade: the Impl is shared with its coroutines, which may outlive this object by a few
// turns of the event loop after Stop().

PeerNetwork::PeerNetwork(asio::any_io_executor executor, PeerNetworkOptions options,
                         Observer* observer)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), observer)) {}

PeerNetwork::~PeerNetwork() { impl_->Stop(); }

Status PeerNetwork::Start() { return impl_->Start(); }
void PeerNetwork::Drain() { impl_->Drain(); }
asio::awaitable<void> PeerNetwork::WaitIdle(std::chrono::milliseconds timeout) {
  const std::shared_ptr<Impl> impl = impl_;
  co_await impl->WaitIdle(timeout);
}
void PeerNetwork::Stop() { impl_->Stop(); }
Result<uint64_t> PeerNetwork::Send(std::string_view node_id, peer::v1::PeerEnvelope envelope) {
  return impl_->Send(node_id, std::move(envelope));
}
void PeerNetwork::AddPeerAddress(std::string_view address, std::string_view node_id) {
  impl_->AddPeerAddress(address, node_id);
}
void PeerNetwork::ForgetPeerAddresses(std::string_view node_id) {
  impl_->ForgetPeerAddresses(node_id);
}
Endpoint PeerNetwork::listen_endpoint() const { return impl_->listen_endpoint(); }
const std::string& PeerNetwork::advertise_address() const { return impl_->advertise_address(); }
std::vector<std::string> PeerNetwork::LinkedPeers() const { return impl_->LinkedPeers(); }
std::vector<PeerLinkStatus> PeerNetwork::Peers() const { return impl_->Peers(); }
std::optional<PeerLinkStatus> PeerNetwork::LinkStatus(std::string_view node_id) const {
  return impl_->LinkStatus(node_id);
}
const NetworkCounters& PeerNetwork::counters() const { return impl_->counters(); }

}  // namespace sessiond
