#include "tools/bench/json_value.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace sessiond::bench {

// A recursive-descent parser over one document. Internal to this file; a friend of JsonValue.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  Result<JsonValue> ParseDocument() {
    JsonValue value;
    SkipSpace();
    if (!ParseValue(value, 0)) return Error();
    SkipSpace();
    if (pos_ != text_.size()) {
      expected_ = "the end of the document";
      return Error();
    }
    return value;
  }

 private:
  static constexpr int kMaxDepth = 256;

  Status Error() const {
    return InvalidArgument("invalid JSON at byte " + std::to_string(pos_) + ": expected " +
                           expected_);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool ParseValue(JsonValue& out, int depth) {
    if (depth > kMaxDepth) {
      expected_ = "at most 256 levels of nesting";
      return false;
    }
    if (pos_ >= text_.size()) {
      expected_ = "a value";
      return false;
    }
    switch (text_[pos_]) {
      case '{':
        return ParseObject(out, depth);
      case '[':
        return ParseArray(out, depth);
      case '"':
        out.type_ = JsonValue::Type::kString;
        return ParseString(out.string_);
      case 't':
      case 'f':
      case 'n':
        if (Consume("true")) {
          out.type_ = JsonValue::Type::kBool;
          out.bool_ = true;
          return true;
        }
        if (Consume("false")) {
          out.type_ = JsonValue::Type::kBool;
          out.bool_ = false;
          return true;
        }
        if (Consume("null")) {
          out.type_ = JsonValue::Type::kNull;
          return true;
        }
        expected_ = "true, false or null";
        return false;
      default:
        return ParseNumber(out);
    }
  }

  bool ParseObject(JsonValue& out, int depth) {
    out.type_ = JsonValue::Type::kObject;
    ++pos_;  // '{'
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipSpace();
      std::string key;
      if (pos_ >= text_.size() || text_[pos_] != '"') {
        expected_ = "a string key";
        return false;
      }
      if (!ParseString(key)) return false;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') {
        expected_ = "':' after a key";
        return false;
      }
      ++pos_;
      SkipSpace();
      JsonValue member;
      if (!ParseValue(member, depth + 1)) return false;
      out.object_[std::move(key)] = std::move(member);
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return true;
      }
      expected_ = "',' or '}' in an object";
      return false;
    }
  }

  bool ParseArray(JsonValue& out, int depth) {
    out.type_ = JsonValue::Type::kArray;
    ++pos_;  // '['
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipSpace();
      JsonValue element;
      if (!ParseValue(element, depth + 1)) return false;
      out.array_.push_back(std::move(element));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return true;
      }
      expected_ = "',' or ']' in an array";
      return false;
    }
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool ParseHex4(uint32_t& out) {
    if (pos_ + 4 > text_.size()) return false;
    uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, v, 16);
    if (ec != std::errc() || ptr != text_.data() + pos_ + 4) return false;
    pos_ += 4;
    out = v;
    return true;
  }

  bool ParseString(std::string& out) {
    ++pos_;  // '"'
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        expected_ = "no raw control character inside a string";
        return false;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) break;
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(cp)) {
            expected_ = "4 hex digits after \\u";
            return false;
          }
          if (cp >= 0xD800 && cp < 0xDC00) {
            uint32_t low = 0;
            if (!Consume("\\u") || !ParseHex4(low) || low < 0xDC00 || low >= 0xE000) {
              expected_ = "a low surrogate after a high one";
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            expected_ = "no lone low surrogate";
            return false;
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          expected_ = "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)";
          return false;
      }
    }
    expected_ = "a closing '\"'";
    return false;
  }

  bool ParseNumber(JsonValue& out) {
    // The grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const size_t start = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        ++pos_;
        ++n;
      }
      return n;
    };
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      pos_ = start;
      expected_ = "a value";
      return false;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) {
        expected_ = "digits after '.'";
        return false;
      }
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      integral = false;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) {
        expected_ = "digits in the exponent";
        return false;
      }
    }
    const std::string token(text_.substr(start, pos_ - start));
    out.type_ = JsonValue::Type::kNumber;
    errno = 0;
    out.number_ = std::strtod(token.c_str(), nullptr);
    if (integral) {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
      if (ec == std::errc() && ptr == token.data() + token.size()) out.integer_ = v;
    }
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string expected_;
};

Result<JsonValue> JsonValue::Parse(std::string_view text) {
  return JsonParser(text).ParseDocument();
}

std::optional<int64_t> JsonValue::as_int64() const {
  if (type_ != Type::kNumber) return std::nullopt;
  if (integer_) return integer_;
  // 1e3 or 2.0 are integers too.
  if (std::isfinite(number_) && std::trunc(number_) == number_ && std::fabs(number_) < 9.0e18) {
    return static_cast<int64_t>(number_);
  }
  return std::nullopt;
}

const std::string& JsonValue::as_string() const {
  static const std::string kEmpty;
  return type_ == Type::kString ? string_ : kEmpty;
}

const std::vector<JsonValue>& JsonValue::as_array() const {
  static const std::vector<JsonValue> kEmpty;
  return type_ == Type::kArray ? array_ : kEmpty;
}

const std::map<std::string, JsonValue>& JsonValue::as_object() const {
  static const std::map<std::string, JsonValue> kEmpty;
  return type_ == Type::kObject ? object_ : kEmpty;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &it->second;
}

}  // namespace sessiond::bench
