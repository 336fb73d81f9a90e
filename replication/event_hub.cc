#include "replication/event_hub.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace sessiond {

v1::SessionEvent MakeSessionEvent(v1::SessionEvent::Kind kind, std::string id, std::string new_id,
                                  uint64_t version, int64_t at_ms, std::string origin) {
  v1::SessionEvent e;
  e.set_kind(kind);
  e.set_id(std::move(id));
  e.set_new_id(std::move(new_id));
  e.set_version(version);
  e.set_origin_node(std::move(origin));
  e.set_at_ms(at_ms);
  return e;
}

namespace {

struct Watch {
  EventSink sink;
  // The ids this watch follows; empty for a watch on every session.
  std::vector<std::string> ids;
  bool every_session = false;
  // Ended while an event was being delivered; skipped until it is destroyed.
  bool ended = false;
};

// Removes the first occurrence of `item` from `items`, keeping the order of the rest.
template <typename T>
void EraseFirst(std::vector<T>& items, const T& item) {
  auto it = std::find(items.begin(), items.end(), item);
  if (it != items.end()) items.erase(it);
}

bool EndsSession(v1::SessionEvent::Kind kind) {
  return kind == v1::SessionEvent::EXPIRED || kind == v1::SessionEvent::INVALIDATED;
}

}  // namespace

class EventHub::Registry {
 public:
  Watch* Add(std::vector<std::string> ids, EventSink sink) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    auto watch = std::make_unique<Watch>();
    Watch* w = watch.get();
    w->sink = std::move(sink);
    w->every_session = ids.empty();
    w->ids = std::move(ids);
    if (w->every_session) {
      every_session_.push_back(w);
    } else {
      for (const std::string& id : w->ids) by_id_[id].push_back(w);
    }
    watches_.emplace(w, std::move(watch));
    return w;
  }

  void End(Watch* w) {
    auto it = watches_.find(w);
    if (it == watches_.end()) return;
    if (w->every_session) {
      EraseFirst(every_session_, w);
    } else {
      for (const std::string& id : w->ids) Unlink(id, w);
    }
    if (publishing_ > 0) {
      // Its sink may be the very function running now: destroy it once delivery unwinds.
      w->ended = true;
      ended_.push_back(std::move(it->second));
    }
    watches_.erase(it);
  }

  void Publish(const v1::SessionEvent& event) {
    ++publishing_;
    // Copies, since a sink may subscribe or end watches while we walk them.
    std::vector<Watch*> targets;
    if (auto it = by_id_.find(event.id()); it != by_id_.end()) targets = it->second;
    targets.insert(targets.end(), every_session_.begin(), every_session_.end());
    for (Watch* w : targets) {
      if (!w->ended) w->sink(event);
    }
    if (event.kind() == v1::SessionEvent::ID_CHANGED) {
      Retarget(event.id(), event.new_id());
    } else if (EndsSession(event.kind())) {
      Retarget(event.id(), "");
    }
    if (--publishing_ == 0) ended_.clear();
  }

  size_t watch_count() const { return watches_.size(); }
  size_t watched_id_count() const { return by_id_.size(); }

 private:
  void Unlink(const std::string& id, Watch* w) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    EraseFirst(it->second, w);
    if (it->second.empty()) by_id_.erase(it);
  }

  // Moves every watch of `old_id` to `new_id`, or drops the id when `new_id` is empty.
  void Retarget(const std::string& old_id, const std::string& new_id) {
    auto it = by_id_.find(old_id);
    if (it == by_id_.end()) return;
    std::vector<Watch*> moved = std::move(it->second);
    by_id_.erase(it);
    for (Watch* w : moved) {
      EraseFirst(w->ids, old_id);
      if (new_id.empty() || std::find(w->ids.begin(), w->ids.end(), new_id) != w->ids.end()) {
        continue;
      }
      w->ids.push_back(new_id);
      by_id_[new_id].push_back(w);
    }
  }

  std::unordered_map<Watch*, std::unique_ptr<Watch>> watches_;  // owns every live watch
  std::vector<Watch*> every_session_;                           // in subscription order
  std::unordered_map<std::string, std::vector<Watch*>> by_id_;
  std::vector<std::unique_ptr<Watch>> ended_;  // ended during delivery; destroyed after it
  int publishing_ = 0;                         // depth of Publish calls (sinks may nest them)
};

class EventHub::Subscription final : public WatchHandle {
 public:
  Subscription(std::weak_ptr<Registry> registry, Watch* watch)
      : registry_(std::move(registry)), watch_(watch) {}
  ~Subscription() override {
    if (std::shared_ptr<Registry> registry = registry_.lock()) registry->End(watch_);
  }

 private:
  std::weak_ptr<Registry> registry_;
  Watch* watch_;
};

EventHub::EventHub() : registry_(std::make_shared<Registry>()) {}

EventHub::~EventHub() = default;

std::unique_ptr<WatchHandle> EventHub::Subscribe(std::vector<std::string> ids, EventSink sink) {
  Watch* w = registry_->Add(std::move(ids), std::move(sink));
  return std::make_unique<Subscription>(registry_, w);
}

void EventHub::Publish(const v1::SessionEvent& event) { registry_->Publish(event); }

size_t EventHub::watch_count() const { return registry_->watch_count(); }

size_t EventHub::watched_id_count() const { return registry_->watched_id_count(); }

}  // namespace sessiond
