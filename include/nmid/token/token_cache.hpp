#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/token.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid {

/// How the cache answered one lookup (a metric label: keep the names stable).
enum class CacheOutcome {
    hit,            ///< valid cached token
    refresh_ahead,  ///< valid cached token; this lookup started a background refresh
    miss,           ///< no valid token: this caller started the upstream fetch
    joined,         ///< no valid token: this caller joined a fetch already in flight
    negative,       ///< a recent upstream failure was returned without an upstream call
    error,          ///< the fetch this caller waited for failed (or the wait was cancelled)
    forced,         ///< `bypass_cache=true`: this caller started an upstream fetch of a cached key
};

/// "hit", "refresh_ahead", "miss", "joined", "negative", "error", "forced".
std::string_view to_string(CacheOutcome outcome) noexcept;

struct CacheResult {
    TokenPtr token;  ///< null on failure
    CacheOutcome outcome = CacheOutcome::error;
    FetchError error;  ///< meaningful only when `token` is null
};

/// The identity half of a cache key with its hash, prepared once (per CRD snapshot, by the
/// handler) so that a cached answer neither copies nor rehashes the identity.
struct PreparedIdentity {
    TokenIdentity identity;
    std::size_t hash = 0;  ///< identity_hash(identity)
};

/// Hash of everything in a TokenIdentity that distinguishes cache keys (resource_id is
/// informational and left out).
[[nodiscard]] std::size_t identity_hash(const TokenIdentity& identity) noexcept;
[[nodiscard]] PreparedIdentity prepare_identity(TokenIdentity identity);

/// A lookup key that views a prepared identity and a resource. The referenced objects must
/// outlive the call it is passed to.
struct TokenKey {
    const PreparedIdentity& identity;
    std::string_view resource;
};

/// Options of one TokenCache::get().
struct GetOptions {
    /// `bypass_cache=true` (issue 14): fetch from upstream even when a valid token is cached,
    /// at most once per requester and key per settings.bypass_min_interval; inside it the
    /// cached token is served as by a plain get(). A fetch already in flight for the key is
    /// joined instead of starting another. When the forced fetch fails while a valid token is
    /// cached, that token is served (the pod asked for a fresher token, not for an outage).
    bool force_refresh = false;
};

/// Counters since construction.
struct TokenCacheStats {
    std::uint64_t hits = 0;
    std::uint64_t refresh_ahead = 0;      ///< hits that started a background refresh
    std::uint64_t misses = 0;             ///< callers that started a fetch
    std::uint64_t joined = 0;             ///< callers that joined a fetch in flight
    std::uint64_t forced = 0;             ///< callers that forced a fetch (bypass_cache)
    std::uint64_t negative_hits = 0;      ///< failures answered from the negative cache
    std::uint64_t fetch_errors = 0;       ///< fetches (retries included) that ended in failure
    std::uint64_t upstream_attempts = 0;  ///< calls to TokenSource::fetch
    std::uint64_t upstream_failures = 0;  ///< of those, the ones that failed
    std::uint64_t evictions = 0;          ///< entries dropped (LRU when full, idle, expired)
    std::size_t entries = 0;              ///< now: keys held
    std::size_t inflight = 0;             ///< now: fetches running (foreground and background)
    std::size_t waiters = 0;              ///< now: get() callers suspended on a fetch
    std::size_t bytes = 0;                ///< now: bytes held (--token-cache-max-bytes)
    std::size_t queued = 0;  ///< now: upstream calls (fetches, proxied) waiting for budget
    /// Misses and proxied calls refused because the pod had max_pending_fetches_per_pod
    /// fetches queued or running (Errc::pod_over_limit; metric reason "pending_fetches").
    std::uint64_t refused_pending = 0;
    /// Misses refused because the pod held max_tokens_per_pod keys, all in flight
    /// (Errc::pod_over_limit; metric reason "tokens").
    std::uint64_t refused_tokens = 0;
};

/// One unit of the upstream budget held by a proxied or pass-through request
/// (TokenCache::acquire_upstream). Move-only. Released when destroyed or reset(), from any thread
/// (the release is dispatched to the cache's executor, so destroy permits before the io_context).
class UpstreamPermit {
public:
    UpstreamPermit() = default;
    UpstreamPermit(const UpstreamPermit&) = delete;
    UpstreamPermit& operator=(const UpstreamPermit&) = delete;
    UpstreamPermit(UpstreamPermit&&) noexcept = default;
    UpstreamPermit& operator=(UpstreamPermit&&) noexcept = default;
    ~UpstreamPermit() = default;
    [[nodiscard]] bool held() const noexcept { return release_ != nullptr; }
    void reset() noexcept { release_.reset(); }

private:
    friend class TokenCache;
    explicit UpstreamPermit(std::shared_ptr<void> release) : release_(std::move(release)) {}
    std::shared_ptr<void> release_;  ///< its deleter returns the unit to the budget
};

/// One cache entry as `/debug/explain` shows it: times and the last failure, never the token.
struct CacheEntryInfo {
    TokenIdentity identity;
    std::string resource;
    bool has_token = false;   ///< a token is held (maybe no longer served)
    WallTime expires_at{};    ///< the held token's expires_on
    WallTime fetched_at{};    ///< when the held token was stored
    WallTime next_refresh{};  ///< refresh ahead from here (after a failure: the retry pause)
    bool fetching = false;    ///< a fetch is in flight now
    /// The last failed fetch since the last success: code and upstream status only (the
    /// upstream body is left out: it may echo request details). Errc::ok when none.
    Errc last_error = Errc::ok;
    int last_error_status = 0;
};

/// Observer of each upstream attempt (metrics). status 0 = no HTTP status (transport error).
struct UpstreamAttempt {
    const TokenRequest* request;  ///< valid only during the callback
    int status;                   ///< 200 on success, else FetchError::upstream_status
    Errc error;                   ///< Errc::ok on success
    std::chrono::nanoseconds duration;
    bool background;  ///< refresh ahead with no caller waiting
};

/// Token cache keyed by TokenRequest: single flight, refresh ahead, stale-on-error, negative
/// cache, retries with backoff, a shared upstream budget (IMDS: 5 concurrent, 20/s), bounded
/// in entries and bytes. Authorisation is not done here: callers decide before asking.
///
/// Per-pod fairness: every call names its requester (the calling pod, e.g. its UID; "" is
/// unattributed and exempt from the per-pod limits). The upstream budget admits requesters
/// round robin, misses before background refreshes (FairQueue), at most
/// max_upstream_fetches_per_pod running each. A requester may have at most
/// max_pending_fetches_per_pod misses and permits queued or running, and at most
/// max_tokens_per_pod keys: each key is attributed to the requester that created it, and a
/// requester at its cap replaces its own least recently used key not in flight. When the
/// cache is full (entries or bytes), the key evicted is the least recently used one not in
/// flight of the requester holding the most bytes (the creating requester on a tie): a pod
/// never evicts the tokens of a pod that holds fewer bytes than it does. Over a limit, the
/// call fails at once with Errc::pod_over_limit.
///
/// Threading: all state lives on `executor` (the io_context executor with one I/O thread, or a
/// strand); there are no locks. get() and run() may be awaited from any executor (they run on
/// the cache's and complete on the caller's); try_get() answers only on the cache's executor.
/// Lifetime: the fetches the cache spawns keep its internal state alive, so destroying the
/// TokenCache with fetches still pending is safe; `source` and `clock` must outlive the
/// io_context's work (or the io_context itself).
class TokenCache {
public:
    /// `on_attempt` is called on the cache's executor after every upstream attempt.
    TokenCache(boost::asio::any_io_executor executor, TokenSource& source, Clock& clock,
               TokenCacheSettings settings,
               std::function<void(const UpstreamAttempt&)> on_attempt = {});
    /// Calls stop().
    ~TokenCache();
    TokenCache(const TokenCache&) = delete;
    TokenCache& operator=(const TokenCache&) = delete;

    /// Fast path without suspension: a valid cached token (outcome hit, or refresh_ahead when
    /// this call started a background refresh), else nullopt (the caller then awaits get()).
    /// Never contacts upstream on the caller's behalf and never returns a failure.
    /// Executor: the cache's. When the cache is on a strand and the calling thread is not
    /// inside it, returns nullopt without touching any state (get() then hops to the strand).
    /// With a plain io_context executor the caller must run on that io_context's only thread.
    /// No allocation on a plain hit.
    /// `requester` is not used on a hit (a refresh ahead is attributed to the key's creator).
    std::optional<CacheResult> try_get(const TokenRequest& request,
                                       std::string_view requester = {});
    /// Same as try_get(TokenRequest) for the request `key` views, without building one.
    std::optional<CacheResult> try_get(const TokenKey& key, std::string_view requester = {});

    /// Full path: hit, negative hit, join an in-flight fetch, or start one (single flight).
    /// On failure `token` is null and `error.code` is one of Errc::upstream_refused,
    /// upstream_throttled, upstream_unavailable, upstream_bad_payload, identity_unsupported,
    /// timeout (fetch deadline passed), overloaded (cache full of fetches in flight),
    /// pod_over_limit (`requester` over its pending fetches, or at its key cap with every key
    /// in flight), or cancelled (stop(), or this caller's cancellation).
    /// Executor: any; runs on the cache's executor. Cancellation (per-operation, any type):
    /// abandons this caller's wait only; the fetch continues and its result is cached.
    /// Waits are bounded by settings.fetch_deadline from the start of the fetch.
    /// `request` and `requester` must stay valid until the call completes.
    boost::asio::awaitable<CacheResult> get(const TokenRequest& request,
                                            std::string_view requester = {},
                                            GetOptions options = {});

    /// One unit of the upstream budget for a request nmid forwards to IMDS for `requester`
    /// (proxied or passed through): admitted fairly with the fetches, counted in the
    /// requester's pending fetches. Fails with Errc::pod_over_limit (at once), timeout
    /// (`deadline` passed while queued) or cancelled (stop(), or this caller's cancellation).
    /// Executor: any; runs on the cache's executor.
    boost::asio::awaitable<Result<UpstreamPermit>> acquire_upstream(std::string_view requester,
                                                                    SteadyTime deadline);

    /// Background work: every minute, evicts entries idle longer than idle_ttl and entries
    /// whose token can no longer be served. Returns after stop() or when cancelled.
    /// Executor: any; runs on the cache's executor.
    boost::asio::awaitable<void> run();

    /// Cancels every fetch (background refreshes included) and wakes all waiters with
    /// Errc::cancelled; later misses fail with Errc::cancelled at once (valid cached tokens
    /// are still served by try_get/get). Call at shutdown. Idempotent.
    /// Executor: any (dispatched to the cache's executor; inline when already there).
    void stop();

    /// Executor: any (relaxed atomics written only on the cache's executor; exact there).
    [[nodiscard]] TokenCacheStats stats() const;

    /// The entries whose identity `select` accepts, sorted by (identity namespace, identity
    /// name, resource). For diagnostics: walks every entry. Executor: any; runs on the
    /// cache's.
    boost::asio::awaitable<std::vector<CacheEntryInfo>> inspect(
        std::function<bool(const TokenIdentity&)> select);

private:
    class Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace nmid
