#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>

#include "nmid/core/clock.hpp"

namespace nmid::test {

/// A clock that moves only when the test says so. `wait_until` suspends until `advance`
/// reaches the deadline; the waiter resumes on the next `ioc.poll()`/`run()`.
class ManualClock final : public Clock {
public:
    /// Starts at a fixed wall time (2023-11-14T22:13:20Z) so expiry arithmetic is exact.
    ManualClock() = default;

    [[nodiscard]] WallTime wall_now() const override { return wall_; }
    [[nodiscard]] SteadyTime steady_now() const override { return steady_; }
    boost::asio::awaitable<void> wait_until(SteadyTime deadline) override;

    /// Moves both clocks forward and wakes every waiter whose deadline has come.
    void advance(std::chrono::nanoseconds d);
    /// Number of coroutines currently suspended in wait_until.
    [[nodiscard]] std::size_t waiters() const { return waiters_.size(); }
    /// Earliest pending deadline, or SteadyTime::max() when none.
    [[nodiscard]] SteadyTime next_deadline() const {
        return waiters_.empty() ? SteadyTime::max() : waiters_.begin()->first;
    }

private:
    WallTime wall_{std::chrono::seconds{1'700'000'000}};
    SteadyTime steady_{std::chrono::hours{1000}};
    std::multimap<SteadyTime, boost::asio::steady_timer*> waiters_;
};

}  // namespace nmid::test
