// FairQueue: who is admitted next to the upstream budget.

#include "nmid/token/fair_queue.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace nmid {
namespace {

using P = FairQueue::Priority;

struct Push {
    std::string requester;
    FairQueue::Id id;
    P priority = P::miss;
};

struct AdmitRow {
    const char* name;
    std::size_t cap;
    std::vector<Push> pushes;
    std::vector<FairQueue::Id> admitted;  ///< in order, until admit() says nullopt
};

/// Admits until nothing more may run (nothing finishes in between).
std::vector<FairQueue::Id> admit_all(FairQueue& queue) {
    std::vector<FairQueue::Id> out;
    while (const auto id = queue.admit()) {
        out.push_back(*id);
    }
    return out;
}

TEST(FairQueue, AdmissionOrderTable) {
    const std::vector<AdmitRow> table = {
        {"one requester: arrival order", 0, {{"a", 1}, {"a", 2}, {"a", 3}}, {1, 2, 3}},
        {"two requesters alternate, whoever queued more",
         0,
         {{"a", 1}, {"a", 2}, {"a", 3}, {"a", 4}, {"b", 10}, {"b", 11}},
         {10, 1, 11, 2, 3, 4}},
        {"three requesters take turns",
         0,
         {{"a", 1}, {"a", 2}, {"b", 10}, {"b", 11}, {"c", 20}},
         {20, 10, 1, 11, 2}},
        {"misses before refreshes within a requester",
         0,
         {{"a", 1, P::background}, {"a", 2}, {"a", 3, P::background}, {"a", 4}},
         {2, 4, 1, 3}},
        {"a refresh of one requester is not behind another's misses",
         0,
         {{"a", 1}, {"a", 2}, {"a", 3}, {"b", 10, P::background}},
         {10, 1, 2, 3}},
        {"cap: at most 2 running per requester",
         2,
         {{"a", 1}, {"a", 2}, {"a", 3}, {"a", 4}, {"b", 10}},
         {10, 1, 2}},
        {"cap 1, two requesters", 1, {{"a", 1}, {"a", 2}, {"b", 10}, {"b", 11}}, {10, 1}},
        {"the unattributed requester is not capped",
         1,
         {{"", 1}, {"", 2}, {"", 3}, {"a", 10}, {"a", 11}},
         {10, 1, 2, 3}},
        {"nothing queued", 2, {}, {}},
    };
    for (const auto& row : table) {
        FairQueue queue(row.cap);
        for (const auto& p : row.pushes) {
            queue.push(p.requester, p.id, p.priority);
        }
        EXPECT_EQ(admit_all(queue), row.admitted) << row.name;
    }
}

TEST(FairQueue, VictimArrivingBehindAFloodIsAdmittedAtTheNextTurn) {
    FairQueue queue(0);  // no cap: round robin alone
    for (FairQueue::Id id = 1; id <= 400; ++id) {
        queue.push("attacker", id, P::miss);
    }
    EXPECT_EQ(queue.admit(), 1U);
    EXPECT_EQ(queue.admit(), 2U);
    queue.push("victim", 1000, P::miss);
    EXPECT_EQ(queue.admit(), 1000U);
    EXPECT_EQ(queue.admit(), 3U);
    EXPECT_EQ(queue.waiting(), 397U);
}

TEST(FairQueue, FinishedFreesASlotOfThatRequesterOnly) {
    FairQueue queue(1);
    queue.push("a", 1, P::miss);
    queue.push("a", 2, P::miss);
    queue.push("b", 10, P::miss);
    queue.push("b", 11, P::miss);
    EXPECT_EQ(admit_all(queue), (std::vector<FairQueue::Id>{10, 1}));
    EXPECT_EQ(queue.running("a"), 1U);
    queue.finished("b");
    EXPECT_EQ(admit_all(queue), (std::vector<FairQueue::Id>{11}));
    queue.finished("a");
    EXPECT_EQ(admit_all(queue), (std::vector<FairQueue::Id>{2}));
    EXPECT_EQ(queue.waiting(), 0U);
    queue.finished("a");
    queue.finished("b");
    EXPECT_EQ(queue.running("a"), 0U);
    EXPECT_EQ(queue.running("b"), 0U);
    queue.finished("nobody");  // ignored
}

TEST(FairQueue, EraseRemovesAWaitingCallAndKeepsTheTurns) {
    FairQueue queue(0);
    queue.push("a", 1, P::miss);
    queue.push("b", 10, P::miss);
    queue.push("b", 11, P::miss);
    EXPECT_TRUE(queue.erase(10));
    EXPECT_FALSE(queue.erase(10));
    EXPECT_FALSE(queue.erase(99));
    EXPECT_EQ(queue.waiting("b"), 1U);
    EXPECT_TRUE(queue.erase(11));
    EXPECT_EQ(queue.waiting("b"), 0U);
    EXPECT_EQ(admit_all(queue), (std::vector<FairQueue::Id>{1}));
}

TEST(FairQueue, PromotedRefreshGoesAfterTheMissesAlreadyWaiting) {
    FairQueue queue(0);
    queue.push("a", 1, P::background);
    queue.push("a", 2, P::background);
    queue.push("a", 3, P::miss);
    queue.promote(2);
    queue.promote(3);   // already a miss: no effect
    queue.promote(99);  // unknown: no effect
    EXPECT_EQ(admit_all(queue), (std::vector<FairQueue::Id>{3, 2, 1}));
}

TEST(FairQueue, ForgetsRequestersWithNothingWaitingOrRunning) {
    FairQueue queue(2);
    queue.push("a", 1, P::miss);
    EXPECT_EQ(queue.admit(), 1U);
    EXPECT_EQ(queue.running("a"), 1U);
    queue.finished("a");
    EXPECT_EQ(queue.running("a"), 0U);
    // A new lane for "a" starts from zero: two may run again.
    queue.push("a", 2, P::miss);
    queue.push("a", 3, P::miss);
    queue.push("a", 4, P::miss);
    EXPECT_EQ(admit_all(queue), (std::vector<FairQueue::Id>{2, 3}));
}

}  // namespace
}  // namespace nmid
