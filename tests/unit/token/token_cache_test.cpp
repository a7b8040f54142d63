#include "nmid/token/token_cache.hpp"

#include <atomic>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/system_error.hpp>
#include <functional>
#include <set>
#include <thread>

#include "token_cache_fixture.hpp"

namespace nmid::test {
namespace {

// Default settings: refresh_margin 300 s, refresh_fraction 0.1, min_remaining_lifetime 60 s.
// A 1 h token therefore refreshes between 3240 s and 3204 s before... after it was fetched:
// margin = max(300 s, 360 s) = 360 s, jitter <= 36 s.
constexpr auto kEarliestRefresh = 3600s - 360s - 36s;
constexpr auto kLatestRefresh = 3600s - 360s;

TEST(CacheOutcome, HasStableNames) {
    const std::vector<std::pair<CacheOutcome, std::string_view>> table = {
        {CacheOutcome::hit, "hit"},           {CacheOutcome::refresh_ahead, "refresh_ahead"},
        {CacheOutcome::miss, "miss"},         {CacheOutcome::joined, "joined"},
        {CacheOutcome::negative, "negative"}, {CacheOutcome::error, "error"},
    };
    for (const auto& [outcome, name] : table) {
        EXPECT_EQ(to_string(outcome), name);
    }
}

TEST(FetchError, ValueOfFailedFetchResultThrowsSystemError) {
    FetchResult result = FakeTokenSource::error(Errc::upstream_throttled, 429);
    try {
        (void)result.value();
        FAIL() << "value() did not throw";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), make_error_code(Errc::upstream_throttled));
        EXPECT_NE(std::string(e.what()).find("429"), std::string::npos);
    }
}

TEST_F(TokenCacheTest, TryGetOnEmptyCacheIsNulloptWithoutUpstreamCall) {
    make_cache();
    EXPECT_FALSE(cache_->try_get(make_request("https://vault.azure.net")).has_value());
    poll();
    EXPECT_EQ(source_.calls(), 0);
    EXPECT_EQ(cache_->stats().entries, 0U);
}

TEST_F(TokenCacheTest, MissFetchesOnceThenHitsServeTheCachedToken) {
    make_cache();
    const auto request = make_request("https://vault.azure.net");
    const SteadyTime started = clock_.steady_now();

    const CacheResult first = get_now(request);
    ASSERT_TRUE(first.token);
    EXPECT_EQ(first.outcome, CacheOutcome::miss);
    EXPECT_EQ(first.token->resource, "https://vault.azure.net");
    EXPECT_EQ(first.token->access_token, "token-1");
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(source_.last_request(), request);
    EXPECT_EQ(source_.deadlines().at(0), started + TokenCacheSettings{}.fetch_deadline);

    const CacheResult second = get_now(request);
    EXPECT_EQ(second.outcome, CacheOutcome::hit);
    EXPECT_EQ(second.token, first.token);
    const auto fast = cache_->try_get(request);
    ASSERT_TRUE(fast.has_value());
    EXPECT_EQ(fast->outcome, CacheOutcome::hit);
    EXPECT_EQ(fast->token, first.token);
    EXPECT_EQ(source_.calls(), 1);

    const auto stats = cache_->stats();
    EXPECT_EQ(stats.misses, 1U);
    EXPECT_EQ(stats.hits, 2U);
    EXPECT_EQ(stats.upstream_attempts, 1U);
    EXPECT_EQ(stats.entries, 1U);
    ASSERT_EQ(attempts_.size(), 1U);
    EXPECT_EQ(attempts_[0].status, 200);
    EXPECT_EQ(attempts_[0].error, Errc::ok);
    EXPECT_FALSE(attempts_[0].background);
}

TEST_F(TokenCacheTest, DifferentIdentitiesOrResourcesAreDifferentKeys) {
    make_cache();
    get_now(make_request("https://vault.azure.net", "client-a"));
    get_now(make_request("https://vault.azure.net", "client-b"));
    get_now(make_request("https://storage.azure.com", "client-a"));
    EXPECT_EQ(source_.calls(), 3);
    EXPECT_EQ(get_now(make_request("https://vault.azure.net", "client-b")).outcome,
              CacheOutcome::hit);
}

TEST_F(TokenCacheTest, TokenKeyFindsExactlyTheEntryOfTheEqualRequest) {
    make_cache();
    TokenRequest full = make_request("https://vault.azure.net", "client-a");
    full.identity.type = 1;
    full.identity.tenant_id = "tenant";
    full.identity.ad_endpoint = "https://login.example/";
    full.identity.secret = {.namespace_name = "ns", .name = "secret"};
    const CacheResult fetched = get_now(full);
    ASSERT_TRUE(fetched.token);

    const PreparedIdentity prepared = prepare_identity(full.identity);
    EXPECT_EQ(prepared.identity, full.identity);
    EXPECT_EQ(prepared.hash, identity_hash(full.identity));
    const auto hit = cache_->try_get(TokenKey{prepared, "https://vault.azure.net"});
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(hit->outcome, CacheOutcome::hit);
    EXPECT_EQ(hit->token, fetched.token);

    // Every field that tells two keys apart makes a different key (resource_id does not).
    const std::vector<std::function<void(TokenRequest&)>> changes = {
        [](TokenRequest& r) { r.resource = "https://vault.azure.net/"; },
        [](TokenRequest& r) { r.identity.client_id = "client-b"; },
        [](TokenRequest& r) { r.identity.type = 2; },
        [](TokenRequest& r) { r.identity.tenant_id = "other"; },
        [](TokenRequest& r) { r.identity.ad_endpoint = ""; },
        [](TokenRequest& r) { r.identity.secret.namespace_name = "other"; },
        [](TokenRequest& r) { r.identity.secret.name = "other"; },
        // Another AzureIdentity object naming the same client ID and Secret (issue 11.3).
        [](TokenRequest& r) { r.identity.identity_namespace = "tenant-b"; },
        [](TokenRequest& r) { r.identity.identity_name = "copy"; },
    };
    for (std::size_t i = 0; i < changes.size(); ++i) {
        TokenRequest changed = full;
        changes[i](changed);
        const PreparedIdentity other = prepare_identity(changed.identity);
        EXPECT_FALSE(cache_->try_get(TokenKey{other, changed.resource}).has_value()) << i;
        EXPECT_FALSE(cache_->try_get(changed).has_value()) << i;
    }
    EXPECT_EQ(cache_->stats().hits, 1U);
    EXPECT_EQ(source_.calls(), 1);
}

TEST_F(TokenCacheTest, ThousandConcurrentMissesShareOneFetch) {
    make_cache();
    source_.hold();
    const auto request = make_request("https://management.azure.com/");
    std::vector<PendingGet> pending;
    pending.reserve(1000);
    for (int i = 0; i < 1000; ++i) {
        pending.push_back(start_get(request));
    }
    poll();
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(cache_->stats().waiters, 1000U);
    EXPECT_EQ(cache_->stats().inflight, 1U);

    source_.release();
    poll();
    EXPECT_EQ(source_.calls(), 1);
    int misses = 0;
    int joined = 0;
    for (const auto& p : pending) {
        ASSERT_TRUE(p->has_value());
        ASSERT_TRUE((*p)->token);
        EXPECT_EQ((*p)->token, (*pending[0])->token);
        misses += (*p)->outcome == CacheOutcome::miss ? 1 : 0;
        joined += (*p)->outcome == CacheOutcome::joined ? 1 : 0;
    }
    EXPECT_EQ(misses, 1);
    EXPECT_EQ(joined, 999);
    const auto stats = cache_->stats();
    EXPECT_EQ(stats.misses, 1U);
    EXPECT_EQ(stats.joined, 999U);
    EXPECT_EQ(stats.waiters, 0U);
    EXPECT_EQ(stats.inflight, 0U);
}

TEST_F(TokenCacheTest, JoinedCallersShareTheFailureOfTheirFetch) {
    make_cache();
    source_.hold();
    source_.push_error(Errc::upstream_refused, 403);
    const auto request = make_request("https://vault.azure.net");
    std::vector<PendingGet> pending = {start_get(request), start_get(request), start_get(request)};
    poll();
    source_.release();
    poll();
    for (const auto& p : pending) {
        ASSERT_TRUE(p->has_value());
        EXPECT_FALSE((*p)->token);
        EXPECT_EQ((*p)->outcome, CacheOutcome::error);
        EXPECT_EQ((*p)->error.code, Errc::upstream_refused);
        EXPECT_EQ((*p)->error.upstream_status, 403);
    }
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(cache_->stats().fetch_errors, 1U);
    EXPECT_EQ(cache_->stats().joined, 2U);
}

TEST_F(TokenCacheTest, RefreshAheadStartsOneBackgroundFetchAndServesTheOldTokenMeanwhile) {
    make_cache();
    const auto request = make_request("https://vault.azure.net");
    const TokenPtr old_token = get_now(request).token;
    ASSERT_TRUE(old_token);

    advance(kEarliestRefresh - 1s);
    auto before = cache_->try_get(request);
    ASSERT_TRUE(before.has_value());
    EXPECT_EQ(before->outcome, CacheOutcome::hit);
    poll();
    EXPECT_EQ(source_.calls(), 1);

    advance(kLatestRefresh - (kEarliestRefresh - 1s));
    source_.hold();
    auto due = cache_->try_get(request);
    ASSERT_TRUE(due.has_value());
    EXPECT_EQ(due->outcome, CacheOutcome::refresh_ahead);
    EXPECT_EQ(due->token, old_token);
    poll();
    EXPECT_EQ(source_.calls(), 2);

    // While the refresh runs, every lookup is a plain hit on the old token.
    for (int i = 0; i < 10; ++i) {
        auto meanwhile = cache_->try_get(request);
        ASSERT_TRUE(meanwhile.has_value());
        EXPECT_EQ(meanwhile->outcome, CacheOutcome::hit);
        EXPECT_EQ(meanwhile->token, old_token);
    }
    EXPECT_EQ(get_now(request).token, old_token);
    EXPECT_EQ(source_.calls(), 2);
    EXPECT_EQ(cache_->stats().refresh_ahead, 1U);

    source_.release();
    poll();
    auto after = cache_->try_get(request);
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->outcome, CacheOutcome::hit);
    EXPECT_NE(after->token, old_token);
    EXPECT_EQ(after->token->access_token, "token-2");
    EXPECT_EQ(source_.calls(), 2);
    ASSERT_EQ(attempts_.size(), 2U);
    EXPECT_TRUE(attempts_[1].background);
}

/// Seconds after the fetch at which each of `keys` keys first reports refresh_ahead.
std::vector<int> refresh_offsets(int keys) {
    asio::io_context ioc;
    ManualClock clock;
    FakeTokenSource source{clock};
    TokenCache cache{ioc.get_executor(), source, clock, {}};
    auto run = [&ioc] {
        ioc.restart();
        ioc.poll();
    };
    for (int k = 0; k < keys; ++k) {
        asio::co_spawn(ioc, call_get(cache, make_request("resource-" + std::to_string(k))),
                       [](const std::exception_ptr&, const CacheResult&) {});
    }
    run();
    std::vector<int> offsets(static_cast<std::size_t>(keys), -1);
    clock.advance(3000s);
    for (int second = 3000; second <= 3300; ++second) {
        for (int k = 0; k < keys; ++k) {
            auto& offset = offsets[static_cast<std::size_t>(k)];
            if (offset >= 0) {
                continue;
            }
            auto r = cache.try_get(make_request("resource-" + std::to_string(k)));
            if (r && r->outcome == CacheOutcome::refresh_ahead) {
                offset = second;
            }
        }
        run();
        clock.advance(1s);
    }
    return offsets;
}

TEST(TokenCacheRefresh, RefreshPointIsPerKeyDeterministicAndWithinTenPercentJitter) {
    const auto offsets = refresh_offsets(20);
    for (int offset : offsets) {
        EXPECT_GE(offset, kEarliestRefresh.count());
        EXPECT_LE(offset, kLatestRefresh.count());
    }
    const std::set<int> distinct(offsets.begin(), offsets.end());
    EXPECT_GT(distinct.size(), 5U) << "keys should not all refresh at the same moment";
    EXPECT_EQ(refresh_offsets(20), offsets);
}

TEST_F(TokenCacheTest, StaleOnErrorServesValidTokenAndRetriesRefreshOncePerNegativeTtl) {
    make_cache({.negative_ttl = 5s, .max_attempts = 1});
    const auto request = make_request("https://vault.azure.net");
    const TokenPtr old_token = get_now(request).token;

    advance(kLatestRefresh);
    source_.push_error(Errc::upstream_unavailable, 503);
    EXPECT_EQ(cache_->try_get(request)->outcome, CacheOutcome::refresh_ahead);
    poll();
    EXPECT_EQ(source_.calls(), 2);
    EXPECT_EQ(cache_->stats().fetch_errors, 1U);

    for (int i = 0; i < 5; ++i) {
        const auto served = cache_->try_get(request);
        ASSERT_TRUE(served.has_value());
        EXPECT_EQ(served->outcome, CacheOutcome::hit);
        EXPECT_EQ(served->token, old_token);
    }
    EXPECT_EQ(get_now(request).token, old_token);
    advance(5s - 1ms);
    EXPECT_EQ(cache_->try_get(request)->outcome, CacheOutcome::hit);
    poll();
    EXPECT_EQ(source_.calls(), 2);

    advance(1ms);
    EXPECT_EQ(cache_->try_get(request)->outcome, CacheOutcome::refresh_ahead);
    poll();
    EXPECT_EQ(source_.calls(), 3);
    EXPECT_EQ(cache_->try_get(request)->token->access_token, "token-3");
}

TEST_F(TokenCacheTest, ExpiredTokenIsNeverServedEvenWhenUpstreamFails) {
    make_cache();
    const auto request = make_request("https://vault.azure.net");
    ASSERT_TRUE(get_now(request).token);

    advance(3600s);  // no lookup in between, so no refresh ran
    source_.push_error(Errc::upstream_refused, 403);
    EXPECT_FALSE(cache_->try_get(request).has_value());
    const CacheResult result = get_now(request);
    EXPECT_FALSE(result.token);
    EXPECT_EQ(result.outcome, CacheOutcome::error);
    EXPECT_EQ(result.error.code, Errc::upstream_refused);
    EXPECT_EQ(result.error.upstream_status, 403);
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(TokenCacheTest, TokenWithLessThanMinRemainingLifetimeIsNotServed) {
    // No refresh ahead, so only the min_remaining_lifetime rule decides.
    make_cache({.refresh_margin = 0s, .refresh_fraction = 0.0, .min_remaining_lifetime = 60s});
    const auto request = make_request("https://vault.azure.net");
    const TokenPtr first = get_now(request).token;

    advance(3600s - 61s);
    const auto still = cache_->try_get(request);
    ASSERT_TRUE(still.has_value());
    EXPECT_EQ(still->token, first);

    advance(1s);  // exactly 60 s left: not more than min_remaining_lifetime
    EXPECT_FALSE(cache_->try_get(request).has_value());
    const CacheResult fresh = get_now(request);
    EXPECT_EQ(fresh.outcome, CacheOutcome::miss);
    ASSERT_TRUE(fresh.token);
    EXPECT_NE(fresh.token, first);
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(TokenCacheTest, AlreadyExpiredTokenFromUpstreamIsABadPayload) {
    make_cache();
    const auto request = make_request("https://vault.azure.net");
    source_.push(source_.make_token(request.resource, now_unix() - 10, "stale"));
    const CacheResult result = get_now(request);
    EXPECT_FALSE(result.token);
    EXPECT_EQ(result.error.code, Errc::upstream_bad_payload);
}

TEST_F(TokenCacheTest, NegativeCacheAnswersWithoutUpstreamCallForNegativeTtl) {
    make_cache({.negative_ttl = 5s});
    const auto request = make_request("https://vault.azure.net");
    source_.push_error(Errc::upstream_refused, 403);
    EXPECT_EQ(get_now(request).outcome, CacheOutcome::error);

    const CacheResult negative = get_now(request);
    EXPECT_EQ(negative.outcome, CacheOutcome::negative);
    EXPECT_FALSE(negative.token);
    EXPECT_EQ(negative.error.code, Errc::upstream_refused);
    EXPECT_EQ(negative.error.upstream_status, 403);
    advance(5s - 1ms);
    EXPECT_EQ(get_now(request).outcome, CacheOutcome::negative);
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(cache_->stats().negative_hits, 2U);

    advance(1ms);
    const CacheResult retried = get_now(request);
    EXPECT_EQ(retried.outcome, CacheOutcome::miss);
    EXPECT_TRUE(retried.token);
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(TokenCacheTest, NegativeCacheLastsForRetryAfterWhenLargerUpToTheCap) {
    struct Row {
        std::chrono::seconds retry_after;
        std::chrono::milliseconds window;
    };
    const std::vector<Row> table = {
        {0s, 5'000ms},    // negative_ttl
        {2s, 5'000ms},    // negative_ttl is larger
        {30s, 30'000ms},  // Retry-After
        {600s, 60'000ms}  // capped at max_retry_after
    };
    make_cache({.negative_ttl = 5s, .max_retry_after = 60s, .max_attempts = 1});
    int row_index = 0;
    for (const auto& row : table) {
        SCOPED_TRACE(row_index);
        const auto request = make_request("resource-" + std::to_string(row_index++));
        source_.push_error(Errc::upstream_throttled, 429, row.retry_after);
        const CacheResult failed = get_now(request);
        EXPECT_EQ(failed.error.code, Errc::upstream_throttled);
        // The caller is told to come back when the failure is forgotten (or later, if the
        // upstream said so): SDKs that honour Retry-After do not spend retries in the window.
        const auto window_seconds = std::chrono::ceil<std::chrono::seconds>(row.window);
        EXPECT_EQ(failed.error.retry_after, std::max(row.retry_after, window_seconds));
        const int calls = source_.calls();

        advance(row.window - 1500ms);
        EXPECT_EQ(get_now(request).error.retry_after, std::max(row.retry_after, 2s));
        advance(500ms);
        const CacheResult negative = get_now(request);
        EXPECT_EQ(negative.outcome, CacheOutcome::negative);
        EXPECT_EQ(negative.error.retry_after, std::max(row.retry_after, 1s));
        EXPECT_EQ(source_.calls(), calls);
        advance(1s);
        EXPECT_EQ(get_now(request).outcome, CacheOutcome::miss);
        EXPECT_EQ(source_.calls(), calls + 1);
    }
}

TEST_F(TokenCacheTest, EvictsLeastRecentlyUsedEntryWhenFull) {
    make_cache({.max_entries = 2});
    const auto a = make_request("a");
    const auto b = make_request("b");
    const auto c = make_request("c");
    get_now(a);
    get_now(b);
    ASSERT_TRUE(cache_->try_get(a).has_value());  // a is now more recent than b
    get_now(c);
    EXPECT_EQ(cache_->stats().entries, 2U);
    EXPECT_EQ(cache_->stats().evictions, 1U);
    EXPECT_FALSE(cache_->try_get(b).has_value());
    EXPECT_TRUE(cache_->try_get(a).has_value());
    EXPECT_EQ(source_.calls(), 3);

    EXPECT_EQ(get_now(b).outcome, CacheOutcome::miss);  // evicts c, not a
    EXPECT_FALSE(cache_->try_get(c).has_value());
    EXPECT_TRUE(cache_->try_get(a).has_value());
    EXPECT_EQ(source_.calls(), 4);
    EXPECT_EQ(cache_->stats().evictions, 2U);
}

TEST_F(TokenCacheTest, FullCacheNeverEvictsEntriesWithFetchInFlight) {
    make_cache({.max_entries = 2});
    source_.hold();
    auto a = start_get(make_request("a"));
    auto b = start_get(make_request("b"));
    poll();
    const CacheResult c = get_now(make_request("c"));
    EXPECT_FALSE(c.token);
    EXPECT_EQ(c.error.code, Errc::overloaded);
    EXPECT_EQ(source_.calls(), 2);

    source_.release();
    poll();
    ASSERT_TRUE(a->has_value());
    ASSERT_TRUE(b->has_value());
    EXPECT_TRUE((*a)->token);
    EXPECT_TRUE((*b)->token);
}

TEST_F(TokenCacheTest, SweeperEvictsIdleEntries) {
    make_cache({.idle_ttl = 120s});
    bool finished = false;
    asio::co_spawn(ioc_, cache_->run(), [&](const std::exception_ptr&) { finished = true; });
    const auto a = make_request("a");
    get_now(a);
    get_now(make_request("b"));

    advance(60s);
    EXPECT_EQ(cache_->stats().entries, 2U);
    ASSERT_TRUE(cache_->try_get(a).has_value());  // a used at 60 s
    advance(60s);                                 // b idle exactly 120 s: kept
    EXPECT_EQ(cache_->stats().entries, 2U);
    advance(60s);  // b idle 180 s, a idle 120 s
    EXPECT_EQ(cache_->stats().entries, 1U);
    EXPECT_TRUE(cache_->try_get(a).has_value());  // a used at 180 s
    EXPECT_EQ(cache_->stats().evictions, 1U);
    advance(120s);
    EXPECT_EQ(cache_->stats().entries, 1U);
    advance(60s);
    EXPECT_EQ(cache_->stats().entries, 0U);
    EXPECT_FALSE(finished);

    cache_->stop();
    poll();
    EXPECT_TRUE(finished);
}

TEST_F(TokenCacheTest, SweeperEvictsEntriesThatCanNoLongerBeServed) {
    make_cache({.negative_ttl = 5s, .idle_ttl = 3600s});
    bool finished = false;
    asio::co_spawn(ioc_, cache_->run(), [&](const std::exception_ptr&) { finished = true; });
    const auto short_lived = make_request("short");
    source_.push(source_.make_token(short_lived.resource, now_unix() + 150, "short-lived"));
    ASSERT_TRUE(get_now(short_lived).token);  // servable until 90 s
    ASSERT_TRUE(get_now(make_request("long")).token);
    source_.push_error(Errc::upstream_refused, 403);
    ASSERT_FALSE(get_now(make_request("failed")).token);  // negative for 5 s
    EXPECT_EQ(cache_->stats().entries, 3U);

    advance(60s);  // the failure's window is over
    EXPECT_EQ(cache_->stats().entries, 2U);
    advance(60s);  // short-lived token is past min_remaining_lifetime
    EXPECT_EQ(cache_->stats().entries, 1U);
    EXPECT_TRUE(cache_->try_get(make_request("long")).has_value());
    EXPECT_EQ(cache_->stats().evictions, 2U);

    cache_->stop();
    poll();
    EXPECT_TRUE(finished);
}

TEST_F(TokenCacheTest, RunReturnsWhenItsCallerCancelsIt) {
    make_cache();
    asio::cancellation_signal signal;
    bool finished = false;
    asio::co_spawn(ioc_, cache_->run(),
                   asio::bind_cancellation_slot(signal.slot(), [&](const std::exception_ptr& e) {
                       EXPECT_FALSE(e);
                       finished = true;
                   }));
    poll();
    EXPECT_FALSE(finished);
    signal.emit(asio::cancellation_type::terminal);
    poll();
    EXPECT_TRUE(finished);
}

TEST_F(TokenCacheTest, CancelledCallerDoesNotCancelTheFetchAndItsResultIsCached) {
    make_cache();
    source_.hold();
    const auto request = make_request("https://vault.azure.net");
    asio::cancellation_signal signal;
    auto pending = start_get(request, signal.slot());
    poll();
    EXPECT_EQ(source_.calls(), 1);

    signal.emit(asio::cancellation_type::terminal);
    poll();
    ASSERT_TRUE(pending->has_value());
    EXPECT_FALSE((*pending)->token);
    EXPECT_EQ((*pending)->error.code, Errc::cancelled);
    EXPECT_EQ(source_.cancelled(), 0);
    EXPECT_EQ(cache_->stats().inflight, 1U);

    source_.release();
    poll();
    const auto cached = cache_->try_get(request);
    ASSERT_TRUE(cached.has_value());
    EXPECT_EQ(cached->outcome, CacheOutcome::hit);
    EXPECT_EQ(cached->token->access_token, "token-1");
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(cache_->stats().fetch_errors, 0U);
}

TEST_F(TokenCacheTest, StopWakesWaitersWithCancelledAndCancelsFetches) {
    make_cache();
    const auto cached = make_request("cached");
    ASSERT_TRUE(get_now(cached).token);
    bool run_finished = false;
    asio::co_spawn(ioc_, cache_->run(), [&](const std::exception_ptr&) { run_finished = true; });
    source_.hold();
    std::vector<PendingGet> pending = {start_get(make_request("a")), start_get(make_request("a")),
                                       start_get(make_request("b"))};
    poll();
    EXPECT_EQ(source_.calls(), 3);

    cache_->stop();
    poll();
    for (const auto& p : pending) {
        ASSERT_TRUE(p->has_value());
        EXPECT_FALSE((*p)->token);
        EXPECT_EQ((*p)->error.code, Errc::cancelled);
    }
    EXPECT_EQ(source_.cancelled(), 2);
    EXPECT_TRUE(run_finished);
    const auto stats = cache_->stats();
    EXPECT_EQ(stats.inflight, 0U);
    EXPECT_EQ(stats.waiters, 0U);
    EXPECT_EQ(stats.fetch_errors, 0U);

    // After stop: no new fetches, cached tokens still served.
    EXPECT_EQ(get_now(make_request("c")).error.code, Errc::cancelled);
    EXPECT_EQ(source_.calls(), 3);
    EXPECT_TRUE(cache_->try_get(cached).has_value());
}

TEST_F(TokenCacheTest, ObserverSeesEveryAttemptWithStatusAndDuration) {
    make_cache({.backoff_base = 500ms});
    source_.push_error(Errc::upstream_unavailable, 503);
    source_.set_duration(250ms);
    auto pending = start_get(make_request("https://vault.azure.net"));
    poll();
    drive(pending);
    ASSERT_TRUE((*pending)->token);
    ASSERT_EQ(attempts_.size(), 2U);
    EXPECT_EQ(attempts_[0].resource, "https://vault.azure.net");
    EXPECT_EQ(attempts_[0].status, 503);
    EXPECT_EQ(attempts_[0].error, Errc::upstream_unavailable);
    EXPECT_EQ(attempts_[0].duration, 0ns);
    EXPECT_EQ(attempts_[1].status, 200);
    EXPECT_EQ(attempts_[1].error, Errc::ok);
    EXPECT_EQ(attempts_[1].duration, 250ms);
    EXPECT_FALSE(attempts_[1].background);
    EXPECT_EQ(cache_->stats().upstream_attempts, 2U);
    EXPECT_EQ(cache_->stats().upstream_failures, 1U);
    EXPECT_EQ(cache_->stats().fetch_errors, 0U);
}

TEST(TokenCacheThreads, GetFromAnotherExecutorRunsOnTheCacheStrand) {
    asio::io_context ioc;
    ManualClock clock;
    FakeTokenSource source{clock};
    TokenCache cache{asio::make_strand(ioc), source, clock, {}};
    std::atomic<int> served{0};
    const auto request = make_request("https://vault.azure.net");
    for (int i = 0; i < 200; ++i) {
        asio::co_spawn(ioc, call_get(cache, request),
                       [&](const std::exception_ptr& e, const CacheResult& r) {
                           if (!e && r.token && r.token->access_token == "token-1") {
                               ++served;
                           }
                       });
    }
    std::thread second([&ioc] { ioc.run(); });
    ioc.run();
    second.join();
    EXPECT_EQ(served.load(), 200);
    EXPECT_EQ(source.calls(), 1);
    EXPECT_EQ(cache.stats().misses + cache.stats().joined + cache.stats().hits, 200U);
}

TEST(TokenCacheThreads, TryGetOutsideTheCacheStrandDeclinesInsteadOfRacing) {
    asio::io_context ioc;
    ManualClock clock;
    FakeTokenSource source{clock};
    const auto strand = asio::make_strand(ioc);
    TokenCache cache{strand, source, clock, {}};
    const auto request = make_request("https://vault.azure.net");
    asio::co_spawn(ioc, call_get(cache, request), asio::detached);
    ioc.run();
    ASSERT_EQ(cache.stats().entries, 1U);

    EXPECT_FALSE(cache.try_get(request).has_value());  // this thread is not in the strand
    std::optional<CacheResult> inside;
    asio::post(strand, [&] { inside = cache.try_get(request); });
    ioc.restart();
    ioc.run();
    ASSERT_TRUE(inside.has_value());
    EXPECT_EQ(inside->outcome, CacheOutcome::hit);
    EXPECT_EQ(cache.stats().hits, 1U);
}

}  // namespace
}  // namespace nmid::test
