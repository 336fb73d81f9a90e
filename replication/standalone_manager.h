// StandaloneManager: one node, no replication. Every operation of the contract, served from
// the local SessionStore; the base every clustered mode is measured against.
#ifndef SESSIOND_REPLICATION_STANDALONE_MANAGER_H_
#define SESSIOND_REPLICATION_STANDALONE_MANAGER_H_

#include <memory>
#include <string>

#include "replication/clock.h"
#include "replication/session_id.h"
#include "replication/session_limits.h"
#include "replication/session_manager.h"

namespace sessiond {

// What every manager is built with. The clock and id generator are not owned and must outlive
// the manager.
struct ManagerOptions {
  std::string node_id;
  SessionLimits limits;
  const Clock* clock = nullptr;  // required
  IdGenerator* ids = nullptr;    // required
};

class StandaloneManager final : public SessionManager {
 public:
  // Runs on `executor` (one thread). Start() arms the expiry timer.
  StandaloneManager(asio::any_io_executor executor, ManagerOptions options);
  ~StandaloneManager() override;

  std::string_view mode() const override { return "standalone"; }
  asio::awaitable<Status> Start() override;
  asio::awaitable<void> Stop() override;

  asio::awaitable<Result<v1::Session>> Create(v1::CreateRequest request) override;
  asio::awaitable<Result<v1::Session>> Get(v1::GetRequest request) override;
  asio::awaitable<Result<v1::Session>> Update(v1::UpdateRequest request) override;
  asio::awaitable<Status> Invalidate(v1::InvalidateRequest request) override;
  asio::awaitable<Result<v1::Session>> RotateId(v1::RotateIdRequest request) override;
  asio::awaitable<Result<v1::SessionList>> FindByPrincipal(
      v1::FindByPrincipalRequest request) override;
  std::unique_ptr<WatchHandle> Watch(std::vector<std::string> ids, EventSink sink) override;
  v1::NodeStats Stats() const override;
  Readiness Ready() const override;
  std::optional<ContentDigest> Digest() const override;

  // Expires every session due at the clock's now; returns how many. The expiry timer calls it;
  // tests call it after moving a ManualClock.
  size_t ExpireDue();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_STANDALONE_MANAGER_H_
