// Retries, deadlines and the shared upstream budget of TokenCache.

#include <algorithm>

#include "nmid/token/token_cache.hpp"
#include "token_cache_fixture.hpp"

namespace nmid::test {
namespace {

/// Gaps between the starts of consecutive upstream calls (the fake answers at once, so each
/// gap is the backoff the cache waited).
std::vector<std::chrono::nanoseconds> gaps(const FakeTokenSource& source) {
    std::vector<std::chrono::nanoseconds> out;
    const auto& started = source.started();
    for (std::size_t i = 1; i < started.size(); ++i) {
        out.push_back(started[i] - started[i - 1]);
    }
    return out;
}

struct RetryRow {
    const char* name;
    Errc code;
    int status;
};

TEST_F(TokenCacheTest, RetriesTransientErrorsWithBoundedExponentialBackoff) {
    const std::vector<RetryRow> table = {
        {"429 throttled", Errc::upstream_throttled, 429},
        {"500", Errc::upstream_unavailable, 500},
        {"503", Errc::upstream_unavailable, 503},
        {"404 IMDS updating", Errc::upstream_unavailable, 404},
        {"410 IMDS updating", Errc::upstream_unavailable, 410},
        {"transport error", Errc::upstream_unavailable, 0},
        {"attempt timeout", Errc::timeout, 0},
    };
    make_cache({.backoff_base = 500ms, .backoff_cap = 8'000ms});
    int row_index = 0;
    for (const auto& row : table) {
        SCOPED_TRACE(row.name);
        const int calls_before = source_.calls();
        source_.push_error(row.code, row.status);
        source_.push_error(row.code, row.status);
        const SteadyTime started = clock_.steady_now();
        auto pending = start_get(make_request("resource-" + std::to_string(row_index++)));
        poll();
        EXPECT_FALSE(pending->has_value()) << "the first failure must not be final";
        drive(pending);
        ASSERT_TRUE(pending->has_value());
        EXPECT_EQ((*pending)->outcome, CacheOutcome::miss);
        ASSERT_TRUE((*pending)->token);
        ASSERT_EQ(source_.calls(), calls_before + 3);

        const auto& starts = source_.started();
        const auto first_gap = starts[starts.size() - 2] - starts[starts.size() - 3];
        const auto second_gap = starts[starts.size() - 1] - starts[starts.size() - 2];
        EXPECT_LE(first_gap, 500ms);
        EXPECT_LE(second_gap, 1'000ms);
        // Every attempt of one fetch shares the fetch's deadline.
        for (std::size_t i = source_.deadlines().size() - 3; i < source_.deadlines().size(); ++i) {
            EXPECT_EQ(source_.deadlines()[i], started + TokenCacheSettings{}.fetch_deadline);
        }
    }
}

TEST_F(TokenCacheTest, BackoffCeilingDoublesUpToTheCap) {
    make_cache({.fetch_deadline = 60'000ms,
                .max_attempts = 6,
                .backoff_base = 1'000ms,
                .backoff_cap = 4'000ms});
    for (int i = 0; i < 5; ++i) {
        source_.push_error(Errc::upstream_unavailable, 503);
    }
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    drive(pending);
    ASSERT_TRUE((*pending)->token);
    ASSERT_EQ(source_.calls(), 6);
    const auto waits = gaps(source_);
    const std::vector<std::chrono::milliseconds> ceilings = {1s, 2s, 4s, 4s, 4s};
    ASSERT_EQ(waits.size(), ceilings.size());
    for (std::size_t i = 0; i < waits.size(); ++i) {
        EXPECT_LE(waits[i], ceilings[i]) << "retry " << i + 1;
    }
    // Full jitter from a fixed seed: the later waits use the doubled ceiling.
    EXPECT_GT(*std::max_element(waits.begin(), waits.end()), 1s);
}

TEST_F(TokenCacheTest, RetryAfterLargerThanBackoffIsHonoured) {
    make_cache({.backoff_base = 500ms});
    source_.push_error(Errc::upstream_throttled, 429, 3s);
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(clock_.next_deadline() - clock_.steady_now(), 3s);
    advance(3s - 1ms);
    EXPECT_EQ(source_.calls(), 1);
    advance(1ms);
    EXPECT_EQ(source_.calls(), 2);
    ASSERT_TRUE(pending->has_value());
    EXPECT_TRUE((*pending)->token);
}

TEST_F(TokenCacheTest, RetryAfterIsCappedByMaxRetryAfter) {
    make_cache({.max_retry_after = 2s, .backoff_base = 500ms});
    source_.push_error(Errc::upstream_throttled, 429, 30s);
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    EXPECT_EQ(clock_.next_deadline() - clock_.steady_now(), 2s);
    drive(pending);
    EXPECT_TRUE((*pending)->token);
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(TokenCacheTest, FinalErrorsAreNotRetried) {
    const std::vector<RetryRow> table = {
        {"403 refused", Errc::upstream_refused, 403},
        {"400 refused", Errc::upstream_refused, 400},
        {"401 refused", Errc::upstream_refused, 401},
        {"bad payload", Errc::upstream_bad_payload, 200},
        {"identity unsupported", Errc::identity_unsupported, 0},
        {"unavailable with a 4xx", Errc::upstream_unavailable, 400},
    };
    make_cache();
    int row_index = 0;
    for (const auto& row : table) {
        SCOPED_TRACE(row.name);
        const int calls_before = source_.calls();
        source_.push_error(row.code, row.status);
        const CacheResult result = get_now(make_request("resource-" + std::to_string(row_index++)));
        EXPECT_FALSE(result.token);
        EXPECT_EQ(result.outcome, CacheOutcome::error);
        EXPECT_EQ(result.error.code, row.code);
        EXPECT_EQ(result.error.upstream_status, row.status);
        EXPECT_EQ(source_.calls(), calls_before + 1);
        EXPECT_EQ(clock_.waiters(), 0U) << "no backoff may be pending";
    }
}

TEST_F(TokenCacheTest, RetriesStopAfterMaxAttempts) {
    make_cache({.max_attempts = 5, .backoff_base = 100ms});
    for (int i = 0; i < 6; ++i) {
        source_.push_error(Errc::upstream_unavailable, 503);
    }
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    drive(pending);
    ASSERT_TRUE(pending->has_value());
    EXPECT_FALSE((*pending)->token);
    EXPECT_EQ((*pending)->error.code, Errc::upstream_unavailable);
    EXPECT_EQ((*pending)->error.upstream_status, 503);
    EXPECT_EQ(source_.calls(), 5);
    EXPECT_EQ(source_.pending_replies(), 1U);
    EXPECT_EQ(cache_->stats().upstream_failures, 5U);
    EXPECT_EQ(cache_->stats().fetch_errors, 1U);
}

TEST_F(TokenCacheTest, RetryThatCannotFinishBeforeTheDeadlineIsNotAttempted) {
    make_cache({.negative_ttl = 1s, .fetch_deadline = 2'000ms});
    source_.push_error(Errc::upstream_throttled, 429, 5s);
    const CacheResult result = get_now(make_request("https://vault.azure.net"));
    EXPECT_FALSE(result.token);
    EXPECT_EQ(result.error.code, Errc::upstream_throttled);
    EXPECT_EQ(result.error.upstream_status, 429);
    EXPECT_EQ(result.error.retry_after, 5s);
    EXPECT_EQ(source_.calls(), 1);
    // The 429's Retry-After also sets the negative window.
    advance(5s - 1ms);
    EXPECT_EQ(get_now(make_request("https://vault.azure.net")).outcome, CacheOutcome::negative);
}

TEST_F(TokenCacheTest, FetchDeadlineEndsAnAttemptThatHangs) {
    make_cache({.fetch_deadline = 15'000ms});
    source_.hold();
    const SteadyTime started = clock_.steady_now();
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    ASSERT_EQ(source_.deadlines().size(), 1U);
    EXPECT_EQ(source_.deadlines()[0], started + 15s);

    advance(15s - 1ms);
    EXPECT_FALSE(pending->has_value());
    advance(1ms);
    ASSERT_TRUE(pending->has_value());
    EXPECT_FALSE((*pending)->token);
    EXPECT_EQ((*pending)->error.code, Errc::timeout);
    EXPECT_EQ(source_.cancelled(), 1);
    EXPECT_EQ(source_.calls(), 1);  // no retry past the deadline
    EXPECT_EQ(cache_->stats().inflight, 0U);
}

TEST_F(TokenCacheTest, FetchDeadlineCoversRetriesAndBackoff) {
    make_cache({.fetch_deadline = 3'000ms, .max_attempts = 10, .backoff_base = 500ms});
    for (int i = 0; i < 10; ++i) {
        source_.push(FakeTokenSource::error(Errc::upstream_unavailable, 503), 1s);
    }
    const SteadyTime started = clock_.steady_now();
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    drive(pending);
    ASSERT_TRUE(pending->has_value());
    EXPECT_FALSE((*pending)->token);
    EXPECT_LE(clock_.steady_now() - started, 3s);
    EXPECT_GE(source_.calls(), 2);
    EXPECT_LE(source_.calls(), 3);
    for (SteadyTime deadline : source_.deadlines()) {
        EXPECT_EQ(deadline, started + 3s);
    }
}

TEST_F(TokenCacheTest, AtMostMaxConcurrencyAttemptsRunAtOnce) {
    make_cache({.max_concurrency = 5, .rate_per_second = 20.0});
    source_.hold();
    std::vector<PendingGet> pending;
    pending.reserve(10);
    for (int i = 0; i < 10; ++i) {
        pending.push_back(start_get(make_request("resource-" + std::to_string(i))));
    }
    poll();
    EXPECT_EQ(source_.calls(), 5);
    EXPECT_EQ(source_.in_flight(), 5);
    EXPECT_EQ(cache_->stats().inflight, 10U);

    source_.release();
    poll();
    EXPECT_EQ(source_.calls(), 10);
    EXPECT_EQ(source_.max_in_flight(), 5);
    for (const auto& p : pending) {
        ASSERT_TRUE(p->has_value());
        EXPECT_TRUE((*p)->token);
    }
}

TEST_F(TokenCacheTest, RateLimitAllowsABurstThenOneAttemptPerInterval) {
    make_cache({.max_concurrency = 100, .rate_per_second = 20.0});
    std::vector<PendingGet> pending;
    pending.reserve(30);
    for (int i = 0; i < 30; ++i) {
        pending.push_back(start_get(make_request("resource-" + std::to_string(i))));
    }
    poll();
    EXPECT_EQ(source_.calls(), 20);  // burst = rate
    advance(49ms);
    EXPECT_EQ(source_.calls(), 20);
    advance(1ms);
    EXPECT_EQ(source_.calls(), 21);
    advance(50ms);
    EXPECT_EQ(source_.calls(), 22);
    advance(400ms);
    EXPECT_EQ(source_.calls(), 30);
    for (const auto& p : pending) {
        ASSERT_TRUE(p->has_value());
        EXPECT_TRUE((*p)->token);
    }
}

TEST_F(TokenCacheTest, RateBelowOnePerSecondHasABurstOfOne) {
    make_cache({.max_concurrency = 100, .rate_per_second = 0.5});
    auto a = start_get(make_request("a"));
    auto b = start_get(make_request("b"));
    poll();
    EXPECT_EQ(source_.calls(), 1);
    advance(2s - 1ms);
    EXPECT_EQ(source_.calls(), 1);
    advance(1ms);
    EXPECT_EQ(source_.calls(), 2);
    EXPECT_TRUE(b->has_value());
}

TEST_F(TokenCacheTest, WaitingForBudgetRespectsTheFetchDeadline) {
    make_cache({.fetch_deadline = 15'000ms, .max_concurrency = 1});
    source_.hold();
    auto a = start_get(make_request("a"));
    auto b = start_get(make_request("b"));
    poll();
    EXPECT_EQ(source_.calls(), 1);
    advance(15s);
    ASSERT_TRUE(a->has_value());
    ASSERT_TRUE(b->has_value());
    EXPECT_EQ((*a)->error.code, Errc::timeout);
    EXPECT_EQ((*b)->error.code, Errc::timeout);
    EXPECT_EQ(source_.calls(), 1) << "b never got budget before its deadline";
}

TEST_F(TokenCacheTest, MissesAreServedBeforeBackgroundRefreshes) {
    make_cache({.max_concurrency = 1});
    const auto refreshed = make_request("refreshed");
    ASSERT_TRUE(get_now(refreshed).token);
    advance(3240s);  // inside the refresh window

    source_.hold();
    auto first = start_get(make_request("first-miss"));
    poll();
    ASSERT_EQ(source_.calls(), 2);
    EXPECT_EQ(cache_->try_get(refreshed)->outcome, CacheOutcome::refresh_ahead);  // queued
    auto second = start_get(make_request("second-miss"));                         // queued later
    poll();
    EXPECT_EQ(source_.calls(), 2);

    source_.release();
    poll();
    ASSERT_EQ(source_.calls(), 4);
    EXPECT_EQ(source_.requests()[1].resource, "first-miss");
    EXPECT_EQ(source_.requests()[2].resource, "second-miss");
    EXPECT_EQ(source_.requests()[3].resource, "refreshed");
    EXPECT_TRUE((*second)->token);
}

TEST_F(TokenCacheTest, MissJoiningAQueuedRefreshPromotesItAheadOfLaterMisses) {
    make_cache({.refresh_margin = 600s,
                .refresh_fraction = 0.0,
                .fetch_deadline = 1'000'000ms,
                .max_concurrency = 1});
    const auto refreshed = make_request("refreshed");
    const TokenPtr old_token = get_now(refreshed).token;
    advance(3000s);  // 600 s before expiry: due for refresh

    source_.hold();
    auto blocker = start_get(make_request("blocker"));
    poll();
    EXPECT_EQ(cache_->try_get(refreshed)->outcome, CacheOutcome::refresh_ahead);  // queued
    auto early = start_get(make_request("early-miss"));
    poll();
    advance(541s);  // the cached token now has 59 s left: no longer servable
    EXPECT_FALSE(cache_->try_get(refreshed).has_value());
    auto joined = start_get(refreshed);
    poll();
    auto late = start_get(make_request("late-miss"));
    poll();
    EXPECT_EQ(source_.calls(), 2);

    source_.release();
    poll();
    ASSERT_EQ(source_.calls(), 5);
    EXPECT_EQ(source_.requests()[2].resource, "early-miss");
    EXPECT_EQ(source_.requests()[3].resource, "refreshed");
    EXPECT_EQ(source_.requests()[4].resource, "late-miss");
    ASSERT_TRUE(joined->has_value());
    EXPECT_EQ((*joined)->outcome, CacheOutcome::joined);
    ASSERT_TRUE((*joined)->token);
    EXPECT_NE((*joined)->token, old_token);
    // The refresh became a foreground fetch once a caller waited for it.
    const auto refresh_attempt =
        std::find_if(attempts_.begin() + 1, attempts_.end(),
                     [](const SeenAttempt& a) { return a.resource == "refreshed"; });
    ASSERT_NE(refresh_attempt, attempts_.end());
    EXPECT_FALSE(refresh_attempt->background);
}

}  // namespace
}  // namespace nmid::test
