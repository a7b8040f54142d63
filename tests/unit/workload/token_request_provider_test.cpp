#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nmid/workload/sa_token_provider.hpp"
#include "support/manual_clock.hpp"

namespace nmid::workload {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Answers TokenRequests from a script (token lifetime 3600 s by default), optionally held
// until release().
class ScriptedRequester final : public TokenRequester {
public:
    ScriptedRequester(asio::io_context& ioc, test::ManualClock& clock) : ioc_(ioc), clock_(clock) {}

    asio::awaitable<SaTokenResult> request(const PodInfo& pod, SteadyTime) override {
        asked.push_back(pod.name);
        if (hold) {
            asio::steady_timer gate{ioc_, asio::steady_timer::time_point::max()};
            gates_.push_back(&gate);
            co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (!failures.empty()) {
            FetchError e = failures.front();
            failures.pop_front();
            co_return e;
        }
        ServiceAccountToken t;
        t.token = "sa-token-" + pod.name + "-" + std::to_string(asked.size());
        t.issued_at = clock_.unix_seconds();
        t.expires_on = t.issued_at + 3600;
        co_return t;
    }
    void release() {
        for (auto* g : gates_) {
            g->cancel();
        }
        gates_.clear();
    }

    bool hold = false;
    std::deque<FetchError> failures;
    std::vector<std::string> asked;

private:
    asio::io_context& ioc_;
    test::ManualClock& clock_;
    std::vector<asio::steady_timer*> gates_;
};

PodInfoPtr pod(const std::string& name) {
    auto p = std::make_shared<PodInfo>();
    p->namespace_name = "shop";
    p->name = name;
    p->uid = "uid-" + name;
    p->service_account = "web";
    return p;
}

class TokenRequestProviderTest : public ::testing::Test {
protected:
    // Starts a call; its answer lands in the returned slot once the io_context runs.
    std::shared_ptr<std::optional<SaTokenResult>> start(const PodInfoPtr& p,
                                                        SteadyTime deadline = SteadyTime::max()) {
        auto slot = std::make_shared<std::optional<SaTokenResult>>();
        asio::co_spawn(ioc_, provider_.token(p, deadline),
                       [slot](const std::exception_ptr& e, SaTokenResult r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           *slot = std::move(r);
                       });
        return slot;
    }
    SaTokenResult get(const PodInfoPtr& p) {
        auto slot = start(p);
        ioc_.restart();
        ioc_.poll();
        EXPECT_TRUE(slot->has_value());
        return slot->value_or(fetch_error(Errc::cancelled));
    }
    void poll() {
        ioc_.restart();
        ioc_.poll();
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    ScriptedRequester requester_{ioc_, clock_};
    TokenRequestProvider provider_{ioc_.get_executor(), requester_, clock_};
};

TEST_F(TokenRequestProviderTest, OneTokenPerPodUntilEightyPercentOfItsLife) {
    const auto web0 = pod("web-0");
    const SaTokenResult first = get(web0);
    ASSERT_TRUE(first);
    for (int i = 0; i < 99; ++i) {
        ASSERT_EQ(get(web0)->token, first->token);
    }
    EXPECT_EQ(requester_.asked.size(), 1U) << "100 calls, 1 TokenRequest";
    clock_.advance(2879s);  // 80% of 3600 s is 2880 s
    EXPECT_EQ(get(web0)->token, first->token);
    clock_.advance(1s);
    const SaTokenResult renewed = get(web0);
    ASSERT_TRUE(renewed);
    EXPECT_NE(renewed->token, first->token);
    EXPECT_EQ(requester_.asked.size(), 2U);
    EXPECT_EQ(provider_.stats().hits, 100U);
}

TEST_F(TokenRequestProviderTest, ConcurrentCallsForAPodShareOneTokenRequest) {
    requester_.hold = true;
    std::vector<std::shared_ptr<std::optional<SaTokenResult>>> slots;
    slots.reserve(101);
    for (int i = 0; i < 100; ++i) {
        slots.push_back(start(pod("web-0")));
    }
    slots.push_back(start(pod("web-1")));
    poll();
    EXPECT_EQ(requester_.asked.size(), 2U) << "one per pod";
    requester_.release();
    poll();
    for (const auto& slot : slots) {
        ASSERT_TRUE(slot->has_value());
        ASSERT_TRUE(**slot);
    }
    EXPECT_EQ(slots[0]->value()->token, slots[99]->value()->token);
    EXPECT_NE(slots[0]->value()->token, slots[100]->value()->token);
    EXPECT_EQ(provider_.stats().joined, 99U);
}

TEST_F(TokenRequestProviderTest, AFailedRenewalServesTheHeldTokenWhileItHasAMinuteLeft) {
    const auto web0 = pod("web-0");
    const SaTokenResult first = get(web0);
    ASSERT_TRUE(first);
    clock_.advance(3000s);
    requester_.failures.push_back(fetch_error(Errc::upstream_unavailable, 503, "down"));
    const SaTokenResult stale = get(web0);
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->token, first->token);
    EXPECT_EQ(provider_.stats().stale_served, 1U);
    clock_.advance(560s);  // 40 s left
    requester_.failures.push_back(fetch_error(Errc::upstream_unavailable, 503, "down"));
    const SaTokenResult none = get(web0);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, Errc::upstream_unavailable);
}

TEST_F(TokenRequestProviderTest, AFailureIsNotRemembered) {
    requester_.failures.push_back(
        fetch_error(Errc::upstream_refused, 404, "pods \"web-0\" not found"));
    const SaTokenResult failed = get(pod("web-0"));
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().upstream_status, 404);
    EXPECT_TRUE(get(pod("web-0")));
    EXPECT_EQ(requester_.asked.size(), 2U);
    EXPECT_EQ(provider_.stats().failures, 1U);
}

TEST_F(TokenRequestProviderTest, APodThatLeftTheIndexLosesItsToken) {
    ASSERT_TRUE(get(pod("web-0")));
    ASSERT_TRUE(get(pod("web-1")));
    EXPECT_EQ(provider_.stats().entries, 2U);
    provider_.retain({"uid-web-1"});
    poll();
    EXPECT_EQ(provider_.stats().entries, 1U);
    ASSERT_TRUE(get(pod("web-1")));
    EXPECT_EQ(requester_.asked.size(), 2U) << "web-1 kept its token";
    ASSERT_TRUE(get(pod("web-0")));
    EXPECT_EQ(requester_.asked.size(), 3U) << "web-0's was dropped";
}

TEST_F(TokenRequestProviderTest, ATokenRequestThatEndsAfterItsPodLeftIsNotKept) {
    requester_.hold = true;
    auto slot = start(pod("web-0"));
    poll();
    provider_.retain({});
    poll();
    requester_.release();
    poll();
    ASSERT_TRUE(slot->has_value());
    EXPECT_TRUE(**slot) << "the waiting caller still gets its answer";
    EXPECT_EQ(provider_.stats().entries, 0U);
}

TEST_F(TokenRequestProviderTest, AWaiterGivesUpAtItsDeadlineAndTheRequestGoesOn) {
    requester_.hold = true;
    auto slot = start(pod("web-0"), clock_.steady_now() + 2s);
    poll();
    clock_.advance(2s);
    poll();
    ASSERT_TRUE(slot->has_value());
    ASSERT_FALSE(**slot);
    EXPECT_EQ(slot->value().error().code, Errc::timeout);
    requester_.hold = false;
    requester_.release();
    poll();
    EXPECT_TRUE(get(pod("web-0")));
    EXPECT_EQ(requester_.asked.size(), 1U) << "the late answer was kept";
}

TEST_F(TokenRequestProviderTest, AtMostMaxEntriesPodsAreHeld) {
    TokenRequestProvider small{ioc_.get_executor(), requester_, clock_, 2};
    for (const char* name : {"a", "b", "c"}) {
        auto slot = std::make_shared<std::optional<SaTokenResult>>();
        asio::co_spawn(
            ioc_, small.token(pod(name), SteadyTime::max()),
            [slot](const std::exception_ptr&, SaTokenResult r) { *slot = std::move(r); });
        poll();
        ASSERT_TRUE(slot->has_value());
    }
    EXPECT_EQ(small.stats().entries, 2U);
}

TEST(RenewAt, EightyPercentOfTheLife) {
    EXPECT_EQ(renew_at({.token = "t", .expires_on = 4600, .issued_at = 1000}), 3880);
    EXPECT_EQ(renew_at({.token = "t", .expires_on = 1000, .issued_at = 1000}), 1000);
    EXPECT_EQ(renew_at({.token = "t", .expires_on = 900, .issued_at = 1000}), 1000);
}

}  // namespace
}  // namespace nmid::workload
