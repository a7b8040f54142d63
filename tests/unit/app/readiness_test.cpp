#include "nmid/app/readiness.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace nmid::app {
namespace {

using iptables::ReconcilerStats;

ReconcilerStats synced() {
    ReconcilerStats s;
    s.syncs = 1;
    s.in_sync = true;
    s.ever_in_sync = true;
    s.conntrack_done = true;
    return s;
}

// Issue 11, finding 7 / what to build 7: fail closed. A node that never got its rules, whose
// DNAT to loopback is dropped, or whose connections to IMDS from before the rules may still
// be open is not ready.
TEST(IptablesReadiness, Table) {
    struct Case {
        const char* name;
        std::optional<ReconcilerStats> stats;
        bool conntrack_deletion;
        bool ready;
        std::string detail_contains;
    };
    ReconcilerStats first_failed;
    first_failed.syncs = 1;
    first_failed.errors = 1;
    first_failed.consecutive_errors = 1;
    first_failed.last_error = "iptables-nft-save -t nat: exit status 4: Another app holds the lock";
    ReconcilerStats never = {};
    ReconcilerStats later_failed = synced();
    later_failed.in_sync = false;
    later_failed.last_error = "iptables-nft-restore: exit status 1";
    ReconcilerStats localnet = synced();
    localnet.route_localnet_warning = "net.ipv4.conf.all.route_localnet=0 drops DNAT to 127.0.0.1";
    ReconcilerStats conntrack_failed = synced();
    conntrack_failed.conntrack_done = false;
    conntrack_failed.errors = 1;
    conntrack_failed.last_error = "conntrack -D: exit status 1: Operation not permitted";
    ReconcilerStats conntrack_not_tried = synced();
    conntrack_not_tried.conntrack_done = false;

    const std::vector<Case> cases = {
        {"not managed", std::nullopt, true, true, "not managed"},
        {"in sync, conntrack done", synced(), true, true, ""},
        {"first sync failed", first_failed, true, false, "Another app holds the lock"},
        {"first sync failed, conntrack off", first_failed, false, false, "holds the lock"},
        {"no sync yet", never, true, false, "rules not synced yet"},
        {"verified once, later check failed", later_failed, true, true, "exit status 1"},
        {"route_localnet drops the DNAT", localnet, true, false, "route_localnet=0"},
        {"conntrack deletion failed", conntrack_failed, true, false, "Operation not permitted"},
        {"conntrack deletion not tried yet", conntrack_not_tried, true, false, "not tried yet"},
        {"conntrack deletion off", conntrack_failed, false, true, ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto check = iptables_readiness(c.stats, c.conntrack_deletion);
        EXPECT_EQ(check.name, "iptables");
        EXPECT_EQ(check.ready, c.ready) << check.detail;
        if (c.detail_contains.empty()) {
            EXPECT_EQ(check.detail, "");
        } else {
            EXPECT_NE(check.detail.find(c.detail_contains), std::string::npos) << check.detail;
        }
    }
}

// Refused identity objects are shown in /readyz by name and reason (never a secret), at most
// five of them, and never make nmid unready (the check's boolean is crd_store.ready()).
TEST(RejectionsDetail, NamesTheFirstFiveByKindNameAndReason) {
    EXPECT_EQ(rejections_detail({}), "");
    std::vector<RejectedIdentity> rejected;
    rejected.push_back({.kind = "AzureIdentity",
                        .namespace_name = "team-b",
                        .name = "steal",
                        .resource_version = "7",
                        .rejection = {.reason = RejectReason::cross_namespace_secret,
                                      .text = "secret team-a/creds"}});
    EXPECT_EQ(rejections_detail(rejected),
              "1 identity object(s) refused: AzureIdentity team-b/steal (cross_namespace_secret)");
    for (int i = 0; i < 5; ++i) {
        rejected.push_back({.kind = "AzureAssignedIdentity",
                            .namespace_name = "ns",
                            .name = "a" + std::to_string(i),
                            .resource_version = "1",
                            .rejection = {.reason = RejectReason::no_client_or_resource_id}});
    }
    const std::string detail = rejections_detail(rejected);
    EXPECT_EQ(detail.find("6 identity object(s) refused: AzureIdentity team-b/steal"), 0U)
        << detail;
    EXPECT_NE(detail.find("AzureAssignedIdentity ns/a3 (no_client_or_resource_id), ..."),
              std::string::npos)
        << detail;
    EXPECT_EQ(detail.find("a4"), std::string::npos) << detail;
    EXPECT_EQ(detail.find("secret team-a/creds"), std::string::npos) << detail;
}

}  // namespace
}  // namespace nmid::app
