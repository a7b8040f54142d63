// Per-pod fairness of TokenCache's upstream budget: round robin by requester, the per-pod
// caps on running and pending fetches, and permits for proxied requests.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nmid/token/token_cache.hpp"
#include "token_cache_fixture.hpp"

namespace nmid::test {
namespace {

using PendingPermit = std::shared_ptr<std::optional<Result<UpstreamPermit>>>;

std::string attacker_resource(int i) {
    return "https://attacker.example/" + std::to_string(i);
}

class TokenCacheFairnessTest : public TokenCacheTest {
protected:
    /// The attacker's 400 concurrent distinct-resource misses.
    std::vector<PendingGet> flood(int count = 400) {
        std::vector<PendingGet> out;
        out.reserve(static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) {
            out.push_back(start_get_as("attacker", make_request(attacker_resource(i))));
        }
        poll();
        return out;
    }

    PendingPermit start_acquire(std::string requester, SteadyTime deadline) {
        auto out = std::make_shared<std::optional<Result<UpstreamPermit>>>();
        asio::co_spawn(
            ioc_,
            [](TokenCache& cache, std::string who,
               SteadyTime until) -> asio::awaitable<Result<UpstreamPermit>> {
                co_return co_await cache.acquire_upstream(who, until);
            }(*cache_, std::move(requester), deadline),
            [out](const std::exception_ptr& e, Result<UpstreamPermit> result) {
                if (e) {
                    std::rethrow_exception(e);
                }
                *out = std::move(result);
            });
        return out;
    }

    SteadyTime in(std::chrono::nanoseconds d) const { return clock_.steady_now() + d; }
};

/// Index of the first upstream call for `resource`, or -1.
int started_index(const FakeTokenSource& source, const std::string& resource) {
    const auto& requests = source.requests();
    const auto it = std::find_if(requests.begin(), requests.end(),
                                 [&](const TokenRequest& r) { return r.resource == resource; });
    return it == requests.end() ? -1 : static_cast<int>(it - requests.begin());
}

TEST_F(TokenCacheFairnessTest, VictimFetchStartsBeforeTheAttackersQueuedOnes) {
    make_cache({.max_tokens_per_pod = 1'000, .max_pending_fetches_per_pod = 1'000});
    source_.hold();  // the test decides when upstream answers
    const auto attacker = flood();
    const int attacker_started = source_.calls();
    EXPECT_EQ(attacker_started, 2) << "one pod runs at most 2 upstream calls at once";
    EXPECT_EQ(cache_->stats().queued, 398U);

    const auto victim_request = make_request("https://vault.azure.net", "client-victim");
    const auto victim = start_get_as("victim", victim_request);
    poll();
    EXPECT_EQ(started_index(source_, victim_request.resource), attacker_started)
        << "the victim's fetch must start before any of the attacker's queued ones";

    source_.release();
    poll();
    ASSERT_TRUE(victim->has_value());
    ASSERT_TRUE((*victim)->token);
    EXPECT_EQ((*victim)->outcome, CacheOutcome::miss);
}

TEST_F(TokenCacheFairnessTest, VictimFirstTokenWithinUpstreamLatencyPlus100msDuringAFlood) {
    constexpr auto kUpstreamLatency = 200ms;
    make_cache({.max_tokens_per_pod = 1'000, .max_pending_fetches_per_pod = 1'000});
    source_.set_duration(kUpstreamLatency);
    const auto attacker = flood();
    advance(1s);  // the flood is in full swing: budget saturated, hundreds queued
    ASSERT_GT(cache_->stats().queued, 300U);

    const SteadyTime asked = clock_.steady_now();
    const auto victim = start_get_as("victim", make_request("https://vault.azure.net", "v"));
    poll();
    drive(victim);
    ASSERT_TRUE((*victim)->token);
    const auto latency = clock_.steady_now() - asked;
    EXPECT_LE(latency, kUpstreamLatency + 100ms)
        << std::chrono::duration_cast<std::chrono::milliseconds>(latency).count() << " ms";
    const auto answered = std::count_if(attacker.begin(), attacker.end(),
                                        [](const PendingGet& p) { return p->has_value(); });
    EXPECT_LT(answered, 100) << "the attacker's flood was still in flight";
}

TEST_F(TokenCacheFairnessTest, PodOverItsPendingFetchesFailsAtOnceOthersUnaffected) {
    make_cache({.rate_per_second = 0, .max_pending_fetches_per_pod = 32});
    source_.hold();
    const auto attacker = flood(40);
    const auto refused = std::count_if(attacker.begin(), attacker.end(), [](const PendingGet& p) {
        return p->has_value() && (*p)->error.code == Errc::pod_over_limit &&
               (*p)->outcome == CacheOutcome::error && !(*p)->token;
    });
    EXPECT_EQ(refused, 8);
    EXPECT_EQ(cache_->stats().refused_pending, 8U);
    EXPECT_EQ(cache_->stats().entries, 32U) << "a refused miss creates no entry";

    // Joining a fetch in flight costs no upstream call: not refused.
    const auto joined = start_get_as("attacker", make_request(attacker_resource(0)));
    // Another pod is not limited by the attacker's count, nor is the unattributed caller.
    const auto victim = start_get_as("victim", make_request("https://vault.azure.net"));
    const auto internal = start_get(make_request("https://management.azure.com"));
    poll();
    EXPECT_FALSE(joined->has_value());
    EXPECT_FALSE(victim->has_value());
    EXPECT_FALSE(internal->has_value());
    source_.release();
    poll();
    ASSERT_TRUE(joined->has_value() && victim->has_value() && internal->has_value());
    EXPECT_EQ((*joined)->outcome, CacheOutcome::joined);
    EXPECT_TRUE((*victim)->token);
    EXPECT_TRUE((*internal)->token);

    // Once its fetches are done the attacker may fetch again.
    EXPECT_TRUE(get_now(make_request(attacker_resource(39))).token);
}

TEST_F(TokenCacheFairnessTest, OnePodNeverTakesEveryUpstreamSlot) {
    // Asked for more than the budget: capped at max_concurrency - 1.
    make_cache({.max_concurrency = 3, .max_upstream_fetches_per_pod = 10});
    source_.hold();
    const auto attacker = flood(10);
    EXPECT_EQ(source_.in_flight(), 2);
    const auto victim = start_get_as("victim", make_request("https://vault.azure.net"));
    poll();
    EXPECT_EQ(source_.in_flight(), 3);
    source_.release();
    poll();
    ASSERT_TRUE(victim->has_value());
    EXPECT_TRUE((*victim)->token);
}

TEST_F(TokenCacheFairnessTest, UnattributedCallersKeepTheWholeBudget) {
    make_cache();
    source_.hold();
    std::vector<PendingGet> gets;
    gets.reserve(8);
    for (int i = 0; i < 8; ++i) {
        gets.push_back(start_get(make_request(attacker_resource(i))));
    }
    poll();
    EXPECT_EQ(source_.in_flight(), 5);
    source_.release();
    poll();
}

TEST_F(TokenCacheFairnessTest, PermitTakesOneUnitOfTheBudgetUntilDestroyed) {
    make_cache({.max_concurrency = 1});
    auto first = start_acquire("proxy-pod", in(1s));
    poll();
    ASSERT_TRUE(first->has_value());
    ASSERT_TRUE((*first)->has_value());
    EXPECT_TRUE((**first)->held());

    // The only slot is taken: a token miss waits for it.
    const auto miss = start_get_as("other", make_request("https://vault.azure.net"));
    poll();
    EXPECT_FALSE(miss->has_value());
    EXPECT_EQ(source_.calls(), 0);
    EXPECT_EQ(cache_->stats().queued, 1U);

    first->reset();  // destroys the permit: the unit goes back
    poll();
    ASSERT_TRUE(miss->has_value());
    EXPECT_TRUE((*miss)->token);
    EXPECT_EQ(cache_->stats().queued, 0U);
}

TEST_F(TokenCacheFairnessTest, PermitIsAdmittedBeforeAFloodOfAnotherPod) {
    make_cache({.max_tokens_per_pod = 1'000, .max_pending_fetches_per_pod = 1'000});
    source_.hold();
    const auto attacker = flood();
    const auto permit = start_acquire("victim", in(1s));
    poll();
    ASSERT_TRUE(permit->has_value());
    EXPECT_TRUE((*permit)->has_value());
    source_.release();
}

TEST_F(TokenCacheFairnessTest, PermitsCountAgainstThePodsPendingFetches) {
    make_cache({.max_pending_fetches_per_pod = 2});
    auto a = start_acquire("pod", in(1s));
    auto b = start_acquire("pod", in(1s));
    auto c = start_acquire("pod", in(1s));
    poll();
    ASSERT_TRUE(a->has_value() && b->has_value() && c->has_value());
    EXPECT_TRUE((*a)->has_value());
    EXPECT_TRUE((*b)->has_value());
    ASSERT_FALSE((*c)->has_value());
    EXPECT_EQ((*c)->error(), make_error_code(Errc::pod_over_limit));
    EXPECT_EQ(cache_->stats().refused_pending, 1U);
    // A token miss of the same pod is refused as well while both permits are held.
    const auto miss = get_now(make_request("https://vault.azure.net"));
    EXPECT_TRUE(miss.token) << "unattributed";
    source_.hold();
    const auto pod_miss = start_get_as("pod", make_request("https://storage.azure.com"));
    poll();
    ASSERT_TRUE(pod_miss->has_value());
    EXPECT_EQ((*pod_miss)->error.code, Errc::pod_over_limit);

    a->reset();
    poll();
    auto d = start_acquire("pod", in(1s));
    poll();
    ASSERT_TRUE(d->has_value());
    EXPECT_TRUE((*d)->has_value());
    source_.release();
}

TEST_F(TokenCacheFairnessTest, PermitWaitEndsAtItsDeadlineOrAtStop) {
    make_cache({.max_concurrency = 1});
    auto holder = start_acquire("a", in(10s));
    auto timed = start_acquire("b", in(1s));
    auto stopped = start_acquire("c", in(10s));
    poll();
    ASSERT_TRUE(holder->has_value());
    EXPECT_FALSE(timed->has_value());
    advance(1s);
    ASSERT_TRUE(timed->has_value());
    EXPECT_EQ((*timed)->error(), make_error_code(Errc::timeout));

    EXPECT_FALSE(stopped->has_value());
    cache_->stop();
    poll();
    ASSERT_TRUE(stopped->has_value());
    EXPECT_EQ((*stopped)->error(), make_error_code(Errc::cancelled));
    auto late = start_acquire("d", in(10s));
    poll();
    ASSERT_TRUE(late->has_value());
    EXPECT_EQ((*late)->error(), make_error_code(Errc::cancelled));
}

}  // namespace
}  // namespace nmid::test
