// TokenCache::inspect: the entries /debug/explain shows. Off the hot path: it walks every
// entry and copies what it shows.

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <tuple>

#include "cache_impl.hpp"
#include "refresh_policy.hpp"

namespace nmid {

namespace asio = boost::asio;

std::vector<CacheEntryInfo> TokenCache::Impl::inspect_here(
    const std::function<bool(const TokenIdentity&)>& select) const {
    std::vector<CacheEntryInfo> out;
    const WallTime wall_now = clock_.wall_now();
    const SteadyTime steady_now = clock_.steady_now();
    for (const auto& [key, entry] : entries_) {
        if (!select(key.identity)) {
            continue;
        }
        CacheEntryInfo info;
        info.identity = key.identity;
        info.resource = key.resource;
        info.has_token = entry.token != nullptr;
        if (entry.token) {
            info.expires_at = token_detail::wall_from_unix(entry.token->expires_on);
            info.fetched_at = entry.fetched_at;
        }
        info.next_refresh = entry.refresh_at;
        info.fetching = entry.inflight != nullptr;
        // retry_not_before is set by a failure and cleared by a success (store_token).
        if (entry.retry_not_before != SteadyTime{}) {
            info.last_error = entry.last_error.code;
            info.last_error_status = entry.last_error.upstream_status;
            if (entry.retry_not_before > steady_now) {
                info.next_refresh = wall_now + std::chrono::duration_cast<WallTime::duration>(
                                                   entry.retry_not_before - steady_now);
            }
        }
        out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const CacheEntryInfo& a, const CacheEntryInfo& b) {
        return std::tie(a.identity.identity_namespace, a.identity.identity_name, a.resource) <
               std::tie(b.identity.identity_namespace, b.identity.identity_name, b.resource);
    });
    return out;
}

asio::awaitable<std::vector<CacheEntryInfo>> TokenCache::inspect(
    std::function<bool(const TokenIdentity&)> select) {
    std::shared_ptr<Impl> impl = impl_;
    const auto caller = co_await asio::this_coro::executor;
    if (caller == impl->executor()) {
        co_return impl->inspect_here(select);
    }
    // Named before co_await: g++ 12 destroys the temporaries of a co_await expression twice.
    auto on_cache = [impl,
                     select = std::move(select)]() -> asio::awaitable<std::vector<CacheEntryInfo>> {
        co_return impl->inspect_here(select);
    };
    co_return co_await asio::co_spawn(impl->executor(), std::move(on_cache), asio::use_awaitable);
}

}  // namespace nmid
