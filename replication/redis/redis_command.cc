#include "replication/redis/redis_command.h"

#include <hiredis/hiredis.h>

#include <cassert>
#include <cstdlib>

namespace sessiond {

RedisCommand::RedisCommand(std::initializer_list<std::string_view> args)
    : RedisCommand(std::vector<std::string_view>(args)) {}

RedisCommand::RedisCommand(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  Encode(argv.data(), lengths.data(), args.size());
}

RedisCommand::RedisCommand(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  Encode(argv.data(), lengths.data(), args.size());
}

void RedisCommand::Encode(const char* const* argv, const size_t* lengths, size_t argc) {
  assert(argc > 0);
  char* encoded = nullptr;
  // hiredis copies every argument, so views into temporaries are fine here.
  int length = redisFormatCommandArgv(&encoded, static_cast<int>(argc),
                                      const_cast<const char**>(argv), lengths);
  if (length < 0 || encoded == nullptr) {
    // Only an allocation failure gets here, which the rest of the process could not survive.
    std::abort();
  }
  bytes_.assign(encoded, static_cast<size_t>(length));
  redisFreeCommand(encoded);
  name_.assign(argv[0], lengths[0]);
}

}  // namespace sessiond
