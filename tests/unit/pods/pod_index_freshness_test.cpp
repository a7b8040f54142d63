// PodIndex's freshness bound (find_fresh / try_find_fresh), alone and over the kubelet source.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kube_fakes.hpp"
#include "nmid/pods/kubelet_pod_source.hpp"
#include "nmid/pods/pod_index.hpp"
#include "support/fake_pod_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pods_test::poll;
using pods_test::start;
using test::make_pod;

using FindResult = Result<PodInfoPtr>;

PodSettings fresh_settings(Millis freshness, Millis min_refresh_interval = Millis{0}) {
    PodSettings s;
    s.poll_interval = Millis{1000};
    s.refresh_deadline = Millis{2000};
    s.min_refresh_interval = min_refresh_interval;
    s.freshness = freshness;
    return s;
}

asio::ip::address ip(const char* text) {
    return asio::ip::make_address(text);
}

std::string name_of(const FindResult& r) {
    return r ? (*r)->namespace_name + "/" + (*r)->name
             : std::string{"error:"} + std::string{to_string(static_cast<Errc>(r.error().value()))};
}

std::string name_of(const std::optional<FindResult>& r) {
    return r ? name_of(*r) : std::string{"wait"};
}

PodList pods(std::vector<PodInfo> list) {
    return PodList{std::move(list)};
}

class FreshnessTest : public ::testing::Test {
protected:
    explicit FreshnessTest(PodSettings settings = fresh_settings(1000ms))
        : index_(io_.get_executor(), source_, clock_, std::move(settings)) {}

    void refresh_ok() {
        auto r = start(io_, index_.refresh());
        poll(io_);
        ASSERT_TRUE(r->has_value());
        ASSERT_TRUE(r->value().has_value()) << r->value().error().message();
    }

    std::shared_ptr<std::optional<FindResult>> find_fresh(const char* a) {
        return start(io_, index_.find_fresh(ip(a)));
    }

    asio::io_context io_;
    test::ManualClock clock_;
    test::FakePodSource source_;
    PodIndex index_;
};

TEST_F(FreshnessTest, AReusedIpIsNeverServedAsTheOldPodOnceTheBoundPasses) {
    source_.set(pods({make_pod("team-a", "old", "10.0.0.5")}));
    refresh_ok();  // read started at T0
    const auto t0 = clock_.steady_now();
    EXPECT_EQ(index_.stats().fresh_as_of, t0);
    // The old pod ends and the IP goes to a new pod: the source changes right after T0.
    source_.set(pods({make_pod("team-b", "new", "10.0.0.5")}));

    // Inside the bound the old mapping may still be served: the documented window [T0, T0+F).
    clock_.advance(999ms);
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.5"))), "team-a/old");

    clock_.advance(1ms);  // T0 + F: the mapping is as old as the bound
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.5"))), "wait");
    EXPECT_EQ(name_of(index_.find(ip("10.0.0.5"))), "team-a/old");  // find() has no bound
    auto r = find_fresh("10.0.0.5");
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "team-b/new");
    EXPECT_EQ(source_.calls(), 2);  // one revalidating read (the one posted at T0 + 999 ms)
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.5"))), "team-b/new");
}

TEST_F(FreshnessTest, StaleMappingIsNotServedWhenRevalidationFails) {
    source_.set(pods({make_pod("team-a", "old", "10.0.0.5")}));
    refresh_ok();
    clock_.advance(1500ms);
    source_.fail_next(Errc::io_error);
    auto r = find_fresh("10.0.0.5");
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "error:pod_source_failed");
    EXPECT_EQ(source_.calls(), 2);
    EXPECT_EQ(index_.stats().stale_waits, 1U);
    EXPECT_EQ(name_of(index_.find(ip("10.0.0.5"))), "team-a/old");  // the snapshot is kept

    // The next read succeeds and confirms the same pod: served again.
    auto again = find_fresh("10.0.0.5");
    poll(io_);
    ASSERT_TRUE(again->has_value());
    EXPECT_EQ(name_of(**again), "team-a/old");
    EXPECT_EQ(source_.calls(), 3);
}

TEST_F(FreshnessTest, StaleWaitersTimeOutAtTheRefreshDeadline) {
    source_.set(pods({make_pod("team-a", "old", "10.0.0.5")}));
    refresh_ok();
    clock_.advance(1s);
    source_.hold();
    auto r = find_fresh("10.0.0.5");
    poll(io_);
    clock_.advance(1999ms);
    poll(io_);
    EXPECT_FALSE(r->has_value());
    clock_.advance(1ms);
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "error:timeout");
    source_.release();
    poll(io_);
}

TEST_F(FreshnessTest, SteadyTrafficRefreshesAheadSoRequestsNeverWait) {
    source_.set(pods({make_pod("default", "web", "10.0.0.1")}));
    refresh_ok();
    // Requests every 50 ms for 10 s; every read takes 300 ms (less than F/2).
    SteadyTime read_began{};
    int reads_seen = source_.calls();
    for (int step = 0; step < 200; ++step) {
        clock_.advance(50ms);
        poll(io_);
        if (source_.held() > 0 && clock_.steady_now() - read_began >= 300ms) {
            source_.release();
            poll(io_);
        }
        const auto answer = index_.try_find_fresh(ip("10.0.0.1"));
        ASSERT_EQ(name_of(answer), "default/web") << "step " << step;
        source_.hold();
        poll(io_);  // runs a posted refresh-ahead, which the source holds
        if (source_.calls() > reads_seen) {
            reads_seen = source_.calls();
            read_began = clock_.steady_now();
        }
    }
    const auto stats = index_.stats();
    EXPECT_EQ(stats.stale_waits, 0U);
    EXPECT_EQ(stats.misses, 0U);
    // One read per 500 ms: each starts when the snapshot reaches F/2.
    EXPECT_GE(stats.refreshes_ahead, 18U);
    EXPECT_LE(stats.refreshes_ahead, 20U);
    EXPECT_EQ(source_.calls(), 1 + static_cast<int>(stats.refreshes_ahead));
}

TEST_F(FreshnessTest, RequestsBeforeHalfTheBoundStartNoRead) {
    source_.set(pods({make_pod("default", "web", "10.0.0.1")}));
    refresh_ok();
    for (int i = 0; i < 10; ++i) {
        clock_.advance(49ms);
        EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "default/web");
        poll(io_);
    }
    EXPECT_EQ(source_.calls(), 1);
    clock_.advance(10ms);  // 500 ms: half the bound
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "default/web");
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "default/web");
    poll(io_);
    EXPECT_EQ(source_.calls(), 2);  // one read for both requests
    EXPECT_EQ(index_.stats().refreshes_ahead, 1U);
    EXPECT_EQ(index_.stats().fresh_as_of, clock_.steady_now());
}

TEST_F(FreshnessTest, StaleWaiterJoinsAReadThatBeganWithinTheBound) {
    source_.set(pods({make_pod("default", "web", "10.0.0.1")}));
    refresh_ok();
    clock_.advance(600ms);
    source_.hold();
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "default/web");
    poll(io_);  // the refresh-ahead read begins at T0 + 600 ms and is held
    EXPECT_EQ(source_.held(), 1U);
    clock_.advance(500ms);  // T0 + 1.1 s: stale
    auto r = find_fresh("10.0.0.1");
    poll(io_);
    EXPECT_FALSE(r->has_value());
    source_.release();
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "default/web");
    EXPECT_EQ(source_.calls(), 2);  // the read in flight was recent enough: no second read
    EXPECT_EQ(index_.stats().stale_waits, 1U);
    EXPECT_EQ(index_.stats().coalesced_waiters, 1U);
}

TEST_F(FreshnessTest, AmbiguityIsAnsweredFromAFreshSnapshotOnly) {
    source_.set(pods({make_pod("a", "old", "10.0.0.8", "Running"),
                      make_pod("b", "new", "10.0.0.8", "Pending")}));
    refresh_ok();
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.8"))), "error:pod_ip_ambiguous");
    clock_.advance(1s);
    source_.set(pods({make_pod("b", "new", "10.0.0.8", "Running")}));  // the old pod ended
    auto r = find_fresh("10.0.0.8");
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "b/new");
}

TEST_F(FreshnessTest, UnknownIpWaitsForAReadStartedAfterTheRequest) {
    refresh_ok();
    clock_.advance(100ms);
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "wait");
    source_.set(pods({make_pod("default", "new", "10.0.0.1")}));
    auto found = find_fresh("10.0.0.1");
    poll(io_);
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ(name_of(**found), "default/new");
    EXPECT_EQ(source_.calls(), 2);
    auto unknown = find_fresh("10.0.0.2");  // fresh snapshot, but a miss: one more read
    poll(io_);
    ASSERT_TRUE(unknown->has_value());
    EXPECT_EQ(name_of(**unknown), "error:pod_not_found");
    EXPECT_EQ(source_.calls(), 3);
    EXPECT_EQ(index_.stats().misses, 2U);
    EXPECT_EQ(index_.stats().stale_waits, 0U);
}

TEST_F(FreshnessTest, NothingIsFreshBeforeTheFirstRead) {
    source_.set(pods({make_pod("default", "web", "10.0.0.1")}));
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "wait");
    EXPECT_EQ(index_.stats().fresh_as_of, SteadyTime::min());
    auto r = find_fresh("10.0.0.1");
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "default/web");
}

class NoFreshnessTest : public FreshnessTest {
protected:
    NoFreshnessTest() : FreshnessTest(fresh_settings(0ms)) {}
};

TEST_F(NoFreshnessTest, ZeroFreshnessMeansNoBound) {
    source_.set(pods({make_pod("default", "web", "10.0.0.1")}));
    refresh_ok();
    clock_.advance(1h);
    EXPECT_EQ(name_of(index_.try_find_fresh(ip("10.0.0.1"))), "default/web");
    auto r = find_fresh("10.0.0.1");
    poll(io_);
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "default/web");
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_EQ(index_.stats().refreshes_ahead, 0U);
}

// The index over the real kubelet source and a fake kubelet.
class KubeletIndexTest : public ::testing::Test {
protected:
    KubeletIndexTest() : index_(io_.get_executor(), source_, clock_, fresh_settings(1000ms)) {}

    void run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 20 && !done(); ++i) {
            poll(io_);
            poll(parse_);
        }
    }

    asio::io_context io_;
    asio::io_context parse_;
    test::ManualClock clock_;
    pods_test::FakeKubelet kubelet_{clock_};
    KubeletPodSource source_{kubelet_, parse_.get_executor(), clock_};
    PodIndex index_;
};

TEST_F(KubeletIndexTest, PodAddedToTheKubeletListIsFoundOnTheNextMissThroughOneRead) {
    kubelet_.answer_pods({pods_test::pod_json("default", "web", "10.0.0.1")});
    auto first = start(io_, index_.refresh());
    run_until([&] { return first->has_value(); });
    ASSERT_TRUE(first->has_value() && first->value());

    kubelet_.answer_pods({pods_test::pod_json("default", "web", "10.0.0.1"),
                          pods_test::pod_json("default", "new", "10.0.0.2")});
    clock_.advance(100ms);
    std::vector<std::shared_ptr<std::optional<FindResult>>> waiters;
    waiters.reserve(20);
    for (int i = 0; i < 20; ++i) {
        waiters.push_back(start(io_, index_.find_fresh(ip("10.0.0.2"))));
    }
    run_until([&] { return waiters.back()->has_value(); });
    for (const auto& w : waiters) {
        ASSERT_TRUE(w->has_value());
        EXPECT_EQ(name_of(**w), "default/new");
    }
    EXPECT_EQ(kubelet_.calls(), 2);
    EXPECT_EQ(index_.stats().misses, 20U);
    EXPECT_EQ(index_.stats().coalesced_waiters, 19U);
    EXPECT_EQ(source_.stats().reads, 2U);
}

TEST_F(KubeletIndexTest, KubeletRefusalAfterTheBoundFailsClosed) {
    kubelet_.answer_pods({pods_test::pod_json("default", "web", "10.0.0.1")});
    auto first = start(io_, index_.refresh());
    run_until([&] { return first->has_value(); });
    clock_.advance(1s);
    kubelet_.answer(kube::Response{403, "Forbidden", ""});
    auto r = start(io_, index_.find_fresh(ip("10.0.0.1")));
    run_until([&] { return r->has_value(); });
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(**r), "error:pod_source_failed");
    EXPECT_EQ(source_.stats().last_status, 403);
}

}  // namespace
}  // namespace nmid
