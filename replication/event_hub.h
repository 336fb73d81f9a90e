// EventHub: delivers SessionEvents to the watches of one node.
//
// Two kinds of watch: one on every session, and one on a set of ids. Per-id watches are found
// through a map id -> watches, so publishing an event costs O(watches of that id + watches of
// everything), not O(all watches). A per-id watch follows its session through ID_CHANGED (it
// starts watching the new id), and forgets an id once that session is gone (EXPIRED,
// INVALIDATED), so the map never outgrows the live watched sessions.
//
// A sink may end any subscription, its own included, while an event is being delivered:
// ended watches are unlinked at once but destroyed only when the outermost Publish returns.
//
// Threading: not thread-safe. A hub belongs to its manager's event loop; Publish, Subscribe
// and handle destruction all happen there.
#ifndef SESSIOND_REPLICATION_EVENT_HUB_H_
#define SESSIOND_REPLICATION_EVENT_HUB_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "replication/session_manager.h"
#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {

// An event for watchers: `kind` of session `id` (renamed to `new_id` for ID_CHANGED) at
// `version`, at `at_ms`, caused on node `origin`.
v1::SessionEvent MakeSessionEvent(v1::SessionEvent::Kind kind, std::string id, std::string new_id,
                                  uint64_t version, int64_t at_ms, std::string origin);

class EventHub {
 public:
  EventHub();
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Subscribes `sink` to the events of `ids` (every session when empty). The subscription
  // ends when the returned handle is destroyed; a handle outliving the hub is harmless.
  std::unique_ptr<WatchHandle> Subscribe(std::vector<std::string> ids, EventSink sink);

  // Calls the sink of every watch that matches `event`, in subscription order per kind. Watches
  // added while publishing do not see this event.
  void Publish(const v1::SessionEvent& event);

  // Live subscriptions.
  size_t watch_count() const;
  // Ids with at least one per-id watch (for leak checks in tests).
  size_t watched_id_count() const;

 private:
  class Registry;
  class Subscription;

  // Shared with every handle, which holds it weakly, so a handle can end its watch safely
  // whichever of the two goes first.
  std::shared_ptr<Registry> registry_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_EVENT_HUB_H_
