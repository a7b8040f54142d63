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
#include <unordered_map>

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
    boost::asio::awaitable<CacheResult> get_here(const TokenRequest& request);
    boost::asio::awaitable<void> run_here(std::shared_ptr<Impl> self);
    void stop_here();
    TokenCacheStats stats() const;

private:
    struct Inflight;

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
        Inflight(const boost::asio::any_io_executor& ex, TokenRequest req, bool bg, SteadyTime dl)
            : done(ex, SteadyTime::max()), request(std::move(req)), background(bg), deadline(dl) {}
        boost::asio::steady_timer done;  ///< condition variable: cancelled when the fetch ends
        TokenRequest request;
        bool background;  ///< no caller waits (cleared when a miss joins)
        SteadyTime deadline;
        bool finished = false;
        TokenPtr token;
        FetchError error;
        token_detail::UpstreamBudget::Waiter* queued = nullptr;  ///< waiting for budget
    };

    // Entries.
    void touch(Entry& entry);
    bool make_room();
    void erase_entry(Entry& entry);
    std::shared_ptr<Inflight> start_fetch(Entry& entry, bool background);
    void store_token(Entry& entry, TokenPtr token);

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

}  // namespace nmid
