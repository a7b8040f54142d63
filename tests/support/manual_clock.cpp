#include "support/manual_clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

namespace nmid::test {

boost::asio::awaitable<void> ManualClock::wait_until(SteadyTime deadline) {
    if (deadline <= steady_) {
        co_return;
    }
    boost::asio::steady_timer timer{co_await boost::asio::this_coro::executor, SteadyTime::max()};
    auto it = waiters_.emplace(deadline, &timer);
    // Woken by advance() (timer cancelled) or by cancellation of the awaiting coroutine.
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    waiters_.erase(it);
}

void ManualClock::advance(std::chrono::nanoseconds d) {
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(d);
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
    for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= steady_; ++it) {
        it->second->cancel();
    }
}

}  // namespace nmid::test
