// SessionKey: a session id as the 16 bytes it encodes, which is how the store keys sessions.
//
// The text form (22 URL-safe base64 characters, no padding) is what clients see; holding the
// decoded bytes instead saves 6 bytes of text plus a std::string's 32-byte header per session,
// and the bytes are already uniformly random, so hashing them costs one multiply.
#ifndef SESSIOND_REPLICATION_SESSION_KEY_H_
#define SESSIOND_REPLICATION_SESSION_KEY_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

class SessionKey {
 public:
  static constexpr size_t kBytes = 16;

  // The all-zero key; no generated id decodes to it in practice, and nothing looks it up.
  SessionKey() = default;
  explicit SessionKey(const std::array<uint8_t, kBytes>& bytes) : bytes_(bytes) {}

  // The key that `id` encodes, or nullopt when `id` is not exactly 22 URL-safe base64
  // characters in canonical form (the unused low 4 bits of the last character are zero, so
  // each key has exactly one text form and two texts never alias one session).
  static std::optional<SessionKey> FromText(std::string_view id);

  // The 22-character text form.
  std::string ToText() const;
  // Writes the text form to out[0, 22) without allocating (a std::string of 22 characters is
  // past the small-string buffer, so ToText allocates).
  void ToText(char* out) const;

  const std::array<uint8_t, kBytes>& bytes() const { return bytes_; }

  // A well-mixed 64-bit hash. Ids come from a CSPRNG, so folding and one multiply suffice; the
  // multiply still spreads the bits of predictable test ids.
  uint64_t Hash() const {
    uint64_t lo, hi;
    std::memcpy(&lo, bytes_.data(), 8);
    std::memcpy(&hi, bytes_.data() + 8, 8);
    return (lo ^ (hi * 0x9E3779B97F4A7C15ull)) * 0xD6E8FEB86659FD93ull;
  }

  // Two 8-byte compares: std::array's == calls memcmp, which showed in the tables' lookups.
  friend bool operator==(const SessionKey& a, const SessionKey& b) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a.bytes_.data(), 8);
    std::memcpy(&a1, a.bytes_.data() + 8, 8);
    std::memcpy(&b0, b.bytes_.data(), 8);
    std::memcpy(&b1, b.bytes_.data() + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }

 private:
  std::array<uint8_t, kBytes> bytes_{};
};

// For std::unordered_{map,set} keyed by SessionKey.
struct SessionKeyHash {
  size_t operator()(const SessionKey& key) const { return key.Hash(); }
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_SESSION_KEY_H_
