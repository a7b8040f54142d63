#include "nmid/pods/api_server_pod_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kube_fakes.hpp"
#include "nmid/pods/pod_index.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pods_test::bookmark_json;
using pods_test::event_json;
using pods_test::FakeApiServer;
using pods_test::ok;
using pods_test::pod_json;
using pods_test::pod_list_json;
using pods_test::poll;
using pods_test::start;
using pods_test::status_json;

using ListResult = Result<std::shared_ptr<const PodList>>;

const std::string kList = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1";

std::string watch_target(const std::string& rv) {
    return kList + "&watch=true&resourceVersion=" + rv +
           "&allowWatchBookmarks=true&timeoutSeconds=300";
}

ApiServerPodSourceSettings settings(double jitter = 0.0, std::uint64_t seed = 1) {
    ApiServerPodSourceSettings s;
    s.node_name = "node-1";
    s.watch_timeout_min = Seconds{300};
    s.watch_timeout_max = Seconds{300};
    s.backoff_base = Millis{800};
    s.backoff_cap = Millis{30'000};
    s.jitter = jitter;
    s.seed = seed;
    return s;
}

std::string pod(const std::string& name, const std::string& ip, const std::string& rv = "",
                const std::string& phase = "Running") {
    return pod_json("default", name, ip, phase, rv, /*with_kind=*/true);
}

std::vector<std::string> names(const PodList& list) {
    std::vector<std::string> out;
    for (const auto& p : list.pods) {
        out.push_back(p.name + "@" + (p.ips.empty() ? "" : p.ips[0]));
    }
    return out;
}

class ApiServerPodSourceTest : public ::testing::Test {
protected:
    explicit ApiServerPodSourceTest(const ApiServerPodSourceSettings& s = settings())
        : source_(io_.get_executor(), api_, clock_, parse_.get_executor(), s) {}

    ~ApiServerPodSourceTest() override {
        cancel_.emit(asio::cancellation_type::terminal);
        settle();
    }

    void run() {
        asio::co_spawn(
            io_, source_.run(),
            asio::bind_cancellation_slot(cancel_.slot(), [this](const std::exception_ptr& e) {
                EXPECT_FALSE(e);
                *stopped_ = true;
            }));
        settle();
    }

    // Runs both contexts until nothing is ready (LIST bodies are parsed on `parse_`).
    void settle() {
        for (int i = 0; i < 20; ++i) {
            const auto n = poll(io_) + poll(parse_);
            if (n == 0) {
                break;
            }
        }
    }

    ListResult list_now() {
        auto r = start(io_, source_.list(clock_.steady_now() + 2s));
        settle();
        EXPECT_TRUE(r->has_value());
        return r->has_value() ? std::move(**r) : ListResult{Errc::timeout};
    }

    // Backoff the loop is waiting on, measured from now.
    std::chrono::nanoseconds pending_wait() const {
        return clock_.next_deadline() - clock_.steady_now();
    }

    asio::io_context io_;
    asio::io_context parse_;
    test::ManualClock clock_;
    FakeApiServer api_;
    ApiServerPodSource source_;
    asio::cancellation_signal cancel_;
    std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
};

TEST_F(ApiServerPodSourceTest, ListsThenWatchesFromTheListResourceVersion) {
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1"), pod("b", "10.0.0.2")}, "4711")));
    run();
    ASSERT_EQ(api_.get_targets(), std::vector<std::string>{kList + "&resourceVersion=0"});
    ASSERT_EQ(api_.watch_targets(), std::vector<std::string>{watch_target("4711")});
    EXPECT_TRUE(api_.streaming());
    EXPECT_TRUE(source_.synced());
    EXPECT_EQ(api_.last_watch_deadline(), clock_.steady_now() + 330s);

    const auto first = list_now();
    ASSERT_TRUE(first);
    EXPECT_EQ(names(**first), (std::vector<std::string>{"a@10.0.0.1", "b@10.0.0.2"}));
    EXPECT_EQ(list_now()->get(), first->get());  // nothing changed: same pointer

    // Resource versions are opaque: neither numeric nor increasing.
    api_.send(event_json("ADDED", pod("c", "10.0.0.3", "x7")));
    api_.send(event_json("MODIFIED", pod("a", "10.0.0.9", "19")));
    api_.send(event_json("DELETED", pod("b", "10.0.0.2", "b2", "Succeeded")));
    api_.send(bookmark_json("zz9"));
    settle();
    const auto second = list_now();
    ASSERT_TRUE(second);
    EXPECT_NE(second->get(), first->get());
    EXPECT_EQ(names(**second), (std::vector<std::string>{"a@10.0.0.9", "c@10.0.0.3"}));
    EXPECT_EQ(source_.stats().events, 4U);
    EXPECT_EQ(source_.stats().pods, 2U);

    // A MODIFIED that changes nothing nmid reads keeps the pointer.
    api_.send(event_json("MODIFIED", pod("c", "10.0.0.3", "x8")));
    settle();
    EXPECT_EQ(list_now()->get(), second->get());

    // The server ends the watch at timeoutSeconds: watch again from the last version at once.
    clock_.advance(300s);
    api_.end(kube::StreamEnd::closed);
    settle();
    EXPECT_EQ(api_.watch_targets().back(), watch_target("x8"));
    EXPECT_EQ(api_.get_targets().size(), 1U);  // no relist
    EXPECT_EQ(source_.stats().watch_failures, 0U);
}

TEST_F(ApiServerPodSourceTest, ListWaitsForTheFirstListWithinItsDeadline) {
    run();  // the LIST is in flight: no answer yet
    auto early = start(io_, source_.list(clock_.steady_now() + 2s));
    settle();
    clock_.advance(1999ms);
    settle();
    EXPECT_FALSE(early->has_value());
    clock_.advance(1ms);
    settle();
    ASSERT_TRUE(early->has_value());
    EXPECT_EQ(early->value().error(), Errc::timeout);

    auto waiting = start(io_, source_.list(clock_.steady_now() + 2s));
    settle();
    EXPECT_FALSE(waiting->has_value());
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "10")));
    settle();
    ASSERT_TRUE(waiting->has_value());
    ASSERT_TRUE(waiting->value());
    EXPECT_EQ(names(*waiting->value().value()), std::vector<std::string>{"a@10.0.0.1"});
}

TEST_F(ApiServerPodSourceTest, ExpiredErrorEventRelistsAndReplacesThePodsWholesale) {
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1"), pod("b", "10.0.0.2")}, "100")));
    run();
    api_.send(
        event_json("ERROR", status_json(410, "Expired", "too old resource version: 100 (150)")));
    settle();
    ASSERT_EQ(api_.get_targets().size(), 2U);
    EXPECT_EQ(api_.get_targets()[1],
              kList + "&resourceVersion=100&resourceVersionMatch=NotOlderThan");
    EXPECT_FALSE(api_.streaming());

    // While relisting the source is known to be behind: list() waits.
    auto during = start(io_, source_.list(clock_.steady_now() + 2s));
    settle();
    EXPECT_FALSE(during->has_value());
    // b went away and d came while the watch was down; no DELETED was seen for b.
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1"), pod("d", "10.0.0.4")}, "200")));
    settle();
    ASSERT_TRUE(during->has_value());
    ASSERT_TRUE(during->value());
    EXPECT_EQ(names(*during->value().value()),
              (std::vector<std::string>{"a@10.0.0.1", "d@10.0.0.4"}));
    EXPECT_EQ(api_.watch_targets().back(), watch_target("200"));
    EXPECT_EQ(source_.stats().expired, 1U);
    EXPECT_EQ(source_.stats().lists, 2U);
}

TEST_F(ApiServerPodSourceTest, Http410OnTheWatchRelistsThenFallsBackToAQuorumList) {
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "100")));
    api_.push_watch_open(
        kube::WatchResult{410, status_json(410, "Expired", "too old"), kube::StreamEnd::closed});
    api_.push_get(kube::Response{410, status_json(410, "Expired", "too old"), ""});
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "300")));
    run();
    ASSERT_EQ(api_.get_targets(),
              (std::vector<std::string>{
                  kList + "&resourceVersion=0",
                  kList + "&resourceVersion=100&resourceVersionMatch=NotOlderThan", kList}));
    EXPECT_EQ(api_.watch_targets().back(), watch_target("300"));
    EXPECT_TRUE(api_.streaming());
    EXPECT_EQ(source_.stats().expired, 2U);
}

TEST_F(ApiServerPodSourceTest, DroppedStreamResumesFromTheLastVersionAfterADoublingBackoff) {
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "100")));
    run();
    api_.send(event_json("ADDED", pod("c", "10.0.0.3", "101")));
    api_.end(Errc::io_error);  // cut mid-stream
    settle();
    EXPECT_EQ(api_.watch_targets().size(), 1U);
    EXPECT_EQ(pending_wait(), 800ms);

    auto during = start(io_, source_.list(clock_.steady_now() + 2s));
    settle();
    EXPECT_FALSE(during->has_value());  // not believed fresh while the watch is down
    clock_.advance(800ms);
    settle();
    EXPECT_EQ(api_.watch_targets().back(), watch_target("101"));
    EXPECT_EQ(api_.get_targets().size(), 1U);  // resumed, not relisted
    ASSERT_TRUE(during->has_value());
    ASSERT_TRUE(during->value());
    EXPECT_EQ(names(*during->value().value()),
              (std::vector<std::string>{"a@10.0.0.1", "c@10.0.0.3"}));

    // Failures in a row double the delay; an event resets it.
    for (const auto expected : {1600ms, 3200ms, 6400ms}) {
        api_.end(Errc::io_error);
        settle();
        EXPECT_EQ(pending_wait(), expected);
        clock_.advance(expected);
        settle();
        EXPECT_TRUE(api_.streaming());
    }
    api_.send(bookmark_json("105"));
    api_.end(Errc::io_error);
    settle();
    EXPECT_EQ(pending_wait(), 800ms);
    clock_.advance(800ms);
    settle();
    EXPECT_EQ(api_.watch_targets().back(), watch_target("105"));
    EXPECT_EQ(source_.stats().watch_failures, 5U);
}

TEST_F(ApiServerPodSourceTest, BackoffIsCapped) {
    api_.push_get(ok(pod_list_json({}, "1")));
    run();
    std::chrono::nanoseconds last{};
    for (int i = 0; i < 8; ++i) {
        api_.end(Errc::io_error);
        settle();
        last = pending_wait();
        clock_.advance(last);
        settle();
    }
    EXPECT_EQ(last, 30s);
}

TEST_F(ApiServerPodSourceTest, ShortWatchWithoutEventsCountsAsAFailure) {
    api_.push_get(ok(pod_list_json({}, "1")));
    run();
    clock_.advance(999ms);
    api_.end(kube::StreamEnd::closed);
    settle();
    EXPECT_EQ(pending_wait(), 800ms);
    EXPECT_EQ(source_.stats().watch_failures, 1U);
}

TEST_F(ApiServerPodSourceTest, FailingSourceAnswersPodSourceFailedAtTheDeadline) {
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "1")));
    run();
    api_.end(Errc::io_error);
    settle();
    auto r = start(io_, source_.list(clock_.steady_now() + 500ms));
    settle();
    clock_.advance(500ms);
    settle();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(r->value().error(), Errc::pod_source_failed);
}

TEST_F(ApiServerPodSourceTest, FailedListBacksOffThenListsAgain) {
    api_.push_get(kube::Response{403, status_json(403, "Forbidden", "pods is forbidden"), ""});
    run();
    EXPECT_EQ(pending_wait(), 800ms);
    EXPECT_FALSE(source_.synced());
    api_.push_get(Errc::io_error);
    clock_.advance(800ms);
    settle();
    EXPECT_EQ(pending_wait(), 1600ms);
    api_.push_get(ok("{\"items\":[{"));  // unparseable
    clock_.advance(1600ms);
    settle();
    EXPECT_EQ(pending_wait(), 3200ms);
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "7")));
    clock_.advance(3200ms);
    settle();
    EXPECT_TRUE(source_.synced());
    EXPECT_EQ(api_.get_targets().size(), 4U);
    EXPECT_EQ(api_.get_targets()[1], kList + "&resourceVersion=0");  // no version known yet
    EXPECT_EQ(source_.stats().list_failures, 3U);
    EXPECT_EQ(api_.watch_targets().back(), watch_target("7"));
}

TEST_F(ApiServerPodSourceTest, OtherWatchStatusesBackOffAndRelist) {
    api_.push_get(ok(pod_list_json({}, "1")));
    api_.push_watch_open(kube::WatchResult{429, status_json(429, "TooManyRequests", "slow down"),
                                           kube::StreamEnd::closed});
    api_.push_watch_open(kube::WatchResult{500, "oops", kube::StreamEnd::closed});
    run();
    EXPECT_EQ(pending_wait(), 800ms);  // 429: back off, then watch again
    clock_.advance(800ms);
    settle();
    EXPECT_EQ(api_.watch_targets().size(), 2U);
    EXPECT_EQ(pending_wait(), 1600ms);  // 500: back off, then relist
    api_.push_get(ok(pod_list_json({}, "2")));
    clock_.advance(1600ms);
    settle();
    EXPECT_EQ(api_.get_targets().back(),
              kList + "&resourceVersion=1&resourceVersionMatch=NotOlderThan");
    EXPECT_EQ(api_.watch_targets().back(), watch_target("2"));
}

TEST_F(ApiServerPodSourceTest, CancellationStopsTheLoopAndClosesTheWatch) {
    api_.push_get(ok(pod_list_json({}, "1")));
    run();
    EXPECT_TRUE(api_.streaming());
    cancel_.emit(asio::cancellation_type::terminal);
    settle();
    EXPECT_TRUE(*stopped_);
    EXPECT_FALSE(api_.streaming());
}

TEST(ApiServerPodSourceJitter, BackoffIsStretchedWithinTheJitterBound) {
    std::set<std::chrono::nanoseconds::rep> seen;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        asio::io_context io;
        asio::io_context parse;
        test::ManualClock clock;
        FakeApiServer api;
        ApiServerPodSource source{io.get_executor(), api, clock, parse.get_executor(),
                                  settings(0.5, seed)};
        asio::cancellation_signal cancel;
        asio::co_spawn(io, source.run(),
                       asio::bind_cancellation_slot(cancel.slot(), asio::detached));
        api.push_get(ok(pod_list_json({}, "1")));
        for (int i = 0; i < 5; ++i) {
            poll(io);
            poll(parse);
        }
        api.end(Errc::io_error);
        poll(io);
        const auto wait = clock.next_deadline() - clock.steady_now();
        EXPECT_GE(wait, 800ms);
        EXPECT_LT(wait, 1200ms);
        seen.insert(wait.count());
        cancel.emit(asio::cancellation_type::terminal);
        poll(io);
    }
    EXPECT_GT(seen.size(), 10U);  // nodes do not retry in step
}

// The index over the API-server source: a pod the watch adds is found by the next lookup.
TEST_F(ApiServerPodSourceTest, IndexFindsAPodTheWatchAdded) {
    PodSettings ps;
    ps.freshness = Millis{1000};
    ps.min_refresh_interval = Millis{0};
    PodIndex index{io_.get_executor(), source_, clock_, ps};
    api_.push_get(ok(pod_list_json({pod("a", "10.0.0.1")}, "1")));
    run();
    api_.send(event_json("ADDED", pod("new", "10.0.0.7", "2")));
    settle();
    auto r = start(io_, index.find_fresh(asio::ip::make_address("10.0.0.7")));
    settle();
    ASSERT_TRUE(r->has_value());
    ASSERT_TRUE(r->value());
    EXPECT_EQ((*r->value())->name, "new");
}

}  // namespace
}  // namespace nmid
