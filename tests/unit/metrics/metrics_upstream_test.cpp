// Upstream, Kubernetes API and callback series.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "exposition.hpp"
#include "nmid/metrics/metrics.hpp"

namespace nmid::metrics {
namespace {

using namespace std::chrono_literals;
using namespace test;  // exposition.hpp

struct UpstreamCase {
    int status;
    bool ok;
    const char* label;
};

TEST(Metrics, UpstreamStatusIsClassified) {
    const UpstreamCase cases[] = {
        {200, true, "200"},  {429, false, "429"}, {403, false, "4xx"}, {400, false, "4xx"},
        {500, false, "5xx"}, {503, false, "5xx"}, {0, false, "error"}, {200, false, "error"},
    };
    for (const auto& c : cases) {
        Metrics metrics;
        metrics.record_upstream("imds", "adal_token_msi_userassignedid", c.status, c.ok, false,
                                5ms);
        const auto exposition = render(metrics);
        EXPECT_EQ(
            exposition.value("nmid_upstream_requests_total",
                             {{"source", "imds"}, {"status", c.label}, {"trigger", "request"}}),
            1)
            << c.status << " ok=" << c.ok;
    }
}

TEST(Metrics, UpstreamSourceAndTriggerLabels) {
    Metrics metrics;
    metrics.record_upstream("aad", "adal_token", 200, true, true, 5ms);
    metrics.record_upstream("ldap", "adal_token", 200, true, false, 5ms);

    const auto exposition = render(metrics);
    EXPECT_EQ(exposition.value("nmid_upstream_requests_total",
                               {{"source", "aad"}, {"status", "200"}, {"trigger", "refresh"}}),
              1);
    EXPECT_EQ(exposition.value("nmid_upstream_requests_total",
                               {{"source", "other"}, {"status", "200"}, {"trigger", "request"}}),
              1);
    EXPECT_EQ(exposition.value("nmid_upstream_request_duration_seconds_count", {{"source", "aad"}}),
              1);
    EXPECT_EQ(exposition.value("aadpodidentity_imds_operations_duration_seconds_count",
                               {{"operation_type", "adal_token"}}),
              2);
}

TEST(Metrics, WorkloadIdentitysExchangeHasItsOwnSource) {
    Metrics metrics;
    metrics.record_upstream("aad-federated", "other", 200, true, false, 5ms);
    metrics.record_upstream("aad-federated", "other", 400, false, false, 5ms);
    const auto exposition = render(metrics);
    EXPECT_EQ(
        exposition.value("nmid_upstream_requests_total",
                         {{"source", "aad-federated"}, {"status", "200"}, {"trigger", "request"}}),
        1);
    EXPECT_EQ(
        exposition.value("nmid_upstream_requests_total",
                         {{"source", "aad-federated"}, {"status", "4xx"}, {"trigger", "request"}}),
        1);
    EXPECT_FALSE(exposition
                     .value("nmid_upstream_requests_total",
                            {{"source", "other"}, {"status", "200"}, {"trigger", "request"}})
                     .has_value());
}

TEST(Metrics, UpstreamFailureCountsNmiErrorNotDuration) {
    Metrics metrics;
    metrics.record_upstream("imds", "adal_token_msi_userassignedid", 429, false, false, 5ms);
    metrics.record_upstream("imds", "adal_token_msi_userassignedid", 0, false, true, 5ms);

    const auto exposition = render(metrics);
    EXPECT_EQ(exposition.value("aadpodidentity_imds_operations_errors_count",
                               {{"operation_type", "adal_token_msi_userassignedid"}}),
              2);
    EXPECT_EQ(exposition.value("aadpodidentity_imds_operations_errors_count",
                               {{"operation_type", "adal_token_msi"}}),
              0);
    EXPECT_TRUE(exposition.named("aadpodidentity_imds_operations_duration_seconds_count").empty());
    EXPECT_EQ(exposition.types.at("aadpodidentity_imds_operations_errors_count"), "counter");
}

TEST(Metrics, KubernetesApiErrorsByOperationType) {
    Metrics metrics;
    metrics.count_kubernetes_api_error("get_pod_list");
    metrics.count_kubernetes_api_error("get_pod_list");
    metrics.count_kubernetes_api_error("get_secret");

    const auto exposition = render(metrics);
    for (const auto& sample :
         exposition.named("aadpodidentity_kubernetes_api_operations_errors_count")) {
        EXPECT_EQ(keys(sample.labels), (std::set<std::string>{"operation_type"}));
    }
    EXPECT_EQ(exposition.value("aadpodidentity_kubernetes_api_operations_errors_count",
                               {{"operation_type", "get_pod_list"}}),
              2);
    EXPECT_EQ(exposition.value("aadpodidentity_kubernetes_api_operations_errors_count",
                               {{"operation_type", "get_secret"}}),
              1);
}

TEST(Metrics, CallbackGaugesAndCountersAreReadAtScrapeTime) {
    Metrics metrics;
    std::atomic<double> entries{3};
    std::atomic<std::uint64_t> refreshes{7};
    metrics.add_gauge("nmid_cache_entries", "Tokens held in the cache.",
                      [&] { return entries.load(); });
    metrics.add_counter("nmid_pod_refreshes_total", "Pod index refreshes.",
                        [&] { return static_cast<double>(refreshes.load()); });

    auto exposition = render(metrics);
    EXPECT_EQ(exposition.types.at("nmid_cache_entries"), "gauge");
    EXPECT_EQ(exposition.types.at("nmid_pod_refreshes_total"), "counter");
    EXPECT_EQ(exposition.helps.at("nmid_cache_entries"), "Tokens held in the cache.");
    EXPECT_EQ(exposition.value("nmid_cache_entries", {}), 3);
    EXPECT_EQ(exposition.value("nmid_pod_refreshes_total", {}), 7);

    entries = 1.5;
    refreshes = 9;
    exposition = render(metrics);
    EXPECT_EQ(exposition.value("nmid_cache_entries", {}), 1.5);
    EXPECT_EQ(exposition.value("nmid_pod_refreshes_total", {}), 9);
}

TEST(Metrics, CallbackRegistrationRejectsBadOrDuplicateNames) {
    Metrics metrics;
    metrics.add_gauge("nmid_connections_active", "Open connections.", [] { return 0.0; });
    EXPECT_THROW(metrics.add_gauge("nmid_connections_active", "again", [] { return 0.0; }),
                 std::invalid_argument);
    EXPECT_THROW(metrics.add_counter("nmid_requests_total", "shadow", [] { return 0.0; }),
                 std::invalid_argument);
    EXPECT_THROW(metrics.add_gauge("bad name", "x", [] { return 0.0; }), std::invalid_argument);
    EXPECT_THROW(metrics.add_gauge("nmid_empty", "x", {}), std::invalid_argument);
}

TEST(Metrics, NmiErrorCountersExistBeforeFirstError) {
    Metrics metrics;
    const auto exposition = render(metrics);
    for (const char* op : {"adal_token_msi", "adal_token_msi_userassignedid", "adal_token"}) {
        EXPECT_EQ(exposition.value("aadpodidentity_imds_operations_errors_count",
                                   {{"operation_type", op}}),
                  0)
            << op;
    }
    EXPECT_EQ(exposition.value("aadpodidentity_kubernetes_api_operations_errors_count",
                               {{"operation_type", "get_secret"}}),
              0);
}

TEST(Metrics, ConcurrentRecordingLosesNothing) {
    Metrics metrics;
    constexpr int kThreads = 4;
    constexpr int kPerThread = 5000;
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&metrics, t] {
            for (int i = 0; i < kPerThread; ++i) {
                metrics.record_request("token", 200, i % 2 == 0 ? "hit" : "miss",
                                       "ns" + std::to_string(t), "r" + std::to_string(i % 100),
                                       1ms);
            }
        });
    }
    std::string scraped;
    for (int i = 0; i < 5; ++i) {
        scraped = metrics.render();  // scrapes race with recording
    }
    for (auto& thread : threads) {
        thread.join();
    }
    const auto exposition = render(metrics);
    double total = 0;
    for (const auto& sample : exposition.named("nmid_requests_total")) {
        total += sample.value;
    }
    EXPECT_EQ(total, kThreads * kPerThread);
    EXPECT_EQ(exposition.value("nmid_request_duration_seconds_count", {{"route", "token"}}),
              kThreads * kPerThread);
    EXPECT_FALSE(scraped.empty());
}

}  // namespace
}  // namespace nmid::metrics
