#include "replication/redis/redis_reply.h"

#include <hiredis/hiredis.h>

namespace sessiond {

RedisReply RedisReply::Integer(int64_t value) {
  RedisReply reply;
  reply.type_ = Type::kInteger;
  reply.integer_ = value;
  return reply;
}

RedisReply RedisReply::Array(std::vector<RedisReply> elements) {
  RedisReply reply;
  reply.type_ = Type::kArray;
  reply.elements_ = std::move(elements);
  return reply;
}

RedisReply RedisReply::FromHiredis(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      return String(std::string(reply->str, reply->len));
    case REDIS_REPLY_STATUS:
      return StatusText(std::string(reply->str, reply->len));
    case REDIS_REPLY_ERROR:
      return Error(std::string(reply->str, reply->len));
    case REDIS_REPLY_INTEGER:
      return Integer(reply->integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<RedisReply> elements;
      elements.reserve(reply->elements);
      for (size_t i = 0; i < reply->elements; ++i) {
        elements.push_back(FromHiredis(reply->element[i]));
      }
      return Array(std::move(elements));
    }
    case REDIS_REPLY_NIL:
    default:
      return RedisReply();
  }
}

bool RedisReply::IsErrorCode(std::string_view code) const {
  if (!is_error()) return false;
  std::string_view text = text_;
  return text.substr(0, code.size()) == code &&
         (text.size() == code.size() || text[code.size()] == ' ');
}

std::string RedisReply::Describe() const {
  switch (type_) {
    case Type::kNil:
      return "nil";
    case Type::kString:
      return "\"" + text_ + "\"";
    case Type::kStatus:
      return text_;
    case Type::kError:
      return "(error " + text_ + ")";
    case Type::kInteger:
      return std::to_string(integer_);
    case Type::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < elements_.size(); ++i) {
        if (i > 0) out += ", ";
        out += elements_[i].Describe();
      }
      return out + "]";
    }
  }
  return "?";
}

}  // namespace sessiond
