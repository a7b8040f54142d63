#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/token/fair_queue.hpp"

namespace nmid::token_detail {

/// The upstream budget shared by every upstream call of one cache (IMDS: 5 concurrent,
/// 20/s): a concurrency limit plus a GCRA token bucket (exact in integer nanoseconds).
/// Callers wait in a FairQueue: round robin by requester, misses before background
/// refreshes, at most `max_upstream_fetches_per_pod` running per requester.
/// Executor: all calls on the cache's executor. Held by shared_ptr: a pending refill keeps it.
class UpstreamBudget : public std::enable_shared_from_this<UpstreamBudget> {
public:
    /// One caller waiting for budget; lives in the waiting coroutine's frame. `requester`
    /// must stay valid until release() (or until acquire() returns false).
    class Waiter {
    public:
        Waiter(const boost::asio::any_io_executor& ex, std::string_view requester, bool background)
            : wake_(ex, SteadyTime::max()), requester_(requester), background_(background) {}

    private:
        friend class UpstreamBudget;
        boost::asio::steady_timer wake_;
        std::string_view requester_;
        bool background_;
        bool granted_ = false;
        bool queued_ = false;
        FairQueue::Id id_ = 0;
    };

    UpstreamBudget(boost::asio::any_io_executor executor, Clock& clock,
                   const TokenCacheSettings& settings);

    /// Waits for one unit of budget until `deadline`. True: the caller holds it and must
    /// release() it with the same requester. False: deadline passed or stop().
    boost::asio::awaitable<bool> acquire(Waiter& waiter, SteadyTime deadline);
    /// Returns one unit taken by acquire() for `requester`.
    void release(std::string_view requester);
    /// A background waiter becomes a miss (a caller joined its fetch). No effect on a waiter
    /// that is not queued.
    void promote(Waiter& waiter);
    /// Wakes every waiter (acquire() returns false); later acquires fail at once.
    void stop();

    /// Calls waiting now. Any thread (relaxed atomic written on the cache's executor).
    [[nodiscard]] std::size_t queued_gauge() const {
        return queued_.load(std::memory_order_relaxed);
    }

private:
    bool has_capacity() const;
    bool rate_ready(SteadyTime now) const;
    void take(SteadyTime now);
    void pump();
    void dequeue(Waiter& waiter);
    void update_gauge() { queued_.store(queue_.waiting(), std::memory_order_relaxed); }
    boost::asio::awaitable<void> refill_task(std::shared_ptr<UpstreamBudget> self, SteadyTime at);

    boost::asio::any_io_executor executor_;
    Clock& clock_;
    std::size_t max_concurrency_;  ///< 0: unlimited
    std::size_t in_flight_ = 0;
    std::chrono::nanoseconds interval_{0};   ///< 1 / rate (0: no rate limit)
    std::chrono::nanoseconds tolerance_{0};  ///< (burst - 1) / rate
    SteadyTime tat_{};                       ///< theoretical arrival time of the next attempt
    FairQueue queue_;
    std::unordered_map<FairQueue::Id, Waiter*> waiters_;  ///< the queue's ids
    FairQueue::Id next_id_ = 1;
    bool refill_pending_ = false;
    bool stopped_ = false;
    std::atomic<std::size_t> queued_{0};     ///< queue_.waiting(), for stats
    boost::asio::steady_timer stop_signal_;  ///< never expires; stop() cancels it
};

/// The per-requester cap on running upstream calls that leaves slots for other pods: at most
/// max_concurrency - 1 (when that is at least 1); 0 means no cap.
[[nodiscard]] std::size_t effective_per_requester_cap(const TokenCacheSettings& settings);

}  // namespace nmid::token_detail
