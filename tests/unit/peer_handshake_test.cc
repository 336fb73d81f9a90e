#include "replication/cluster/peer_handshake.h"

#include <gtest/gtest.h>

#include <string>

namespace sessiond {
namespace {

using peer::v1::RefuseReason;
using Role = PeerHandshake::Role;

constexpr char kSecret[] = "0123456789abcdef-shared-secret";

HandshakeConfig Config(std::string node_id, uint64_t incarnation, std::string secret = "",
                       std::string cluster = "prod") {
  return HandshakeConfig{NodeIdentity{std::move(cluster), std::move(node_id), incarnation},
                         "127.0.0.1:7500", std::move(secret)};
}

// Runs a whole exchange between two handshakes; returns the first failure, or OK.
struct Exchange {
  Exchange(HandshakeConfig dialer_config, HandshakeConfig acceptor_config)
      : dialer(std::move(dialer_config), Role::kDialer),
        acceptor(std::move(acceptor_config), Role::kAcceptor) {}

  Status Run() {
    Result<peer::v1::Hello> hello = dialer.MakeHello();
    if (!hello.ok()) return hello.status();
    Result<peer::v1::HelloAck> ack = acceptor.OnHello(*hello);
    if (!ack.ok()) return ack.status();
    Result<peer::v1::HelloProof> proof = dialer.OnHelloAck(*ack);
    if (!proof.ok()) return proof.status();
    last_proof = *proof;
    return acceptor.OnHelloProof(*proof);
  }

  PeerHandshake dialer;
  PeerHandshake acceptor;
  peer::v1::HelloProof last_proof;
};

TEST(PeerHandshakeTest, CompletesWithoutSecretAndLearnsIdentities) {
  Exchange x(Config("a", 11), Config("b", 22));
  ASSERT_TRUE(x.Run().ok());
  EXPECT_TRUE(x.dialer.complete());
  EXPECT_TRUE(x.acceptor.complete());
  EXPECT_EQ(x.dialer.peer().node_id, "b");
  EXPECT_EQ(x.dialer.peer().incarnation, 22u);
  EXPECT_EQ(x.dialer.peer().listen_address, "127.0.0.1:7500");
  EXPECT_EQ(x.acceptor.peer().node_id, "a");
  EXPECT_EQ(x.acceptor.peer().incarnation, 11u);
  EXPECT_TRUE(x.last_proof.proof().empty());
  EXPECT_EQ(x.dialer.dialer_nonce(), x.acceptor.dialer_nonce());
  EXPECT_EQ(x.dialer.dialer_nonce().size(), PeerHandshake::kNonceBytes);
}

TEST(PeerHandshakeTest, CompletesWithTheSameSecret) {
  Exchange x(Config("a", 1, kSecret), Config("b", 2, kSecret));
  ASSERT_TRUE(x.Run().ok());
  EXPECT_TRUE(x.dialer.complete());
  EXPECT_TRUE(x.acceptor.complete());
  EXPECT_EQ(x.last_proof.proof().size(), 32u);
}

TEST(PeerHandshakeTest, DifferentClusterNameRefusedByAcceptor) {
  Exchange x(Config("a", 1, "", "prod"), Config("b", 2, "", "staging"));
  const Status s = x.Run();
  EXPECT_EQ(s.code(), v1::INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("cluster"), std::string::npos) << s.message();
  EXPECT_EQ(x.acceptor.failure_reason(), peer::v1::CLUSTER_MISMATCH);
  EXPECT_FALSE(x.acceptor.complete());
}

TEST(PeerHandshakeTest, DifferentProtocolVersionRefused) {
  PeerHandshake dialer(Config("a", 1), Role::kDialer);
  PeerHandshake acceptor(Config("b", 2), Role::kAcceptor);
  Result<peer::v1::Hello> hello = dialer.MakeHello();
  ASSERT_TRUE(hello.ok());
  hello->set_protocol_version(kPeerProtocolVersion + 1);
  EXPECT_FALSE(acceptor.OnHello(*hello).ok());
  EXPECT_EQ(acceptor.failure_reason(), peer::v1::VERSION_MISMATCH);
}

TEST(PeerHandshakeTest, DifferentSecretsRefusedByDialer) {
  Exchange x(Config("a", 1, kSecret), Config("b", 2, "another-secret-of-enough-length"));
  const Status s = x.Run();
  EXPECT_EQ(s.code(), v1::UNAUTHENTICATED);
  EXPECT_EQ(x.dialer.failure_reason(), peer::v1::SECRET_MISMATCH);
  EXPECT_FALSE(x.dialer.complete());
  EXPECT_FALSE(x.acceptor.complete());
}

TEST(PeerHandshakeTest, SecretOnOneSideOnlyRefused) {
  {
    Exchange x(Config("a", 1, kSecret), Config("b", 2));
    EXPECT_EQ(x.Run().code(), v1::UNAUTHENTICATED);
    EXPECT_EQ(x.dialer.failure_reason(), peer::v1::SECRET_MISSING);
  }
  {
    Exchange x(Config("a", 1), Config("b", 2, kSecret));
    EXPECT_EQ(x.Run().code(), v1::UNAUTHENTICATED);
    EXPECT_EQ(x.dialer.failure_reason(), peer::v1::SECRET_MISSING);
  }
}

TEST(PeerHandshakeTest, AcceptorRejectsMissingOrForgedDialerProof) {
  PeerHandshake dialer(Config("a", 1, kSecret), Role::kDialer);
  PeerHandshake acceptor(Config("b", 2, kSecret), Role::kAcceptor);
  Result<peer::v1::Hello> hello = dialer.MakeHello();
  ASSERT_TRUE(hello.ok());
  Result<peer::v1::HelloAck> ack = acceptor.OnHello(*hello);
  ASSERT_TRUE(ack.ok());
  peer::v1::HelloProof forged;
  forged.set_proof(std::string(32, 'x'));
  EXPECT_EQ(acceptor.OnHelloProof(forged).code(), v1::UNAUTHENTICATED);
  EXPECT_EQ(acceptor.failure_reason(), peer::v1::SECRET_MISMATCH);
  EXPECT_FALSE(acceptor.complete());

  PeerHandshake acceptor2(Config("b", 2, kSecret), Role::kAcceptor);
  ASSERT_TRUE(acceptor2.OnHello(*hello).ok());
  EXPECT_EQ(acceptor2.OnHelloProof(peer::v1::HelloProof()).code(), v1::UNAUTHENTICATED);
  EXPECT_EQ(acceptor2.failure_reason(), peer::v1::SECRET_MISSING);
}

TEST(PeerHandshakeTest, ProofFromAnotherHandshakeIsNotAccepted) {
  // A recorded proof is worthless: the acceptor's fresh nonce is in the transcript.
  Exchange recorded(Config("a", 1, kSecret), Config("b", 2, kSecret));
  ASSERT_TRUE(recorded.Run().ok());

  PeerHandshake replayer(Config("a", 1, kSecret), Role::kDialer);
  PeerHandshake acceptor(Config("b", 2, kSecret), Role::kAcceptor);
  Result<peer::v1::Hello> hello = replayer.MakeHello();
  ASSERT_TRUE(hello.ok());
  ASSERT_TRUE(acceptor.OnHello(*hello).ok());
  EXPECT_EQ(acceptor.OnHelloProof(recorded.last_proof).code(), v1::UNAUTHENTICATED);
  EXPECT_EQ(acceptor.failure_reason(), peer::v1::SECRET_MISMATCH);
}

TEST(PeerHandshakeTest, AcceptorProofReflectedAsDialerProofIsNotAccepted) {
  PeerHandshake dialer(Config("a", 1, kSecret), Role::kDialer);
  PeerHandshake acceptor(Config("b", 2, kSecret), Role::kAcceptor);
  Result<peer::v1::Hello> hello = dialer.MakeHello();
  ASSERT_TRUE(hello.ok());
  Result<peer::v1::HelloAck> ack = acceptor.OnHello(*hello);
  ASSERT_TRUE(ack.ok());
  peer::v1::HelloProof reflected;
  reflected.set_proof(ack->proof());
  EXPECT_EQ(acceptor.OnHelloProof(reflected).code(), v1::UNAUTHENTICATED);
}

TEST(PeerHandshakeTest, TamperedIdentityFailsTheProof) {
  PeerHandshake dialer(Config("a", 1, kSecret), Role::kDialer);
  PeerHandshake acceptor(Config("b", 2, kSecret), Role::kAcceptor);
  Result<peer::v1::Hello> hello = dialer.MakeHello();
  ASSERT_TRUE(hello.ok());
  Result<peer::v1::HelloAck> ack = acceptor.OnHello(*hello);
  ASSERT_TRUE(ack.ok());
  ack->set_incarnation(3);  // a man in the middle rewrites who answered
  EXPECT_FALSE(dialer.OnHelloAck(*ack).ok());
  EXPECT_EQ(dialer.failure_reason(), peer::v1::SECRET_MISMATCH);
}

TEST(PeerHandshakeTest, SelfConnectionAndDuplicateNodeIdAreTold) {
  {
    Exchange x(Config("a", 7), Config("a", 7));
    EXPECT_FALSE(x.Run().ok());
    EXPECT_EQ(x.acceptor.failure_reason(), peer::v1::SELF_CONNECTION);
  }
  {
    Exchange x(Config("a", 7), Config("a", 8));
    const Status s = x.Run();
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(x.acceptor.failure_reason(), peer::v1::DUPLICATE_NODE_ID);
    EXPECT_NE(s.message().find("--node-id"), std::string::npos) << s.message();
  }
}

TEST(PeerHandshakeTest, MalformedAndOutOfOrderMessagesRefused) {
  PeerHandshake acceptor(Config("b", 2), Role::kAcceptor);
  EXPECT_FALSE(acceptor.OnHelloProof(peer::v1::HelloProof()).ok());
  EXPECT_EQ(acceptor.failure_reason(), peer::v1::MALFORMED);

  PeerHandshake dialer(Config("a", 1), Role::kDialer);
  Result<peer::v1::Hello> hello = dialer.MakeHello();
  ASSERT_TRUE(hello.ok());
  hello->set_nonce("short");
  PeerHandshake acceptor2(Config("b", 2), Role::kAcceptor);
  EXPECT_FALSE(acceptor2.OnHello(*hello).ok());
  EXPECT_EQ(acceptor2.failure_reason(), peer::v1::MALFORMED);

  hello->clear_nonce();
  hello->set_nonce(std::string(PeerHandshake::kNonceBytes, 'n'));
  hello->clear_node_id();
  PeerHandshake acceptor3(Config("b", 2), Role::kAcceptor);
  EXPECT_FALSE(acceptor3.OnHello(*hello).ok());
  EXPECT_EQ(acceptor3.failure_reason(), peer::v1::MALFORMED);

  // A dialer does not take a second HelloAck, nor an acceptor a second Hello.
  Exchange x(Config("a", 1), Config("b", 2));
  ASSERT_TRUE(x.Run().ok());
  peer::v1::HelloAck ack;
  EXPECT_FALSE(x.dialer.OnHelloAck(ack).ok());
  EXPECT_EQ(x.dialer.failure_reason(), peer::v1::MALFORMED);
}

}  // namespace
}  // namespace sessiond
