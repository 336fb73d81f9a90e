#include "replication/cluster/peer_handshake.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdint>
#include <string_view>
#include <utility>

namespace sessiond {
namespace {

constexpr char kAcceptorLabel[] = "sessiond peer v1 acceptor proof";
constexpr char kDialerLabel[] = "sessiond peer v1 dialer proof";
constexpr size_t kProofBytes = 32;  // SHA-256

void AppendU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

// Length-prefixed, so that no two different field lists encode to the same bytes.
void AppendField(std::string& out, std::string_view field) {
  AppendU64(out, field.size());
  out.append(field);
}

}  // namespace

PeerHandshake::PeerHandshake(HandshakeConfig config, Role role)
    : config_(std::move(config)), role_(role) {}

Status PeerHandshake::Fail(peer::v1::RefuseReason reason, Status status) {
  step_ = Step::kFailed;
  failure_reason_ = reason;
  return status;
}

Result<peer::v1::Hello> PeerHandshake::MakeHello() {
  if (role_ != Role::kDialer || step_ != Step::kStart) {
    return Fail(peer::v1::MALFORMED, Internal("MakeHello called out of order: only a dialer "
                                              "starts a handshake, once"));
  }
  own_nonce_.resize(kNonceBytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(own_nonce_.data()), kNonceBytes) != 1) {
    return Fail(peer::v1::REFUSE_UNSPECIFIED,
                Internal("OpenSSL's random generator failed; cannot make a handshake challenge"));
  }
  peer::v1::Hello hello;
  hello.set_protocol_version(kPeerProtocolVersion);
  hello.set_cluster(config_.self.cluster);
  hello.set_node_id(config_.self.node_id);
  hello.set_incarnation(config_.self.incarnation);
  hello.set_listen_address(config_.listen_address);
  hello.set_nonce(own_nonce_);
  step_ = Step::kHelloSent;
  return hello;
}

Result<peer::v1::HelloAck> PeerHandshake::OnHello(const peer::v1::Hello& hello) {
  if (role_ != Role::kAcceptor || step_ != Step::kStart) {
    return Fail(peer::v1::MALFORMED,
                InvalidArgument("unexpected Hello: a handshake was already under way"));
  }
  if (Status s = CheckIdentity(hello.protocol_version(), hello.cluster(), hello.node_id(),
                               hello.incarnation(), hello.nonce());
      !s.ok()) {
    return s;
  }
  peer_ = PeerIdentity{hello.node_id(), hello.incarnation(), hello.listen_address()};
  peer_nonce_ = hello.nonce();
  own_nonce_.resize(kNonceBytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(own_nonce_.data()), kNonceBytes) != 1) {
    return Fail(peer::v1::REFUSE_UNSPECIFIED,
                Internal("OpenSSL's random generator failed; cannot make a handshake challenge"));
  }
  peer::v1::HelloAck ack;
  ack.set_protocol_version(kPeerProtocolVersion);
  ack.set_cluster(config_.self.cluster);
  ack.set_node_id(config_.self.node_id);
  ack.set_incarnation(config_.self.incarnation);
  ack.set_listen_address(config_.listen_address);
  ack.set_nonce(own_nonce_);
  if (!config_.secret.empty()) ack.set_proof(Proof(kAcceptorLabel));
  step_ = Step::kAckSent;
  return ack;
}

Result<peer::v1::HelloProof> PeerHandshake::OnHelloAck(const peer::v1::HelloAck& ack) {
  if (role_ != Role::kDialer || step_ != Step::kHelloSent) {
    return Fail(peer::v1::MALFORMED,
                InvalidArgument("unexpected HelloAck: this side sent no Hello on the link"));
  }
  if (Status s = CheckIdentity(ack.protocol_version(), ack.cluster(), ack.node_id(),
                               ack.incarnation(), ack.nonce());
      !s.ok()) {
    return s;
  }
  peer_ = PeerIdentity{ack.node_id(), ack.incarnation(), ack.listen_address()};
  peer_nonce_ = ack.nonce();
  if (Status s = CheckProof(ack.proof(), kAcceptorLabel); !s.ok()) return s;
  peer::v1::HelloProof proof;
  if (!config_.secret.empty()) proof.set_proof(Proof(kDialerLabel));
  step_ = Step::kComplete;
  complete_ = true;
  return proof;
}

Status PeerHandshake::OnHelloProof(const peer::v1::HelloProof& proof) {
  if (role_ != Role::kAcceptor || step_ != Step::kAckSent) {
    return Fail(peer::v1::MALFORMED,
                InvalidArgument("unexpected HelloProof: this side sent no HelloAck on the link"));
  }
  if (Status s = CheckProof(proof.proof(), kDialerLabel); !s.ok()) return s;
  step_ = Step::kComplete;
  complete_ = true;
  return Status::Ok();
}

Status PeerHandshake::CheckIdentity(uint32_t version, const std::string& cluster,
                                    const std::string& node_id, uint64_t incarnation,
                                    const std::string& nonce) {
  if (version != kPeerProtocolVersion) {
    return Fail(peer::v1::VERSION_MISMATCH,
                InvalidArgument(fmt::format(
                    "peer '{}' speaks peer protocol version {}, this node speaks {}; run the "
                    "same sessiond release on every node of the cluster",
                    node_id, version, kPeerProtocolVersion)));
  }
  if (cluster != config_.self.cluster) {
    return Fail(peer::v1::CLUSTER_MISMATCH,
                InvalidArgument(fmt::format(
                    "peer '{}' belongs to cluster '{}' but this node to '{}'; give every node "
                    "of one cluster the same cluster name, and check --peers",
                    node_id, cluster, config_.self.cluster)));
  }
  if (node_id.empty()) {
    return Fail(peer::v1::MALFORMED,
                InvalidArgument("the peer sent no node id; every node needs a --node-id"));
  }
  if (node_id == config_.self.node_id) {
    if (incarnation == config_.self.incarnation) {
      return Fail(
          peer::v1::SELF_CONNECTION,
          InvalidArgument(fmt::format(
              "node '{}' reached itself: its own address is among its peers; harmless", node_id)));
    }
    return Fail(peer::v1::DUPLICATE_NODE_ID,
                InvalidArgument(fmt::format(
                    "another running node also calls itself '{}'; give every node its own "
                    "--node-id",
                    node_id)));
  }
  if (nonce.size() != kNonceBytes) {
    return Fail(peer::v1::MALFORMED,
                InvalidArgument(fmt::format("peer '{}' sent a {}-byte challenge instead of {}",
                                            node_id, nonce.size(), kNonceBytes)));
  }
  return Status::Ok();
}

Status PeerHandshake::CheckProof(const std::string& proof, const char* label) {
  const bool have_secret = !config_.secret.empty();
  if (have_secret && proof.empty()) {
    return Fail(peer::v1::SECRET_MISSING,
                Unauthenticated(fmt::format(
                    "peer '{}' has no cluster secret but this node has one; give every node "
                    "the same --cluster-secret-file",
                    peer_.node_id)));
  }
  if (!have_secret && !proof.empty()) {
    return Fail(peer::v1::SECRET_MISSING,
                Unauthenticated(fmt::format(
                    "peer '{}' has a cluster secret but this node has none; give every node "
                    "the same --cluster-secret-file",
                    peer_.node_id)));
  }
  if (!have_secret) return Status::Ok();
  const std::string expected = Proof(label);
  if (proof.size() != expected.size() ||
      CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) != 0) {
    return Fail(peer::v1::SECRET_MISMATCH,
                Unauthenticated(fmt::format(
                    "peer '{}' failed the cluster-secret challenge: the nodes have different "
                    "secrets; give every node the same --cluster-secret-file",
                    peer_.node_id)));
  }
  return Status::Ok();
}

std::string PeerHandshake::Proof(const char* label) const {
  const bool dialer = role_ == Role::kDialer;
  const std::string& dialer_id = dialer ? config_.self.node_id : peer_.node_id;
  const uint64_t dialer_incarnation = dialer ? config_.self.incarnation : peer_.incarnation;
  const std::string& dialer_nonce = dialer ? own_nonce_ : peer_nonce_;
  const std::string& acceptor_id = dialer ? peer_.node_id : config_.self.node_id;
  const uint64_t acceptor_incarnation = dialer ? peer_.incarnation : config_.self.incarnation;
  const std::string& acceptor_nonce = dialer ? peer_nonce_ : own_nonce_;

  std::string transcript;
  AppendField(transcript, label);
  AppendU64(transcript, kPeerProtocolVersion);
  AppendField(transcript, config_.self.cluster);
  AppendField(transcript, dialer_id);
  AppendU64(transcript, dialer_incarnation);
  AppendField(transcript, dialer_nonce);
  AppendField(transcript, acceptor_id);
  AppendU64(transcript, acceptor_incarnation);
  AppendField(transcript, acceptor_nonce);

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), config_.secret.data(), static_cast<int>(config_.secret.size()),
           reinterpret_cast<const unsigned char*>(transcript.data()), transcript.size(), mac,
           &mac_len) == nullptr ||
      mac_len != kProofBytes) {
    // An empty proof never verifies against a non-empty secret, so a failure here refuses the
    // link rather than admitting it.
    return {};
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

}  // namespace sessiond
