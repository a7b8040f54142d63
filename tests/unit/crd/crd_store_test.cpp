#include "nmid/crd/crd_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

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
