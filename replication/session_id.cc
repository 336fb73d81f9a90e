#include "replication/session_id.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "replication/session_key.h"

namespace sessiond {
namespace {

// Fills `out` from OpenSSL's CSPRNG or ends the process: a session id or log key that an
// attacker could predict is a security hole, and there is no safe way to carry on without one.
template <size_t N>
void RandomBytesOrDie(std::array<uint8_t, N>& out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    std::fputs("sessiond: OpenSSL's RAND_bytes failed; refusing to make predictable ids\n", stderr);
    std::abort();
  }
}

// The HMAC key of LogTag: random per process, so a tag cannot be reversed or matched across
// processes, yet is stable within one (the same id logs the same tag everywhere). Written once,
// on first use, then only read.
const std::array<uint8_t, 32>& LogTagKey() {
  static const std::array<uint8_t, 32> key = [] {
    std::array<uint8_t, 32> k;
    RandomBytesOrDie(k);
    return k;
  }();
  return key;
}

}  // namespace

std::string RandomIdGenerator::NewId() {
  std::array<uint8_t, SessionKey::kBytes> bytes;
  RandomBytesOrDie(bytes);
  return SessionKey(bytes).ToText();
}

bool IsWellFormedSessionId(std::string_view id) { return SessionKey::FromText(id).has_value(); }

std::string LogTag(std::string_view id) {
  const auto& key = LogTagKey();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(id.data()), id.size(), mac,
           &mac_len) == nullptr) {
    // Never fall back to the id itself: a tag that leaks the secret is worse than none.
    return "????????";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string tag(8, '0');
  for (size_t i = 0; i < 4; ++i) {
    tag[2 * i] = kHex[mac[i] >> 4];
    tag[2 * i + 1] = kHex[mac[i] & 0xF];
  }
  return tag;
}

}  // namespace sessiond
