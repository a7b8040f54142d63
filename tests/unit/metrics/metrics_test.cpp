#include "nmid/metrics/metrics.hpp"

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

namespace nmid::metrics {
namespace {

using namespace std::chrono_literals;
using namespace test;  // exposition.hpp

const std::string kTokenPath = "/metadata/identity/oauth2/token";

TEST(Metrics, TokenRequestRecordsNmiHistogramWithExactLabelKeys) {
    Metrics metrics;
    metrics.record_request("token", 200, "hit", "default", "https://vault.azure.net", 2ms);

    const auto exposition = render(metrics);
    const auto counts = exposition.named("aadpodidentity_nmi_operations_duration_seconds_count");
    ASSERT_EQ(counts.size(), 1U);
    EXPECT_EQ(keys(counts[0].labels),
              (std::set<std::string>{"operation_type", "status_code", "namespace", "resource"}));
    EXPECT_EQ(counts[0].labels, (Labels{{"operation_type", kTokenPath},
                                        {"status_code", "200"},
                                        {"namespace", "default"},
                                        {"resource", "https://vault.azure.net"}}));
    EXPECT_EQ(counts[0].value, 1);
    EXPECT_EQ(exposition.types.at("aadpodidentity_nmi_operations_duration_seconds"), "histogram");
}

TEST(Metrics, HostTokenRouteUsesHostPathAsOperationType) {
    Metrics metrics;
    metrics.record_request("host_token", 404, "", "", "https://management.azure.com/", 1ms);

    const auto exposition = render(metrics);
    EXPECT_EQ(exposition.value("aadpodidentity_nmi_operations_duration_seconds_count",
                               {{"operation_type", "/host/token"},
                                {"status_code", "404"},
                                {"namespace", ""},
                                {"resource", "https://management.azure.com/"}}),
              1);
}

TEST(Metrics, OtherRoutesAreCountedButNotAsNmiOperations) {
    Metrics metrics;
    metrics.record_request("proxy", 502, "", "", "", 3ms);
    metrics.record_request("instance", 403, "", "", "", 1ms);

    const auto exposition = render(metrics);
    EXPECT_TRUE(exposition.named("aadpodidentity_nmi_operations_duration_seconds_count").empty());
    EXPECT_EQ(exposition.value("nmid_requests_total",
                               {{"route", "proxy"}, {"status", "502"}, {"cache", "none"}}),
              1);
    EXPECT_EQ(exposition.value("nmid_requests_total",
                               {{"route", "instance"}, {"status", "403"}, {"cache", "none"}}),
              1);
}

TEST(Metrics, RequestsTotalCountsByRouteStatusAndCache) {
    Metrics metrics;
    for (int i = 0; i < 3; ++i) {
        metrics.record_request("token", 200, "hit", "ns", "r", 10us);
    }
    metrics.record_request("token", 200, "miss", "ns", "r", 10ms);
    metrics.record_request("token", 503, "error", "ns", "r", 10ms);
    metrics.record_request("token", 42, "hit", "ns", "r", 10ms);

    const auto exposition = render(metrics);
    const auto value = [&](std::string status, std::string cache) {
        return exposition.value("nmid_requests_total",
                                {{"route", "token"}, {"status", status}, {"cache", cache}});
    };
    EXPECT_EQ(value("200", "hit"), 3);
    EXPECT_EQ(value("200", "miss"), 1);
    EXPECT_EQ(value("503", "error"), 1);
    EXPECT_EQ(value("other", "hit"), 1);
    EXPECT_EQ(exposition.value("nmid_request_duration_seconds_count", {{"route", "token"}}), 6);
    EXPECT_EQ(exposition.types.at("nmid_requests_total"), "counter");
}

TEST(Metrics, RepeatedAndAlternatingLabelsCountOnTheirOwnSeries) {
    // Repeats take a per-thread shortcut to the last series; every label change (and another
    // Metrics object) must still land on its own series.
    Metrics first;
    Metrics second;
    const std::vector<std::tuple<std::string, int, std::string, std::string, std::string>> calls = {
        {"token", 200, "hit", "ns", "r"},      {"token", 200, "hit", "ns", "r"},
        {"token", 200, "hit", "ns2", "r"},     {"token", 200, "hit", "ns", "r2"},
        {"token", 404, "hit", "ns", "r"},      {"token", 200, "miss", "ns", "r"},
        {"host_token", 200, "hit", "ns", "r"}, {"token", 200, "hit", "ns", "r"}};
    for (const auto& [route, status, cache, ns, resource] : calls) {
        first.record_request(route, status, cache, ns, resource, 10us);
        second.record_request(route, status, cache, ns, resource, 10us);
        second.record_request(route, status, cache, ns, resource, 10us);
    }
    const auto one = render(first);
    const auto two = render(second);
    const Labels hit{{"route", "token"}, {"status", "200"}, {"cache", "hit"}};
    EXPECT_EQ(one.value("nmid_requests_total", hit), 5);
    EXPECT_EQ(two.value("nmid_requests_total", hit), 10);
    const auto nmi = [](const Exposition& e, const std::string& op, const std::string& status,
                        const std::string& ns, const std::string& resource) {
        return e.value("aadpodidentity_nmi_operations_duration_seconds_count",
                       {{"operation_type", op},
                        {"status_code", status},
                        {"namespace", ns},
                        {"resource", resource}});
    };
    EXPECT_EQ(nmi(one, "/metadata/identity/oauth2/token", "200", "ns", "r"), 4);
    EXPECT_EQ(nmi(one, "/metadata/identity/oauth2/token", "200", "ns2", "r"), 1);
    EXPECT_EQ(nmi(one, "/metadata/identity/oauth2/token", "200", "ns", "r2"), 1);
    EXPECT_EQ(nmi(one, "/metadata/identity/oauth2/token", "404", "ns", "r"), 1);
    EXPECT_EQ(nmi(one, "/host/token", "200", "ns", "r"), 1);
    EXPECT_EQ(nmi(two, "/metadata/identity/oauth2/token", "200", "ns", "r"), 8);
    EXPECT_EQ(one.value("nmid_request_duration_seconds_count", {{"route", "token"}}), 7);
    EXPECT_EQ(one.value("nmid_request_duration_seconds_count", {{"route", "host_token"}}), 1);
}

TEST(Metrics, RequestHistogramsCountEdgesAsLessOrEqualAndSumEveryThreadsObservations) {
    Metrics metrics;
    // An observation on an edge belongs to that edge's bucket (le), as in prometheus-cpp.
    metrics.record_request("token", 200, "hit", "ns", "r", 100us);
    metrics.record_request("token", 200, "hit", "ns", "r", 20s);  // past the last edge
    constexpr int kPerThread = 5000;
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&metrics] {
            for (int i = 0; i < kPerThread; ++i) {
                metrics.record_request("token", 200, "hit", "ns", "r", 1ms);
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    const auto exposition = parse(metrics.render());
    const Labels route{{"route", "token"}};
    const auto bucket = [&](const char* le) {
        Labels labels = route;
        labels["le"] = le;
        return exposition.value("nmid_request_duration_seconds_bucket", labels);
    };
    EXPECT_EQ(bucket("5e-05"), 0);
    EXPECT_EQ(bucket("0.0001"), 1);
    EXPECT_EQ(bucket("0.001"), 1 + 4 * kPerThread);
    EXPECT_EQ(bucket("10"), 1 + 4 * kPerThread);
    EXPECT_EQ(bucket("+Inf"), 2 + 4 * kPerThread);
    EXPECT_EQ(exposition.value("nmid_request_duration_seconds_count", route), 2 + 4 * kPerThread);
    EXPECT_NEAR(exposition.value("nmid_request_duration_seconds_sum", route).value_or(-1),
                100e-6 + 20 + 4 * kPerThread * 1e-3, 1e-9);
    const Labels nmi{{"operation_type", "/metadata/identity/oauth2/token"},
                     {"status_code", "200"},
                     {"namespace", "ns"},
                     {"resource", "r"}};
    EXPECT_EQ(exposition.value("aadpodidentity_nmi_operations_duration_seconds_count", nmi),
              2 + 4 * kPerThread);
}

TEST(Metrics, RequestDurationBucketsStartAtFiftyMicroseconds) {
    Metrics metrics;
    metrics.record_request("token", 200, "hit", "ns", "r", 30us);
    metrics.record_request("token", 200, "hit", "ns", "r", 700us);

    const std::string text = metrics.render();
    const auto exposition = parse(text);
    const auto buckets = exposition.named("nmid_request_duration_seconds_bucket");
    ASSERT_FALSE(buckets.empty());
    EXPECT_EQ(buckets.front().labels.at("le"), "5e-05");
    EXPECT_EQ(buckets.front().value, 1);  // the 30 µs request
    EXPECT_EQ(exposition.value("nmid_request_duration_seconds_bucket",
                               {{"route", "token"}, {"le", "0.0005"}}),
              1);
    EXPECT_EQ(exposition.value("nmid_request_duration_seconds_bucket",
                               {{"route", "token"}, {"le", "0.001"}}),
              2);
    std::vector<std::string> edges;
    edges.reserve(buckets.size());
    for (const auto& bucket : buckets) {
        edges.push_back(bucket.labels.at("le"));
    }
    EXPECT_EQ(edges, (std::vector<std::string>{"5e-05", "0.0001", "0.00025", "0.0005", "0.001",
                                               "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                               "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}));
}

TEST(Metrics, NmiHistogramsKeepNmiBuckets) {
    Metrics metrics;
    metrics.record_request("token", 200, "miss", "ns", "r", 1ms);
    metrics.record_upstream("imds", "adal_token_msi_userassignedid", 200, true, false, 15ms);

    const auto exposition = render(metrics);
    std::vector<std::string> nmi;
    for (const auto& bucket :
         exposition.named("aadpodidentity_nmi_operations_duration_seconds_bucket")) {
        nmi.push_back(bucket.labels.at("le"));
    }
    EXPECT_EQ(
        nmi, (std::vector<std::string>{"0.5", "1", "2", "3", "4", "5", "10", "15", "20", "25", "30",
                                       "40", "50", "60", "70", "80", "90", "100", "+Inf"}));
    std::vector<std::string> imds;
    for (const auto& bucket :
         exposition.named("aadpodidentity_imds_operations_duration_seconds_bucket")) {
        imds.push_back(bucket.labels.at("le"));
        EXPECT_EQ(keys(bucket.labels), (std::set<std::string>{"operation_type", "le"}));
    }
    EXPECT_EQ(imds, (std::vector<std::string>{"0.01", "0.02", "0.05", "0.1", "0.2", "0.3", "0.4",
                                              "0.5", "0.6", "0.7", "0.8", "0.9", "1", "2", "3", "4",
                                              "5", "10", "+Inf"}));
    EXPECT_EQ(
        exposition.value("aadpodidentity_imds_operations_duration_seconds_bucket",
                         {{"operation_type", "adal_token_msi_userassignedid"}, {"le", "0.01"}}),
        0);
    EXPECT_EQ(
        exposition.value("aadpodidentity_imds_operations_duration_seconds_bucket",
                         {{"operation_type", "adal_token_msi_userassignedid"}, {"le", "0.02"}}),
        1);
}

TEST(Metrics, ResourceLabelIsBoundedThenOther) {
    Metrics metrics;
    const int distinct = static_cast<int>(kMaxRequestLabelValues) + 6;
    for (int i = 0; i < distinct; ++i) {
        metrics.record_request("token", 200, "hit", "ns", "https://r" + std::to_string(i), 1ms);
    }
    metrics.record_request("token", 200, "hit", "ns", "https://r0", 1ms);  // known: kept

    const auto exposition = render(metrics);
    const auto counts = exposition.named("aadpodidentity_nmi_operations_duration_seconds_count");
    std::set<std::string> resources;
    double other = 0;
    for (const auto& count : counts) {
        resources.insert(count.labels.at("resource"));
        if (count.labels.at("resource") == "other") {
            other = count.value;
        }
    }
    EXPECT_EQ(resources.size(), kMaxRequestLabelValues + 1);
    EXPECT_TRUE(resources.contains("https://r63"));
    EXPECT_FALSE(resources.contains("https://r64"));
    EXPECT_EQ(other, 6);
    EXPECT_EQ(exposition.value("aadpodidentity_nmi_operations_duration_seconds_count",
                               {{"operation_type", kTokenPath},
                                {"status_code", "200"},
                                {"namespace", "ns"},
                                {"resource", "https://r0"}}),
              2);
}

TEST(Metrics, NamespaceLabelIsBoundedThenOther) {
    Metrics metrics;
    for (std::size_t i = 0; i < kMaxRequestLabelValues + 3; ++i) {
        metrics.record_request("token", 200, "hit", "ns" + std::to_string(i), "r", 1ms);
    }

    const auto exposition = render(metrics);
    EXPECT_EQ(exposition.value("aadpodidentity_nmi_operations_duration_seconds_count",
                               {{"operation_type", kTokenPath},
                                {"status_code", "200"},
                                {"namespace", "other"},
                                {"resource", "r"}}),
              3);
    EXPECT_EQ(exposition.named("aadpodidentity_nmi_operations_duration_seconds_count").size(),
              kMaxRequestLabelValues + 1);
}

TEST(Metrics, RouteAndCacheLabelsAreBounded) {
    Metrics metrics;
    for (int i = 0; i < 40; ++i) {
        metrics.record_request("route" + std::to_string(i), 200, "c" + std::to_string(i), "", "",
                               1ms);
    }

    const auto exposition = render(metrics);
    std::set<std::string> routes;
    std::set<std::string> caches;
    for (const auto& sample : exposition.named("nmid_requests_total")) {
        routes.insert(sample.labels.at("route"));
        caches.insert(sample.labels.at("cache"));
    }
    EXPECT_LE(routes.size(), 17U);
    EXPECT_TRUE(routes.contains("other"));
    EXPECT_LE(caches.size(), 17U);
    EXPECT_TRUE(caches.contains("other"));
}

TEST(Metrics, UntrustedResourceCannotBreakExposition) {
    Metrics metrics;
    const std::string nasty =
        std::string{"a\"b\\c\nd\r\x01"} + "\xff\xfe" + "\xc3\xa9" + std::string(1000, 'x');
    metrics.record_request("token", 200, "hit", "ns", nasty, 1ms);

    const auto exposition = render(metrics);
    const auto counts = exposition.named("aadpodidentity_nmi_operations_duration_seconds_count");
    ASSERT_EQ(counts.size(), 1U);
    const std::string& resource = counts[0].labels.at("resource");
    EXPECT_TRUE(resource.starts_with("a\"b\\c?d????\xc3\xa9xxx")) << resource;
    EXPECT_LE(resource.size(), 256U);
}

}  // namespace
}  // namespace nmid::metrics
