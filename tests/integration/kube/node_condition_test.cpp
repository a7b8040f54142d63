// --node-condition end to end (issue 13 item 4): the real nmid against the fake API server's
// Node status subresource. NmidReady is False while nmid is not ready, True once it is (with
// kubelet's own conditions untouched), and False (NmidStopping) when it stops.
#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "kube_harness.hpp"

namespace nmid {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using test::KubeCluster;

class NodeCondition : public ::testing::Test {
protected:
    void SetUp() override {
        if (!KubeCluster::binaries_built()) {
            GTEST_SKIP() << "build nmid and imds-emulator first (scripts/build.sh)";
        }
        cluster_ = std::make_unique<KubeCluster>();
    }
    KubeCluster& c() { return *cluster_; }

    Json condition() {
        return c().on_fakes([&] { return c().node_status().condition("node-1", "NmidReady"); });
    }
    bool wait_status(const std::string& status, const std::string& reason) {
        return c().wait_fakes(
            [&] {
                const Json cond = c().node_status().condition("node-1", "NmidReady");
                return !cond.is_null() && cond.value("status", "") == status &&
                       cond.value("reason", "") == reason;
            },
            20s);
    }

    std::unique_ptr<KubeCluster> cluster_;
};

TEST_F(NodeCondition, FalseUntilReadyThenTrueAndFalseAgainWhenNmidStops) {
    c().on_fakes([&] {
        c().api().create("nodes", test::node_object("node-1"));
        // The identity list fails for a while: nmid is not ready at first.
        c().api().fail_next("azureidentities", 500, "InternalError", 3);
    });
    c().start_emulator({});
    c().start_nmid({"--node-condition"});

    ASSERT_TRUE(wait_status("False", "NmidNotReady")) << c().nmid().output();
    EXPECT_NE(condition().value("message", "").find("crds: no successful read"), std::string::npos)
        << condition().dump();
    ASSERT_TRUE(wait_status("True", "NmidReady")) << c().nmid().output();
    ASSERT_TRUE(c().wait_ready());

    c().on_fakes([&] {
        const Json ready = c().node_status().condition("node-1", "Ready");
        EXPECT_EQ(ready.value("status", ""), "True") << "kubelet's condition is kept";
        for (const auto& call : c().node_status().calls()) {
            EXPECT_EQ(call.content_type, "application/strategic-merge-patch+json");
            EXPECT_EQ(call.node, "node-1");
            EXPECT_EQ(call.status, 200);
        }
    });
    const auto metrics = test::http_get("127.0.0.1", c().probe_port(), "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("nmid_node_condition_ready 1"), std::string::npos);

    EXPECT_EQ(c().nmid().signal_and_wait(SIGTERM, 20s), 0);
    EXPECT_TRUE(wait_status("False", "NmidStopping")) << condition().dump();
}

TEST_F(NodeCondition, WithoutTheFlagNothingIsWritten) {
    c().on_fakes([&] { c().api().create("nodes", test::node_object("node-1")); });
    c().start_emulator({});
    c().start_nmid();
    ASSERT_TRUE(c().wait_ready());
    EXPECT_EQ(c().on_fakes([&] { return c().node_status().calls().size(); }), 0U);
}

}  // namespace
}  // namespace nmid
