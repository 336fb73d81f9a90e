// ExpiryQueue: a binary min-heap of (deadline, session key), the store's expiry index.
//
// The queue is lazy: a touch does not move a session's entry (that would cost O(log n) on the
// hottest path); instead, when an entry comes due the store checks the session's real deadline
// and pushes a later entry if it was touched meanwhile. Entries can therefore be stale (for
// a session since erased or renamed); the store discards those as they surface and compacts
// the queue with RemoveIf when they pile up. 24 bytes an entry.
//
// Not thread-safe: owned by the SessionStore, on its loop.
#ifndef SESSIOND_REPLICATION_EXPIRY_QUEUE_H_
#define SESSIOND_REPLICATION_EXPIRY_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "replication/session_key.h"

namespace sessiond {

class ExpiryQueue {
 public:
  struct Entry {
    int64_t deadline_ms;
    SessionKey key;
  };

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }

  void Push(int64_t deadline_ms, const SessionKey& key);
  // Makes room for `entries` entries, so a bulk fill does not regrow (and copy) the heap.
  void Reserve(size_t entries) { heap_.reserve(entries); }
  // The entry with the earliest deadline. REQUIRES: !empty().
  const Entry& top() const { return heap_.front(); }
  // Removes and returns top(). REQUIRES: !empty().
  Entry Pop();

  // Drops every entry for which pred(const Entry&) is true, in O(size), and releases the
  // memory they held.
  template <typename Pred>
  void RemoveIf(Pred pred) {
    std::erase_if(heap_, pred);
    std::make_heap(heap_.begin(), heap_.end(), Later);
    heap_.shrink_to_fit();
  }

 private:
  // std::*_heap build max-heaps; ordering by "later" makes the top the earliest deadline.
  static bool Later(const Entry& a, const Entry& b) { return a.deadline_ms > b.deadline_ms; }

  std::vector<Entry> heap_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_EXPIRY_QUEUE_H_
