// BackupPlacement: which nodes hold a session's full copies, by rendezvous hashing.
//
// Rendezvous (highest random weight) hashing scores every (session, node) pair with a stable
// hash and prefers the highest scores. Every node computes the same choice from the same live
// members with no coordination, the choice spreads sessions evenly, and when a node joins or
// leaves only the sessions whose top-K it enters or leaves move (about K/N of them), unlike
// Tomcat's round-robin pick, which moves everything.
//
// Pure functions: no state, no I/O; unit-tested in tests/unit/backup_placement_test.cc.
#ifndef SESSIOND_REPLICATION_BACKUP_PLACEMENT_H_
#define SESSIOND_REPLICATION_BACKUP_PLACEMENT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "replication/session_key.h"

namespace sessiond {

// The score of `node` for session `key`: stable across processes and builds.
uint64_t RendezvousScore(const SessionKey& key, std::string_view node);

// Up to `k` nodes of `candidates`, none of them in `exclude`, highest score first. Duplicates in
// `candidates` count once.
std::vector<std::string> PickByRendezvous(const SessionKey& key,
                                          const std::vector<std::string>& candidates,
                                          const std::vector<std::string>& exclude, size_t k);

// The backups of a session whose primary is `primary`: `keep` first (the backups that still
// hold a copy, in their order, those not in `live` or equal to `primary` dropped), then nodes of
// `live` by rendezvous until there are `k`. Keeping existing backups means a joining node never
// moves a copy that is fine where it is (no churn); it only fills what is short.
std::vector<std::string> RefillBackups(const SessionKey& key, std::string_view primary,
                                       const std::vector<std::string>& keep,
                                       const std::vector<std::string>& live, size_t k);

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_BACKUP_PLACEMENT_H_
