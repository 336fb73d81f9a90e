// MessageSubscriptions: the peer-message kinds a mode handles, each routed to one of its member
// functions, subscribed together and dropped together (Clear, which the owner calls while the
// cluster is alive), so a mode names its kinds once.
#ifndef SESSIOND_REPLICATION_CLUSTER_MESSAGE_SUBSCRIPTIONS_H_
#define SESSIOND_REPLICATION_CLUSTER_MESSAGE_SUBSCRIPTIONS_H_

#include <initializer_list>
#include <utility>
#include <vector>

#include "replication/cluster/cluster.h"

namespace sessiond {

class MessageSubscriptions {
 public:
  template <typename T>
  using Method = void (T::*)(const PeerIdentity& from, const peer::v1::PeerEnvelope& envelope);
  template <typename T>
  using Route = std::pair<peer::v1::PeerEnvelope::BodyCase, Method<T>>;

  MessageSubscriptions() = default;
  MessageSubscriptions(const MessageSubscriptions&) = delete;
  MessageSubscriptions& operator=(const MessageSubscriptions&) = delete;

  // Routes each kind to `target`'s method. On an error (a kind Cluster::Subscribe refuses) the
  // kinds subscribed so far are dropped again and the error is returned.
  template <typename T>
  Status Add(Cluster& cluster, T* target, std::initializer_list<Route<T>> routes) {
    cluster_ = &cluster;
    for (const auto& [kind, method] : routes) {
      // An init-capture: clang 14 (the fuzz build) cannot capture a structured binding.
      Status s = cluster.Subscribe(
          kind, [target, method = method](const PeerIdentity& from,
                                          const peer::v1::PeerEnvelope& envelope) {
            (target->*method)(from, envelope);
          });
      if (!s.ok()) {
        Clear();
        return s;
      }
      kinds_.push_back(kind);
    }
    return Status::Ok();
  }

  // Unsubscribes every kind Add subscribed. Idempotent.
  void Clear() {
    for (peer::v1::PeerEnvelope::BodyCase kind : kinds_) (void)cluster_->Subscribe(kind, nullptr);
    kinds_.clear();
  }

 private:
  Cluster* cluster_ = nullptr;
  std::vector<peer::v1::PeerEnvelope::BodyCase> kinds_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_MESSAGE_SUBSCRIPTIONS_H_
