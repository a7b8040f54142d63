// Authorisation property, resolver level (issue 11, "What to build" 10): over random clusters
// and token queries, identity::resolve() on the snapshot nmid builds from the cluster's JSON
// answers `excepted` only for a pod the rules except and `bound` only to an identity bound to
// the pod, usable, and matching the query's selector; and it agrees with the documented
// choice (resolver.hpp) where the rules fix one. 1,000,000 cases; the oracle is oracle.hpp.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>

#include "findings.hpp"
#include "generator.hpp"
#include "nmid/identity/resolver.hpp"
#include "oracle.hpp"
#include "render.hpp"
#include "resolver_check.hpp"
#include "shrink.hpp"

namespace nmid::security_test {
namespace {

constexpr std::size_t kClusters = 31'250;
constexpr std::size_t kQueriesPerCluster = 32;  // 1,000,000 cases

struct Outcome {
    std::string cls;
    std::string decision;
};

std::string decision_text(const identity::Decision& d) {
    switch (d.kind) {
        case identity::DecisionKind::excepted:
            return "excepted (pass-through to IMDS as the node)";
        case identity::DecisionKind::bound:
            return "bound to " + (d.identity != nullptr ? identity_text(*d.identity) : "null");
        case identity::DecisionKind::denied:
            return "denied (reason " + std::to_string(static_cast<int>(d.reason)) + ")";
    }
    return "?";
}

/// Resolves one query of `c`'s pod `caller` (namespace/name) through nmid's parsers.
Outcome run_case(const Cluster& c, const std::string& caller_ns, const std::string& caller,
                 const Selectors& s) {
    const GenPod* pod = nullptr;
    for (const GenPod& p : c.pods) {
        if (p.namespace_name == caller_ns && p.name == caller) {
            pod = &p;
        }
    }
    if (pod == nullptr) {
        return {};
    }
    const PodList pods = to_pod_list(c);
    const CrdSnapshot snapshot = to_snapshot(c);
    for (const PodInfo& info : pods.pods) {
        if (info.namespace_name == caller_ns && info.name == caller) {
            const identity::TokenQuery q{
                s.client_id, s.msi_res_id.empty() ? s.mi_res_id : s.msi_res_id, s.object_id};
            const identity::Decision d = identity::resolve(info, snapshot, q, identity_settings(c));
            return {check_decision(c, *pod, s, d), decision_text(d)};
        }
    }
    ADD_FAILURE() << "pod " << caller_ns << "/" << caller << " lost by the pod parser";
    return {};
}

std::string describe_case(const Cluster& c, const GenPod& pod, const Selectors& s,
                          const std::string& cls) {
    const std::string ns = pod.namespace_name;
    const std::string name = pod.name;
    const Cluster small = shrink(
        c, [&](const Cluster& candidate) { return run_case(candidate, ns, name, s).cls == cls; });
    return cluster_text(small) + "  request: token query from pod " + ns + "/" + name + " with " +
           selectors_text(s) + "\n  nmid: " + run_case(small, ns, name, s).decision + "\n";
}

struct Tally {
    std::size_t cases = 0;
    std::size_t excepted = 0;
    std::size_t bound = 0;
};

void run_cluster(std::uint64_t seed, Findings& findings, Tally& tally, bool verbose) {
    Rng rng(seed);
    const Cluster c = random_cluster(rng);
    const PodList pods = to_pod_list(c);
    const CrdSnapshot snapshot = to_snapshot(c);
    const IdentitySettings settings = identity_settings(c);
    ASSERT_EQ(pods.pods.size(), c.pods.size());
    for (std::size_t i = 0; i < kQueriesPerCluster; ++i) {
        const std::size_t who = rng.below(c.pods.size());
        const GenPod& pod = c.pods[who];
        const PodInfo& info = pods.pods[who];
        const Selectors s = random_selectors(rng, c);
        const identity::TokenQuery q{s.client_id, s.msi_res_id.empty() ? s.mi_res_id : s.msi_res_id,
                                     s.object_id};
        const identity::Decision d = identity::resolve(info, snapshot, q, settings);
        ++tally.cases;
        tally.excepted += d.kind == identity::DecisionKind::excepted ? 1 : 0;
        tally.bound += d.kind == identity::DecisionKind::bound ? 1 : 0;
        const std::string cls = check_decision(c, pod, s, d);
        if (cls.empty()) {
            continue;
        }
        if (findings.add(cls, seed) || verbose) {
            findings.describe(cls, describe_case(c, pod, s, cls));
        }
    }
}

TEST(ResolverProperty, OnlyBoundUsableIdentitiesAndRealExceptionsOverAMillionCases) {
    Findings findings;
    Tally tally;
    const auto started = std::chrono::steady_clock::now();
    const std::uint64_t base = base_seed();
    if (const auto replay = replay_seed()) {
        run_cluster(*replay, findings, tally, true);
    } else {
        for (std::size_t i = 0; i < scaled(kClusters); ++i) {
            run_cluster(case_seed(base, i), findings, tally, false);
        }
        // The cases must reach every kind of answer, or the property says nothing.
        EXPECT_GT(tally.bound, tally.cases / 20) << "too few bound decisions";
        EXPECT_GT(tally.excepted, tally.cases / 50) << "too few excepted decisions";
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    std::cout << "[ resolver property ] " << tally.cases << " cases (" << tally.bound << " bound, "
              << tally.excepted << " excepted) in " << took.count() << " ms\n";
    EXPECT_TRUE(findings.empty()) << findings.report("resolver property", base);
}

}  // namespace
}  // namespace nmid::security_test
