#include "upstream_budget.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace nmid::token_detail {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::nanoseconds;

UpstreamBudget::UpstreamBudget(asio::any_io_executor executor, Clock& clock,
                               const TokenCacheSettings& settings)
    : executor_(std::move(executor)),
      clock_(clock),
      max_concurrency_(settings.max_concurrency),
      stop_signal_(executor_, SteadyTime::max()) {
    if (settings.rate_per_second > 0) {
        interval_ = std::chrono::duration_cast<nanoseconds>(
            std::chrono::duration<double>(1.0 / settings.rate_per_second));
        const double burst = std::max(1.0, settings.rate_per_second);
        tolerance_ = std::chrono::duration_cast<nanoseconds>(
            std::chrono::duration<double>((burst - 1.0) / settings.rate_per_second));
    }
}

asio::awaitable<bool> UpstreamBudget::acquire(Waiter& waiter, SteadyTime deadline) {
    const SteadyTime now = clock_.steady_now();
    if (stopped_ || now >= deadline) {
        co_return false;
    }
    if (foreground_queue_.empty() && background_queue_.empty() && has_capacity() &&
        rate_ready(now)) {
        take(now);
        co_return true;
    }
    auto& queue = waiter.background_ ? background_queue_ : foreground_queue_;
    waiter.pos_ = queue.insert(queue.end(), &waiter);
    waiter.queued_ = true;
    pump();
    if (!waiter.granted_) {
        // Woken by pump() (granted), stop(), or the deadline.
        co_await (waiter.wake_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                  clock_.wait_until(deadline));
    }
    if (waiter.queued_) {
        dequeue(waiter);
    }
    if (!waiter.granted_) {
        co_return false;
    }
    if (stopped_ || clock_.steady_now() >= deadline) {
        release();
        co_return false;
    }
    co_return true;
}

void UpstreamBudget::release() {
    --in_flight_;
    pump();
}

void UpstreamBudget::promote(Waiter& waiter) {
    if (waiter.queued_ && waiter.background_) {
        background_queue_.erase(waiter.pos_);
        waiter.background_ = false;
        waiter.pos_ = foreground_queue_.insert(foreground_queue_.end(), &waiter);
    }
}

void UpstreamBudget::stop() {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    stop_signal_.cancel();
    for (auto* queue : {&foreground_queue_, &background_queue_}) {
        for (Waiter* waiter : *queue) {
            waiter->wake_.cancel();
        }
    }
}

bool UpstreamBudget::has_capacity() const {
    return max_concurrency_ == 0 || in_flight_ < max_concurrency_;
}

bool UpstreamBudget::rate_ready(SteadyTime now) const {
    return interval_ == nanoseconds::zero() || tat_ - tolerance_ <= now;
}

void UpstreamBudget::take(SteadyTime now) {
    ++in_flight_;
    if (interval_ > nanoseconds::zero()) {
        tat_ = std::max(tat_, now) + interval_;
    }
}

void UpstreamBudget::pump() {
    while (!stopped_ && (!foreground_queue_.empty() || !background_queue_.empty()) &&
           has_capacity()) {
        const SteadyTime now = clock_.steady_now();
        if (!rate_ready(now)) {
            if (!refill_pending_) {
                refill_pending_ = true;
                asio::co_spawn(executor_, refill_task(shared_from_this(), tat_ - tolerance_),
                               asio::detached);
            }
            return;
        }
        // A miss has a client waiting; a refresh only has a token that is still valid.
        auto& queue = foreground_queue_.empty() ? background_queue_ : foreground_queue_;
        Waiter* waiter = queue.front();
        dequeue(*waiter);
        take(now);
        waiter->granted_ = true;
        waiter->wake_.cancel();
    }
}

void UpstreamBudget::dequeue(Waiter& waiter) {
    (waiter.background_ ? background_queue_ : foreground_queue_).erase(waiter.pos_);
    waiter.queued_ = false;
}

asio::awaitable<void> UpstreamBudget::refill_task(std::shared_ptr<UpstreamBudget> self,
                                                  SteadyTime at) {
    (void)self;  // keeps the budget alive while the refill waits
    co_await asio::this_coro::throw_if_cancelled(false);
    if (!stopped_) {
        co_await (clock_.wait_until(at) ||
                  stop_signal_.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
    refill_pending_ = false;
    pump();
}

}  // namespace nmid::token_detail
