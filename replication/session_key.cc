#include "replication/session_key.h"

#include "replication/session_id.h"

namespace sessiond {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The 6-bit value of a URL-safe base64 character, or -1.
int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

std::optional<SessionKey> SessionKey::FromText(std::string_view id) {
  static_assert(kSessionIdTextBytes * 6 >= kBytes * 8 &&
                (kSessionIdTextBytes - 1) * 6 < kBytes * 8);
  if (id.size() != kSessionIdTextBytes) return std::nullopt;
  std::array<uint8_t, kBytes> bytes{};
  uint32_t acc = 0;
  int bits = 0;
  size_t out = 0;
  for (char c : id) {
    const int v = DecodeChar(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out < kBytes) bytes[out++] = static_cast<uint8_t>(acc >> bits);
    }
    acc &= (1u << bits) - 1;
  }
  // 22 characters carry 132 bits; the 4 left over must be zero for the text to be canonical.
  if (out != kBytes || bits != 4 || acc != 0) return std::nullopt;
  return SessionKey(bytes);
}

std::string SessionKey::ToText() const {
  std::string text;
  text.reserve(kSessionIdTextBytes);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : bytes_) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      text.push_back(kAlphabet[(acc >> bits) & 0x3F]);
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) text.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
  return text;
}

}  // namespace sessiond
