#pragma once

// Random clusters for the authorisation property test. Everything is drawn from one
// std::mt19937_64 with modulo arithmetic (no std::uniform_int_distribution, whose results
// differ between standard libraries), so a seed names the same case in every build.

#include <array>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model.hpp"

namespace nmid::security_test {

/// splitmix64: the seed of case `index` under base seed `base`.
inline std::uint64_t case_seed(std::uint64_t base, std::uint64_t index) {
    std::uint64_t z = base + (index + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

class Rng {
public:
    explicit Rng(std::uint64_t seed) : engine_(seed) {}
    /// 0 .. n-1 (n > 0).
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
    /// True with probability percent/100.
    bool chance(unsigned percent) { return below(100) < percent; }
    template <class C>
    const auto& pick(const C& items) {
        return items[below(items.size())];
    }

private:
    std::mt19937_64 engine_;
};

// Pools are small on purpose: collisions (two tenants naming one client ID, a binding naming
// an identity of another namespace, a selector in another case) are where the bugs are.
inline const std::array<std::string, 4> kNamespaces = {"default", "team-a", "team-b",
                                                       "kube-system"};
inline const std::array<std::string, 6> kClientIds = {"11111111-aaaa-4000-8000-000000000001",
                                                      "11111111-aaaa-4000-8000-000000000002",
                                                      "11111111-aaaa-4000-8000-000000000003",
                                                      "11111111-AAAA-4000-8000-000000000001",
                                                      "",
                                                      ""};
inline const std::array<std::string, 5> kResourceIds = {
    "/subscriptions/s1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/uami-1",
    "/subscriptions/s1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/uami-2",
    "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/UAMI-1",
    "", ""};
inline const std::array<std::string, 4> kIdentityNames = {"id-0", "id-1", "id-2", "id-3"};
inline const std::array<std::string, 5> kSelectors = {"sel-a", "sel-b", "SEL-A", "sel-a", ""};
inline const std::array<std::string, 16> kEndpoints = {
    "",
    "https://login.microsoftonline.com/",
    "https://login.microsoftonline.us/",
    "https://login.chinacloudapi.cn/",
    "https://login.microsoftonline.com",
    "https://LOGIN.microsoftonline.com/",
    "https://login.microsoftonline.com:443/",
    "http://login.microsoftonline.com/",
    "https://evil.example/",
    "https://login.microsoftonline.com.evil.example/",
    "https://login.microsoftonline.com@evil.example/",
    "https://evil.example/login.microsoftonline.com/",
    "ftp://login.microsoftonline.com/",
    "login.microsoftonline.com",
    "http://127.0.0.1:8080/",
    "https://login.microsoftonline.com/"};
inline const std::array<std::pair<const char*, const char*>, 8> kPlainLabels = {{
    {"app", "mic"},
    {"app", "MIC"},
    {"component", "mic"},
    {"kubernetes.azure.com/managedby", "aks"},
    {"app", "web"},
    {"tier", "backend"},
    {"app", ""},
    {"component", "Mic"},
}};

inline OwnerRef random_owner(Rng& rng) {
    static const std::array<std::string, 5> api = {"apps/v1", "apps/v1", "apps/v1beta2", "v1", ""};
    static const std::array<std::string, 6> kind = {"ReplicaSet", "ReplicaSet", "replicaset",
                                                    "REPLICASET", "Deployment", "StatefulSet"};
    static const std::array<std::string, 7> name = {"mic-7d9f8c",     "mic-7d9f8c", "mic-",   "mic",
                                                    "microservice-1", "MIC-abc",    "web-5f6"};
    OwnerRef r{rng.pick(api), rng.pick(kind), rng.pick(name), std::nullopt};
    const std::size_t c = rng.below(3);
    if (c < 2) {
        r.controller = c == 0;
    }
    return r;
}

inline AzureIdentity random_identity(Rng& rng, const Cluster& c, std::string ns, std::string name) {
    AzureIdentity id;
    id.meta.namespace_name = std::move(ns);
    id.meta.name = std::move(name);
    static const std::array<int, 8> types = {0, 0, 0, 0, 1, 1, 2, 3};
    id.type = rng.pick(types);
    if (rng.chance(3)) {
        id.type = -1;
    }
    id.client_id = rng.pick(kClientIds);
    id.resource_id = rng.pick(kResourceIds);
    if (rng.chance(20)) {
        id.object_id = rng.chance(50) ? "oid-1" : "oid-2";
    }
    if (id.type != 0 || rng.chance(10)) {
        id.tenant_id = rng.chance(85) ? "tenant-" + std::to_string(rng.below(2)) : "";
        id.client_password.name = rng.chance(90) ? "sp-secret" : "";
        const std::size_t where = rng.below(20);
        id.client_password.namespace_name =
            where < 12 ? id.meta.namespace_name : (where < 18 ? rng.pick(c.namespaces) : "");
        id.ad_endpoint = rng.pick(kEndpoints);
        if (rng.chance(15)) {
            const std::size_t n = 1 + rng.below(4);
            for (std::size_t i = 0; i < n; ++i) {
                id.auxiliary_tenant_ids.push_back("aux-" + std::to_string(i));
            }
        }
    }
    if (rng.chance(20)) {
        id.meta.annotations["aadpodidentity.k8s.io/Behavior"] =
            rng.chance(80) ? "namespaced" : "Namespaced";
    }
    return id;
}

inline void add_pods(Rng& rng, Cluster& c) {
    const std::size_t n = 1 + rng.below(5);
    static const std::array<std::string, 3> names = {"app", "mic-7d9f8c-x2v", "web"};
    for (std::size_t i = 0; i < n; ++i) {
        GenPod p;
        p.namespace_name = rng.chance(40) ? c.mic_namespace : rng.pick(c.namespaces);
        p.name = rng.pick(names) + "-" + std::to_string(i);
        p.ip = "10.244.0." + std::to_string(10 + i);
        if (rng.chance(75)) {
            p.labels["aadpodidbinding"] = rng.pick(kSelectors);
        }
        for (std::size_t k = rng.below(3); k > 0; --k) {
            const auto& [key, value] = rng.pick(kPlainLabels);
            p.labels[key] = value;
        }
        bool has_controller = false;
        for (std::size_t k = rng.below(3); k > 0; --k) {
            OwnerRef r = random_owner(rng);
            if (r.controller.value_or(false)) {
                if (has_controller) {
                    r.controller = false;  // the API server allows one controller reference
                }
                has_controller = true;
            }
            p.owners.push_back(std::move(r));
        }
        c.pods.push_back(std::move(p));
    }
}

inline void add_identities(Rng& rng, Cluster& c) {
    std::set<std::pair<std::string, std::string>> seen;
    for (std::size_t i = rng.below(7); i > 0; --i) {
        std::string ns = rng.pick(c.namespaces);
        std::string name = rng.pick(kIdentityNames);
        if (seen.emplace(ns, name).second) {
            c.identities.push_back(random_identity(rng, c, std::move(ns), std::move(name)));
        }
    }
    for (std::size_t i = rng.below(7); i > 0; --i) {
        AzureIdentityBinding b;
        b.meta.namespace_name = rng.pick(c.namespaces);
        b.meta.name = "b-" + std::to_string(i);
        b.azure_identity = rng.chance(85) && !c.identities.empty()
                               ? rng.pick(c.identities).meta.name
                               : std::string{"id-missing"};
        b.selector = rng.pick(kSelectors);
        c.bindings.push_back(std::move(b));
    }
}

inline void add_exceptions_and_assignments(Rng& rng, Cluster& c) {
    for (std::size_t i = rng.below(3); i > 0; --i) {
        AzurePodIdentityException e;
        e.meta.namespace_name = rng.chance(50) ? c.mic_namespace : rng.pick(c.namespaces);
        e.meta.name = "ex-" + std::to_string(i);
        for (std::size_t k = 1 + rng.below(2); k > 0; --k) {
            const auto& [key, value] = rng.pick(kPlainLabels);
            e.pod_labels[key] = value;
        }
        c.exceptions.push_back(std::move(e));
    }
    static const std::array<std::string, 6> states = {"Assigned", "Assigned",   "",
                                                      "Created",  "Unassigned", "Assigned"};
    for (std::size_t i = rng.below(6); i > 0; --i) {
        AzureAssignedIdentity a;
        if (rng.chance(90)) {
            const GenPod& p = rng.pick(c.pods);
            a.pod = p.name;
            a.pod_namespace = p.namespace_name;
        } else {
            a.pod = "ghost";
            a.pod_namespace = "default";
        }
        // MIC copies the AzureIdentity it assigns; a rogue one (never in the identity list,
        // unique name) stands for an assignment of an object that was since changed.
        a.identity_ref =
            rng.chance(80) && !c.identities.empty()
                ? rng.pick(c.identities)
                : random_identity(rng, c, rng.pick(c.namespaces), "rogue-" + std::to_string(i));
        a.status = rng.pick(states);
        a.meta.namespace_name = rng.chance(50) ? "default" : a.identity_ref.meta.namespace_name;
        a.meta.name = a.pod + "-" + a.pod_namespace + "-" + a.identity_ref.meta.name + "-" +
                      std::to_string(i);
        a.node_name = "node-1";
        c.assigned.push_back(std::move(a));
    }
}

inline Cluster random_cluster(Rng& rng) {
    Cluster c;
    c.mode = rng.chance(50) ? OperationMode::standard : OperationMode::managed;
    c.force_namespaced = rng.chance(50);
    static const std::array<std::string, 4> mic = {"default", "default", "kube-system", "team-a"};
    c.mic_namespace = rng.pick(mic);
    for (const std::string& ns : kNamespaces) {
        if (ns == "default" || ns == "team-a" || rng.chance(50)) {
            c.namespaces.push_back(ns);
        }
    }
    add_pods(rng, c);
    add_identities(rng, c);
    add_exceptions_and_assignments(rng, c);
    return c;
}

/// Selectors that name identities of the cluster (any namespace, sometimes in another case)
/// or nothing the cluster knows.
inline Selectors random_selectors(Rng& rng, const Cluster& c) {
    Selectors s;
    auto some_identity = [&]() -> const AzureIdentity* {
        return c.identities.empty() ? nullptr : &rng.pick(c.identities);
    };
    if (rng.chance(35)) {
        const AzureIdentity* id = some_identity();
        s.client_id = id != nullptr && rng.chance(80) ? id->client_id : rng.pick(kClientIds);
    }
    if (rng.chance(25)) {
        const AzureIdentity* id = some_identity();
        std::string r = id != nullptr && rng.chance(80) ? id->resource_id : rng.pick(kResourceIds);
        (rng.chance(60) ? s.msi_res_id : s.mi_res_id) = std::move(r);
    }
    if (rng.chance(10)) {
        s.object_id = rng.chance(50) ? "oid-1" : "oid-3";
    }
    return s;
}

}  // namespace nmid::security_test
