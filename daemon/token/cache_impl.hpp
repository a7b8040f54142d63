#pragma once

// TokenCache's state and its member functions (token_cache.cpp). Private to the module.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "nmid/token/bypass_policy.hpp"
#include "nmid/token/token_cache.hpp"
#include "token_key.hpp"
#include "upstream_budget.hpp"

namespace nmid {

namespace token_detail {

/// Counters have one writer (the cache's executor) and readers anywhere (metrics): relaxed
/// load-and-store keeps the hot path free of locked instructions.
template <class T>
inline void bump(std::atomic<T>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

template <class T>
inline void drop(std::atomic<T>& gauge) {
    gauge.store(gauge.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

template <class T>
inline void set(std::atomic<T>& gauge, T value) {
    gauge.store(value, std::memory_order_relaxed);
}

inline FetchError make_error(Errc code, std::string body = {}) {
    return FetchError{
        .code = code, .upstream_status = 0, .retry_after = {}, .upstream_body = std::move(body)};
}

}  // namespace token_detail

class TokenCache::Impl : public std::enable_shared_from_this<TokenCache::Impl> {
public:
    Impl(boost::asio::any_io_executor executor, TokenSource& source, Clock& clock,
         TokenCacheSettings settings, std::function<void(const UpstreamAttempt&)> on_attempt);

    const boost::asio::any_io_executor& executor() const { return executor_; }

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
    boost::asio::awaitable<CacheResult> get_here(const TokenRequest& request,
                                                 std::string_view requester, GetOptions options);
    boost::asio::awaitable<Result<UpstreamPermit>> acquire_here(std::shared_ptr<Impl> self,
                                                                std::string_view requester,
                                                                SteadyTime deadline);
    boost::asio::awaitable<void> run_here(std::shared_ptr<Impl> self);
    void stop_here();
    TokenCacheStats stats() const;
    /// cache_inspect.cpp
    std::vector<CacheEntryInfo> inspect_here(
        const std::function<bool(const TokenIdentity&)>& select) const;

private:
    struct Inflight;
    struct Entry;

    /// A requester (pod) as the cache accounts for it. Kept while it owns keys or has
    /// fetches or permits pending; forgotten (forget_if_idle) otherwise.
    struct Requester {
        std::string name;
        std::size_t pending = 0;  ///< misses it started and permits, queued or running
        std::size_t keys = 0;     ///< entries it created
        std::size_t bytes = 0;    ///< their bytes
        std::list<Entry*> lru;    ///< its entries, front: most recently used
        [[nodiscard]] bool capped() const { return !name.empty(); }
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    struct Entry {
        const TokenRequest* key = nullptr;   ///< the map's own key (stable: node-based map)
        TokenPtr token;                      ///< newest token fetched (maybe no longer valid)
        WallTime valid_until{};              ///< serve while wall_now() < valid_until
        WallTime refresh_at{};               ///< refresh ahead from here on
        WallTime fetched_at{};               ///< when `token` was stored (diagnostics)
        std::shared_ptr<Inflight> inflight;  ///< fetch running for this key, if any
        FetchError last_error;
        SteadyTime retry_not_before{};  ///< after a failure: negative window, refresh pause
        SteadyTime last_used{};
        std::list<Entry*>::iterator lru;
        double jitter = 0;                      ///< key_jitter(key)
        Requester* owner = nullptr;             ///< who created the key
        std::list<Entry*>::iterator owner_pos;  ///< in owner->lru
        std::size_t bytes = 0;                  ///< as counted against max_bytes
        token_detail::ForcedFetches forced;     ///< bypass_cache fetches in the last interval
    };

    /// One fetch (retries included) shared by every caller of one key. Waiters hold it by
    /// shared_ptr, so it outlives the entry's reference to it.
    struct Inflight {
        Inflight(const boost::asio::any_io_executor& ex, TokenRequest req, bool bg, SteadyTime dl,
                 Requester& by)
            : done(ex, SteadyTime::max()),
              request(std::move(req)),
              background(bg),
              deadline(dl),
              payer(&by),
              counted(!bg) {}
        boost::asio::steady_timer done;  ///< condition variable: cancelled when the fetch ends
        TokenRequest request;
        bool background;  ///< no caller waits (cleared when a miss joins)
        SteadyTime deadline;
        bool finished = false;
        TokenPtr token;
        FetchError error;
        token_detail::UpstreamBudget::Waiter* queued = nullptr;  ///< waiting for budget
        Requester* payer;  ///< whose lane it waits in: a miss's caller, a refresh's owner
        bool counted;      ///< counted in payer->pending (misses, not background refreshes)
    };

    // Entries and their owners (token_cache.cpp).
    void touch(Entry& entry);
    Requester& requester_of(std::string_view name);
    void forget_if_idle(Requester& requester);
    [[nodiscard]] bool over_pending(const Requester& requester) const;
    /// Creates the entry of `request` for `owner`: Errc::pod_over_limit (owner at its key cap,
    /// every key in flight) or overloaded (cache full of fetches in flight) otherwise.
    Result<Entry*> create_entry(const TokenRequest& request, Requester& owner);
    /// Evicts until `add_entries` more entries and `need` more bytes fit; false when only
    /// entries in flight (or `keep`) are left.
    bool make_room(std::size_t add_entries, std::size_t need, Requester& creator,
                   const Entry* keep = nullptr);
    bool evict_lru_of(Requester& requester, const Entry* keep = nullptr);
    /// Erases the entry; returns its owner (the caller decides whether to forget it).
    Requester& erase_entry(Entry& entry);
    void set_bytes(Entry& entry, std::size_t bytes);
    std::shared_ptr<Inflight> start_fetch(Entry& entry, bool background, Requester& payer);
    void store_token(Entry& entry, TokenPtr token);
    void release_permit(Requester& requester);

    // One fetch.
    boost::asio::awaitable<void> fetch_task(std::shared_ptr<Impl> self, Entry* entry,
                                            std::shared_ptr<Inflight> inflight);
    boost::asio::awaitable<FetchResult> fetch_with_retries(Inflight& inflight);
    boost::asio::awaitable<FetchResult> attempt_once(Inflight& inflight);
    boost::asio::awaitable<bool> acquire_budget(Inflight& inflight);
    void finish(Entry& entry, Inflight& inflight, FetchResult result);
    std::chrono::nanoseconds backoff(int attempt, const FetchError& error);
    void report(const Inflight& inflight, const FetchResult& result,
                std::chrono::nanoseconds duration);
    void promote(Inflight& inflight);

    // Stop and sweep.
    boost::asio::awaitable<void> wait_for_stop();
    void sweep();

    boost::asio::any_io_executor executor_;
    TokenSource& source_;
    Clock& clock_;
    TokenCacheSettings settings_;
    std::function<void(const UpstreamAttempt&)> on_attempt_;

    std::unordered_map<TokenRequest, Entry, token_detail::KeyHash, token_detail::KeyEqual> entries_;
    std::list<Entry*> lru_;  ///< front: most recently used
    std::unordered_map<std::string, Requester, StringHash, std::equal_to<>> requesters_;
    std::size_t bytes_ = 0;

    std::shared_ptr<token_detail::UpstreamBudget> budget_;

    // Point into executor_ (which never moves): resolved once, off the hot path.
    const boost::asio::strand<boost::asio::io_context::executor_type>* io_strand_ =
        executor_.target<boost::asio::strand<boost::asio::io_context::executor_type>>();
    const boost::asio::strand<boost::asio::any_io_executor>* any_strand_ =
        executor_.target<boost::asio::strand<boost::asio::any_io_executor>>();

    boost::asio::steady_timer stop_signal_;  ///< never expires; stop() cancels it
    bool stopped_ = false;
    std::minstd_rand rng_;

    struct Counters {
        std::atomic<std::uint64_t> hits{0};
        std::atomic<std::uint64_t> refresh_ahead{0};
        std::atomic<std::uint64_t> misses{0};
        std::atomic<std::uint64_t> joined{0};
        std::atomic<std::uint64_t> forced{0};
        std::atomic<std::uint64_t> negative_hits{0};
        std::atomic<std::uint64_t> fetch_errors{0};
        std::atomic<std::uint64_t> upstream_attempts{0};
        std::atomic<std::uint64_t> upstream_failures{0};
        std::atomic<std::uint64_t> evictions{0};
        std::atomic<std::size_t> entries{0};
        std::atomic<std::size_t> inflight{0};
        std::atomic<std::size_t> waiters{0};
        std::atomic<std::size_t> bytes{0};
        std::atomic<std::uint64_t> refused_pending{0};
        std::atomic<std::uint64_t> refused_tokens{0};
    };
    Counters stats_;
};

}  // namespace nmid
