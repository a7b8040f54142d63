#pragma once

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nmid/token/token_cache.hpp"
#include "support/fake_token_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid::test {

using namespace std::chrono_literals;
namespace asio = boost::asio;

inline TokenRequest make_request(std::string resource, std::string client_id = "client-a") {
    TokenRequest request;
    request.identity.type = 0;
    request.identity.client_id = std::move(client_id);
    request.resource = std::move(resource);
    return request;
}

inline asio::awaitable<CacheResult> call_get(TokenCache& cache, TokenRequest request,
                                             std::string requester = {}, GetOptions options = {}) {
    co_return co_await cache.get(request, requester, options);
}

/// What the UpstreamAttempt observer saw (the request pointer does not outlive the call).
struct SeenAttempt {
    std::string resource;
    int status;
    Errc error;
    std::chrono::nanoseconds duration;
    bool background;
};

using PendingGet = std::shared_ptr<std::optional<CacheResult>>;

class TokenCacheTest : public ::testing::Test {
protected:
    void make_cache(TokenCacheSettings settings = {}) {
        cache_ = std::make_unique<TokenCache>(
            ioc_.get_executor(), source_, clock_, settings, [this](const UpstreamAttempt& a) {
                attempts_.push_back(
                    SeenAttempt{a.request->resource, a.status, a.error, a.duration, a.background});
            });
    }

    /// Runs every handler that is ready now (never waits: time moves only by advance()).
    void poll() {
        ioc_.restart();
        ioc_.poll();
    }

    void advance(std::chrono::nanoseconds d) {
        clock_.advance(d);
        poll();
    }

    /// Starts get() in its own coroutine; the result appears once it completes.
    PendingGet start_get(const TokenRequest& request, asio::cancellation_slot slot = {},
                         std::string requester = {}, GetOptions options = {}) {
        auto out = std::make_shared<std::optional<CacheResult>>();
        asio::co_spawn(ioc_, call_get(*cache_, request, std::move(requester), options),
                       asio::bind_cancellation_slot(
                           slot, [out](const std::exception_ptr& e, CacheResult result) {
                               if (e) {
                                   std::rethrow_exception(e);
                               }
                               *out = std::move(result);
                           }));
        return out;
    }

    /// start_get() on behalf of `requester` (a pod).
    PendingGet start_get_as(std::string requester, const TokenRequest& request) {
        return start_get(request, {}, std::move(requester));
    }

    /// get() that is expected to complete without time moving.
    CacheResult get_now(const TokenRequest& request) {
        auto pending = start_get(request);
        poll();
        EXPECT_TRUE(pending->has_value()) << "get() did not complete";
        return pending->value_or(CacheResult{});
    }

    /// Moves time to each pending deadline in turn until `pending` completes.
    void drive(const PendingGet& pending) {
        while (!pending->has_value() && clock_.next_deadline() != SteadyTime::max()) {
            advance(clock_.next_deadline() - clock_.steady_now());
        }
        EXPECT_TRUE(pending->has_value()) << "get() still waiting with no timer pending";
    }

    std::int64_t now_unix() const { return clock_.unix_seconds(); }

    asio::io_context ioc_;
    ManualClock clock_;
    FakeTokenSource source_{clock_};
    std::vector<SeenAttempt> attempts_;
    std::unique_ptr<TokenCache> cache_;
};

}  // namespace nmid::test
