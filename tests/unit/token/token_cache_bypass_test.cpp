// TokenCache::get with GetOptions::force_refresh (bypass_cache=true, issue 14).
#include <gtest/gtest.h>

#include "token_cache_fixture.hpp"

namespace nmid::test {
namespace {

constexpr GetOptions kForce{.force_refresh = true};

class TokenCacheBypassTest : public TokenCacheTest {
protected:
    TokenCacheBypassTest() {
        TokenCacheSettings settings;
        settings.bypass_min_interval = std::chrono::seconds{300};
        make_cache(settings);
    }

    /// A forced get() on behalf of `requester`, driven to its end.
    CacheResult force(const std::string& requester, const TokenRequest& request) {
        auto pending = start_get(request, {}, requester, kForce);
        poll();
        drive(pending);
        return pending->value_or(CacheResult{});
    }
};

TEST_F(TokenCacheBypassTest, OneForcedFetchPerPodAndKeyPerInterval) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    ASSERT_EQ(get_now(vault).token->access_token, "token-1");
    ASSERT_EQ(source_.calls(), 1);

    CacheResult first = force("10.0.0.5", vault);
    EXPECT_EQ(first.outcome, CacheOutcome::forced);
    EXPECT_EQ(first.token->access_token, "token-2");
    for (int i = 0; i < 100; ++i) {
        CacheResult again = force("10.0.0.5", vault);
        ASSERT_EQ(again.outcome, CacheOutcome::hit) << i;
        EXPECT_EQ(again.token->access_token, "token-2");
    }
    EXPECT_EQ(source_.calls(), 2);  // 101 forced requests, one extra upstream call
    EXPECT_EQ(cache_->stats().forced, 1U);

    // Another pod forces its own fetch once; the first pod is still inside its interval.
    EXPECT_EQ(force("10.0.0.6", vault).token->access_token, "token-3");
    EXPECT_EQ(force("10.0.0.5", vault).outcome, CacheOutcome::hit);
    EXPECT_EQ(source_.calls(), 3);

    // After the interval the first pod may force again.
    advance(std::chrono::seconds{300});
    EXPECT_EQ(force("10.0.0.5", vault).outcome, CacheOutcome::forced);
    EXPECT_EQ(source_.calls(), 4);
}

TEST_F(TokenCacheBypassTest, OtherKeysAreNotDisturbed) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    const TokenRequest storage = make_request("https://storage.azure.com", "client-b");
    get_now(vault);
    const TokenPtr storage_token = get_now(storage).token;
    for (int i = 0; i < 100; ++i) {
        force("10.0.0.5", vault);
    }
    const CacheResult other = get_now(storage);
    EXPECT_EQ(other.outcome, CacheOutcome::hit);
    EXPECT_EQ(other.token, storage_token);  // the very same token object: untouched
    EXPECT_EQ(source_.calls(), 3);
}

TEST_F(TokenCacheBypassTest, AnUncachedKeyIsAPlainMiss) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    EXPECT_EQ(force("10.0.0.5", vault).outcome, CacheOutcome::miss);
    // The miss was not a forced fetch: the pod may still force one.
    EXPECT_EQ(force("10.0.0.5", vault).outcome, CacheOutcome::forced);
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(TokenCacheBypassTest, AKeyWhoseTokenIsNoLongerServedIsAPlainMiss) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    get_now(vault);
    advance(std::chrono::hours{2});  // past the fake's one-hour token
    EXPECT_EQ(force("10.0.0.5", vault).outcome, CacheOutcome::miss);
    // The miss did not use the pod's allowance: its next forced request is a forced fetch.
    EXPECT_EQ(force("10.0.0.5", vault).outcome, CacheOutcome::forced);
    EXPECT_EQ(source_.calls(), 3);
}

TEST_F(TokenCacheBypassTest, AFailedForcedFetchServesTheCachedToken) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    const TokenPtr cached = get_now(vault).token;
    for (int i = 0; i < 5; ++i) {
        source_.push_error(Errc::upstream_unavailable, 503);
    }
    const CacheResult result = force("10.0.0.5", vault);
    ASSERT_TRUE(result.token);
    EXPECT_EQ(result.token, cached);
    EXPECT_EQ(result.outcome, CacheOutcome::hit);
    // The failure is remembered: another pod's forced request inside the negative window is
    // answered from the cache without an upstream call.
    const int calls = source_.calls();
    EXPECT_EQ(force("10.0.0.6", vault).token, cached);
    EXPECT_EQ(source_.calls(), calls);
}

TEST_F(TokenCacheBypassTest, AFetchInFlightIsJoinedNotDoubled) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    get_now(vault);
    source_.hold();
    auto a = start_get(vault, {}, "10.0.0.5", kForce);
    auto b = start_get(vault, {}, "10.0.0.6", kForce);
    poll();
    source_.release();
    poll();
    drive(a);
    drive(b);
    EXPECT_EQ(a->value().outcome, CacheOutcome::forced);
    EXPECT_EQ(b->value().outcome, CacheOutcome::joined);
    EXPECT_EQ(a->value().token, b->value().token);
    EXPECT_EQ(source_.calls(), 2);
}

class TokenCacheBypassZeroTest : public TokenCacheTest {
protected:
    TokenCacheBypassZeroTest() {
        TokenCacheSettings settings;
        settings.bypass_min_interval = std::chrono::seconds{0};
        make_cache(settings);
    }
};

TEST_F(TokenCacheBypassZeroTest, ZeroIntervalForcesEveryRequest) {
    const TokenRequest vault = make_request("https://vault.azure.net");
    get_now(vault);
    for (int i = 0; i < 3; ++i) {
        auto pending = start_get(vault, {}, "10.0.0.5", kForce);
        poll();
        drive(pending);
        EXPECT_EQ(pending->value().outcome, CacheOutcome::forced);
    }
    EXPECT_EQ(source_.calls(), 4);
}

}  // namespace
}  // namespace nmid::test
