// DEPS: nmid_metrics nmid_logging
// Hot-path cost of recording one request (metrics) and writing its audit line (logging).

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"

namespace {

using namespace std::chrono_literals;

// Steady state: the same labels on every call (a node serving one app's cached token).
void BM_RecordRequestSameLabels(benchmark::State& state) {
    nmid::metrics::Metrics metrics;
    for (auto _ : state) {
        metrics.record_request("token", 200, "hit", "default", "https://vault.azure.net", 80us);
    }
}
BENCHMARK(BM_RecordRequestSameLabels);

// A busier node: 8 namespaces x 4 resources, all already seen.
void BM_RecordRequestMixedLabels(benchmark::State& state) {
    nmid::metrics::Metrics metrics;
    std::vector<std::string> namespaces;
    std::vector<std::string> resources;
    namespaces.reserve(8);
    resources.reserve(4);
    for (int i = 0; i < 8; ++i) {
        namespaces.push_back("team-" + std::to_string(i));
    }
    for (int i = 0; i < 4; ++i) {
        resources.push_back("https://resource-" + std::to_string(i) + ".azure.net/");
    }
    std::size_t i = 0;
    for (auto _ : state) {
        metrics.record_request("token", 200, i % 5 == 0 ? "miss" : "hit", namespaces[i % 8],
                               resources[(i / 8) % 4], 80us);
        ++i;
    }
}
BENCHMARK(BM_RecordRequestMixedLabels);

void BM_RecordRequestProxy(benchmark::State& state) {
    nmid::metrics::Metrics metrics;
    for (auto _ : state) {
        metrics.record_request("proxy", 200, "", "", "", 2ms);
    }
}
BENCHMARK(BM_RecordRequestProxy);

void BM_RenderTypicalNode(benchmark::State& state) {
    nmid::metrics::Metrics metrics;
    for (int ns = 0; ns < 10; ++ns) {
        for (int r = 0; r < 3; ++r) {
            metrics.record_request("token", 200, "hit", "ns" + std::to_string(ns),
                                   "https://r" + std::to_string(r), 80us);
        }
    }
    metrics.record_upstream("imds", "adal_token_msi_userassignedid", 200, true, false, 20ms);
    metrics.add_gauge("nmid_cache_entries", "entries", [] { return 30.0; });
    for (auto _ : state) {
        benchmark::DoNotOptimize(metrics.render());
    }
}
BENCHMARK(BM_RenderTypicalNode);

// Arg 1: one pod's request again and again (each thread reuses its last line's formatted
// tail); arg 2: two pods alternating, so every line is formatted whole.
template <nmid::LogFormat Format>
void BM_AuditLine(benchmark::State& state) {
    auto out = std::make_shared<std::ostringstream>();
    nmid::logging::setup_for_test({.format = Format, .level = "info"}, out);
    const nmid::logging::AuditRecord first{.method = "GET",
                                           .path = "/metadata/identity/oauth2/token",
                                           .remote = "10.240.0.117",
                                           .status = 200,
                                           .took = 80us,
                                           .route = "token",
                                           .pod_namespace = "default",
                                           .pod_name = "app-7d9f8c6b5-x2x4z",
                                           .identity = "default/app-id",
                                           .cache = "hit"};
    nmid::logging::AuditRecord second = first;
    second.remote = "10.240.0.118";
    second.pod_name = "app-7d9f8c6b5-q8w2n";
    const std::array<nmid::logging::AuditRecord, 2> records{first, second};
    const auto kinds = static_cast<std::size_t>(state.range(0));
    std::size_t n = 0;
    for (auto _ : state) {
        nmid::logging::audit(records[n % kinds]);
        if (++n % 4096 == 0) {
            nmid::logging::flush();
            out->str("");  // keep memory flat; amortised over 4096 lines
        }
    }
    nmid::logging::flush();
}
BENCHMARK(BM_AuditLine<nmid::LogFormat::text>)->Arg(1)->Arg(2);
BENCHMARK(BM_AuditLine<nmid::LogFormat::json>)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
