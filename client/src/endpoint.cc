#include "sessiond/endpoint.h"

#include <sys/un.h>

#include <charconv>
#include <string>
#include <string_view>

namespace sessiond {
namespace {

constexpr std::string_view kAcceptedForms =
    "use HOST:PORT, tcp://HOST:PORT, [IPV6]:PORT, unix:PATH or unix://PATH";

Status BadEndpoint(std::string_view text, std::string_view why) {
  return InvalidArgument("endpoint \"" + std::string(text) + "\" " + std::string(why) + "; " +
                         std::string(kAcceptedForms));
}

bool ConsumePrefix(std::string_view& text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return false;
  text.remove_prefix(prefix.size());
  return true;
}

}  // namespace

Result<Endpoint> Endpoint::Parse(std::string_view text) {
  std::string_view rest = text;
  Endpoint endpoint;
  if (ConsumePrefix(rest, "unix://") || ConsumePrefix(rest, "unix:")) {
    if (rest.empty()) return BadEndpoint(text, "names no socket path");
    // sockaddr_un holds the path and its terminating NUL.
    if (rest.size() >= sizeof(sockaddr_un::sun_path)) {
      return BadEndpoint(text, "has a socket path longer than the " +
                                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                   " bytes Unix sockets allow; use a shorter path");
    }
    endpoint.kind = Kind::kUnix;
    endpoint.path = std::string(rest);
    return endpoint;
  }

  ConsumePrefix(rest, "tcp://");
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return BadEndpoint(text, "has an unclosed '['");
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (!ConsumePrefix(rest, ":")) return BadEndpoint(text, "has no :PORT after the address");
    port = rest;
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return BadEndpoint(text, "has no port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return BadEndpoint(text, "looks like an IPv6 address without brackets");
    }
  }
  if (host.empty()) return BadEndpoint(text, "has no host");
  if (host.find_first_of(" /[]") != std::string_view::npos) {
    return BadEndpoint(text, "has a host with characters a host name cannot hold");
  }
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535) {
    return BadEndpoint(text, "has a port that is not a number from 0 to 65535");
  }
  endpoint.kind = Kind::kTcp;
  endpoint.host = std::string(host);
  endpoint.port = static_cast<uint16_t>(value);
  return endpoint;
}

std::string Endpoint::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  // An IPv6 literal needs brackets so that its colons are not read as the port's.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace sessiond
