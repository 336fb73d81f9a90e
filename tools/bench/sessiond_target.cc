#include "tools/bench/sessiond_target.h"

#include <utility>

namespace sessiond::bench {

SessiondTarget::SessiondTarget(asio::any_io_executor executor, const std::vector<Endpoint>& nodes,
                               int connections_per_node, uint32_t max_idle_s,
                               std::chrono::milliseconds request_deadline)
    : max_idle_s_(max_idle_s) {
  const size_t n = nodes.size();
  clients_.resize(n);
  next_client_.assign(n, 0);
  for (size_t node = 0; node < n; ++node) {
    ClientOptions options;
    // Its own node first, then the others: where a load balancer would send users next.
    for (size_t k = 0; k < n; ++k) options.endpoints.push_back(nodes[(node + k) % n]);
    options.default_deadline = request_deadline;
    for (int c = 0; c < connections_per_node; ++c) {
      clients_[node].push_back(std::make_unique<AsyncClient>(executor, options));
    }
  }
}

SessionTargetFactory SessiondTarget::Factory(std::vector<Endpoint> nodes, uint32_t max_idle_s,
                                             std::chrono::milliseconds request_deadline) {
  return [nodes = std::move(nodes), max_idle_s, request_deadline](asio::any_io_executor executor,
                                                                  int connections_per_node) {
    return std::make_unique<SessiondTarget>(std::move(executor), nodes, connections_per_node,
                                            max_idle_s, request_deadline);
  };
}

asio::awaitable<Status> SessiondTarget::Connect() {
  // AsyncClient connects at its first call (and reconnects after a failover): nothing to do.
  co_return Status::Ok();
}

int SessiondTarget::connections() const {
  int total = 0;
  for (const auto& pool : clients_) total += static_cast<int>(pool.size());
  return total;
}

AsyncClient& SessiondTarget::ClientFor(uint32_t node) {
  auto& pool = clients_[node];
  return *pool[next_client_[node]++ % pool.size()];
}

asio::awaitable<Result<std::string>> SessiondTarget::Create(uint32_t node, Attributes attributes) {
  v1::CreateRequest request;
  request.set_max_idle_s(max_idle_s_);
  for (auto& [name, value] : attributes) {
    (*request.mutable_attributes())[name] = std::move(value);
  }
  Result<v1::Session> session = co_await ClientFor(node).Create(std::move(request));
  if (!session.ok()) co_return session.status();
  co_return std::move(*session->mutable_id());
}

asio::awaitable<Status> SessiondTarget::Get(uint32_t node, std::string id, bool touch,
                                            Attributes* attributes) {
  Result<v1::Session> session = co_await ClientFor(node).Get(std::move(id), touch);
  if (!session.ok()) co_return session.status();
  if (attributes != nullptr) {
    attributes->clear();
    for (const auto& [name, value] : session->attributes()) (*attributes)[name] = value;
  }
  co_return Status::Ok();
}

asio::awaitable<Status> SessiondTarget::Set(uint32_t node, std::string id, std::string name,
                                            std::string value) {
  v1::UpdateRequest request;
  request.set_id(std::move(id));
  (*request.mutable_set())[std::move(name)] = std::move(value);
  Result<v1::Session> updated = co_await ClientFor(node).Update(std::move(request));
  co_return updated.status();
}

}  // namespace sessiond::bench
