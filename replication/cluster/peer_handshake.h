// PeerHandshake: the logic of the peer handshake, with no I/O, so that every rule is unit-tested.
//
// The exchange (docs/peer-protocol.md):
//
//   dialer                                                acceptor
//     | --- Hello {version, cluster, id, incarnation, nonce_d} ---> |  OnHello: checks
//     | <-- HelloAck {..., nonce_a, proof_a} ------------------------ |  proof_a = HMAC(K, A|T)
//     | OnHelloAck: checks, verifies proof_a                          |
//     | --- HelloProof {proof_d} -----------------------------------> |  OnHelloProof: verifies
//   complete                                                       complete
//
// T (the transcript) binds both identities, both nonces, the cluster and the version; A and D
// are distinct labels so that neither side's answer can be reflected back as the other's. K is
// the cluster secret; without one (on both sides) the proofs are empty and nothing is verified.
// A failed step returns why (failure_reason()), and the caller sends a Refuse and closes.
//
// Threading: not thread-safe; one instance per connection, used by that connection's coroutine.
#ifndef SESSIOND_REPLICATION_CLUSTER_PEER_HANDSHAKE_H_
#define SESSIOND_REPLICATION_CLUSTER_PEER_HANDSHAKE_H_

#include <string>

#include "replication/cluster/node_identity.h"
#include "sessiond/peer/v1/peer.pb.h"
#include "sessiond/status.h"

namespace sessiond {

struct HandshakeConfig {
  NodeIdentity self;
  // Sent to peers so that they can dial this node back; may be "".
  std::string listen_address;
  // The shared cluster secret (--cluster-secret-file). Empty: links are not authenticated.
  std::string secret;
};

class PeerHandshake {
 public:
  enum class Role { kDialer, kAcceptor };

  // Size of each side's challenge, in bytes.
  static constexpr size_t kNonceBytes = 32;

  // `config` is copied.
  PeerHandshake(HandshakeConfig config, Role role);

  // Dialer, first step: the Hello to send, with a fresh nonce from OpenSSL's CSPRNG.
  // INTERNAL if the CSPRNG fails.
  Result<peer::v1::Hello> MakeHello();

  // Acceptor: checks the dialer's Hello and returns the HelloAck to send (with this side's
  // nonce and its answer to the dialer's). On error, refuse with failure_reason().
  Result<peer::v1::HelloAck> OnHello(const peer::v1::Hello& hello);

  // Dialer: checks the acceptor's HelloAck and verifies its answer; returns the HelloProof to
  // send, after which the dialer's side is complete. On error, refuse with failure_reason().
  Result<peer::v1::HelloProof> OnHelloAck(const peer::v1::HelloAck& ack);

  // Acceptor: verifies the dialer's answer; after OK the acceptor's side is complete.
  Status OnHelloProof(const peer::v1::HelloProof& proof);

  // Why the last step failed; REFUSE_UNSPECIFIED if none did.
  peer::v1::RefuseReason failure_reason() const { return failure_reason_; }
  // Both sides' answers checked: the link may carry messages.
  bool complete() const { return complete_; }
  Role role() const { return role_; }
  // The other side, as its Hello or HelloAck said. Filled once that message passed its checks.
  const PeerIdentity& peer() const { return peer_; }
  // The dialer's challenge. Both sides know it once the Hello is through, so it breaks ties
  // between two links of one pair the same way on both.
  const std::string& dialer_nonce() const {
    return role_ == Role::kDialer ? own_nonce_ : peer_nonce_;
  }

 private:
  enum class Step { kStart, kHelloSent, kAckSent, kComplete, kFailed };

  // Checks what Hello and HelloAck have in common. On failure records the reason.
  Status CheckIdentity(uint32_t version, const std::string& cluster, const std::string& node_id,
                       uint64_t incarnation, const std::string& nonce);
  // Checks that the peer's proof presence matches ours and, with a secret, that it verifies.
  Status CheckProof(const std::string& proof, const char* label);
  // HMAC-SHA256(secret, label | transcript) over this exchange's identities and nonces.
  std::string Proof(const char* label) const;
  Status Fail(peer::v1::RefuseReason reason, Status status);

  HandshakeConfig config_;
  Role role_;
  Step step_ = Step::kStart;
  bool complete_ = false;
  peer::v1::RefuseReason failure_reason_ = peer::v1::REFUSE_UNSPECIFIED;
  PeerIdentity peer_;
  std::string own_nonce_;
  std::string peer_nonce_;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_CLUSTER_PEER_HANDSHAKE_H_
