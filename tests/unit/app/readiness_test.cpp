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

}  // namespace
}  // namespace nmid::app
