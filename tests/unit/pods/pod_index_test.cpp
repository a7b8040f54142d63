#include "nmid/pods/pod_index.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_pod_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::make_pod;

// (Designated initializers that skip `pods_file` trip -Wmissing-field-initializers in g++ 12.)
PodSettings pod_settings(Millis min_refresh_interval, Millis poll_interval = Millis{1000},
                         Millis refresh_deadline = Millis{2000}) {
    PodSettings s;
    s.poll_interval = poll_interval;
    s.refresh_deadline = refresh_deadline;
    s.min_refresh_interval = min_refresh_interval;
    return s;
}

asio::ip::address ip(const char* text) {
    return asio::ip::make_address(text);
}

// Starts `op` on `ioc`; the returned slot is filled when it completes.
template <class T>
std::shared_ptr<std::optional<T>> start(asio::io_context& ioc, asio::awaitable<T> op,
                                        asio::cancellation_signal* cancel = nullptr) {
    auto out = std::make_shared<std::optional<T>>();
    auto done = [out](const std::exception_ptr& e, T value) {
        if (e) {
            std::rethrow_exception(e);
        }
        *out = std::move(value);
    };
    if (cancel != nullptr) {
        asio::co_spawn(ioc, std::move(op), asio::bind_cancellation_slot(cancel->slot(), done));
    } else {
        asio::co_spawn(ioc, std::move(op), done);
    }
    return out;
}

std::string name_of(const Result<PodInfoPtr>& r) {
    return r ? (*r)->namespace_name + "/" + (*r)->name
             : std::string{"error:"} + r.error().message();
}

class PodIndexTest : public ::testing::Test {
protected:
    // min_refresh_interval 0 unless a test is about it.
    explicit PodIndexTest(PodSettings settings = pod_settings(0ms))
        : index_(ioc_.get_executor(), source_, clock_, std::move(settings)) {}

    // Runs what is ready. restart(): an io_context that ran out of work stays stopped.
    void poll() {
        ioc_.restart();
        ioc_.poll();
    }

    void refresh_ok() {
        auto r = start(ioc_, index_.refresh());
        poll();
        ASSERT_TRUE(r->has_value());
        ASSERT_TRUE(r->value().has_value()) << r->value().error().message();
    }

    std::shared_ptr<std::optional<Result<PodInfoPtr>>> miss(
        const asio::ip::address& a, asio::cancellation_signal* c = nullptr) {
        return start(ioc_, index_.find_or_refresh(a), c);
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    test::FakePodSource source_;
    PodIndex index_;
};

TEST_F(PodIndexTest, EmptyAndNotReadyBeforeTheFirstRead) {
    EXPECT_FALSE(index_.ready());
    EXPECT_EQ(index_.find(ip("10.0.0.1")).error(), Errc::pod_not_found);
    EXPECT_EQ(source_.calls(), 0);
    EXPECT_EQ(index_.stats().misses, 0U);  // find() never waits, so it is not a miss
}

TEST_F(PodIndexTest, FindByNameCoversLivePodsIncludingHostNetwork) {
    PodList list;
    list.pods.push_back(make_pod("default", "web", "10.0.0.1", "Running"));
    auto hostnet = make_pod("kube-system", "proxy", "10.0.0.7");
    hostnet.host_network = true;
    list.pods.push_back(hostnet);
    list.pods.push_back(make_pod("default", "done", "10.0.0.4", "Succeeded"));
    source_.set(list);
    refresh_ok();
    auto web = index_.find_by_name("default", "web");
    ASSERT_TRUE(web);
    EXPECT_EQ((*web)->name, "web");
    auto proxy = index_.find_by_name("kube-system", "proxy");
    ASSERT_TRUE(proxy);
    EXPECT_TRUE((*proxy)->host_network);
    EXPECT_EQ(index_.find_by_name("default", "done").error(), Errc::pod_not_found);
    EXPECT_EQ(index_.find_by_name("other", "web").error(), Errc::pod_not_found);
    EXPECT_EQ(index_.find_by_name("default/we", "b").error(), Errc::pod_not_found);
}

struct LookupCase {
    const char* ip;
    std::string expected;  // "ns/name" or "error:<errc>"
};

TEST_F(PodIndexTest, IndexesOnlyLivePodNetworkPodsAndNeverGuesses) {
    PodList list;
    list.pods.push_back(make_pod("default", "running", "10.0.0.1", "Running"));
    list.pods.push_back(make_pod("default", "pending", "10.0.0.2", "Pending"));
    list.pods.push_back(make_pod("default", "no-phase", "10.0.0.3", ""));
    list.pods.push_back(make_pod("default", "succeeded", "10.0.0.4", "Succeeded"));
    list.pods.push_back(make_pod("default", "failed", "10.0.0.5", "Failed"));
    list.pods.push_back(make_pod("default", "unknown", "10.0.0.6", "Unknown"));
    auto hostnet = make_pod("kube-system", "proxy", "10.0.0.7");
    hostnet.host_network = true;
    list.pods.push_back(hostnet);
    list.pods.push_back(make_pod("a", "dup1", "10.0.0.8"));
    list.pods.push_back(make_pod("b", "dup2", "10.0.0.8"));
    list.pods.push_back(make_pod("old", "job", "10.0.0.9", "Succeeded"));
    list.pods.push_back(make_pod("new", "web", "10.0.0.9", "Running"));
    auto dual = make_pod("dual", "stack", "10.0.0.10");
    dual.ips.push_back("fd00::10");
    list.pods.push_back(dual);
    auto leaving = make_pod("default", "terminating", "10.0.0.11");
    leaving.terminating = true;  // still serves requests during its grace period
    list.pods.push_back(leaving);
    list.pods.push_back(make_pod("default", "no-ip", "", "Pending"));
    source_.set(list);
    refresh_ok();
    EXPECT_TRUE(index_.ready());

    const std::vector<LookupCase> table = {
        {"10.0.0.1", "default/running"},
        {"::ffff:10.0.0.1", "default/running"},
        {"10.0.0.2", "default/pending"},
        {"10.0.0.3", "default/no-phase"},
        {"10.0.0.4", "error:pod_not_found"},
        {"10.0.0.5", "error:pod_not_found"},
        {"10.0.0.6", "error:pod_not_found"},
        {"10.0.0.7", "error:pod_not_found"},
        {"10.0.0.8", "error:pod_ip_ambiguous"},
        {"::ffff:10.0.0.8", "error:pod_ip_ambiguous"},
        {"10.0.0.9", "new/web"},
        {"10.0.0.10", "dual/stack"},
        {"fd00::10", "dual/stack"},
        {"FD00:0:0::0010", "dual/stack"},
        {"10.0.0.11", "default/terminating"},
        {"10.0.0.99", "error:pod_not_found"},
        {"::10.0.0.1", "error:pod_not_found"},  // IPv4-compatible is not IPv4-mapped
    };
    for (const auto& c : table) {
        EXPECT_EQ(name_of(index_.find(ip(c.ip))), c.expected) << c.ip;
    }
    const auto stats = index_.stats();
    EXPECT_EQ(stats.pods, 8U);  // live pod-network pods with an IP (both claimants of .8)
    EXPECT_EQ(stats.ips, 8U);   // .1 .2 .3 .8 .9 .10 fd00::10 .11
    EXPECT_EQ(stats.refreshes, 1U);
}

TEST_F(PodIndexTest, AmbiguousIpDoesNotTriggerARead) {
    PodList list;
    list.pods.push_back(make_pod("a", "one", "10.0.0.8"));
    list.pods.push_back(make_pod("b", "two", "10.0.0.8"));
    source_.set(list);
    refresh_ok();
    auto r = miss(ip("10.0.0.8"));
    poll();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(r->value().error(), Errc::pod_ip_ambiguous);
    EXPECT_EQ(source_.calls(), 1);
}

TEST_F(PodIndexTest, ConcurrentMissesShareOneReadAndAllFindTheNewPod) {
    refresh_ok();  // empty node
    PodList list;
    list.pods.push_back(make_pod("default", "new", "10.1.0.1"));
    source_.set(list);
    source_.hold();

    std::vector<std::shared_ptr<std::optional<Result<PodInfoPtr>>>> waiters;
    waiters.reserve(100);
    for (int i = 0; i < 100; ++i) {
        waiters.push_back(miss(ip("10.1.0.1")));
    }
    poll();
    EXPECT_EQ(source_.calls(), 2);
    EXPECT_EQ(source_.held(), 1U);
    for (const auto& w : waiters) {
        EXPECT_FALSE(w->has_value());
    }

    source_.release();
    poll();
    for (const auto& w : waiters) {
        ASSERT_TRUE(w->has_value());
        EXPECT_EQ(name_of(w->value()), "default/new");
    }
    EXPECT_EQ(source_.calls(), 2);
    const auto stats = index_.stats();
    EXPECT_EQ(stats.misses, 100U);
    EXPECT_EQ(stats.coalesced_waiters, 99U);
    EXPECT_EQ(stats.refreshes, 2U);
    EXPECT_EQ(source_.last_deadline(), clock_.steady_now() + 2s);
}

TEST_F(PodIndexTest, WaitersTimeOutAtTheDeadlineWhileTheReadStaysHeld) {
    refresh_ok();
    source_.hold();
    auto first = miss(ip("10.1.0.1"));
    poll();
    clock_.advance(500ms);
    auto second = miss(ip("10.1.0.2"));  // joins the held read, with its own deadline
    poll();
    EXPECT_EQ(source_.calls(), 2);

    clock_.advance(1499ms);
    poll();
    EXPECT_FALSE(first->has_value());
    clock_.advance(1ms);
    poll();
    ASSERT_TRUE(first->has_value());
    EXPECT_EQ(first->value().error(), Errc::timeout);
    EXPECT_FALSE(second->has_value());
    clock_.advance(500ms);
    poll();
    ASSERT_TRUE(second->has_value());
    EXPECT_EQ(second->value().error(), Errc::timeout);
    EXPECT_EQ(source_.held(), 1U);  // the read is not abandoned with its waiters
    EXPECT_EQ(index_.stats().refreshes, 1U);

    source_.release();
    poll();
    EXPECT_EQ(index_.stats().refreshes, 2U);  // the late read still completes and counts
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(PodIndexTest, MissJoiningAReadBegunBeforeItWaitsForTheNextRead) {
    source_.hold();
    auto startup = start(ioc_, index_.refresh());
    poll();  // read 1 begins with an empty node
    PodList list;
    list.pods.push_back(make_pod("default", "new", "10.1.0.1"));
    source_.set(list);
    auto waiter = miss(ip("10.1.0.1"));
    poll();
    EXPECT_EQ(source_.calls(), 1);

    source_.release();
    poll();
    ASSERT_TRUE(startup->has_value());
    ASSERT_TRUE(waiter->has_value());
    EXPECT_EQ(name_of(waiter->value()), "default/new");
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(PodIndexTest, UnknownIpAfterAFreshReadIsNotFound) {
    refresh_ok();
    auto r = miss(ip("10.9.9.9"));
    poll();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(r->value().error(), Errc::pod_not_found);
    EXPECT_EQ(source_.calls(), 2);
}

TEST_F(PodIndexTest, FailedReadAnswersPodSourceFailedAndKeepsTheSnapshot) {
    PodList list;
    list.pods.push_back(make_pod("default", "known", "10.1.0.1"));
    source_.set(list);
    refresh_ok();
    source_.fail_next(Errc::parse_error);
    auto r = miss(ip("10.1.0.2"));
    poll();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(r->value().error(), Errc::pod_source_failed);
    EXPECT_EQ(name_of(index_.find(ip("10.1.0.1"))), "default/known");
    EXPECT_EQ(index_.stats().refresh_failures, 1U);
    EXPECT_EQ(index_.stats().refreshes, 1U);

    source_.fail_next(Errc::timeout);
    auto refreshed = start(ioc_, index_.refresh());
    poll();
    ASSERT_TRUE(refreshed->has_value());
    EXPECT_EQ(refreshed->value().error(), Errc::timeout);  // refresh() reports the source's error
}

TEST_F(PodIndexTest, CancelledWaiterLeavesTheReadRunning) {
    refresh_ok();
    source_.hold();
    asio::cancellation_signal cancel;
    auto r = miss(ip("10.1.0.1"), &cancel);
    poll();
    cancel.emit(asio::cancellation_type::terminal);
    poll();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(r->value().error(), Errc::cancelled);
    EXPECT_EQ(source_.held(), 1U);
    EXPECT_EQ(clock_.waiters(), 0U);  // the deadline wait was cancelled too
    source_.release();
    poll();
    EXPECT_EQ(index_.stats().refreshes, 2U);
}

TEST_F(PodIndexTest, PodInfoOutlivesTheSnapshotThatHeldIt) {
    PodList list;
    list.pods.push_back(make_pod("default", "old", "10.1.0.1"));
    source_.set(list);
    refresh_ok();
    const PodInfoPtr held = index_.find(ip("10.1.0.1")).value();

    source_.set(PodList{});
    refresh_ok();
    EXPECT_EQ(index_.find(ip("10.1.0.1")).error(), Errc::pod_not_found);
    EXPECT_EQ(held->name, "old");  // still valid: the pointer keeps its list alive
}

TEST_F(PodIndexTest, SnapshotFollowsTheSourcePointer) {
    PodList list;
    list.pods.push_back(make_pod("default", "p", "10.1.0.1"));
    source_.set(list);
    refresh_ok();
    const PodInfo* before = index_.find(ip("10.1.0.1")).value().get();
    refresh_ok();  // same pointer from the source
    EXPECT_EQ(index_.find(ip("10.1.0.1")).value().get(), before);
    source_.set(list);  // equal content, new pointer: rebuilt
    refresh_ok();
    EXPECT_NE(index_.find(ip("10.1.0.1")).value().get(), before);
    EXPECT_EQ(index_.stats().refreshes, 3U);
}

TEST_F(PodIndexTest, RunsOnAStrandForCallersOnAnotherExecutor) {
    PodIndex on_strand{asio::make_strand(ioc_), source_, clock_, pod_settings(0ms)};
    PodList list;
    list.pods.push_back(make_pod("default", "p", "10.1.0.1"));
    source_.set(list);
    auto r = start(ioc_, on_strand.find_or_refresh(ip("10.1.0.1")));
    poll();
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(name_of(r->value()), "default/p");
    EXPECT_TRUE(on_strand.ready());
}

class PodIndexMinIntervalTest : public PodIndexTest {
protected:
    PodIndexMinIntervalTest() : PodIndexTest(pod_settings(100ms)) {}
};

TEST_F(PodIndexMinIntervalTest, MissesSoonAfterAReadShareOneDelayedRead) {
    refresh_ok();
    std::vector<std::shared_ptr<std::optional<Result<PodInfoPtr>>>> waiters;
    for (int step = 0; step < 10; ++step) {  // an unknown IP hammering every 10 ms
        waiters.push_back(miss(ip("10.9.9.9")));
        poll();
        EXPECT_EQ(source_.calls(), 1) << step;
        clock_.advance(10ms);
        poll();
    }
    // 100 ms after the first read completed, one read serves them all.
    EXPECT_EQ(source_.calls(), 2);
    for (const auto& w : waiters) {
        ASSERT_TRUE(w->has_value());
        EXPECT_EQ(w->value().error(), Errc::pod_not_found);
    }

    auto next = miss(ip("10.9.9.9"));
    poll();
    EXPECT_EQ(source_.calls(), 2);
    clock_.advance(99ms);
    poll();
    EXPECT_EQ(source_.calls(), 2);
    clock_.advance(1ms);
    poll();
    EXPECT_EQ(source_.calls(), 3);
    ASSERT_TRUE(next->has_value());
}

TEST_F(PodIndexTest, RunReadsEveryPollIntervalUntilCancelled) {
    asio::cancellation_signal cancel;
    auto done = std::make_shared<bool>(false);
    asio::co_spawn(ioc_, index_.run(),
                   asio::bind_cancellation_slot(cancel.slot(), [done](const std::exception_ptr& e) {
                       EXPECT_FALSE(e);
                       *done = true;
                   }));
    poll();
    EXPECT_EQ(source_.calls(), 1);
    EXPECT_TRUE(index_.ready());
    clock_.advance(999ms);
    poll();
    EXPECT_EQ(source_.calls(), 1);
    clock_.advance(1ms);
    poll();
    EXPECT_EQ(source_.calls(), 2);

    PodList list;
    list.pods.push_back(make_pod("default", "polled", "10.1.0.1"));
    source_.set(list);
    clock_.advance(1s);
    poll();
    EXPECT_EQ(source_.calls(), 3);
    EXPECT_EQ(name_of(index_.find(ip("10.1.0.1"))), "default/polled");
    EXPECT_EQ(index_.stats().last_refresh, clock_.steady_now());

    source_.fail_next(Errc::pod_source_failed);  // a failure does not stop the loop
    clock_.advance(1s);
    poll();
    clock_.advance(1s);
    poll();
    EXPECT_EQ(source_.calls(), 5);
    EXPECT_EQ(index_.stats().refresh_failures, 1U);

    cancel.emit(asio::cancellation_type::terminal);
    poll();
    EXPECT_TRUE(*done);
    clock_.advance(10s);
    poll();
    EXPECT_EQ(source_.calls(), 5);
}

}  // namespace
}  // namespace nmid
