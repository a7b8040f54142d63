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

namespace nmid::metrics {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

struct Exposition {
    std::map<std::string, std::string> types;  // family -> counter|gauge|histogram
    std::map<std::string, std::string> helps;
    std::vector<Sample> samples;
    std::vector<std::string> errors;

    [[nodiscard]] std::optional<double> value(const std::string& name, const Labels& labels) const {
        for (const auto& sample : samples) {
            if (sample.name == name && sample.labels == labels) {
                return sample.value;
            }
        }
        return std::nullopt;
    }
    [[nodiscard]] std::vector<Sample> named(const std::string& name) const {
        std::vector<Sample> out;
        for (const auto& sample : samples) {
            if (sample.name == name) {
                out.push_back(sample);
            }
        }
        return out;
    }
};

bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

std::string family_of(const std::string& sample, const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s{suffix};
        if (sample.size() > s.size() && sample.ends_with(s)) {
            std::string base = sample.substr(0, sample.size() - s.size());
            if (auto it = types.find(base); it != types.end() && it->second == "histogram") {
                return base;
            }
        }
    }
    return sample;
}

// A strict reader of text format 0.0.4: every line is a HELP, a TYPE or a sample of a family
// whose HELP and TYPE came before it.
Exposition parse(const std::string& text) {
    Exposition out;
    std::istringstream in{text};
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const auto fail = [&](const std::string& why) {
            std::string message = "line " + std::to_string(number) + ": ";
            message.append(why).append(": ").append(line);
            out.errors.push_back(std::move(message));
        };
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const std::string rest = line.substr(7);
            const auto space = rest.find(' ');
            if (space == std::string::npos || space == 0) {
                fail("no metric name");
                continue;
            }
            const std::string name = rest.substr(0, space);
            if (line[2] == 'H') {
                out.helps[name] = rest.substr(space + 1);
            } else {
                const std::string type = rest.substr(space + 1);
                if (type != "counter" && type != "gauge" && type != "histogram") {
                    fail("bad type");
                }
                if (!out.helps.contains(name)) {
                    fail("TYPE before HELP");
                }
                out.types[name] = type;
            }
            continue;
        }
        Sample sample;
        std::size_t i = 0;
        while (i < line.size() && is_name_char(line[i], i == 0)) {
            ++i;
        }
        if (i == 0) {
            fail("no sample name");
            continue;
        }
        sample.name = line.substr(0, i);
        if (i < line.size() && line[i] == '{') {
            ++i;
            bool ok = true;
            while (ok && i < line.size() && line[i] != '}') {
                const std::size_t start = i;
                while (i < line.size() && is_name_char(line[i], i == start)) {
                    ++i;
                }
                if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
                    ok = false;
                    break;
                }
                const std::string key = line.substr(start, i - start);
                i += 2;
                std::string value;
                while (i < line.size() && line[i] != '"') {
                    if (line[i] == '\\') {
                        if (i + 1 >= line.size()) {
                            ok = false;
                            break;
                        }
                        const char e = line[i + 1];
                        if (e == 'n') {
                            value.push_back('\n');
                        } else if (e == '\\' || e == '"') {
                            value.push_back(e);
                        } else {
                            ok = false;
                        }
                        i += 2;
                    } else {
                        value.push_back(line[i++]);
                    }
                }
                if (i >= line.size()) {
                    ok = false;
                    break;
                }
                ++i;  // closing quote
                if (!sample.labels.emplace(key, value).second) {
                    ok = false;
                }
                if (i < line.size() && line[i] == ',') {
                    ++i;
                }
            }
            if (!ok || i >= line.size()) {
                fail("bad labels");
                continue;
            }
            ++i;  // '}'
        }
        if (i >= line.size() || line[i] != ' ') {
            fail("no value");
            continue;
        }
        const std::string value = line.substr(i + 1);
        std::size_t used = 0;
        try {
            sample.value =
                value == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(value, &used);
        } catch (const std::exception&) {
            fail("bad value");
            continue;
        }
        if (value != "+Inf" && used != value.size()) {
            fail("trailing bytes after value");
            continue;
        }
        const std::string family = family_of(sample.name, out.types);
        if (!out.types.contains(family)) {
            fail("sample without TYPE");
        }
        out.samples.push_back(std::move(sample));
    }
    return out;
}

std::set<std::string> keys(const Labels& labels) {
    std::set<std::string> out;
    for (const auto& [key, value] : labels) {
        out.insert(key);
    }
    return out;
}

Exposition render(const Metrics& metrics) {
    const std::string text = metrics.render();
    Exposition exposition = parse(text);
    EXPECT_TRUE(exposition.errors.empty()) << ::testing::PrintToString(exposition.errors) << "\n"
                                           << text;
    return exposition;
}

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
