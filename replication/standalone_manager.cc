#include "replication/standalone_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "replication/content_digest.h"
#include "replication/event_hub.h"
#include "replication/session_counters.h"
#include "replication/session_store.h"

namespace sessiond {
namespace {

// The reaper wakes at the earliest deadline but at least this often, so a session expires at
// most this late even if the clock jumps.
constexpr std::chrono::milliseconds kMaxExpiryWait{1000};

}  // namespace

class StandaloneManager::Impl {
 public:
  Impl(asio::any_io_executor executor, ManagerOptions options)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        store_(options_.limits),
        expiry_timer_(executor_),
        expiry_stopped_(executor_, asio::steady_timer::time_point::max()),
        alive_(std::make_shared<bool>(true)) {}

  ~Impl() { *alive_ = false; }

  Status Start() {
    if (started_) return Status::Ok();
    started_ = true;
    expiry_running_ = true;
    asio::co_spawn(executor_, ExpiryLoop(alive_), asio::detached);
    spdlog::info("standalone manager of node {} started", options_.node_id);
    return Status::Ok();
  }

  asio::awaitable<void> Stop() {
    stopping_ = true;
    expiry_timer_.cancel();
    if (expiry_running_) {
      // The loop cancels this timer as it exits; waiting keeps `this` alive until it has.
      boost::system::error_code ec;
      co_await expiry_stopped_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  Result<v1::Session> Create(const v1::CreateRequest& request) {
    const int64_t now = options_.clock->NowMs();
    Result<const StoredSession*> created = store_.CreateWithNewId(*options_.ids, request, now);
    if (!created.ok()) return created.status();
    // Copied out before publishing: a sink may change the store and free the session.
    v1::Session session = (*created)->ToProto();
    ++counted_.created;
    Publish(v1::SessionEvent::CREATED, session.id(), "", session.version(), now);
    return session;
  }

  Result<v1::Session> Get(const v1::GetRequest& request) {
    const int64_t now = options_.clock->NowMs();
    if (request.touch()) {
      Result<const StoredSession*> s = store_.Touch(request.id(), now);
      if (!s.ok()) return s.status();
      return (*s)->ToProto();
    }
    const StoredSession* s = store_.Find(request.id(), now);
    if (s == nullptr) return SessionStore::NotFoundError(request.id());
    return s->ToProto();
  }

  Result<v1::Session> Update(const v1::UpdateRequest& request) {
    const int64_t now = options_.clock->NowMs();
    Result<SessionStore::UpdateResult> updated = store_.Update(request, now);
    if (!updated.ok()) {
      if (updated.status().code() == v1::CONFLICT) ++counted_.update_conflicts;
      return updated.status();
    }
    v1::Session session = updated->session->ToProto();
    if (updated->changed) {
      ++counted_.updated;
      Publish(v1::SessionEvent::CHANGED, session.id(), "", session.version(), now);
    }
    return session;
  }

  Status Invalidate(const v1::InvalidateRequest& request) {
    const int64_t now = options_.clock->NowMs();
    Result<uint64_t> version = store_.Erase(request.id(), now);
    if (!version.ok()) return version.status();
    ++counted_.invalidated;
    Publish(v1::SessionEvent::INVALIDATED, request.id(), "", *version, now);
    return Status::Ok();
  }

  Result<v1::Session> RotateId(const v1::RotateIdRequest& request) {
    const int64_t now = options_.clock->NowMs();
    Result<const StoredSession*> renamed = store_.RenameToNewId(request.id(), *options_.ids, now);
    if (!renamed.ok()) return renamed.status();
    v1::Session session = (*renamed)->ToProto();
    ++counted_.rotated;
    Publish(v1::SessionEvent::ID_CHANGED, request.id(), session.id(), session.version(), now);
    return session;
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
    stats.set_mode("standalone");
    stats.set_sessions(store_.size());
    counted_.AddTo(stats);
    auto& c = *stats.mutable_counters();
    c["watchers"] = hub_.watch_count();
    c["principals"] = store_.principal_count();
    return stats;
  }

  Readiness Ready() const {
    if (!started_) return Readiness{false, "not started"};
    if (stopping_) return Readiness{false, "stopping"};
    return Readiness{true, "serving; standalone, no replication"};
  }

  ContentDigest Digest() const { return DigestOf(store_, options_.clock->NowMs()); }

  size_t ExpireDue() {
    const int64_t now = options_.clock->NowMs();
    // Publish after the store is done: a sink may call back into the manager.
    std::vector<v1::SessionEvent> events;
    const size_t expired = store_.ExpireDue(now, [&](const StoredSession& s) {
      events.push_back(MakeEvent(v1::SessionEvent::EXPIRED, s.id(), "", s.version(), now));
    });
    counted_.expired += expired;
    for (const v1::SessionEvent& e : events) hub_.Publish(e);
    if (expired > 0) spdlog::debug("node {}: {} sessions expired", options_.node_id, expired);
    return expired;
  }

 private:
  // Reaps due sessions until Stop(). `alive` outlives the manager so that a loop woken after the
  // manager was destroyed without Stop() can tell, and end without touching it.
  asio::awaitable<void> ExpiryLoop(std::shared_ptr<bool> alive) {
    while (*alive && !stopping_) {
      ExpireDue();
      expiry_timer_.expires_after(store_.ExpiryWait(options_.clock->NowMs(), kMaxExpiryWait));
      boost::system::error_code ec;
      co_await expiry_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!*alive) co_return;
    }
    expiry_running_ = false;
    expiry_stopped_.cancel();
  }

  v1::SessionEvent MakeEvent(v1::SessionEvent::Kind kind, std::string id, std::string new_id,
                             uint64_t version, int64_t now) const {
    return MakeSessionEvent(kind, std::move(id), std::move(new_id), version, now, options_.node_id);
  }

  void Publish(v1::SessionEvent::Kind kind, std::string id, std::string new_id, uint64_t version,
               int64_t now) {
    hub_.Publish(MakeEvent(kind, std::move(id), std::move(new_id), version, now));
  }

  asio::any_io_executor executor_;
  const ManagerOptions options_;
  SessionStore store_;
  EventHub hub_;
  asio::steady_timer expiry_timer_;
  // Never expires; cancelled by the expiry loop as it exits, which is what Stop() waits for.
  asio::steady_timer expiry_stopped_;
  std::shared_ptr<bool> alive_;
  bool started_ = false;
  bool stopping_ = false;
  bool expiry_running_ = false;

  SessionCounters counted_;
};

StandaloneManager::StandaloneManager(asio::any_io_executor executor, ManagerOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(options))) {}

StandaloneManager::~StandaloneManager() = default;

asio::awaitable<Status> StandaloneManager::Start() { co_return impl_->Start(); }

asio::awaitable<void> StandaloneManager::Stop() { co_await impl_->Stop(); }

asio::awaitable<Result<v1::Session>> StandaloneManager::Create(v1::CreateRequest request) {
  co_return impl_->Create(request);
}

asio::awaitable<Result<v1::Session>> StandaloneManager::Get(v1::GetRequest request) {
  co_return impl_->Get(request);
}

asio::awaitable<Result<v1::Session>> StandaloneManager::Update(v1::UpdateRequest request) {
  co_return impl_->Update(request);
}

asio::awaitable<Status> StandaloneManager::Invalidate(v1::InvalidateRequest request) {
  co_return impl_->Invalidate(request);
}

asio::awaitable<Result<v1::Session>> StandaloneManager::RotateId(v1::RotateIdRequest request) {
  co_return impl_->RotateId(request);
}

asio::awaitable<Result<v1::SessionList>> StandaloneManager::FindByPrincipal(
    v1::FindByPrincipalRequest request) {
  co_return impl_->FindByPrincipal(request);
}

std::unique_ptr<WatchHandle> StandaloneManager::Watch(std::vector<std::string> ids,
                                                      EventSink sink) {
  return impl_->Watch(std::move(ids), std::move(sink));
}

v1::NodeStats StandaloneManager::Stats() const { return impl_->Stats(); }

Readiness StandaloneManager::Ready() const { return impl_->Ready(); }

std::optional<ContentDigest> StandaloneManager::Digest() const { return impl_->Digest(); }

size_t StandaloneManager::ExpireDue() { return impl_->ExpireDue(); }

}  // namespace sessiond
