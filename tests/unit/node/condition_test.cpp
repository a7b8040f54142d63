#include "nmid/node/condition.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nmid::node {
namespace {

using namespace std::chrono_literals;

TEST(NodeConditionTest, ReadyOnlyWhenEveryCheckPassesWithTheFailingChecksNamed) {
    EXPECT_EQ(from_checks({{"pods", true, ""}, {"crds", true, ""}}),
              (Condition{true, "NmidReady", "nmid is ready"}));
    EXPECT_EQ(from_checks({{"pods", false, "no successful read yet"},
                           {"crds", true, ""},
                           {"iptables", false, ""}}),
              (Condition{false, "NmidNotReady",
                         "nmid is not ready: pods: no successful read yet; iptables: not ready"}));
    const auto long_detail = from_checks({{"pods", false, std::string(5000, 'x')}});
    EXPECT_EQ(long_detail.message.size(), kMaxMessage);
}

TEST(NodeConditionTest, ThePatchSetsOneConditionByItsMergeKey) {
    const WallTime heartbeat = WallTime{} + 1'800'000'030s;
    const WallTime transition = WallTime{} + 1'800'000'000s;
    const auto patch = nlohmann::json::parse(status_patch(
        Condition{false, "NmidNotReady", "nmid is not ready: pods: \xff"}, heartbeat, transition));
    EXPECT_EQ(patch, nlohmann::json::parse(R"({"status":{"conditions":[{
                  "type":"NmidReady","status":"False","reason":"NmidNotReady",
                  "message":"nmid is not ready: pods: \ufffd",
                  "lastHeartbeatTime":"2027-01-15T08:00:30Z",
                  "lastTransitionTime":"2027-01-15T08:00:00Z"}]}})"));
}

TEST(NodeConditionTest, OnlyAValidNodeNameBecomesATarget) {
    EXPECT_EQ(status_target("aks-nodepool1-123-vmss000000"),
              "/api/v1/nodes/aks-nodepool1-123-vmss000000/status");
    EXPECT_EQ(status_target("ip-10-0-0-1.eu-west-1.compute.internal"),
              "/api/v1/nodes/ip-10-0-0-1.eu-west-1.compute.internal/status");
    for (const std::string& bad :
         std::vector<std::string>{"", "Node-1", "node/../../namespaces/x", "node?x=1", "-node",
                                  "node-", "a..b", "a.-b", std::string(254, 'a')}) {
        EXPECT_FALSE(status_target(bad)) << bad;
    }
}

TEST(NodeConditionTest, WritesOnFirstOnChangeAndOnHeartbeat) {
    const Condition ready{true, "NmidReady", "nmid is ready"};
    const Condition not_ready{false, "NmidNotReady", "x"};
    const SteadyTime t0{};
    EXPECT_TRUE(should_write(Written{}, ready, t0, 5min));
    const Written w{.condition = ready, .at = t0};
    EXPECT_FALSE(should_write(w, ready, t0 + 4min, 5min));
    EXPECT_TRUE(should_write(w, not_ready, t0 + 1s, 5min));
    EXPECT_TRUE(should_write(w, ready, t0 + 5min, 5min));
    Condition other_message = ready;
    other_message.message = "changed";
    EXPECT_TRUE(should_write(w, other_message, t0 + 1s, 5min));
}

}  // namespace
}  // namespace nmid::node
