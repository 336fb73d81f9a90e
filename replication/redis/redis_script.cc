#include "replication/redis/redis_script.h"

#include <openssl/sha.h>

#include <array>

namespace sessiond {
namespace {

std::string Sha1Hex(std::string_view text) {
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest;
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest.size());
  for (unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 0xf]);
  }
  return hex;
}

}  // namespace

RedisScript::RedisScript(std::string name, std::string source)
    : name_(std::move(name)), source_(std::move(source)), sha1_(Sha1Hex(source_)) {}

RedisCommand RedisScript::Load() const { return RedisCommand{"SCRIPT", "LOAD", source_}; }

RedisCommand RedisScript::Call(const std::vector<std::string_view>& keys,
                               const std::vector<std::string_view>& args) const {
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  const std::string key_count = std::to_string(keys.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha1_);
  argv.push_back(key_count);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return RedisCommand(argv);
}

}  // namespace sessiond
