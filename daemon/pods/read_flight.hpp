#pragma once

// One coalesced read of a pod source and the waits on it. Private to the pods module.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <memory>

#include "nmid/core/errc.hpp"

namespace nmid::pods_detail {

/// One read of the source, planned or in progress, shared by everyone waiting for it.
struct Flight {
    explicit Flight(const boost::asio::any_io_executor& executor)
        : done(executor, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer done;  ///< condition variable: cancelled when the read completes
    std::uint64_t seq = 0;           ///< read number, set when the read starts (0: not started)
    bool finished = false;
    Result<void> result;
};

// Completes when the flight finishes or the awaiting coroutine is cancelled. The check and
// the wait start happen without a suspension in between, so a completion is never missed.
inline boost::asio::awaitable<void> wait_done(std::shared_ptr<Flight> flight) {
    if (!flight->finished) {
        co_await flight->done.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
}

inline boost::asio::awaitable<bool> cancelled() {
    const auto state = co_await boost::asio::this_coro::cancellation_state;
    co_return state.cancelled() != boost::asio::cancellation_type::none;
}

}  // namespace nmid::pods_detail
