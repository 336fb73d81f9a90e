// The one place sessiond includes Boost.Asio.
//
// Boost 1.74's asio/impl/awaitable.hpp uses std::exchange without including <utility>, so every
// translation unit must see <utility> first; including Asio only through this header guarantees it.
#ifndef SESSIOND_ASIO_H_
#define SESSIOND_ASIO_H_

// The order is the point of this header; Google style would regroup it.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

namespace sessiond {
namespace asio = boost::asio;
}  // namespace sessiond

#endif  // SESSIOND_ASIO_H_
