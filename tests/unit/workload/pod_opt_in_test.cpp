#include <gtest/gtest.h>

#include "nmid/workload/constants.hpp"

namespace nmid::workload {
namespace {

PodInfo pod_with(std::map<std::string, std::string> labels, std::string service_account = {}) {
    PodInfo pod;
    pod.namespace_name = "apps";
    pod.name = "web-0";
    pod.labels = std::move(labels);
    pod.service_account = std::move(service_account);
    return pod;
}

TEST(PodOptIn, OnlyTheExactValueTrueSelectsThePod) {
    const struct {
        std::map<std::string, std::string> labels;
        bool expected;
    } cases[] = {
        {{{"azure.workload.identity/use", "true"}}, true},
        {{{"azure.workload.identity/use", "True"}}, false},
        {{{"azure.workload.identity/use", "1"}}, false},
        {{{"azure.workload.identity/use", "true "}}, false},
        {{{"azure.workload.identity/use", ""}}, false},
        {{{"Azure.workload.identity/use", "true"}}, false},
        {{{"aadpodidbinding", "true"}}, false},
        {{}, false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(uses_workload_identity(pod_with(c.labels)), c.expected)
            << (c.labels.empty() ? "(no labels)"
                                 : c.labels.begin()->first + "=" + c.labels.begin()->second);
    }
}

TEST(PodOptIn, ServiceAccountDefaultsToDefault) {
    EXPECT_EQ(service_account_of(pod_with({})), "default");
    EXPECT_EQ(service_account_of(pod_with({}, "reader")), "reader");
}

}  // namespace
}  // namespace nmid::workload
