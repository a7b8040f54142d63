#include "nmid/token/token_cache.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <list>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>

namespace nmid {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::nanoseconds;

namespace {

constexpr auto kSweepInterval = std::chrono::minutes{1};
/// Refresh jitter is at most this share of the refresh margin.
constexpr double kMaxRefreshJitter = 0.1;
/// Settings carry no seed; a constant keeps backoff sequences reproducible in tests.
constexpr std::uint_fast32_t kBackoffSeed = 0x6e6d6964;  // "nmid"

/// IMDS guidance (nmi-behaviour 9.3): 404, 410, 429, 5xx, transport errors and timeouts are
/// transient; any other answer is final. 408 is a timeout in HTTP clothing.
bool is_retryable(const FetchError& error) {
    switch (error.code) {
        case Errc::upstream_throttled:
        case Errc::timeout:
            return true;
        case Errc::upstream_unavailable: {
            const int s = error.upstream_status;
            return s == 0 || s == 404 || s == 408 || s == 410 || (s >= 500 && s <= 599);
        }
        default:
            return false;
    }
}

std::size_t combine(std::size_t h, std::size_t v) noexcept {
    return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

/// The entries' hash and equality: a TokenRequest, or a TokenKey viewing the same fields, so
/// hits look up without building a TokenRequest (heterogeneous lookup).
struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(const TokenRequest& r) const noexcept {
        return combine(identity_hash(r.identity), std::hash<std::string_view>{}(r.resource));
    }
    std::size_t operator()(const TokenKey& k) const noexcept {
        return combine(k.identity.hash, std::hash<std::string_view>{}(k.resource));
    }
};

struct KeyEqual {
    using is_transparent = void;
    bool operator()(const TokenRequest& a, const TokenRequest& b) const { return a == b; }
    bool operator()(const TokenKey& k, const TokenRequest& r) const {
        return k.resource == r.resource && k.identity.identity == r.identity;
    }
    bool operator()(const TokenRequest& r, const TokenKey& k) const { return (*this)(k, r); }
};

/// splitmix64 finaliser: spreads a std::hash value over all 64 bits.
std::uint64_t mix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/// A per-key number in [0, 1): the same key always refreshes at the same point of its
/// margin, and different keys spread out instead of refreshing together.
double key_jitter(const TokenRequest& request) {
    const auto bits = mix64(static_cast<std::uint64_t>(KeyHash{}(request))) >> 11;
    return static_cast<double>(bits) * 0x1.0p-53;
}

/// Counters have one writer (the cache's executor) and readers anywhere (metrics): relaxed
/// load-and-store keeps the hot path free of locked instructions.
template <class T>
void bump(std::atomic<T>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

template <class T>
void drop(std::atomic<T>& gauge) {
    gauge.store(gauge.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

template <class T>
void set(std::atomic<T>& gauge, T value) {
    gauge.store(value, std::memory_order_relaxed);
}

WallTime wall_from_unix(std::int64_t seconds) {
    return WallTime{std::chrono::seconds{seconds}};
}

FetchError make_error(Errc code, std::string body = {}) {
    return FetchError{
        .code = code, .upstream_status = 0, .retry_after = {}, .upstream_body = std::move(body)};
}

CacheResult failure(CacheOutcome outcome, FetchError error) {
    return CacheResult{.token = nullptr, .outcome = outcome, .error = std::move(error)};
}

}  // namespace

std::size_t identity_hash(const TokenIdentity& identity) noexcept {
    const std::hash<std::string_view> hash;
    std::size_t h = hash(identity.client_id);
    h = combine(h, hash(identity.identity_namespace));
    h = combine(h, hash(identity.identity_name));
    h = combine(h, hash(identity.tenant_id));
    h = combine(h, hash(identity.ad_endpoint));
    h = combine(h, hash(identity.secret.namespace_name));
    h = combine(h, hash(identity.secret.name));
    return combine(h, static_cast<std::size_t>(identity.type));
}

PreparedIdentity prepare_identity(TokenIdentity identity) {
    const std::size_t hash = identity_hash(identity);
    return PreparedIdentity{.identity = std::move(identity), .hash = hash};
}

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
    }
    return "error";
}

class TokenCache::Impl : public std::enable_shared_from_this<TokenCache::Impl> {
public:
    Impl(asio::any_io_executor executor, TokenSource& source, Clock& clock,
         TokenCacheSettings settings, std::function<void(const UpstreamAttempt&)> on_attempt)
        : executor_(std::move(executor)),
          source_(source),
          clock_(clock),
          settings_(settings),
          on_attempt_(std::move(on_attempt)),
          stop_signal_(executor_, SteadyTime::max()) {
        settings_.max_entries = std::max<std::size_t>(1, settings_.max_entries);
        settings_.max_attempts = std::max(1, settings_.max_attempts);
        if (settings_.rate_per_second > 0) {
            interval_ = std::chrono::duration_cast<nanoseconds>(
                std::chrono::duration<double>(1.0 / settings_.rate_per_second));
            const double burst = std::max(1.0, settings_.rate_per_second);
            tolerance_ = std::chrono::duration_cast<nanoseconds>(
                std::chrono::duration<double>((burst - 1.0) / settings_.rate_per_second));
        }
    }

    const asio::any_io_executor& executor() const { return executor_; }

    /// False on a thread that is not inside the cache's strand (several I/O threads): try_get
    /// then declines, and get() hops. A plain io_context executor means one I/O thread.
    bool on_executor() const {
        if (io_strand_ != nullptr) {
            return io_strand_->running_in_this_thread();
        }
        return any_strand_ == nullptr || any_strand_->running_in_this_thread();
    }

    template <class Key>
    std::optional<CacheResult> try_get(const Key& key);
    asio::awaitable<CacheResult> get_here(const TokenRequest& request);
    asio::awaitable<void> run_here(std::shared_ptr<Impl> self);
    void stop_here();
    TokenCacheStats stats() const;

private:
    struct Inflight;
    struct BudgetWaiter;

    struct Entry {
        const TokenRequest* key = nullptr;   ///< the map's own key (stable: node-based map)
        TokenPtr token;                      ///< newest token fetched (maybe no longer valid)
        WallTime valid_until{};              ///< serve while wall_now() < valid_until
        WallTime refresh_at{};               ///< refresh ahead from here on
        std::shared_ptr<Inflight> inflight;  ///< fetch running for this key, if any
        FetchError last_error;
        SteadyTime retry_not_before{};  ///< after a failure: negative window, refresh pause
        SteadyTime last_used{};
        std::list<Entry*>::iterator lru;
        double jitter = 0;  ///< key_jitter(key)
    };

    /// One fetch (retries included) shared by every caller of one key. Waiters hold it by
    /// shared_ptr, so it outlives the entry's reference to it.
    struct Inflight {
        Inflight(const asio::any_io_executor& ex, TokenRequest req, bool bg, SteadyTime dl)
            : done(ex, SteadyTime::max()), request(std::move(req)), background(bg), deadline(dl) {}
        asio::steady_timer done;  ///< condition variable: cancelled when the fetch ends
        TokenRequest request;
        bool background;  ///< no caller waits (cleared when a miss joins)
        SteadyTime deadline;
        bool finished = false;
        TokenPtr token;
        FetchError error;
        BudgetWaiter* queued = nullptr;  ///< while waiting for upstream budget
    };

    /// A fetch waiting for upstream budget; lives in the fetch coroutine's frame.
    struct BudgetWaiter {
        BudgetWaiter(const asio::any_io_executor& ex, bool bg)
            : wake(ex, SteadyTime::max()), background(bg) {}
        asio::steady_timer wake;
        bool background;
        bool granted = false;
        bool queued = false;
        std::list<BudgetWaiter*>::iterator pos;
    };

    // Entries.
    void touch(Entry& entry);
    bool make_room();
    void erase_entry(Entry& entry);
    std::shared_ptr<Inflight> start_fetch(Entry& entry, bool background);
    void store_token(Entry& entry, TokenPtr token);

    // One fetch.
    asio::awaitable<void> fetch_task(std::shared_ptr<Impl> self, Entry* entry,
                                     std::shared_ptr<Inflight> inflight);
    asio::awaitable<FetchResult> fetch_with_retries(Inflight& inflight);
    asio::awaitable<FetchResult> attempt_once(Inflight& inflight);
    void finish(Entry& entry, Inflight& inflight, FetchResult result);
    nanoseconds backoff(int attempt, const FetchError& error);
    nanoseconds negative_window(const FetchError& error) const;
    void report(const Inflight& inflight, const FetchResult& result, nanoseconds duration);

    // Upstream budget.
    asio::awaitable<bool> acquire_budget(Inflight& inflight);
    void release_budget();
    bool has_capacity() const;
    bool rate_ready(SteadyTime now) const;
    void take_budget(SteadyTime now);
    void pump();
    void promote(Inflight& inflight);
    void dequeue(BudgetWaiter& waiter);
    asio::awaitable<void> refill_task(std::shared_ptr<Impl> self, SteadyTime at);

    // Stop and sweep.
    asio::awaitable<void> wait_for_stop();
    void sweep();

    asio::any_io_executor executor_;
    TokenSource& source_;
    Clock& clock_;
    TokenCacheSettings settings_;
    std::function<void(const UpstreamAttempt&)> on_attempt_;

    std::unordered_map<TokenRequest, Entry, KeyHash, KeyEqual> entries_;
    std::list<Entry*> lru_;  ///< front: most recently used

    // Budget: concurrency plus a GCRA token bucket (exact in integer nanoseconds).
    std::size_t upstream_in_flight_ = 0;
    nanoseconds interval_{0};   ///< 1 / rate (0: no rate limit)
    nanoseconds tolerance_{0};  ///< (burst - 1) / rate
    SteadyTime tat_{};          ///< theoretical arrival time of the next attempt
    std::list<BudgetWaiter*> foreground_queue_;
    std::list<BudgetWaiter*> background_queue_;
    bool refill_pending_ = false;

    // Point into executor_ (which never moves): resolved once, off the hot path.
    const asio::strand<asio::io_context::executor_type>* io_strand_ =
        executor_.target<asio::strand<asio::io_context::executor_type>>();
    const asio::strand<asio::any_io_executor>* any_strand_ =
        executor_.target<asio::strand<asio::any_io_executor>>();

    asio::steady_timer stop_signal_;  ///< never expires; stop() cancels it
    bool stopped_ = false;
    std::minstd_rand rng_{kBackoffSeed};

    struct Counters {
        std::atomic<std::uint64_t> hits{0};
        std::atomic<std::uint64_t> refresh_ahead{0};
        std::atomic<std::uint64_t> misses{0};
        std::atomic<std::uint64_t> joined{0};
        std::atomic<std::uint64_t> negative_hits{0};
        std::atomic<std::uint64_t> fetch_errors{0};
        std::atomic<std::uint64_t> upstream_attempts{0};
        std::atomic<std::uint64_t> upstream_failures{0};
        std::atomic<std::uint64_t> evictions{0};
        std::atomic<std::size_t> entries{0};
        std::atomic<std::size_t> inflight{0};
        std::atomic<std::size_t> waiters{0};
    };
    Counters stats_;
};

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
        start_fetch(entry, /*background=*/true);
        return CacheResult{
            .token = std::move(token), .outcome = CacheOutcome::refresh_ahead, .error = {}};
    }
    bump(stats_.hits);
    return CacheResult{.token = entry.token, .outcome = CacheOutcome::hit, .error = {}};
}

asio::awaitable<CacheResult> TokenCache::Impl::get_here(const TokenRequest& request) {
    if (auto hit = try_get(request)) {
        co_return std::move(*hit);
    }
    if (stopped_) {
        co_return failure(CacheOutcome::error, make_error(Errc::cancelled));
    }
    auto it = entries_.find(request);
    if (it == entries_.end()) {
        if (!make_room()) {
            co_return failure(CacheOutcome::error,
                              make_error(Errc::overloaded, "token cache full of fetches"));
        }
        it = entries_.try_emplace(request).first;
        Entry& created = it->second;
        created.key = &it->first;
        created.jitter = key_jitter(request);
        created.lru = lru_.insert(lru_.begin(), &created);
        set(stats_.entries, entries_.size());
    }
    Entry& entry = it->second;
    touch(entry);

    CacheOutcome outcome = CacheOutcome::miss;
    std::shared_ptr<Inflight> inflight;
    if (entry.inflight) {
        outcome = CacheOutcome::joined;
        bump(stats_.joined);
        inflight = entry.inflight;
        promote(*inflight);
    } else if (entry.last_used < entry.retry_not_before) {
        bump(stats_.negative_hits);
        co_return failure(CacheOutcome::negative, entry.last_error);
    } else {
        bump(stats_.misses);
        inflight = start_fetch(entry, /*background=*/false);
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
    co_return failure(CacheOutcome::error, inflight->error);
}

void TokenCache::Impl::touch(Entry& entry) {
    entry.last_used = clock_.steady_now();
    lru_.splice(lru_.begin(), lru_, entry.lru);
}

bool TokenCache::Impl::make_room() {
    if (entries_.size() < settings_.max_entries) {
        return true;
    }
    // An entry with a fetch in flight has waiters or a refresh that will write into it.
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
        if (!(*it)->inflight) {
            erase_entry(**it);
            bump(stats_.evictions);
            return true;
        }
    }
    return false;
}

void TokenCache::Impl::erase_entry(Entry& entry) {
    lru_.erase(entry.lru);
    entries_.erase(entries_.find(*entry.key));
    set(stats_.entries, entries_.size());
}

void TokenCache::Impl::store_token(Entry& entry, TokenPtr token) {
    const WallTime now = clock_.wall_now();
    const WallTime expires = wall_from_unix(token->expires_on);
    const auto lifetime = std::chrono::duration_cast<nanoseconds>(expires - now);
    auto margin = std::max<nanoseconds>(
        settings_.refresh_margin,
        std::chrono::duration_cast<nanoseconds>(lifetime * settings_.refresh_fraction));
    // A short-lived token would otherwise be "due" from the moment it arrives and every hit
    // would refresh it; refreshing at half its life at the earliest bounds that.
    margin = std::min(margin, lifetime / 2);
    const auto jitter =
        std::chrono::duration_cast<nanoseconds>(margin * kMaxRefreshJitter * entry.jitter);
    entry.refresh_at = expires - margin - jitter;
    entry.valid_until = expires - settings_.min_remaining_lifetime;
    entry.token = std::move(token);
    entry.last_error = FetchError{};
    entry.retry_not_before = SteadyTime{};
}

// ---------------------------------------------------------------------------------------------
// Fetch

std::shared_ptr<TokenCache::Impl::Inflight> TokenCache::Impl::start_fetch(Entry& entry,
                                                                          bool background) {
    auto inflight = std::make_shared<Inflight>(executor_, *entry.key, background,
                                               clock_.steady_now() + settings_.fetch_deadline);
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
        release_budget();
        report(inflight, result, clock_.steady_now() - started);
        if (result) {
            co_return result;
        }
        FetchError error = result.error();
        if (stopped_) {
            co_return make_error(Errc::cancelled);
        }
        if (!is_retryable(error) || attempt >= settings_.max_attempts) {
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
    entry.inflight.reset();
    drop(stats_.inflight);
    if (result && wall_from_unix(result->expires_on) <= clock_.wall_now()) {
        result = make_error(Errc::upstream_bad_payload, "token already expired");
    }
    if (result) {
        // Delivered to this fetch's waiters even if it is already inside
        // min_remaining_lifetime (fresh from upstream); the cache itself will not serve it.
        auto token = std::make_shared<const Token>(std::move(*result));
        inflight.token = token;
        store_token(entry, std::move(token));
    } else {
        inflight.error = result.error();
        if (inflight.error.code != Errc::cancelled) {
            bump(stats_.fetch_errors);
            entry.last_error = inflight.error;
            entry.retry_not_before = clock_.steady_now() + negative_window(inflight.error);
        }
    }
    inflight.done.cancel();
}

nanoseconds TokenCache::Impl::backoff(int attempt, const FetchError& error) {
    nanoseconds ceiling = settings_.backoff_base;
    const nanoseconds cap = settings_.backoff_cap;
    for (int i = 1; i < attempt && ceiling < cap; ++i) {
        ceiling *= 2;
    }
    ceiling = std::max(nanoseconds::zero(), std::min(ceiling, cap));
    // Full jitter: concurrent fetches that failed together do not retry together.
    std::uniform_int_distribution<nanoseconds::rep> draw(0, ceiling.count());
    const nanoseconds delay{draw(rng_)};
    const nanoseconds retry_after =
        std::min<nanoseconds>(error.retry_after, settings_.max_retry_after);
    return std::max(delay, retry_after);
}

nanoseconds TokenCache::Impl::negative_window(const FetchError& error) const {
    const nanoseconds retry_after =
        std::min<nanoseconds>(error.retry_after, settings_.max_retry_after);
    return std::max<nanoseconds>(settings_.negative_ttl, retry_after);
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

// ---------------------------------------------------------------------------------------------
// Upstream budget

asio::awaitable<bool> TokenCache::Impl::acquire_budget(Inflight& inflight) {
    const SteadyTime now = clock_.steady_now();
    if (stopped_ || now >= inflight.deadline) {
        co_return false;
    }
    if (foreground_queue_.empty() && background_queue_.empty() && has_capacity() &&
        rate_ready(now)) {
        take_budget(now);
        co_return true;
    }
    BudgetWaiter waiter{executor_, inflight.background};
    auto& queue = waiter.background ? background_queue_ : foreground_queue_;
    waiter.pos = queue.insert(queue.end(), &waiter);
    waiter.queued = true;
    inflight.queued = &waiter;
    pump();
    if (!waiter.granted) {
        // Woken by pump() (granted), stop(), or the fetch deadline.
        co_await (waiter.wake.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                  clock_.wait_until(inflight.deadline));
    }
    inflight.queued = nullptr;
    if (waiter.queued) {
        dequeue(waiter);
    }
    if (!waiter.granted) {
        co_return false;
    }
    if (stopped_ || clock_.steady_now() >= inflight.deadline) {
        release_budget();
        co_return false;
    }
    co_return true;
}

void TokenCache::Impl::release_budget() {
    --upstream_in_flight_;
    pump();
}

bool TokenCache::Impl::has_capacity() const {
    return settings_.max_concurrency == 0 || upstream_in_flight_ < settings_.max_concurrency;
}

bool TokenCache::Impl::rate_ready(SteadyTime now) const {
    return interval_ == nanoseconds::zero() || tat_ - tolerance_ <= now;
}

void TokenCache::Impl::take_budget(SteadyTime now) {
    ++upstream_in_flight_;
    if (interval_ > nanoseconds::zero()) {
        tat_ = std::max(tat_, now) + interval_;
    }
}

void TokenCache::Impl::pump() {
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
        BudgetWaiter* waiter = queue.front();
        dequeue(*waiter);
        take_budget(now);
        waiter->granted = true;
        waiter->wake.cancel();
    }
}

void TokenCache::Impl::promote(Inflight& inflight) {
    if (!inflight.background) {
        return;
    }
    inflight.background = false;
    BudgetWaiter* waiter = inflight.queued;
    if (waiter != nullptr && waiter->queued && waiter->background) {
        background_queue_.erase(waiter->pos);
        waiter->background = false;
        waiter->pos = foreground_queue_.insert(foreground_queue_.end(), waiter);
    }
}

void TokenCache::Impl::dequeue(BudgetWaiter& waiter) {
    (waiter.background ? background_queue_ : foreground_queue_).erase(waiter.pos);
    waiter.queued = false;
}

asio::awaitable<void> TokenCache::Impl::refill_task(std::shared_ptr<Impl> self, SteadyTime at) {
    (void)self;
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await (clock_.wait_until(at) || wait_for_stop());
    refill_pending_ = false;
    pump();
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
    for (auto* queue : {&foreground_queue_, &background_queue_}) {
        for (BudgetWaiter* waiter : *queue) {
            waiter->wake.cancel();
        }
    }
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
            lru_.erase(entry.lru);
            it = entries_.erase(it);
            bump(stats_.evictions);
        } else {
            ++it;
        }
    }
    set(stats_.entries, entries_.size());
}

TokenCacheStats TokenCache::Impl::stats() const {
    constexpr auto relaxed = std::memory_order_relaxed;
    return TokenCacheStats{.hits = stats_.hits.load(relaxed),
                           .refresh_ahead = stats_.refresh_ahead.load(relaxed),
                           .misses = stats_.misses.load(relaxed),
                           .joined = stats_.joined.load(relaxed),
                           .negative_hits = stats_.negative_hits.load(relaxed),
                           .fetch_errors = stats_.fetch_errors.load(relaxed),
                           .upstream_attempts = stats_.upstream_attempts.load(relaxed),
                           .upstream_failures = stats_.upstream_failures.load(relaxed),
                           .evictions = stats_.evictions.load(relaxed),
                           .entries = stats_.entries.load(relaxed),
                           .inflight = stats_.inflight.load(relaxed),
                           .waiters = stats_.waiters.load(relaxed)};
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

std::optional<CacheResult> TokenCache::try_get(const TokenRequest& request) {
    return impl_->try_get(request);
}

std::optional<CacheResult> TokenCache::try_get(const TokenKey& key) {
    return impl_->try_get(key);
}

asio::awaitable<CacheResult> TokenCache::get(const TokenRequest& request) {
    std::shared_ptr<Impl> impl = impl_;
    const auto caller = co_await asio::this_coro::executor;
    if (caller == impl->executor()) {
        co_return co_await impl->get_here(request);
    }
    // Resuming after asio::dispatch(executor) would continue on the caller's executor, not
    // the cache's; a child coroutine keeps every step of the lookup on the cache's executor.
    co_return co_await asio::co_spawn(impl->executor(), impl->get_here(request),
                                      asio::use_awaitable);
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
