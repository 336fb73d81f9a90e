// PeerNetwork and PeerLink over real sockets on 127.0.0.1, several networks in one io_context.
// Nothing sleeps: each test runs the loop until what it waits for has happened (with a generous
// bound so that a bug fails the test rather than hanging it).
#include "replication/cluster/peer_network.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/test_cluster_support.h"

namespace sessiond {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;
using peer::v1::PeerEnvelope;

constexpr char kSecret[] = "0123456789abcdef-shared-secret";

using testing::RunUntil;

struct Recorder : PeerNetwork::Observer {
  void OnPeerUp(const PeerIdentity& peer) override { ups.push_back(peer); }
  void OnPeerDown(const PeerIdentity& peer, const Status& why) override {
    downs.push_back(peer);
    down_reasons.push_back(why);
  }
  void OnPeerMessage(const PeerIdentity& peer, const PeerEnvelope& envelope) override {
    froms.push_back(peer);
    messages.push_back(envelope);
  }

  std::vector<PeerIdentity> ups;
  std::vector<PeerIdentity> downs;
  std::vector<Status> down_reasons;
  std::vector<PeerIdentity> froms;
  std::vector<PeerEnvelope> messages;
};

PeerEnvelope Probe(std::string payload) {
  PeerEnvelope envelope;
  envelope.mutable_probe()->set_payload(std::move(payload));
  return envelope;
}

class PeerNetworkTest : public ::testing::Test {
 protected:
  struct Node {
    Recorder recorder;
    std::unique_ptr<PeerNetwork> network;

    PeerNetwork* operator->() { return network.get(); }
    std::string address() const { return network->advertise_address(); }
    bool linked_to(const std::string& id) const {
      for (const std::string& p : network->LinkedPeers()) {
        if (p == id) return true;
      }
      return false;
    }
    PeerLinkStatus status_of(const std::string& id) const {
      for (const PeerLinkStatus& s : network->Peers()) {
        if (s.identity.node_id == id) return s;
      }
      return {};
    }
  };

  PeerNetworkOptions Options(std::string id, std::vector<Endpoint> seeds = {}) {
    PeerNetworkOptions options;
    options.self = NodeIdentity{"prod", std::move(id), next_incarnation_++};
    options.listen = Endpoint{Endpoint::Kind::kTcp, "127.0.0.1", 0, ""};
    options.seeds = std::move(seeds);
    options.reconnect_min = 10ms;
    options.reconnect_max = 100ms;
    return options;
  }

  // Builds and starts a node; asserts that it listens.
  Node& Start(PeerNetworkOptions options) {
    auto node = std::make_unique<Node>();
    node->network =
        std::make_unique<PeerNetwork>(io_.get_executor(), std::move(options), &node->recorder);
    const Status s = node->network->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  static Endpoint EndpointOf(const Node& node) { return node.network->listen_endpoint(); }

  asio::io_context io_;
  uint64_t next_incarnation_ = 1000;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(PeerNetworkTest, SeedDialLinksBothNodesAndSaysWhoIsWho) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));

  ASSERT_EQ(a.recorder.ups.size(), 1u);
  EXPECT_EQ(a.recorder.ups[0].node_id, "b");
  EXPECT_EQ(a.recorder.ups[0].incarnation, 1001u);
  EXPECT_EQ(a.recorder.ups[0].listen_address, b.address());
  ASSERT_EQ(b.recorder.ups.size(), 1u);
  EXPECT_EQ(b.recorder.ups[0].node_id, "a");
  EXPECT_EQ(a->counters().handshakes, 1u);
  EXPECT_EQ(a->counters().accepted, 1u);
  EXPECT_EQ(b->counters().dials, 1u);
  EXPECT_TRUE(b.status_of("a").dialed);
  EXPECT_FALSE(a.status_of("b").dialed);
}

TEST_F(PeerNetworkTest, DifferentClusterNameIsRefusedLoggedAndCounted) {
  Node& a = Start(Options("a"));
  PeerNetworkOptions options = Options("b", {EndpointOf(a)});
  options.self.cluster = "staging";
  Node& b = Start(options);
  ASSERT_TRUE(RunUntil(io_, [&] {
    return a->counters().refused[peer::v1::CLUSTER_MISMATCH] >= 1 &&
           b->counters().refused_by_peer[peer::v1::CLUSTER_MISMATCH] >= 1;
  }));
  EXPECT_TRUE(a.recorder.ups.empty());
  EXPECT_TRUE(b.recorder.ups.empty());
  EXPECT_TRUE(a->LinkedPeers().empty());
}

TEST_F(PeerNetworkTest, WrongSecretIsRefusedAndCountedOnBothSides) {
  PeerNetworkOptions a_options = Options("a");
  a_options.secret = kSecret;
  Node& a = Start(a_options);
  PeerNetworkOptions b_options = Options("b", {EndpointOf(a)});
  b_options.secret = "a-different-secret-of-some-length";
  Node& b = Start(b_options);
  // The dialer checks the acceptor's answer first, so b refuses and a hears why.
  ASSERT_TRUE(RunUntil(io_, [&] {
    return b->counters().refused[peer::v1::SECRET_MISMATCH] >= 2 &&
           a->counters().refused_by_peer[peer::v1::SECRET_MISMATCH] >= 2;
  }));
  EXPECT_TRUE(a.recorder.ups.empty());
  EXPECT_TRUE(b.recorder.ups.empty());
  EXPECT_EQ(a->counters().handshakes, 0u);
  // It keeps trying, with backoff, in case the operator fixes the secret file.
  EXPECT_GE(b->counters().dials, 2u);
}

TEST_F(PeerNetworkTest, SecretOnOneSideOnlyIsRefused) {
  PeerNetworkOptions a_options = Options("a");
  a_options.secret = kSecret;
  Node& a = Start(a_options);
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] {
    return b->counters().refused[peer::v1::SECRET_MISSING] >= 1 &&
           a->counters().refused_by_peer[peer::v1::SECRET_MISSING] >= 1;
  }));
  EXPECT_TRUE(a.recorder.ups.empty());
}

TEST_F(PeerNetworkTest, SameSecretLinks) {
  PeerNetworkOptions a_options = Options("a");
  a_options.secret = kSecret;
  Node& a = Start(a_options);
  PeerNetworkOptions b_options = Options("b", {EndpointOf(a)});
  b_options.secret = kSecret;
  Node& b = Start(b_options);
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));
}

TEST_F(PeerNetworkTest, BothNodesDialingAtOnceEndWithOneLinkDialedByTheLowerId) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  // In the same turn, before either dial ran: a dials b too.
  a->AddPeerAddress(b.address(), "");
  ASSERT_TRUE(RunUntil(io_, [&] {
    return a.linked_to("b") && b.linked_to("a") && a.status_of("b").dialed &&
           !b.status_of("a").dialed;
  }));
  // Both links completed their handshakes, so each side had to choose, and chose the same.
  EXPECT_GE(a->counters().handshakes, 2u);
  EXPECT_GE(a->counters().duplicate_links, 1u);
  EXPECT_GE(b->counters().duplicate_links, 1u);
  // The peer was never reported down, and the kept link is one connection seen from its ends.
  EXPECT_TRUE(a.recorder.downs.empty());
  EXPECT_TRUE(b.recorder.downs.empty());
  EXPECT_EQ(a.status_of("b").remote_address, b.address());

  // Sent in the turn of the switch or after: nothing is lost either way.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(a->Send("b", Probe("from a")).ok());
    ASSERT_TRUE(b->Send("a", Probe("from b")).ok());
  }
  ASSERT_TRUE(RunUntil(
      io_, [&] { return a.recorder.messages.size() == 10 && b.recorder.messages.size() == 10; }));
}

TEST_F(PeerNetworkTest, OwnAddressAmongPeersIsRecognisedAndNotDialedAgain) {
  Node& a = Start(Options("a"));
  // Another spelling of a's own address, as an operator listing every node in --peers gives.
  a->AddPeerAddress("localhost:" + std::to_string(EndpointOf(a).port), "");
  ASSERT_TRUE(RunUntil(io_, [&] {
    return a->counters().refused[peer::v1::SELF_CONNECTION] >= 1 &&
           a->counters().refused_by_peer[peer::v1::SELF_CONNECTION] >= 1;
  }));
  EXPECT_TRUE(a.recorder.ups.empty());
  // A real peer still links, and by then a has not dialed itself again.
  Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b"); }));
  EXPECT_EQ(a->counters().refused_by_peer[peer::v1::SELF_CONNECTION], 1u);
}

TEST_F(PeerNetworkTest, LargeMessagesRoundTripCompressedWithLz4) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));
  const uint64_t bytes_before = a.status_of("b").counters.bytes_out;

  // 4 MiB that compresses well (text-like), and 256 KiB that does not.
  std::string compressible;
  while (compressible.size() < (4u << 20)) compressible += "session attribute value 0123456789;";
  std::string random_bytes(256u << 10, '\0');
  std::mt19937 rng(42);
  for (char& c : random_bytes) c = static_cast<char>(rng());

  ASSERT_TRUE(a->Send("b", Probe(compressible)).ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return b.recorder.messages.size() == 1; }));
  EXPECT_EQ(b.recorder.messages[0].probe().payload(), compressible);
  EXPECT_EQ(b.recorder.froms[0].node_id, "a");
  const uint64_t wire = a.status_of("b").counters.bytes_out - bytes_before;
  EXPECT_LT(wire, compressible.size() / 10) << "the frame went out uncompressed";

  ASSERT_TRUE(b->Send("a", Probe(random_bytes)).ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return a.recorder.messages.size() == 1; }));
  EXPECT_EQ(a.recorder.messages[0].probe().payload(), random_bytes);
}

TEST_F(PeerNetworkTest, StateTransferChunksAreNotCompressedAgain) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));
  const uint64_t bytes_before = a.status_of("b").counters.bytes_out;

  // The payload is lz4 already in a real chunk; here it compresses well, so a frame that
  // compressed it again would be far smaller than it.
  std::string payload;
  while (payload.size() < (1u << 20)) payload += "session attribute value 0123456789;";
  peer::v1::PeerEnvelope envelope;
  envelope.mutable_state_transfer_chunk()->set_transfer_id(7);
  envelope.mutable_state_transfer_chunk()->set_lz4_payload(payload);
  ASSERT_TRUE(a->Send("b", envelope).ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return b.recorder.messages.size() == 1; }));
  EXPECT_EQ(b.recorder.messages[0].state_transfer_chunk().lz4_payload(), payload);
  const uint64_t wire = a.status_of("b").counters.bytes_out - bytes_before;
  EXPECT_GT(wire, payload.size()) << "the chunk's frame was compressed";
}

TEST_F(PeerNetworkTest, MessagesAreNumberedAndAcknowledged) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));
  for (uint64_t i = 1; i <= 3; ++i) {
    Result<uint64_t> seq = a->Send("b", Probe("x"));
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, i);
  }
  // Membership kinds are not numbered.
  PeerEnvelope heartbeat;
  heartbeat.mutable_heartbeat()->set_sent_ms(1);
  Result<uint64_t> unnumbered = a->Send("b", heartbeat);
  ASSERT_TRUE(unnumbered.ok());
  EXPECT_EQ(*unnumbered, 0u);
  ASSERT_TRUE(RunUntil(io_, [&] { return b.recorder.messages.size() == 4; }));
  EXPECT_EQ(b.recorder.messages[2].seq(), 3u);
  EXPECT_EQ(b.status_of("a").received_seq, 3u);
  EXPECT_EQ(a.status_of("b").sent_seq, 3u);
  EXPECT_EQ(a.status_of("b").acked_seq, 0u);

  // Any message back carries the ack.
  ASSERT_TRUE(b->Send("a", heartbeat).ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return a.status_of("b").acked_seq == 3; }));
  EXPECT_EQ(a.recorder.messages.back().ack(), 3u);
}

TEST_F(PeerNetworkTest, OutboundQueueBoundIsEnforcedAndRefusedSendsUseNoSeq) {
  PeerNetworkOptions a_options = Options("a");
  a_options.link.max_queue_frames = 4;
  Node& a = Start(a_options);
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));

  // All in one turn: the writer cannot drain in between.
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    Result<uint64_t> r = a->Send("b", Probe("m" + std::to_string(i)));
    if (r.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(r.status().code(), v1::RESOURCE_EXHAUSTED) << r.status().ToString();
      ++refused;
    }
  }
  EXPECT_EQ(accepted, 4);
  EXPECT_EQ(refused, 6);
  EXPECT_EQ(a->counters().sends_queue_full, 6u);
  EXPECT_EQ(a.status_of("b").queue_frames, 4u);
  EXPECT_EQ(a.status_of("b").counters.queue_full, 6u);

  ASSERT_TRUE(RunUntil(io_, [&] { return b.recorder.messages.size() == 4; }));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(b.recorder.messages[i].seq(), i + 1);
  ASSERT_TRUE(RunUntil(io_, [&] { return a.status_of("b").queue_frames == 0; }));
  Result<uint64_t> next = a->Send("b", Probe("after"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 5u);
}

TEST_F(PeerNetworkTest, QueueByteBoundIsEnforced) {
  PeerNetworkOptions a_options = Options("a");
  a_options.link.max_queue_bytes = 64u << 10;
  a_options.link.frames.compress_threshold = 0;
  Node& a = Start(a_options);
  Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b"); }));
  ASSERT_TRUE(a->Send("b", Probe(std::string(40u << 10, 'x'))).ok());
  Result<uint64_t> second = a->Send("b", Probe(std::string(40u << 10, 'y')));
  EXPECT_EQ(second.status().code(), v1::RESOURCE_EXHAUSTED);
  // The refused frame, serialized onto the queue before the bound was checked, is gone again.
  EXPECT_EQ(a.status_of("b").queue_frames, 1u);
  EXPECT_LT(a.status_of("b").queue_bytes, 41u << 10);
}

TEST_F(PeerNetworkTest, ABurstBeyondWhatTheSocketTakesAtOnceArrivesWholeAndInOrder) {
  PeerNetworkOptions a_options = Options("a");
  a_options.link.frames.compress_threshold = 0;
  Node& a = Start(a_options);
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));
  // 16 MiB in one turn: far more than a loopback socket's buffer, so the writer's first write
  // is partial and the rest is awaited; then small frames again through the same buffers.
  std::mt19937 random(7);
  std::vector<std::string> sent;
  for (int i = 0; i < 64; ++i) {
    std::string payload(256u << 10, '\0');
    for (char& c : payload) c = static_cast<char>(random());
    sent.push_back(payload);
    ASSERT_TRUE(a->Send("b", Probe(std::move(payload))).ok());
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return b.recorder.messages.size() == sent.size(); }));
  for (int i = 0; i < 3; ++i) {
    sent.push_back("small " + std::to_string(i));
    ASSERT_TRUE(a->Send("b", Probe(sent.back())).ok());
  }
  ASSERT_TRUE(RunUntil(io_, [&] { return b.recorder.messages.size() == sent.size(); }));
  for (size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(b.recorder.messages[i].probe().payload(), sent[i]) << i;
  }
  EXPECT_EQ(a.status_of("b").queue_frames, 0u);
  EXPECT_EQ(a.status_of("b").queue_bytes, 0u);
}

// Two PeerLinks over one loopback connection, observed directly.
struct LinkRecorder : PeerLink::Observer {
  void OnLinkEstablished(PeerLink&) override { ++established; }
  void OnLinkRefused(PeerLink&, peer::v1::RefuseReason, const Status&, bool) override {}
  void OnLinkMessage(PeerLink&, const PeerEnvelope& envelope) override {
    payloads.push_back(envelope.probe().payload());
  }
  void OnLinkClosed(PeerLink&, const Status&) override { ++closed; }
  int established = 0;
  int closed = 0;
  std::vector<std::string> payloads;
};

TEST_F(PeerNetworkTest, QueuedFramesTakenFromALinkAreWholeFramesThatAnotherLinkSends) {
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket dialed(io_);
  dialed.connect(acceptor.local_endpoint());
  tcp::socket accepted = acceptor.accept();
  LinkRecorder a_seen;
  LinkRecorder b_seen;
  auto a = std::make_shared<PeerLink>(std::move(dialed), PeerLink::Role::kDialer,
                                      HandshakeConfig{NodeIdentity{"prod", "a", 1}, "", ""},
                                      PeerLinkOptions{}, &a_seen);
  auto b = std::make_shared<PeerLink>(std::move(accepted), PeerLink::Role::kAcceptor,
                                      HandshakeConfig{NodeIdentity{"prod", "b", 2}, "", ""},
                                      PeerLinkOptions{}, &b_seen);
  a->Start();
  b->Start();
  ASSERT_TRUE(RunUntil(io_, [&] { return a_seen.established == 1 && b_seen.established == 1; }));

  // Queued in one turn (the writer has not run), then taken back: one whole frame each.
  const std::vector<std::string> sent = {"one", std::string(300, 'x'), "three"};
  for (const std::string& payload : sent) ASSERT_TRUE(a->Send(Probe(payload)).ok());
  EXPECT_EQ(a->queue_frames(), 3u);
  std::deque<std::string> frames = a->TakeQueued();
  EXPECT_EQ(a->queue_frames(), 0u);
  EXPECT_EQ(a->queue_bytes(), 0u);
  ASSERT_EQ(frames.size(), 3u);
  for (size_t i = 0; i < frames.size(); ++i) {
    FrameDecoder decoder;
    decoder.Feed(frames[i]);
    std::string payload;
    ASSERT_EQ(decoder.Next(&payload), FrameDecoder::State::kFrame) << i;
    EXPECT_EQ(decoder.buffered(), 0u) << i;
    PeerEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(payload)) << i;
    EXPECT_EQ(envelope.probe().payload(), sent[i]);
  }
  // The other direction's link sends them as they are, after a frame of its own.
  ASSERT_TRUE(b->Send(Probe("zero")).ok());
  for (std::string& frame : frames) ASSERT_TRUE(b->SendFrame(std::move(frame)).ok());
  EXPECT_EQ(b->queue_frames(), 4u);
  ASSERT_TRUE(RunUntil(io_, [&] { return a_seen.payloads.size() == 4; }));
  EXPECT_EQ(a_seen.payloads, (std::vector<std::string>{"zero", "one", sent[1], "three"}));
  EXPECT_TRUE(b_seen.payloads.empty());
  a->Close(Status::Ok());
  b->Close(Status::Ok());
  ASSERT_TRUE(RunUntil(io_, [&] { return a_seen.closed == 1 && b_seen.closed == 1; }));
}

TEST_F(PeerNetworkTest, SendToAnUnknownPeerIsUnavailable) {
  Node& a = Start(Options("a"));
  Result<uint64_t> r = a->Send("nobody", Probe("x"));
  EXPECT_EQ(r.status().code(), v1::UNAVAILABLE);
  EXPECT_EQ(a->counters().sends_without_link, 1u);
}

TEST_F(PeerNetworkTest, SilentLinkIsClosedByItsReadDeadlineAndRedialed) {
  // PeerNetwork sends no heartbeats of its own (Cluster does), so with a short read deadline
  // an idle link is closed, and the dialing side links again.
  PeerNetworkOptions a_options = Options("a");
  a_options.link.read_timeout = 100ms;
  Node& a = Start(a_options);
  PeerNetworkOptions b_options = Options("b", {EndpointOf(a)});
  b_options.link.read_timeout = 100ms;
  Node& b = Start(b_options);
  ASSERT_TRUE(RunUntil(io_, [&] { return !b.recorder.downs.empty() && b.linked_to("a"); }));
  EXPECT_NE(b.recorder.down_reasons[0].message().find("ms"), std::string::npos);
  EXPECT_GE(b.recorder.ups.size(), 2u);
  EXPECT_EQ(b.recorder.ups[1].incarnation, b.recorder.ups[0].incarnation);
}

TEST_F(PeerNetworkTest, ConnectionThatNeverSpeaksFailsTheHandshakeDeadline) {
  PeerNetworkOptions a_options = Options("a");
  a_options.link.handshake_timeout = 100ms;
  Node& a = Start(a_options);
  tcp::socket mute(io_);
  mute.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), EndpointOf(a).port));
  ASSERT_TRUE(
      RunUntil(io_, [&] { return a->counters().refused[peer::v1::HANDSHAKE_TIMEOUT] == 1; }));
}

TEST_F(PeerNetworkTest, StrayClientIsRefusedAsMalformed) {
  Node& a = Start(Options("a"));
  tcp::socket stray(io_);
  stray.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), EndpointOf(a).port));
  asio::write(stray, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  ASSERT_TRUE(RunUntil(io_, [&] { return a->counters().refused[peer::v1::MALFORMED] == 1; }));
}

TEST_F(PeerNetworkTest, RestartedPeerReplacesItsOldLinkAndRestartsTheSequence) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b"); }));
  ASSERT_TRUE(a->Send("b", Probe("1")).ok());
  ASSERT_TRUE(a->Send("b", Probe("2")).ok());
  const uint64_t old_incarnation = a.recorder.ups[0].incarnation;

  b.network.reset();                     // b crashes...
  Start(Options("b", {EndpointOf(a)}));  // ...and comes back as a new process
  ASSERT_TRUE(RunUntil(io_, [&] {
    return a.linked_to("b") && a.status_of("b").identity.incarnation != old_incarnation;
  }));
  EXPECT_EQ(a.recorder.ups.back().incarnation, a.status_of("b").identity.incarnation);
  EXPECT_FALSE(a.recorder.downs.empty());
  Result<uint64_t> seq = a->Send("b", Probe("to the new b"));
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 1u);
}

TEST_F(PeerNetworkTest, DrainDeliversWhatWasQueuedThenGoesIdle) {
  Node& a = Start(Options("a"));
  Node& b = Start(Options("b", {EndpointOf(a)}));
  ASSERT_TRUE(RunUntil(io_, [&] { return a.linked_to("b") && b.linked_to("a"); }));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a->Send("b", Probe(std::to_string(i))).ok());
  a->Drain();
  EXPECT_EQ(a->Send("b", Probe("late")).status().code(), v1::UNAVAILABLE);
  bool idle = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await a->WaitIdle(5s);
        idle = true;
      },
      asio::detached);
  ASSERT_TRUE(RunUntil(io_, [&] { return idle; }));
  EXPECT_EQ(b.recorder.messages.size(), 100u);
  EXPECT_EQ(b.recorder.messages.back().probe().payload(), "99");
  EXPECT_TRUE(a->LinkedPeers().empty());
}

TEST_F(PeerNetworkTest, ListenerThatCannotBindSaysWhere) {
  Node& a = Start(Options("a"));
  PeerNetworkOptions options = Options("b");
  options.listen = EndpointOf(a);
  PeerNetwork b(io_.get_executor(), options, nullptr);
  const Status s = b.Start();
  EXPECT_EQ(s.code(), v1::UNAVAILABLE);
  EXPECT_NE(s.message().find(EndpointOf(a).ToString()), std::string::npos) << s.message();
}

}  // namespace
}  // namespace sessiond
