#include "replication/redis/redis_url.h"

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

namespace sessiond {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr std::string_view kTlsScheme = "rediss://";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding, for credentials holding ':' or '@'. nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int hi = HexDigit(text[i + 1]);
    int lo = HexDigit(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<RedisUrl> RedisUrl::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    // The URL may carry a password, so the sentence names the problem, not the text.
    return InvalidArgument("the Redis URL " + std::string(why) +
                           "; use redis://[user:password@]HOST:PORT/DB (rediss:// for TLS), "
                           "e.g. redis://127.0.0.1:6379/0");
  };
  RedisUrl url;
  std::string_view rest;
  if (text.substr(0, kTlsScheme.size()) == kTlsScheme) {
    url.tls = true;
    rest = text.substr(kTlsScheme.size());
  } else if (text.substr(0, kScheme.size()) == kScheme) {
    rest = text.substr(kScheme.size());
  } else {
    return bad("does not start with redis:// or rediss://");
  }
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = credentials.find(':');
    std::optional<std::string> user, password;
    if (colon == std::string_view::npos) {
      user = "";
      password = PercentDecode(credentials);
    } else {
      user = PercentDecode(credentials.substr(0, colon));
      password = PercentDecode(credentials.substr(colon + 1));
    }
    if (!user || !password) return bad("has a bad %-escape in its user or password");
    url.user = std::move(*user);
    url.password = std::move(*password);
  }
  std::string_view db_text;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    db_text = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:6379
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed '['");
    url.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after the host");
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    url.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (url.host.empty()) return bad("names no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    if (!ParseNumber(port_text, &port) || port == 0 || port > 65535) {
      return bad("has a port that is not a number from 1 to 65535");
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (!db_text.empty() && !ParseNumber(db_text, &url.db)) {
    return bad("has a database that is not a number");
  }
  return url;
}

Status RedisUrl::LoadPasswordFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument("cannot read the Redis password file '" + path +
                           "'; check that it exists and that sessiond may read it");
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    return InvalidArgument("the Redis password file '" + path +
                           "' is empty; write the password into it, or drop the option");
  }
  password = std::move(secret);
  return Status::Ok();
}

std::string RedisUrl::Describe() const {
  std::string host_text = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return host_text + ":" + std::to_string(port) + "/" + std::to_string(db);
}

}  // namespace sessiond
