// TokenCache memory bounds: bytes as well as entries, and keys per requester (pod).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nmid/token/token_cache.hpp"
#include "token_cache_fixture.hpp"

namespace nmid::test {
namespace {

std::string big_resource(int i, std::size_t size = 7 * std::size_t{1024}) {
    std::string r = "https://r" + std::to_string(i) + ".example/";
    r.resize(size, 'x');
    return r;
}

class TokenCacheLimitsTest : public TokenCacheTest {};

TEST_F(TokenCacheLimitsTest, BytesCountKeyAndTokenStrings) {
    make_cache();
    ASSERT_TRUE(get_now(make_request(std::string(100, 'a'))).token);
    const std::size_t small = cache_->stats().bytes;
    ASSERT_TRUE(get_now(make_request(std::string(1'100, 'b'))).token);
    // The resource is in the key and echoed in the token: counted twice.
    EXPECT_EQ(cache_->stats().bytes - small, small + 2'000);
    EXPECT_GT(small, 200U) << "a fixed per-entry overhead is counted";
}

TEST_F(TokenCacheLimitsTest, CacheStaysWithinItsBytesEvictingLeastRecentlyUsed) {
    constexpr std::size_t kMaxBytes = 100 * std::size_t{1024};
    make_cache({.rate_per_second = 0, .max_bytes = kMaxBytes});
    const auto first = make_request(big_resource(0));
    ASSERT_TRUE(get_now(first).token);
    for (int i = 1; i < 300; ++i) {
        ASSERT_TRUE(get_now(make_request(big_resource(i))).token) << i;
        ASSERT_LE(cache_->stats().bytes, kMaxBytes) << i;
        if (i < 3) {
            ASSERT_TRUE(cache_->try_get(first).has_value());  // keeps it recently used
        }
    }
    const auto stats = cache_->stats();
    EXPECT_LT(stats.entries, 10U);
    EXPECT_GT(stats.entries, 4U);
    EXPECT_EQ(stats.evictions, 300U - stats.entries);
    EXPECT_FALSE(cache_->try_get(first).has_value());
    EXPECT_TRUE(cache_->try_get(make_request(big_resource(299))).has_value());
}

TEST_F(TokenCacheLimitsTest, PodAtItsKeyCapReplacesItsOwnLeastRecentlyUsedKey) {
    make_cache({.max_tokens_per_pod = 3});
    const auto other = make_request("https://other.example");
    ASSERT_TRUE((*([&] {
                    auto p = start_get_as("other-pod", other);
                    poll();
                    return p;
                }()))
                    ->token);
    std::vector<TokenRequest> keys;
    for (int i = 0; i < 5; ++i) {
        keys.push_back(make_request("https://pod.example/" + std::to_string(i)));
        auto pending = start_get_as("pod", keys.back());
        poll();
        ASSERT_TRUE(pending->has_value() && (*pending)->token) << i;
        if (i == 2) {
            ASSERT_TRUE(cache_->try_get(keys[0]).has_value());  // 1 is now its LRU
        }
    }
    EXPECT_EQ(cache_->stats().entries, 4U);
    EXPECT_TRUE(cache_->try_get(keys[0]).has_value());
    EXPECT_FALSE(cache_->try_get(keys[1]).has_value());
    EXPECT_FALSE(cache_->try_get(keys[2]).has_value());
    EXPECT_TRUE(cache_->try_get(keys[3]).has_value());
    EXPECT_TRUE(cache_->try_get(keys[4]).has_value());
    EXPECT_TRUE(cache_->try_get(other).has_value()) << "another pod's token is never evicted";
    EXPECT_EQ(cache_->stats().refused_tokens, 0U);
}

TEST_F(TokenCacheLimitsTest, PodAtItsKeyCapWithEveryKeyInFlightIsRefused) {
    make_cache({.max_tokens_per_pod = 2});
    source_.hold();
    const auto a = start_get_as("pod", make_request("https://a.example"));
    const auto b = start_get_as("pod", make_request("https://b.example"));
    const auto c = start_get_as("pod", make_request("https://c.example"));
    const auto other = start_get_as("other-pod", make_request("https://c.example"));
    poll();
    ASSERT_TRUE(c->has_value());
    EXPECT_FALSE((*c)->token);
    EXPECT_EQ((*c)->error.code, Errc::pod_over_limit);
    EXPECT_EQ(cache_->stats().refused_tokens, 1U);
    EXPECT_FALSE(other->has_value()) << "another pod may create the key";
    source_.release();
    poll();
    ASSERT_TRUE(a->has_value() && b->has_value() && other->has_value());
    EXPECT_TRUE((*other)->token);
    // Keys are shared across pods: the pod hits the key the other pod created.
    EXPECT_TRUE(cache_->try_get(make_request("https://c.example"), "pod").has_value());
}

TEST_F(TokenCacheLimitsTest, PodCreatingKeysUnderByteBoundNeverEvictsAPodHoldingLess) {
    constexpr std::size_t kMaxBytes = 100 * std::size_t{1024};
    make_cache({.rate_per_second = 0, .max_bytes = kMaxBytes, .max_tokens_per_pod = 1'000});
    const auto victim_key = make_request("https://vault.azure.net", "client-victim");
    auto victim = start_get_as("victim", victim_key);
    poll();
    ASSERT_TRUE(victim->has_value() && (*victim)->token);
    for (int i = 0; i < 200; ++i) {
        auto pending = start_get_as("attacker", make_request(big_resource(i)));
        poll();
        ASSERT_TRUE(pending->has_value() && (*pending)->token) << i;
        ASSERT_LE(cache_->stats().bytes, kMaxBytes) << i;
    }
    EXPECT_TRUE(cache_->try_get(victim_key).has_value());
    EXPECT_GT(cache_->stats().evictions, 150U);
}

TEST_F(TokenCacheLimitsTest, PodHoldingLessEvictsThePodHoldingMost) {
    constexpr std::size_t kMaxBytes = 100 * std::size_t{1024};
    make_cache({.rate_per_second = 0, .max_bytes = kMaxBytes, .max_tokens_per_pod = 1'000});
    const auto hog_first = make_request(big_resource(0));
    auto first = start_get_as("hog", hog_first);
    poll();
    for (int i = 1; i < 40; ++i) {
        auto pending = start_get_as("hog", make_request(big_resource(i)));
        poll();
    }
    // The cache is full of the hog's keys; a newcomer still gets its token cached.
    const auto newcomer = make_request(big_resource(1'000, 2'000), "client-new");
    auto got = start_get_as("newcomer", newcomer);
    poll();
    ASSERT_TRUE(got->has_value() && (*got)->token);
    EXPECT_TRUE(cache_->try_get(newcomer).has_value());
    EXPECT_LE(cache_->stats().bytes, kMaxBytes);
}

}  // namespace
}  // namespace nmid::test
