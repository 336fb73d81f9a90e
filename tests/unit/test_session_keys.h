// Session keys for tests that need many distinct ones: key n holds n's bytes, little-endian, in
// its first eight bytes, and `last` in its last byte.
#ifndef SESSIOND_TESTS_UNIT_TEST_SESSION_KEYS_H_
#define SESSIOND_TESTS_UNIT_TEST_SESSION_KEYS_H_

#include <array>
#include <cstdint>

#include "replication/session_key.h"

namespace sessiond::testing {

inline SessionKey KeyOf(uint64_t n, uint8_t last = 0) {
  std::array<uint8_t, SessionKey::kBytes> bytes{};
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  bytes[SessionKey::kBytes - 1] = last;
  return SessionKey(bytes);
}

}  // namespace sessiond::testing

#endif  // SESSIOND_TESTS_UNIT_TEST_SESSION_KEYS_H_
