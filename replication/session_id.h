// Session ids: 128 bits from a CSPRNG, as 22 URL-safe base64 characters without padding.
#ifndef SESSIOND_REPLICATION_SESSION_ID_H_
#define SESSIOND_REPLICATION_SESSION_ID_H_

#include <string>
#include <string_view>

namespace sessiond {

inline constexpr size_t kSessionIdTextBytes = 22;

// The seam through which managers get new ids, so tests can make them predictable.
class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  // A new id. Thread-safe.
  virtual std::string NewId() = 0;
};

// 128 bits from OpenSSL's CSPRNG (RAND_bytes); aborts if the CSPRNG cannot be seeded, since a
// predictable session id is a security hole, not an error to carry on from.
class RandomIdGenerator final : public IdGenerator {
 public:
  std::string NewId() override;
};

// True when `id` has the shape of an id this daemon makes (22 URL-safe base64 characters).
bool IsWellFormedSessionId(std::string_view id);

// A short, stable, non-reversible tag for logs: session ids are secrets and never logged whole.
// Same id, same tag, within one process.
std::string LogTag(std::string_view id);

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_ID_H_
