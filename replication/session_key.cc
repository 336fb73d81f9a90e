#include "replication/session_key.h"

#include "replication/session_id.h"

namespace sessiond {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The 6-bit value of each URL-safe base64 character, -1 for every other byte. A table rather
// than range tests: ids are random, so the branches of range tests would mispredict on about
// every character, and the store and the delta mode's stamp table decode an id per lookup.
constexpr std::array<int8_t, 256> kDecode = [] {
  std::array<int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}();

}  // namespace

std::optional<SessionKey> SessionKey::FromText(std::string_view id) {
  static_assert(kSessionIdTextBytes == 22 && kBytes == 16);
  if (id.size() != kSessionIdTextBytes) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(id.data());
  std::array<uint8_t, kBytes> bytes;
  int invalid = 0;  // negative once any character is not in the alphabet
  // Five groups of four characters make the first 15 bytes...
  for (size_t out = 0; out < 15; out += 3, p += 4) {
    const int a = kDecode[p[0]], b = kDecode[p[1]], c = kDecode[p[2]], d = kDecode[p[3]];
    invalid |= a | b | c | d;
    const uint32_t v = (static_cast<uint32_t>(a & 0x3F) << 18) |
                       (static_cast<uint32_t>(b & 0x3F) << 12) |
                       (static_cast<uint32_t>(c & 0x3F) << 6) | static_cast<uint32_t>(d & 0x3F);
    bytes[out] = static_cast<uint8_t>(v >> 16);
    bytes[out + 1] = static_cast<uint8_t>(v >> 8);
    bytes[out + 2] = static_cast<uint8_t>(v);
  }
  // ...and the last two carry the 16th byte and 4 bits that must be zero, so that each key has
  // exactly one text form.
  const int a = kDecode[p[0]], b = kDecode[p[1]];
  invalid |= a | b;
  if (invalid < 0) return std::nullopt;
  const uint32_t v = (static_cast<uint32_t>(a) << 6) | static_cast<uint32_t>(b);
  if ((v & 0xF) != 0) return std::nullopt;
  bytes[15] = static_cast<uint8_t>(v >> 4);
  return SessionKey(bytes);
}

std::string SessionKey::ToText() const {
  std::string text(kSessionIdTextBytes, '\0');
  ToText(text.data());
  return text;
}

void SessionKey::ToText(char* out) const {
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : bytes_) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      *out++ = kAlphabet[(acc >> bits) & 0x3F];
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) *out = kAlphabet[(acc << (6 - bits)) & 0x3F];
}

}  // namespace sessiond
