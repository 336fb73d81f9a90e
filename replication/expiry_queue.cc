#include "replication/expiry_queue.h"

namespace sessiond {

void ExpiryQueue::Push(int64_t deadline_ms, const SessionKey& key) {
  heap_.push_back(Entry{deadline_ms, key});
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

ExpiryQueue::Entry ExpiryQueue::Pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  Entry e = heap_.back();
  heap_.pop_back();
  return e;
}

}  // namespace sessiond
