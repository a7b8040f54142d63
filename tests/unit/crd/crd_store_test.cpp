#include "nmid/crd/crd_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <thread>

#include "support/manual_clock.hpp"

namespace nmid {
namespace {

CrdSnapshotPtr snapshot_with_identity(const std::string& name) {
    auto s = std::make_shared<CrdSnapshot>();
    s->identities.emplace_back();
    s->identities.back().meta.name = name;
    return s;
}

TEST(CrdStore, EmptyAndNotReadyBeforeFirstPublish) {
    const CrdStore store;
    const CrdSnapshotPtr s = store.snapshot();
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->identities.empty());
    EXPECT_FALSE(store.ready());
    EXPECT_EQ(store.generation(), 0U);
}

TEST(CrdStore, PublishReplacesSnapshotAndCountsGenerations) {
    CrdStore store;
    const CrdSnapshotPtr first = snapshot_with_identity("one");
    store.publish(first);
    EXPECT_EQ(store.snapshot(), first);
    EXPECT_TRUE(store.ready());
    EXPECT_EQ(store.generation(), 1U);

    const CrdSnapshotPtr held = store.snapshot();
    store.publish(snapshot_with_identity("two"));
    EXPECT_EQ(store.generation(), 2U);
    EXPECT_EQ(store.snapshot()->identities.at(0).meta.name, "two");
    // A reader's snapshot stays valid and unchanged after a publish.
    EXPECT_EQ(held->identities.at(0).meta.name, "one");
}

TEST(CrdStore, PublishingNullPublishesAnEmptySnapshot) {
    CrdStore store;
    store.publish(snapshot_with_identity("one"));
    store.publish(nullptr);
    ASSERT_NE(store.snapshot(), nullptr);
    EXPECT_TRUE(store.snapshot()->identities.empty());
    EXPECT_EQ(store.generation(), 2U);
}

TEST(CrdStore, ReadersOnOtherThreadsAlwaysSeeACompleteSnapshot) {
    CrdStore store;
    constexpr int kPublishes = 2000;
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::thread reader{[&] {
        std::uint64_t last_generation = 0;
        while (!stop.load()) {
            const std::uint64_t generation = store.generation();
            const CrdSnapshotPtr s = store.snapshot();
            if (s == nullptr || generation < last_generation ||
                (generation > 0 && s->identities.size() != 1)) {
                bad.fetch_add(1);
            }
            last_generation = generation;
        }
    }};
    for (int i = 0; i < kPublishes; ++i) {
        store.publish(snapshot_with_identity(std::to_string(i)));
    }
    stop.store(true);
    reader.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(store.generation(), static_cast<std::uint64_t>(kPublishes));
    EXPECT_EQ(store.snapshot()->identities.at(0).meta.name, std::to_string(kPublishes - 1));
}

}  // namespace
}  // namespace nmid

namespace nmid {
namespace {

using namespace std::chrono_literals;

struct WaitNewer : ::testing::Test {
    boost::asio::io_context ioc;
    test::ManualClock clock;
    CrdStore store;
    std::optional<std::uint64_t> result;

    void start(std::uint64_t seen, std::chrono::nanoseconds budget) {
        boost::asio::co_spawn(
            ioc,
            [this, seen, budget]() -> boost::asio::awaitable<void> {
                result = co_await store.wait_newer(
                    seen, clock,
                    clock.steady_now() + std::chrono::duration_cast<SteadyTime::duration>(budget));
            },
            boost::asio::detached);
        ioc.poll();
    }
};

TEST_F(WaitNewer, ReturnsAtOnceWhenANewerSnapshotIsAlreadyThere) {
    store.publish(snapshot_with_identity("one"));
    start(0, 10s);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, 1U);
    EXPECT_EQ(store.waiters(), 0U);
}

TEST_F(WaitNewer, WakesOnThePublishNotOnTheClock) {
    store.publish(snapshot_with_identity("one"));
    start(1, 80s);
    EXPECT_FALSE(result.has_value());
    EXPECT_EQ(store.waiters(), 1U);
    clock.advance(79s);
    ioc.poll();
    EXPECT_FALSE(result.has_value());
    store.publish(snapshot_with_identity("two"));
    ioc.poll();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, 2U);
    EXPECT_EQ(store.waiters(), 0U);
    EXPECT_EQ(clock.waiters(), 0U);  // the deadline wait was cancelled, not left behind
}

TEST_F(WaitNewer, GivesUpAtTheDeadlineWithTheSameGeneration) {
    store.publish(snapshot_with_identity("one"));
    start(1, 5s);
    clock.advance(4s);
    ioc.poll();
    EXPECT_FALSE(result.has_value());
    clock.advance(1s);
    ioc.poll();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, 1U);
    EXPECT_EQ(store.waiters(), 0U);
}

TEST_F(WaitNewer, APublishFromAnotherThreadWakesAllWaiters) {
    store.publish(snapshot_with_identity("one"));
    int woken = 0;
    for (int i = 0; i < 3; ++i) {
        boost::asio::co_spawn(
            ioc,
            [&]() -> boost::asio::awaitable<void> {
                co_await store.wait_newer(1, clock, clock.steady_now() + 60s);
                ++woken;
            },
            boost::asio::detached);
    }
    ioc.poll();
    EXPECT_EQ(store.waiters(), 3U);
    std::thread publisher{[&] { store.publish(snapshot_with_identity("two")); }};
    publisher.join();
    ioc.run_for(5s);  // bounded safety net: returns as soon as the three waiters finished
    EXPECT_EQ(woken, 3);
}

}  // namespace
}  // namespace nmid
