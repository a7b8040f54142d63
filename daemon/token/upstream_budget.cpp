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

std::size_t effective_per_requester_cap(const TokenCacheSettings& settings) {
    std::size_t cap = settings.max_upstream_fetches_per_pod;
    if (cap != 0 && settings.max_concurrency > 1) {
        cap = std::min(cap, settings.max_concurrency - 1);
    }
    return cap;
}

UpstreamBudget::UpstreamBudget(asio::any_io_executor executor, Clock& clock,
                               const TokenCacheSettings& settings)
    : executor_(std::move(executor)),
      clock_(clock),
      max_concurrency_(settings.max_concurrency),
      queue_(effective_per_requester_cap(settings)),
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
    if (stopped_ || clock_.steady_now() >= deadline) {
        co_return false;
    }
    waiter.id_ = next_id_++;
    queue_.push(waiter.requester_, waiter.id_,
                waiter.background_ ? FairQueue::Priority::background : FairQueue::Priority::miss);
    waiters_.emplace(waiter.id_, &waiter);
    waiter.queued_ = true;
    update_gauge();
    pump();
    if (!waiter.granted_) {
        // Woken by pump() (granted), stop(), the deadline, or the caller's cancellation.
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
        release(waiter.requester_);
        co_return false;
    }
    co_return true;
}

void UpstreamBudget::release(std::string_view requester) {
    --in_flight_;
    queue_.finished(requester);
    pump();
}

void UpstreamBudget::promote(Waiter& waiter) {
    if (waiter.queued_ && waiter.background_) {
        waiter.background_ = false;
        queue_.promote(waiter.id_);
    }
}

void UpstreamBudget::stop() {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    stop_signal_.cancel();
    for (auto& [id, waiter] : waiters_) {
        waiter->wake_.cancel();
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
    while (!stopped_ && queue_.waiting() > 0 && has_capacity()) {
        const SteadyTime now = clock_.steady_now();
        if (!rate_ready(now)) {
            if (!refill_pending_) {
                refill_pending_ = true;
                asio::co_spawn(executor_, refill_task(shared_from_this(), tat_ - tolerance_),
                               asio::detached);
            }
            return;
        }
        const auto id = queue_.admit();
        if (!id) {
            return;  // every waiting requester is at its cap: a release() pumps again
        }
        const auto it = waiters_.find(*id);
        Waiter* waiter = it->second;
        waiters_.erase(it);
        waiter->queued_ = false;
        update_gauge();
        take(now);
        waiter->granted_ = true;
        waiter->wake_.cancel();
    }
}

void UpstreamBudget::dequeue(Waiter& waiter) {
    queue_.erase(waiter.id_);
    waiters_.erase(waiter.id_);
    waiter.queued_ = false;
    update_gauge();
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
