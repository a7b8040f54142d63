// DEPS: nmid_identity
//
// The resolver on a cluster-sized snapshot: 50 namespaces x 20 identities and 20 bindings
// (1,000 of each) and one exception per namespace. The `allocs` counter is heap allocations
// per resolve (the hit path must make none).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <tuple>

#include "nmid/identity/resolver.hpp"

// The C++ Core Guidelines' ownership annotation (what the GSL defines, without the GSL):
// `owner<T*>` is T*, and marks the pointers below as owning for clang-tidy's
// cppcoreguidelines-owning-memory.
namespace gsl {
template <class T>
using owner = T;
}  // namespace gsl

namespace {

std::atomic<std::size_t> g_allocations{0};

}  // namespace

// Counts every allocation of the process; only differences around the timed loop are used.
// g++ sees the free() below inlined where `new` was called and flags the (intended) pairing.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
gsl::owner<void*> operator new(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (gsl::owner<void*> p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc{};
}
void operator delete(gsl::owner<void*> p) noexcept {
    std::free(p);
}
void operator delete(gsl::owner<void*> p, std::size_t) noexcept {
    std::free(p);
}

namespace nmid::identity {
namespace {

constexpr int kNamespaces = 50;
constexpr int kPerNamespace = 20;

std::string two_digits(int i) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d", i);
    return buf;
}

std::string resource_id(const std::string& ns, const std::string& name) {
    return "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-" + ns +
           "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name;
}

std::string client_id(int ns, int i) {
    return "00000000-0000-0000-" + two_digits(ns) + "00-0000000000" + two_digits(i);
}

const CrdSnapshot& snapshot() {
    static const CrdSnapshot s = [] {
        CrdSnapshot s;
        for (int n = 0; n < kNamespaces; ++n) {
            const std::string ns = "team-" + two_digits(n);
            for (int i = 0; i < kPerNamespace; ++i) {
                const std::string name = "identity-" + two_digits(i);
                AzureIdentity id;
                id.meta.namespace_name = ns;
                id.meta.name = name;
                id.client_id = client_id(n, i);
                id.resource_id = resource_id(ns, name);
                s.identities.push_back(id);

                AzureIdentityBinding b;
                b.meta.namespace_name = ns;
                b.meta.name = name + "-binding";
                b.azure_identity = name;
                b.selector = "app-" + two_digits(i);
                s.bindings.push_back(b);

                AzureAssignedIdentity a;
                a.meta.namespace_name = "default";
                a.meta.name = "pod-" + two_digits(i);
                a.meta.name.append("-").append(ns).append("-").append(name);
                a.identity_ref = id;
                a.pod = "pod-" + two_digits(i);
                a.pod_namespace = ns;
                a.status = "Assigned";
                s.assigned.push_back(a);
            }
            AzurePodIdentityException e;
            e.meta.namespace_name = ns;
            e.meta.name = "exception";
            e.pod_labels = {{"exempt", "true"}};
            s.exceptions.push_back(e);
        }
        const auto by_key = [](const auto& a, const auto& b) {
            return std::tie(a.meta.namespace_name, a.meta.name) <
                   std::tie(b.meta.namespace_name, b.meta.name);
        };
        std::sort(s.identities.begin(), s.identities.end(), by_key);
        std::sort(s.bindings.begin(), s.bindings.end(), by_key);
        std::sort(s.exceptions.begin(), s.exceptions.end(), by_key);
        std::sort(s.assigned.begin(), s.assigned.end(), by_key);
        return s;
    }();
    return s;
}

PodInfo pod(const std::string& binding_label, const std::string& name = "pod-10") {
    PodInfo p;
    p.namespace_name = "team-25";
    p.name = name;
    p.labels = {{"aadpodidbinding", binding_label},
                {"app.kubernetes.io/name", "checkout"},
                {"pod-template-hash", "5f7d8c9b6"},
                {"version", "v3"}};
    p.owners = {{"apps/v1", "ReplicaSet", "checkout-5f7d8c9b6", true}};
    p.ips = {"10.244.1.17"};
    return p;
}

void run(benchmark::State& state, const PodInfo& p, const TokenQuery& query,
         const IdentitySettings& settings, DecisionKind expected) {
    const CrdSnapshot& crds = snapshot();
    if (resolve(p, crds, query, settings).kind != expected) {
        state.SkipWithError("unexpected decision");
        return;
    }
    const std::size_t before = g_allocations.load(std::memory_order_relaxed);
    for (auto _ : state) {
        Decision d = resolve(p, crds, query, settings);
        benchmark::DoNotOptimize(d);
    }
    state.counters["allocs"] = benchmark::Counter(
        static_cast<double>(g_allocations.load(std::memory_order_relaxed) - before),
        benchmark::Counter::kAvgIterations);
}

const IdentitySettings kManaged{.mode = OperationMode::managed};
const IdentitySettings kStandard{.mode = OperationMode::standard};

void BM_ManagedHit(benchmark::State& state) {
    run(state, pod("app-10"), {}, kManaged, DecisionKind::bound);
}
BENCHMARK(BM_ManagedHit);

void BM_ManagedHitByClientId(benchmark::State& state) {
    const std::string cid = client_id(25, 10);
    run(state, pod("app-10"), TokenQuery{cid, {}, {}}, kManaged, DecisionKind::bound);
}
BENCHMARK(BM_ManagedHitByClientId);

void BM_ManagedHitByResourceIdOtherCase(benchmark::State& state) {
    std::string rid = resource_id("team-25", "identity-10");
    std::transform(rid.begin(), rid.end(), rid.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    run(state, pod("app-10"), TokenQuery{{}, rid, {}}, kManaged, DecisionKind::bound);
}
BENCHMARK(BM_ManagedHitByResourceIdOtherCase);

void BM_ManagedDenyNoBinding(benchmark::State& state) {
    run(state, pod("app-99"), {}, kManaged, DecisionKind::denied);
}
BENCHMARK(BM_ManagedDenyNoBinding);

void BM_ManagedDenyNotBound(benchmark::State& state) {
    run(state, pod("app-10"), TokenQuery{"11111111-2222-3333-4444-555555555555", {}, {}}, kManaged,
        DecisionKind::denied);
}
BENCHMARK(BM_ManagedDenyNotBound);

void BM_Excepted(benchmark::State& state) {
    PodInfo p = pod("app-10");
    p.labels["exempt"] = "TRUE";
    run(state, p, {}, kManaged, DecisionKind::excepted);
}
BENCHMARK(BM_Excepted);

// Standard mode scans the assignments (1,000 here; a node usually has far fewer).
void BM_StandardHit(benchmark::State& state) {
    run(state, pod("", "pod-10"), {}, kStandard, DecisionKind::bound);
}
BENCHMARK(BM_StandardHit);

void BM_StandardDenyNoAssignment(benchmark::State& state) {
    run(state, pod("", "pod-without-identity"), {}, kStandard, DecisionKind::denied);
}
BENCHMARK(BM_StandardDenyNoAssignment);

void BM_Redact(benchmark::State& state) {
    const std::string cid = client_id(25, 10);
    for (auto _ : state) {
        std::string r = redact(cid);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_Redact);

}  // namespace
}  // namespace nmid::identity

BENCHMARK_MAIN();
