#include "nmid/workload/lenders.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nmid::workload {
namespace {

PodInfo pod(std::string name, std::string ns, std::string sa, bool labelled) {
    PodInfo p;
    p.namespace_name = std::move(ns);
    p.name = std::move(name);
    p.uid = "uid-" + p.name;
    p.service_account = std::move(sa);
    p.phase = "Running";
    p.ips = {"10.0.0.1"};
    if (labelled) {
        p.labels["azure.workload.identity/use"] = "true";
    }
    return p;
}

std::vector<std::string> names(const std::vector<PodInfoPtr>& pods) {
    std::vector<std::string> out;
    out.reserve(pods.size());
    for (const auto& p : pods) {
        out.push_back(p->name);
    }
    return out;
}

TEST(Lenders, OptedInRunningPodsOfTheServiceAccountOnly) {
    auto list = std::make_shared<PodList>();
    list->pods.push_back(pod("web-0", "shop", "web", true));
    list->pods.push_back(pod("web-1", "shop", "web", false));     // not opted in
    list->pods.push_back(pod("other-0", "shop", "other", true));  // another ServiceAccount
    list->pods.push_back(pod("web-0", "bank", "web", true));      // another namespace
    PodInfo done = pod("web-2", "shop", "web", true);
    done.phase = "Succeeded";  // not in the index
    list->pods.push_back(done);
    PodInfo host = pod("web-3", "shop", "web", true);
    host.host_network = true;  // not in the index
    list->pods.push_back(host);
    PodInfo defaulted = pod("job-0", "shop", "", true);  // "default" ServiceAccount
    list->pods.push_back(defaulted);
    PodInfo projected = pod("web-4", "shop", "web", true);
    projected.token_projections.push_back({.volume = "azure-identity-token",
                                           .path = "azure-identity-token",
                                           .audience = "api://AzureADTokenExchange",
                                           .expiration_seconds = 3600});
    list->pods.push_back(projected);

    EXPECT_EQ(names(lenders(list, "shop", "web", false)),
              (std::vector<std::string>{"web-0", "web-4"}));
    EXPECT_EQ(names(lenders(list, "shop", "web", true)), (std::vector<std::string>{"web-4"}));
    EXPECT_EQ(names(lenders(list, "shop", "default", false)), (std::vector<std::string>{"job-0"}));
    EXPECT_TRUE(lenders(list, "shop", "nobody", false).empty());
    EXPECT_TRUE(lenders(nullptr, "shop", "web", false).empty());
    EXPECT_EQ(pod_uids(*list).size(), list->pods.size());
}

}  // namespace
}  // namespace nmid::workload
