// DEPS: nmid_token
// TokenCache::try_get hits on a cache of 1,000 entries (the hot path of every cached token).

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/token/token_cache.hpp"

namespace {

namespace asio = boost::asio;

/// Answers at once with a token valid for 24 h (what IMDS hands out for managed identities).
class InstantSource final : public nmid::TokenSource {
public:
    explicit InstantSource(nmid::Clock& clock) : clock_(clock) {}
    asio::awaitable<nmid::FetchResult> fetch(const nmid::TokenRequest& request,
                                             nmid::SteadyTime /*deadline*/) override {
        nmid::Token token;
        token.access_token = std::string(1200, 'x');
        token.resource = request.resource;
        token.expires_in = 86'400;
        token.expires_on = clock_.unix_seconds() + token.expires_in;
        co_return token;
    }

private:
    nmid::Clock& clock_;
};

std::vector<nmid::TokenRequest> make_requests(int n) {
    std::vector<nmid::TokenRequest> requests;
    for (int i = 0; i < n; ++i) {
        nmid::TokenRequest r;
        r.identity.client_id = "00000000-0000-0000-0000-" + std::to_string(100'000'000'000 + i);
        r.identity.resource_id =
            "/subscriptions/sub/resourcegroups/rg/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/id-" +
            std::to_string(i);
        r.resource = i % 2 == 0 ? "https://vault.azure.net" : "https://management.azure.com/";
        requests.push_back(std::move(r));
    }
    return requests;
}

asio::awaitable<void> fill(nmid::TokenCache& cache, std::vector<nmid::TokenRequest> requests) {
    for (const auto& r : requests) {
        (void)co_await cache.get(r);
    }
}

/// A cache holding one token per request of make_requests(1000).
struct FilledCache {
    static constexpr int kEntries = 1000;
    FilledCache() {
        settings.rate_per_second = 0;  // filling 1,000 keys should not take 50 s
        settings.max_concurrency = 0;
        cache.emplace(ioc.get_executor(), source, clock, settings);
        asio::co_spawn(ioc, fill(*cache, requests), asio::detached);
        ioc.run();
    }
    [[nodiscard]] bool filled() const { return cache->stats().entries == kEntries; }

    asio::io_context ioc;
    nmid::SystemClock clock;
    InstantSource source{clock};
    nmid::TokenCacheSettings settings;
    std::optional<nmid::TokenCache> cache;
    std::vector<nmid::TokenRequest> requests = make_requests(kEntries);
};

void BM_TryGetHit(benchmark::State& state) {
    FilledCache f;
    if (!f.filled()) {
        state.SkipWithError("cache not filled");
        return;
    }
    std::size_t i = 0;
    for (auto _ : state) {
        auto result = f.cache->try_get(f.requests[i]);
        benchmark::DoNotOptimize(result);
        i = i + 1 == f.requests.size() ? 0 : i + 1;
    }
    state.SetItemsProcessed(state.iterations());
    if (f.cache->stats().hits < static_cast<std::uint64_t>(state.iterations())) {
        state.SkipWithError("a lookup missed");
    }
}
BENCHMARK(BM_TryGetHit);

/// The handler's hit: the identity half of the key prepared once (per CRD snapshot), so a
/// lookup copies and hashes only the resource.
void BM_TryGetHitPreparedKey(benchmark::State& state) {
    FilledCache f;
    if (!f.filled()) {
        state.SkipWithError("cache not filled");
        return;
    }
    std::vector<nmid::PreparedIdentity> prepared;
    for (const auto& r : f.requests) {
        prepared.push_back(nmid::prepare_identity(r.identity));
    }
    std::size_t i = 0;
    for (auto _ : state) {
        auto result = f.cache->try_get(nmid::TokenKey{prepared[i], f.requests[i].resource});
        benchmark::DoNotOptimize(result);
        i = i + 1 == prepared.size() ? 0 : i + 1;
    }
    state.SetItemsProcessed(state.iterations());
    if (f.cache->stats().hits < static_cast<std::uint64_t>(state.iterations())) {
        state.SkipWithError("a lookup missed");
    }
}
BENCHMARK(BM_TryGetHitPreparedKey);

}  // namespace

BENCHMARK_MAIN();
