#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"

namespace nmid::token_detail {

/// The upstream budget shared by every fetch of one cache (IMDS: 5 concurrent, 20/s):
/// a concurrency limit plus a GCRA token bucket (exact in integer nanoseconds). Callers that
/// find no budget wait in a queue; misses (a caller waiting) go before background refreshes.
/// Executor: all calls on the cache's executor. Held by shared_ptr: a pending refill keeps it.
class UpstreamBudget : public std::enable_shared_from_this<UpstreamBudget> {
public:
    /// One caller waiting for budget; lives in the waiting coroutine's frame.
    class Waiter {
    public:
        Waiter(const boost::asio::any_io_executor& ex, bool background)
            : wake_(ex, SteadyTime::max()), background_(background) {}

    private:
        friend class UpstreamBudget;
        boost::asio::steady_timer wake_;
        bool background_;
        bool granted_ = false;
        bool queued_ = false;
        std::list<Waiter*>::iterator pos_;
    };

    UpstreamBudget(boost::asio::any_io_executor executor, Clock& clock,
                   const TokenCacheSettings& settings);

    /// Waits for one unit of budget until `deadline`. True: the caller holds it and must
    /// release() it. False: deadline passed or stop().
    boost::asio::awaitable<bool> acquire(Waiter& waiter, SteadyTime deadline);
    /// Returns one unit taken by acquire().
    void release();
    /// A background waiter becomes a miss (a caller joined its fetch): it moves to the back of
    /// the misses. No effect on a waiter that is not queued.
    void promote(Waiter& waiter);
    /// Wakes every waiter (acquire() returns false); later acquires fail at once.
    void stop();

private:
    bool has_capacity() const;
    bool rate_ready(SteadyTime now) const;
    void take(SteadyTime now);
    void pump();
    void dequeue(Waiter& waiter);
    boost::asio::awaitable<void> refill_task(std::shared_ptr<UpstreamBudget> self, SteadyTime at);

    boost::asio::any_io_executor executor_;
    Clock& clock_;
    std::size_t max_concurrency_;  ///< 0: unlimited
    std::size_t in_flight_ = 0;
    std::chrono::nanoseconds interval_{0};   ///< 1 / rate (0: no rate limit)
    std::chrono::nanoseconds tolerance_{0};  ///< (burst - 1) / rate
    SteadyTime tat_{};                       ///< theoretical arrival time of the next attempt
    std::list<Waiter*> foreground_queue_;
    std::list<Waiter*> background_queue_;
    bool refill_pending_ = false;
    bool stopped_ = false;
    boost::asio::steady_timer stop_signal_;  ///< never expires; stop() cancels it
};

}  // namespace nmid::token_detail
