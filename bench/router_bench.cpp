// DEPS: nmid_http
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "nmid/http/router.hpp"

namespace {

using nmid::http::query_param;
using nmid::http::route;

constexpr std::string_view kTokenTarget =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2F"
    "management.azure.com%2F&client_id=77788899-f67e-42e1-9a78-89985f6bff3e";

void BM_RouteToken(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(route(kTokenTarget));
    }
}
BENCHMARK(BM_RouteToken);

void BM_RouteInstance(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(route("/metadata/instance/compute?api-version=2021-02-01"));
    }
}
BENCHMARK(BM_RouteInstance);

void BM_RouteOddEncodedPath(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(route("/x/%2e%2e//Metadata/identity%5Coauth2%5Ctoken/"));
    }
}
BENCHMARK(BM_RouteOddEncodedPath);

void BM_RouteProxyLongPath(benchmark::State& state) {
    const std::string target = "/" + std::string(2048, 'a') + "?x=1";
    for (auto _ : state) {
        benchmark::DoNotOptimize(route(target));
    }
}
BENCHMARK(BM_RouteProxyLongPath);

void BM_QueryParamResource(benchmark::State& state) {
    const std::string_view query = route(kTokenTarget).query;
    for (auto _ : state) {
        benchmark::DoNotOptimize(query_param(query, "resource"));
    }
}
BENCHMARK(BM_QueryParamResource);

void BM_QueryParamAbsent(benchmark::State& state) {
    const std::string_view query = route(kTokenTarget).query;
    for (auto _ : state) {
        benchmark::DoNotOptimize(query_param(query, "msi_res_id"));
    }
}
BENCHMARK(BM_QueryParamAbsent);

}  // namespace

BENCHMARK_MAIN();
