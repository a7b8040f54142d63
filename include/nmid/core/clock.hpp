#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

namespace nmid {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

/// Time seam. Production uses `SystemClock`; tests use `ManualClock`
/// (tests/support/manual_clock.hpp), whose waits complete only when the test advances time.
class Clock {
public:
    virtual ~Clock() = default;
    /// Wall clock: token expiry (`expires_on` is Unix seconds).
    [[nodiscard]] virtual WallTime wall_now() const = 0;
    /// Monotonic clock: deadlines, TTLs, backoff.
    [[nodiscard]] virtual SteadyTime steady_now() const = 0;
    /// Suspends the calling coroutine until `steady_now() >= deadline`.
    /// Executor: the caller's. Cancellation: returns early (per-operation cancellation of the
    /// awaiting coroutine); callers re-check their own state afterwards. Never throws.
    virtual boost::asio::awaitable<void> wait_until(SteadyTime deadline) = 0;

    [[nodiscard]] std::int64_t unix_seconds() const {
        return std::chrono::duration_cast<std::chrono::seconds>(wall_now().time_since_epoch())
            .count();
    }
};

/// The real clocks, with waits on an Asio steady_timer.
class SystemClock final : public Clock {
public:
    [[nodiscard]] WallTime wall_now() const override { return std::chrono::system_clock::now(); }
    [[nodiscard]] SteadyTime steady_now() const override {
        return std::chrono::steady_clock::now();
    }
    boost::asio::awaitable<void> wait_until(SteadyTime deadline) override;
};

}  // namespace nmid
