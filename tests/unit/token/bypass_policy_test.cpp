// bypass_cache=true's limit (issue 14): one forced fetch per requester and key per interval.
#include "nmid/token/bypass_policy.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace nmid::token_detail {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const SteadyTime t0{std::chrono::hours{1}};

struct Step {
    const char* requester;
    seconds at;     ///< after t0
    bool expected;  ///< may_force's answer (recorded when true)
};

struct Case {
    const char* name;
    seconds interval;
    std::size_t max_requesters;
    std::vector<Step> steps;
};

TEST(BypassPolicy, OneForcedFetchPerRequesterPerInterval) {
    const std::vector<Case> cases = {
        {"first_is_allowed_then_refused_inside_the_interval",
         minutes{5},
         kMaxForcingRequesters,
         {{"10.0.0.5", seconds{0}, true},
          {"10.0.0.5", seconds{1}, false},
          {"10.0.0.5", seconds{299}, false},
          {"10.0.0.5", seconds{300}, true},  // the interval has passed: allowed again
          {"10.0.0.5", seconds{301}, false}}},
        {"requesters_are_independent",
         minutes{5},
         kMaxForcingRequesters,
         {{"10.0.0.5", seconds{0}, true},
          {"10.0.0.6", seconds{1}, true},
          {"10.0.0.5", seconds{2}, false},
          {"10.0.0.6", seconds{3}, false}}},
        {"unattributed_requester_is_limited_too",
         minutes{5},
         kMaxForcingRequesters,
         {{"", seconds{0}, true}, {"", seconds{10}, false}}},
        {"zero_interval_allows_every_request",
         seconds{0},
         kMaxForcingRequesters,
         {{"10.0.0.5", seconds{0}, true}, {"10.0.0.5", seconds{0}, true}}},
        {"too_many_requesters_inside_one_interval",
         minutes{5},
         2,
         {{"a", seconds{0}, true},
          {"b", seconds{1}, true},
          {"c", seconds{2}, false},     // the key's log is full
          {"c", seconds{300}, true}}},  // a's record expired: room again
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        ForcedFetches log;
        for (const Step& step : c.steps) {
            const SteadyTime now = t0 + step.at;
            const bool allowed = may_force(log, step.requester, now, c.interval, c.max_requesters);
            EXPECT_EQ(allowed, step.expected) << step.requester << " at " << step.at.count();
            if (allowed) {
                record_forced(log, step.requester, now);
            }
        }
        EXPECT_LE(log.size(), c.max_requesters);
    }
}

TEST(BypassPolicy, ExpiredRecordsAreDropped) {
    ForcedFetches log;
    for (int i = 0; i < 10; ++i) {
        const std::string who = "10.0.0." + std::to_string(i);
        ASSERT_TRUE(may_force(log, who, t0, minutes{5}));
        record_forced(log, who, t0);
    }
    EXPECT_EQ(log.size(), 10U);
    EXPECT_TRUE(may_force(log, "10.0.0.99", t0 + minutes{5}, minutes{5}));
    EXPECT_TRUE(log.empty());  // the log of a key never outgrows one interval's forcers
}

}  // namespace
}  // namespace nmid::token_detail
