#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "nmid/core/clock.hpp"

namespace nmid {

boost::asio::awaitable<void> SystemClock::wait_until(SteadyTime deadline) {
    boost::asio::steady_timer timer{co_await boost::asio::this_coro::executor, deadline};
    // Cancellation ends the wait early; the caller re-checks its own state.
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

}  // namespace nmid
