#include "nmid/token/token_cache.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
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

namespace {

constexpr auto kSweepInterval = std::chrono::minutes{1};
/// Settings carry no seed; a constant keeps backoff sequences reproducible in tests.
constexpr std::uint_fast32_t kBackoffSeed = 0x6e6d6964;  // "nmid"

CacheResult failure(CacheOutcome outcome, FetchError error) {
    return CacheResult{.token = nullptr, .outcome = outcome, .error = std::move(error)};
}

}  // namespace

std::string_view to_string(CacheOutcome outcome) noexcept {
    switch (outcome) {
        case CacheOutcome::hit:
            return "hit";
        case CacheOutcome::refresh_ahead:
            return "refresh_ahead";
        case CacheOutcome::miss:
            return "miss";
        case CacheOutcome::joined:
            return "joined";
        case CacheOutcome::negative:
            return "negative";
        case CacheOutcome::error:
            return "error";
        case CacheOutcome::forced:
            return "forced";
    }
    return "error";
}

TokenCache::Impl::Impl(asio::any_io_executor executor, TokenSource& source, Clock& clock,
                       TokenCacheSettings settings,
                       std::function<void(const UpstreamAttempt&)> on_attempt)
    : executor_(std::move(executor)),
      source_(source),
      clock_(clock),
      settings_(settings),
      on_attempt_(std::move(on_attempt)),
      stop_signal_(executor_, SteadyTime::max()),
      rng_(kBackoffSeed) {
    settings_.max_entries = std::max<std::size_t>(1, settings_.max_entries);
    settings_.max_attempts = std::max(1, settings_.max_attempts);
    budget_ = std::make_shared<UpstreamBudget>(executor_, clock_, settings_);
}

// ---------------------------------------------------------------------------------------------
// Lookups

template <class Key>
std::optional<CacheResult> TokenCache::Impl::try_get(const Key& key) {
    if (!on_executor()) {
        return std::nullopt;
    }
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
        return std::nullopt;
    }
    Entry& entry = it->second;
    const WallTime now = clock_.wall_now();
    if (!entry.token || now >= entry.valid_until) {
        return std::nullopt;
    }
    touch(entry);
    if (now >= entry.refresh_at && !entry.inflight && !stopped_ &&
        entry.last_used >= entry.retry_not_before) {
        bump(stats_.refresh_ahead);
        TokenPtr token = entry.token;
        // A refresh ahead is the key's creator's, whoever hit it.
        start_fetch(entry, /*background=*/true, *entry.owner);
        return CacheResult{
            .token = std::move(token), .outcome = CacheOutcome::refresh_ahead, .error = {}};
    }
    bump(stats_.hits);
    return CacheResult{.token = entry.token, .outcome = CacheOutcome::hit, .error = {}};
}

asio::awaitable<CacheResult> TokenCache::Impl::get_here(const TokenRequest& request,
                                                        std::string_view requester,
                                                        GetOptions options) {
    // bypass_cache: a key whose token is still served is fetched again when this requester has
    // not forced it within the interval (and no failure is being remembered); otherwise this is
    // a plain get() (a key without a servable token is a plain miss, not a forced fetch).
    bool forcing = false;
    if (options.force_refresh && !stopped_) {
        const auto found = entries_.find(request);
        forcing = found != entries_.end() && found->second.token &&
                  clock_.wall_now() < found->second.valid_until &&
                  clock_.steady_now() >= found->second.retry_not_before &&
                  token_detail::may_force(found->second.forced, requester, clock_.steady_now(),
                                          settings_.bypass_min_interval);
    }
    if (!forcing) {
        if (auto hit = try_get(request)) {
            co_return std::move(*hit);
        }
    }
    if (stopped_) {
        co_return failure(CacheOutcome::error, make_error(Errc::cancelled));
    }
    const auto it = entries_.find(request);
    Entry* entry = it == entries_.end() ? nullptr : &it->second;
    if (entry != nullptr) {
        touch(*entry);
    }

    CacheOutcome outcome = CacheOutcome::miss;
    std::shared_ptr<Inflight> inflight;
    if (entry != nullptr && entry->inflight) {
        // Joining costs no upstream call: no per-pod limit applies.
        outcome = CacheOutcome::joined;
        bump(stats_.joined);
        inflight = entry->inflight;
        promote(*inflight);
    } else if (entry != nullptr && entry->last_used < entry->retry_not_before) {
        bump(stats_.negative_hits);
        FetchError remembered = entry->last_error;
        remembered.retry_after = token_detail::retry_after_for(
            remembered, entry->retry_not_before - clock_.steady_now());
        co_return failure(CacheOutcome::negative, std::move(remembered));
    } else {
        Requester& who = requester_of(requester);
        if (over_pending(who)) {
            bump(stats_.refused_pending);
            forget_if_idle(who);
            if (forcing) {
                if (auto still_valid = try_get(request)) {
                    co_return std::move(*still_valid);
                }
            }
            co_return failure(CacheOutcome::error,
                              make_error(Errc::pod_over_limit, "too many token fetches pending"));
        }
        if (entry == nullptr) {
            auto created = create_entry(request, who);
            if (!created) {
                forget_if_idle(who);
                co_return failure(CacheOutcome::error,
                                  make_error(static_cast<Errc>(created.error().value()),
                                             created.error() == Errc::pod_over_limit
                                                 ? "too many tokens cached for this pod"
                                                 : "token cache full of fetches"));
            }
            entry = *created;
            touch(*entry);
        }
        if (forcing) {
            outcome = CacheOutcome::forced;
            bump(stats_.forced);
            token_detail::record_forced(entry->forced, requester, clock_.steady_now());
        } else {
            bump(stats_.misses);
        }
        inflight = start_fetch(*entry, /*background=*/false, who);
    }

    // The fetch may already have ended (a source that answers without suspending).
    if (!inflight->finished) {
        bump(stats_.waiters);
        // Woken by the fetch's end, by stop(), or by this caller's cancellation.
        co_await inflight->done.async_wait(asio::as_tuple(asio::use_awaitable));
        drop(stats_.waiters);
    }
    if (!inflight->finished) {
        co_return failure(CacheOutcome::error, make_error(Errc::cancelled));
    }
    if (inflight->token) {
        co_return CacheResult{.token = inflight->token, .outcome = outcome, .error = {}};
    }
    if (forcing) {
        // The key is looked up again: it may have been evicted while the fetch ran.
        if (auto still_valid = try_get(request)) {
            co_return std::move(*still_valid);
        }
    }
    co_return failure(CacheOutcome::error, inflight->error);
}

asio::awaitable<Result<UpstreamPermit>> TokenCache::Impl::acquire_here(std::shared_ptr<Impl> self,
                                                                       std::string_view requester,
                                                                       SteadyTime deadline) {
    if (stopped_) {
        co_return Errc::cancelled;
    }
    Requester& who = requester_of(requester);
    if (over_pending(who)) {
        bump(stats_.refused_pending);
        forget_if_idle(who);
        co_return Errc::pod_over_limit;
    }
    ++who.pending;  // keeps `who` while this call waits and while the permit lives
    UpstreamBudget::Waiter waiter{executor_, who.name, /*background=*/false};
    const bool admitted = co_await budget_->acquire(waiter, deadline);
    if (!admitted) {
        --who.pending;
        forget_if_idle(who);
        co_return stopped_ ? Errc::cancelled : Errc::timeout;
    }
    Requester* held = &who;
    // The deleter runs wherever the permit dies; the release itself on the cache's executor.
    auto release = [impl = std::move(self)](Requester* r) {
        asio::dispatch(impl->executor(), [impl, r] { impl->release_permit(*r); });
    };
    co_return UpstreamPermit{std::shared_ptr<void>(held, std::move(release))};
}

void TokenCache::Impl::release_permit(Requester& requester) {
    budget_->release(requester.name);
    --requester.pending;
    forget_if_idle(requester);
}

// ---------------------------------------------------------------------------------------------
// Stop, sweep, stats

asio::awaitable<void> TokenCache::Impl::wait_for_stop() {
    if (stopped_) {
        co_return;
    }
    co_await stop_signal_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void TokenCache::Impl::stop_here() {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    stop_signal_.cancel();
    for (auto& [key, entry] : entries_) {
        if (entry.inflight) {
            entry.inflight->done.cancel();
        }
    }
    budget_->stop();
}

asio::awaitable<void> TokenCache::Impl::run_here(std::shared_ptr<Impl> self) {
    (void)self;
    for (;;) {
        if (stopped_) {
            co_return;
        }
        co_await (clock_.wait_until(clock_.steady_now() + kSweepInterval) || wait_for_stop());
        const auto state = co_await asio::this_coro::cancellation_state;
        if (stopped_ || state.cancelled() != asio::cancellation_type::none) {
            co_return;
        }
        sweep();
    }
}

void TokenCache::Impl::sweep() {
    const WallTime wall = clock_.wall_now();
    const SteadyTime now = clock_.steady_now();
    for (auto it = entries_.begin(); it != entries_.end();) {
        Entry& entry = it->second;
        const bool idle = now - entry.last_used > settings_.idle_ttl;
        const bool useless =
            (!entry.token || wall >= entry.valid_until) && now >= entry.retry_not_before;
        if (!entry.inflight && (idle || useless)) {
            ++it;  // erase_entry invalidates only the erased entry's iterator
            Requester& owner = erase_entry(entry);
            bump(stats_.evictions);
            forget_if_idle(owner);
        } else {
            ++it;
        }
    }
}

TokenCacheStats TokenCache::Impl::stats() const {
    constexpr auto relaxed = std::memory_order_relaxed;
    return TokenCacheStats{.hits = stats_.hits.load(relaxed),
                           .refresh_ahead = stats_.refresh_ahead.load(relaxed),
                           .misses = stats_.misses.load(relaxed),
                           .joined = stats_.joined.load(relaxed),
                           .forced = stats_.forced.load(relaxed),
                           .negative_hits = stats_.negative_hits.load(relaxed),
                           .fetch_errors = stats_.fetch_errors.load(relaxed),
                           .upstream_attempts = stats_.upstream_attempts.load(relaxed),
                           .upstream_failures = stats_.upstream_failures.load(relaxed),
                           .evictions = stats_.evictions.load(relaxed),
                           .entries = stats_.entries.load(relaxed),
                           .inflight = stats_.inflight.load(relaxed),
                           .waiters = stats_.waiters.load(relaxed),
                           .bytes = stats_.bytes.load(relaxed),
                           .queued = budget_->queued_gauge(),
                           .refused_pending = stats_.refused_pending.load(relaxed),
                           .refused_tokens = stats_.refused_tokens.load(relaxed)};
}

// ---------------------------------------------------------------------------------------------
// TokenCache

TokenCache::TokenCache(asio::any_io_executor executor, TokenSource& source, Clock& clock,
                       TokenCacheSettings settings,
                       std::function<void(const UpstreamAttempt&)> on_attempt)
    : impl_(std::make_shared<Impl>(std::move(executor), source, clock, settings,
                                   std::move(on_attempt))) {}

TokenCache::~TokenCache() {
    stop();
}

std::optional<CacheResult> TokenCache::try_get(const TokenRequest& request,
                                               std::string_view /*requester*/) {
    return impl_->try_get(request);
}

std::optional<CacheResult> TokenCache::try_get(const TokenKey& key,
                                               std::string_view /*requester*/) {
    return impl_->try_get(key);
}

asio::awaitable<CacheResult> TokenCache::get(const TokenRequest& request,
                                             std::string_view requester, GetOptions options) {
    std::shared_ptr<Impl> impl = impl_;
    const auto caller = co_await asio::this_coro::executor;
    if (caller == impl->executor()) {
        co_return co_await impl->get_here(request, requester, options);
    }
    // Resuming after asio::dispatch(executor) would continue on the caller's executor, not
    // the cache's; a child coroutine keeps every step of the lookup on the cache's executor.
    co_return co_await asio::co_spawn(impl->executor(), impl->get_here(request, requester, options),
                                      asio::use_awaitable);
}

asio::awaitable<Result<UpstreamPermit>> TokenCache::acquire_upstream(std::string_view requester,
                                                                     SteadyTime deadline) {
    std::shared_ptr<Impl> impl = impl_;
    const auto caller = co_await asio::this_coro::executor;
    if (caller == impl->executor()) {
        co_return co_await impl->acquire_here(impl, requester, deadline);
    }
    co_return co_await asio::co_spawn(
        impl->executor(), impl->acquire_here(impl, requester, deadline), asio::use_awaitable);
}

asio::awaitable<void> TokenCache::run() {
    std::shared_ptr<Impl> impl = impl_;
    const auto caller = co_await asio::this_coro::executor;
    if (caller == impl->executor()) {
        co_await impl->run_here(impl);
    } else {
        co_await asio::co_spawn(impl->executor(), impl->run_here(impl), asio::use_awaitable);
    }
}

void TokenCache::stop() {
    asio::dispatch(impl_->executor(), [impl = impl_] { impl->stop_here(); });
}

TokenCacheStats TokenCache::stats() const {
    return impl_->stats();
}

}  // namespace nmid