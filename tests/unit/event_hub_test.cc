#include "replication/event_hub.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace sessiond {
namespace {

v1::SessionEvent Event(v1::SessionEvent::Kind kind, std::string id, std::string new_id = "") {
  v1::SessionEvent e;
  e.set_kind(kind);
  e.set_id(std::move(id));
  e.set_new_id(std::move(new_id));
  return e;
}

// Records "<kind>:<id>" of each event a watch gets.
struct Recorder {
  std::vector<std::string> seen;
  EventSink Sink() {
    return [this](const v1::SessionEvent& e) {
      seen.push_back(v1::SessionEvent::Kind_Name(e.kind()) + ":" + e.id());
    };
  }
};

TEST(EventHubTest, EverySessionWatchSeesEverythingAndIdWatchOnlyItsIds) {
  EventHub hub;
  Recorder all, one;
  auto all_handle = hub.Subscribe({}, all.Sink());
  auto one_handle = hub.Subscribe({"a", "c", "a"}, one.Sink());
  EXPECT_EQ(hub.watch_count(), 2u);
  EXPECT_EQ(hub.watched_id_count(), 2u);

  hub.Publish(Event(v1::SessionEvent::CREATED, "a"));
  hub.Publish(Event(v1::SessionEvent::CHANGED, "b"));
  hub.Publish(Event(v1::SessionEvent::CHANGED, "c"));
  EXPECT_EQ(all.seen, (std::vector<std::string>{"CREATED:a", "CHANGED:b", "CHANGED:c"}));
  // "a" named twice still delivers once.
  EXPECT_EQ(one.seen, (std::vector<std::string>{"CREATED:a", "CHANGED:c"}));
}

TEST(EventHubTest, DestroyingTheHandleEndsTheWatch) {
  EventHub hub;
  Recorder r;
  auto handle = hub.Subscribe({"a"}, r.Sink());
  handle.reset();
  EXPECT_EQ(hub.watch_count(), 0u);
  EXPECT_EQ(hub.watched_id_count(), 0u);
  hub.Publish(Event(v1::SessionEvent::CHANGED, "a"));
  EXPECT_TRUE(r.seen.empty());
}

TEST(EventHubTest, IdWatchFollowsItsSessionThroughIdChange) {
  EventHub hub;
  Recorder r;
  auto handle = hub.Subscribe({"old"}, r.Sink());
  hub.Publish(Event(v1::SessionEvent::ID_CHANGED, "old", "new"));
  hub.Publish(Event(v1::SessionEvent::CHANGED, "new"));
  hub.Publish(Event(v1::SessionEvent::ID_CHANGED, "new", "newer"));
  hub.Publish(Event(v1::SessionEvent::CHANGED, "newer"));
  hub.Publish(Event(v1::SessionEvent::CHANGED, "old"));
  EXPECT_EQ(r.seen, (std::vector<std::string>{"ID_CHANGED:old", "CHANGED:new", "ID_CHANGED:new",
                                              "CHANGED:newer"}));
  // Only the current id is indexed: the map does not keep ids that are gone.
  EXPECT_EQ(hub.watched_id_count(), 1u);
}

TEST(EventHubTest, EndedSessionsLeaveTheIndex) {
  EventHub hub;
  Recorder r;
  auto handle = hub.Subscribe({"a", "b"}, r.Sink());
  hub.Publish(Event(v1::SessionEvent::INVALIDATED, "a"));
  EXPECT_EQ(hub.watched_id_count(), 1u);
  hub.Publish(Event(v1::SessionEvent::EXPIRED, "b"));
  EXPECT_EQ(hub.watched_id_count(), 0u);
  EXPECT_EQ(r.seen, (std::vector<std::string>{"INVALIDATED:a", "EXPIRED:b"}));
  // The watch itself lives until its handle goes.
  EXPECT_EQ(hub.watch_count(), 1u);
  handle.reset();
  EXPECT_EQ(hub.watch_count(), 0u);
}

TEST(EventHubTest, DispatchOnlyReachesWatchesOfThatId) {
  EventHub hub;
  int calls = 0;
  std::vector<std::unique_ptr<WatchHandle>> handles;
  for (int i = 0; i < 1000; ++i) {
    handles.push_back(
        hub.Subscribe({"id" + std::to_string(i)}, [&](const v1::SessionEvent&) { ++calls; }));
  }
  hub.Publish(Event(v1::SessionEvent::CHANGED, "id7"));
  EXPECT_EQ(calls, 1);
}

TEST(EventHubTest, SinkMayEndItsOwnWatchWhileBeingCalled) {
  EventHub hub;
  std::unique_ptr<WatchHandle> handle;
  // State the sink owns: destroyed with the sink, so reading it after ending the watch would
  // be a use after free if the hub destroyed the sink at once.
  auto calls = std::make_shared<int>(0);
  std::weak_ptr<int> watch_calls = calls;
  handle = hub.Subscribe({}, [&handle, calls](const v1::SessionEvent&) {
    handle.reset();
    ++*calls;
  });
  calls.reset();
  hub.Publish(Event(v1::SessionEvent::CREATED, "a"));
  EXPECT_EQ(hub.watch_count(), 0u);
  EXPECT_TRUE(watch_calls.expired());  // destroyed once delivery finished
  hub.Publish(Event(v1::SessionEvent::CREATED, "b"));
}

TEST(EventHubTest, SinkMayEndAnotherWatchWhichThenMissesTheEvent) {
  EventHub hub;
  Recorder first, second;
  std::unique_ptr<WatchHandle> second_handle;
  auto first_handle = hub.Subscribe({"a"}, [&](const v1::SessionEvent& e) {
    first.Sink()(e);
    second_handle.reset();
  });
  second_handle = hub.Subscribe({"a"}, second.Sink());
  hub.Publish(Event(v1::SessionEvent::CHANGED, "a"));
  EXPECT_EQ(first.seen.size(), 1u);
  EXPECT_TRUE(second.seen.empty());
  EXPECT_EQ(hub.watch_count(), 1u);
}

TEST(EventHubTest, SinkMayEndItsWatchOnIdChange) {
  EventHub hub;
  std::unique_ptr<WatchHandle> handle;
  handle = hub.Subscribe({"old"}, [&](const v1::SessionEvent&) { handle.reset(); });
  hub.Publish(Event(v1::SessionEvent::ID_CHANGED, "old", "new"));
  EXPECT_EQ(hub.watch_count(), 0u);
  EXPECT_EQ(hub.watched_id_count(), 0u);
}

TEST(EventHubTest, WatchAddedDuringDeliveryStartsWithTheNextEvent) {
  EventHub hub;
  Recorder late;
  std::unique_ptr<WatchHandle> late_handle;
  auto handle = hub.Subscribe({}, [&](const v1::SessionEvent&) {
    if (!late_handle) late_handle = hub.Subscribe({}, late.Sink());
  });
  hub.Publish(Event(v1::SessionEvent::CREATED, "a"));
  EXPECT_TRUE(late.seen.empty());
  hub.Publish(Event(v1::SessionEvent::CREATED, "b"));
  EXPECT_EQ(late.seen, std::vector<std::string>{"CREATED:b"});
}

TEST(EventHubTest, NestedPublishFromASinkIsDelivered) {
  EventHub hub;
  Recorder r;
  auto recorder = hub.Subscribe({}, r.Sink());
  auto chain = hub.Subscribe(
      {"a"}, [&](const v1::SessionEvent&) { hub.Publish(Event(v1::SessionEvent::CHANGED, "b")); });
  hub.Publish(Event(v1::SessionEvent::CHANGED, "a"));
  EXPECT_EQ(r.seen, (std::vector<std::string>{"CHANGED:b", "CHANGED:a"}));
}

TEST(EventHubTest, HandleMayOutliveTheHub) {
  std::unique_ptr<WatchHandle> handle;
  {
    EventHub hub;
    handle = hub.Subscribe({"a"}, [](const v1::SessionEvent&) {});
  }
  handle.reset();  // must not touch the destroyed hub
}

}  // namespace
}  // namespace sessiond
