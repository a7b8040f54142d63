#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "nmid/workload/sa_token_provider.hpp"

namespace nmid::workload {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// A served token keeps at least this long to live: below it a failed renewal is an error.
constexpr std::int64_t kMinRemainingSeconds = 60;

}  // namespace

std::int64_t renew_at(const ServiceAccountToken& token) noexcept {
    const std::int64_t life = token.expires_on - token.issued_at;
    return token.issued_at + (life > 0 ? life * 4 / 5 : 0);
}

struct TokenRequestProvider::Impl : std::enable_shared_from_this<Impl> {
    /// One TokenRequest in flight for a pod; callers wait on `done` (never expires; cancelled
    /// when the request ends).
    struct Flight {
        explicit Flight(const asio::any_io_executor& ex)
            : done{ex, asio::steady_timer::time_point::max()} {}
        asio::steady_timer done;
        std::optional<SaTokenResult> result;
    };
    struct Entry {
        std::optional<ServiceAccountToken> token;
        std::shared_ptr<Flight> flight;
        std::uint64_t used = 0;  ///< LRU tick
    };

    Impl(asio::any_io_executor ex, TokenRequester& r, Clock& c, std::size_t max)
        : executor{std::move(ex)}, requester{r}, clock{c}, max_entries{max == 0 ? 1 : max} {}

    asio::awaitable<SaTokenResult> token_here(PodInfoPtr pod, SteadyTime deadline);
    asio::awaitable<void> request(PodInfoPtr pod, std::shared_ptr<Flight> flight);
    void evict_beyond_capacity();

    asio::any_io_executor executor;
    TokenRequester& requester;
    Clock& clock;
    std::size_t max_entries;
    std::uint64_t tick = 0;
    std::unordered_map<std::string, Entry> entries;  ///< by pod uid; on `executor` only
    mutable std::mutex stats_mutex;
    TokenRequestProviderStats stats;
};

asio::awaitable<SaTokenResult> TokenRequestProvider::Impl::token_here(PodInfoPtr pod,
                                                                      SteadyTime deadline) {
    Entry& entry = entries[pod->uid];
    entry.used = ++tick;
    const std::int64_t now = clock.unix_seconds();
    if (entry.token && now < renew_at(*entry.token)) {
        const std::lock_guard lock{stats_mutex};
        ++stats.hits;
        co_return *entry.token;
    }
    std::shared_ptr<Flight> flight = entry.flight;
    if (flight) {
        const std::lock_guard lock{stats_mutex};
        ++stats.joined;
    } else {
        flight = std::make_shared<Flight>(executor);
        entry.flight = flight;
        evict_beyond_capacity();
        // The request runs on its own: a caller that gives up does not cut it for the others.
        asio::co_spawn(executor, request(pod, flight), asio::detached);
    }
    if (!flight->result) {
        co_await (flight->done.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                  clock.wait_until(deadline));
    }
    if (!flight->result) {
        co_return fetch_error(Errc::timeout, 0, "no ServiceAccount token in time");
    }
    co_return *flight->result;
}

asio::awaitable<void> TokenRequestProvider::Impl::request(PodInfoPtr pod,
                                                          std::shared_ptr<Flight> flight) {
    {
        const std::lock_guard lock{stats_mutex};
        ++stats.requests;
    }
    SaTokenResult result = co_await requester.request(*pod, SteadyTime::max());
    const auto it = entries.find(pod->uid);
    const bool kept = it != entries.end() && it->second.flight == flight;
    if (kept) {
        Entry& entry = it->second;
        entry.flight.reset();
        if (result) {
            entry.token = *result;
        } else if (entry.token &&
                   entry.token->expires_on - clock.unix_seconds() >= kMinRemainingSeconds) {
            // A failed renewal: the held token is still good for a while.
            const std::lock_guard lock{stats_mutex};
            ++stats.stale_served;
            result = *entry.token;
        } else if (!entry.token) {
            entries.erase(it);
        }
    }
    if (!result) {
        const std::lock_guard lock{stats_mutex};
        ++stats.failures;
    }
    {
        const std::lock_guard lock{stats_mutex};
        stats.entries = entries.size();
    }
    flight->result = std::move(result);
    flight->done.cancel();
}

void TokenRequestProvider::Impl::evict_beyond_capacity() {
    while (entries.size() > max_entries) {
        auto oldest = entries.end();
        for (auto it = entries.begin(); it != entries.end(); ++it) {
            if (!it->second.flight &&
                (oldest == entries.end() || it->second.used < oldest->second.used)) {
                oldest = it;
            }
        }
        if (oldest == entries.end()) {
            return;  // every entry is in flight
        }
        entries.erase(oldest);
    }
}

TokenRequestProvider::TokenRequestProvider(asio::any_io_executor executor,
                                           TokenRequester& requester, Clock& clock,
                                           std::size_t max_entries)
    : impl_{std::make_shared<Impl>(std::move(executor), requester, clock, max_entries)} {}

TokenRequestProvider::~TokenRequestProvider() = default;

asio::awaitable<SaTokenResult> TokenRequestProvider::token(PodInfoPtr pod, SteadyTime deadline) {
    std::shared_ptr<Impl> impl = impl_;
    const auto caller = co_await asio::this_coro::executor;
    if (caller == impl->executor) {
        co_return co_await impl->token_here(pod, deadline);
    }
    // A child coroutine keeps every step on the provider's executor.
    co_return co_await asio::co_spawn(impl->executor, impl->token_here(pod, deadline),
                                      asio::use_awaitable);
}

void TokenRequestProvider::retain(const std::vector<std::string>& live_uids) {
    asio::dispatch(impl_->executor, [impl = impl_, live = std::unordered_set<std::string>(
                                                       live_uids.begin(), live_uids.end())] {
        std::erase_if(impl->entries, [&](const auto& kv) { return !live.contains(kv.first); });
        const std::lock_guard lock{impl->stats_mutex};
        impl->stats.entries = impl->entries.size();
    });
}

TokenRequestProviderStats TokenRequestProvider::stats() const {
    const std::lock_guard lock{impl_->stats_mutex};
    return impl_->stats;
}

}  // namespace nmid::workload
