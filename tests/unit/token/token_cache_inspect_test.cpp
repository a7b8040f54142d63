// TokenCache::inspect, what /debug/explain shows of the cache.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <optional>
#include <string>
#include <vector>

#include "token_cache_fixture.hpp"

namespace nmid::test {
namespace {

class TokenCacheInspectTest : public TokenCacheTest {
protected:
    std::vector<CacheEntryInfo> inspect(const std::string& client_id) {
        std::optional<std::vector<CacheEntryInfo>> out;
        asio::co_spawn(ioc_, cache_->inspect([client_id](const TokenIdentity& id) {
            return id.client_id == client_id;
        }),
                       [&out](const std::exception_ptr& e, std::vector<CacheEntryInfo> entries) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out = std::move(entries);
                       });
        poll();
        EXPECT_TRUE(out.has_value()) << "inspect() did not complete";
        return out.value_or(std::vector<CacheEntryInfo>{});
    }
};

TEST_F(TokenCacheInspectTest, ShowsTheSelectedIdentitysEntriesSortedWithTheirTimes) {
    make_cache();
    const WallTime fetched = clock_.wall_now();
    ASSERT_TRUE(get_now(make_request("https://vault.azure.net", "client-a")).token);
    ASSERT_TRUE(get_now(make_request("https://management.azure.com/", "client-a")).token);
    ASSERT_TRUE(get_now(make_request("https://vault.azure.net", "client-b")).token);
    advance(5s);

    const auto entries = inspect("client-a");
    ASSERT_EQ(entries.size(), 2U);
    EXPECT_EQ(entries[0].resource, "https://management.azure.com/");
    EXPECT_EQ(entries[1].resource, "https://vault.azure.net");
    for (const auto& e : entries) {
        EXPECT_EQ(e.identity.client_id, "client-a");
        EXPECT_TRUE(e.has_token);
        EXPECT_EQ(e.fetched_at, fetched);
        EXPECT_GT(e.expires_at, fetched);
        EXPECT_GT(e.next_refresh, fetched);
        EXPECT_LT(e.next_refresh, e.expires_at);
        EXPECT_FALSE(e.fetching);
        EXPECT_EQ(e.last_error, Errc::ok);
    }
    EXPECT_TRUE(inspect("client-c").empty());
}

TEST_F(TokenCacheInspectTest, AFailedFetchShowsItsCodeStatusAndTheRetryPause) {
    make_cache();
    source_.push_error(Errc::upstream_refused, 403);
    const auto failed = get_now(make_request("https://vault.azure.net", "client-a"));
    ASSERT_FALSE(failed.token);

    const auto entries = inspect("client-a");
    ASSERT_EQ(entries.size(), 1U);
    EXPECT_FALSE(entries[0].has_token);
    EXPECT_EQ(entries[0].last_error, Errc::upstream_refused);
    EXPECT_EQ(entries[0].last_error_status, 403);
    EXPECT_GT(entries[0].next_refresh, clock_.wall_now());

    // A success clears the error.
    advance(10min);
    ASSERT_TRUE(get_now(make_request("https://vault.azure.net", "client-a")).token);
    EXPECT_EQ(inspect("client-a")[0].last_error, Errc::ok);
}

TEST_F(TokenCacheInspectTest, AFetchInFlightIsShown) {
    make_cache();
    source_.hold();
    auto pending = start_get(make_request("https://vault.azure.net", "client-a"));
    poll();
    const auto entries = inspect("client-a");
    ASSERT_EQ(entries.size(), 1U);
    EXPECT_TRUE(entries[0].fetching);
    EXPECT_FALSE(entries[0].has_token);
    source_.release();
    poll();
    EXPECT_TRUE(pending->has_value());
    EXPECT_FALSE(inspect("client-a")[0].fetching);
}

TEST_F(TokenCacheInspectTest, ACacheOnAStrandIsInspectedFromAnotherExecutor) {
    cache_ = std::make_unique<TokenCache>(asio::make_strand(ioc_), source_, clock_,
                                          TokenCacheSettings{});
    auto pending = start_get(make_request("https://vault.azure.net", "client-a"));
    poll();
    ASSERT_TRUE(pending->has_value());
    const auto entries = inspect("client-a");
    ASSERT_EQ(entries.size(), 1U);
    EXPECT_TRUE(entries[0].has_token);
}

}  // namespace
}  // namespace nmid::test
