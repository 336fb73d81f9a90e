#include "tools/bench/free_port.h"

#include <list>
#include <string>

#include "sessiond/asio.h"

namespace sessiond::bench {

Result<std::vector<uint16_t>> PickFreePorts(size_t count) {
  asio::io_context io;
  std::list<asio::ip::tcp::acceptor> held;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < count; ++i) {
    auto& acceptor = held.emplace_back(io);
    boost::system::error_code ec;
    const asio::ip::tcp::endpoint any(asio::ip::address_v4::loopback(), 0);
    acceptor.open(any.protocol(), ec);
    if (!ec) acceptor.bind(any, ec);
    if (ec) return Unavailable("cannot find a free port on 127.0.0.1: " + ec.message());
    ports.push_back(acceptor.local_endpoint(ec).port());
  }
  return ports;
}

}  // namespace sessiond::bench
