#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

namespace nmid {

/// True once the awaiting coroutine's cancellation slot was emitted (loops that run until
/// shutdown check it after each wait; they set throw_if_cancelled(false) first).
inline boost::asio::awaitable<bool> cancelled() {
    const auto state = co_await boost::asio::this_coro::cancellation_state;
    co_return state.cancelled() != boost::asio::cancellation_type::none;
}

}  // namespace nmid
