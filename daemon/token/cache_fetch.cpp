// TokenCache: one fetch (retries, backoff, deadline, upstream budget) and its outcome.

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <exception>
#include <string>
#include <utility>
#include <variant>

#include "cache_impl.hpp"
#include "refresh_policy.hpp"

namespace nmid {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::nanoseconds;
using token_detail::bump;
using token_detail::drop;
using token_detail::make_error;
using token_detail::UpstreamBudget;

// ---------------------------------------------------------------------------------------------
// Fetch

std::shared_ptr<TokenCache::Impl::Inflight> TokenCache::Impl::start_fetch(Entry& entry,
                                                                          bool background,
                                                                          Requester& payer) {
    auto inflight = std::make_shared<Inflight>(
        executor_, *entry.key, background, clock_.steady_now() + settings_.fetch_deadline, payer);
    if (inflight->counted) {
        ++payer.pending;  // keeps `payer` until finish()
    }
    entry.inflight = inflight;
    bump(stats_.inflight);
    // Owned by the cache, not by the caller: the fetch goes on (and its result is cached)
    // when the caller that started it goes away. Only stop() ends it early.
    asio::co_spawn(executor_, fetch_task(shared_from_this(), &entry, inflight), asio::detached);
    return inflight;
}

asio::awaitable<void> TokenCache::Impl::fetch_task(std::shared_ptr<Impl> self, Entry* entry,
                                                   std::shared_ptr<Inflight> inflight) {
    (void)self;  // keeps the cache state alive while the fetch runs
    co_await asio::this_coro::throw_if_cancelled(false);
    FetchResult result = make_error(Errc::upstream_unavailable);
    try {
        result = co_await fetch_with_retries(*inflight);
    } catch (const std::exception& e) {
        // A throwing source is a bug; waiters still get an answer instead of hanging.
        result =
            make_error(Errc::upstream_unavailable, std::string("token source failed: ") + e.what());
    }
    finish(*entry, *inflight, std::move(result));
}

asio::awaitable<FetchResult> TokenCache::Impl::fetch_with_retries(Inflight& inflight) {
    std::optional<FetchError> last;
    for (int attempt = 1;; ++attempt) {
        if (stopped_) {
            co_return make_error(Errc::cancelled);
        }
        const bool admitted = co_await acquire_budget(inflight);
        if (!admitted) {
            if (stopped_) {
                co_return make_error(Errc::cancelled);
            }
            co_return last
                ? std::move(*last)
                : make_error(Errc::timeout, "fetch deadline passed waiting for upstream budget");
        }
        const SteadyTime started = clock_.steady_now();
        FetchResult result = co_await attempt_once(inflight);
        budget_->release(inflight.payer->name);
        report(inflight, result, clock_.steady_now() - started);
        if (result) {
            co_return result;
        }
        FetchError error = result.error();
        if (stopped_) {
            co_return make_error(Errc::cancelled);
        }
        if (!token_detail::is_retryable(error) || attempt >= settings_.max_attempts) {
            co_return error;
        }
        const nanoseconds delay = backoff(attempt, error);
        const SteadyTime now = clock_.steady_now();
        if (delay >= inflight.deadline - now) {
            // The retry could not finish in time: answer now rather than at the deadline.
            co_return error;
        }
        last = std::move(error);
        if (delay > nanoseconds::zero()) {
            co_await (clock_.wait_until(now + delay) || wait_for_stop());
        }
    }
}

asio::awaitable<FetchResult> TokenCache::Impl::attempt_once(Inflight& inflight) {
    // The source should end by the deadline itself; racing the clock makes sure of it.
    auto outcome = co_await (source_.fetch(inflight.request, inflight.deadline) ||
                             clock_.wait_until(inflight.deadline) || wait_for_stop());
    switch (outcome.index()) {
        case 0:
            co_return std::get<0>(std::move(outcome));
        case 1:
            co_return make_error(Errc::timeout, "fetch deadline passed");
        default:
            co_return make_error(Errc::cancelled);
    }
}

void TokenCache::Impl::finish(Entry& entry, Inflight& inflight, FetchResult result) {
    inflight.finished = true;
    if (inflight.counted) {
        inflight.counted = false;
        --inflight.payer->pending;
        forget_if_idle(*inflight.payer);
    }
    entry.inflight.reset();
    drop(stats_.inflight);
    if (result && token_detail::wall_from_unix(result->expires_on) <= clock_.wall_now()) {
        result = make_error(Errc::upstream_bad_payload, "token already expired");
    }
    if (result) {
        if (result->client_id.empty()) {
            // IMDS 2023-07-01 answers name the identity; AAD and federated answers do not.
            result->client_id = inflight.request.identity.client_id;
        }
        // Delivered to this fetch's waiters even if it is already inside
        // min_remaining_lifetime (fresh from upstream); the cache itself will not serve it.
        auto token = std::make_shared<const Token>(std::move(*result));
        inflight.token = token;
        store_token(entry, std::move(token));
    } else {
        inflight.error = result.error();
        if (inflight.error.code != Errc::cancelled) {
            bump(stats_.fetch_errors);
            const nanoseconds window = token_detail::negative_window(inflight.error, settings_);
            entry.last_error = inflight.error;
            entry.retry_not_before = clock_.steady_now() + window;
            // The callers are told to come back when the failure is no longer remembered.
            inflight.error.retry_after = token_detail::retry_after_for(inflight.error, window);
        }
    }
    inflight.done.cancel();
}

nanoseconds TokenCache::Impl::backoff(int attempt, const FetchError& error) {
    const nanoseconds ceiling =
        token_detail::backoff_ceiling(attempt, settings_.backoff_base, settings_.backoff_cap);
    // Full jitter: concurrent fetches that failed together do not retry together.
    std::uniform_int_distribution<nanoseconds::rep> draw(0, ceiling.count());
    const nanoseconds delay{draw(rng_)};
    return std::max(delay, token_detail::honoured_retry_after(error, settings_));
}

asio::awaitable<bool> TokenCache::Impl::acquire_budget(Inflight& inflight) {
    UpstreamBudget::Waiter waiter{executor_, inflight.payer->name, inflight.background};
    inflight.queued = &waiter;
    const bool admitted = co_await budget_->acquire(waiter, inflight.deadline);
    inflight.queued = nullptr;
    co_return admitted;
}

void TokenCache::Impl::promote(Inflight& inflight) {
    if (!inflight.background) {
        return;
    }
    inflight.background = false;
    if (inflight.queued != nullptr) {
        budget_->promote(*inflight.queued);
    }
}

void TokenCache::Impl::report(const Inflight& inflight, const FetchResult& result,
                              nanoseconds duration) {
    bump(stats_.upstream_attempts);
    if (!result) {
        bump(stats_.upstream_failures);
    }
    if (on_attempt_) {
        const FetchError error = result ? FetchError{} : result.error();
        on_attempt_(UpstreamAttempt{.request = &inflight.request,
                                    .status = result ? 200 : error.upstream_status,
                                    .error = result ? Errc::ok : error.code,
                                    .duration = duration,
                                    .background = inflight.background});
    }
}

}  // namespace nmid
