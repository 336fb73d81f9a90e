// The one place sessiond includes Boost.Asio.
//
// Boost 1.74's asio/impl/awaitable.hpp uses std::exchange without including <utility>, so every
// translation unit must see <utility> first; including Asio only through this header guarantees it.
#ifndef SESSIOND_ASIO_H_
#define SESSIOND_ASIO_H_

#include <utility>

#include <boost/asio.hpp>

namespace sessiond {
namespace asio = boost::asio;
}  // namespace sessiond

#endif  // SESSIOND_ASIO_H_
