#pragma once

// Small builders for resolver tests: the model structs have many fields, a test names a few.

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "nmid/identity/resolver.hpp"
#include "nmid/model/crd.hpp"
#include "nmid/model/pod.hpp"

namespace nmid::test {

using Labels = std::map<std::string, std::string>;

inline ObjectMeta meta(std::string ns, std::string name, Labels annotations = {}) {
    ObjectMeta m;
    m.namespace_name = std::move(ns);
    m.name = std::move(name);
    m.annotations = std::move(annotations);
    return m;
}

inline AzureIdentity identity(std::string ns, std::string name, std::string client_id,
                              std::string resource_id = {}, std::string object_id = {},
                              Labels annotations = {}) {
    AzureIdentity id;
    id.meta = meta(std::move(ns), std::move(name), std::move(annotations));
    id.client_id = std::move(client_id);
    id.resource_id = std::move(resource_id);
    id.object_id = std::move(object_id);
    return id;
}

inline AzureIdentityBinding binding(std::string ns, std::string name, std::string identity_name,
                                    std::string selector) {
    AzureIdentityBinding b;
    b.meta = meta(std::move(ns), std::move(name));
    b.azure_identity = std::move(identity_name);
    b.selector = std::move(selector);
    return b;
}

inline AzurePodIdentityException exception(std::string ns, std::string name, Labels labels) {
    AzurePodIdentityException e;
    e.meta = meta(std::move(ns), std::move(name));
    e.pod_labels = std::move(labels);
    return e;
}

/// An assignment as MIC names it (`<pod>-<podns>-<identity>` in "default").
inline AzureAssignedIdentity assigned(std::string pod_ns, std::string pod_name, AzureIdentity id,
                                      std::string status) {
    AzureAssignedIdentity a;
    a.meta = meta("default", pod_name + "-" + pod_ns + "-" + id.meta.name);
    a.identity_ref = std::move(id);
    a.pod = std::move(pod_name);
    a.pod_namespace = std::move(pod_ns);
    a.node_name = "node-1";
    a.status = std::move(status);
    return a;
}

inline PodInfo pod(std::string ns, std::string name, Labels labels = {},
                   std::vector<OwnerReference> owners = {}) {
    PodInfo p;
    p.namespace_name = std::move(ns);
    p.name = std::move(name);
    p.labels = std::move(labels);
    p.owners = std::move(owners);
    p.phase = "Running";
    p.ips = {"10.0.0.10"};
    return p;
}

// TokenQuery has no default member initialisers, so designated initialisers that leave
// members out trip -Wmissing-field-initializers on g++; these name the one selector.
inline identity::TokenQuery by_client_id(std::string_view v) {
    return {v, {}, {}};
}
inline identity::TokenQuery by_resource_id(std::string_view v) {
    return {{}, v, {}};
}
inline identity::TokenQuery by_object_id(std::string_view v) {
    return {{}, {}, v};
}

/// Sorts like a published snapshot (CrdSnapshot's contract: by namespace, then name).
inline CrdSnapshot sorted(CrdSnapshot s) {
    const auto by_key = [](const auto& a, const auto& b) {
        return std::tie(a.meta.namespace_name, a.meta.name) <
               std::tie(b.meta.namespace_name, b.meta.name);
    };
    std::sort(s.identities.begin(), s.identities.end(), by_key);
    std::sort(s.bindings.begin(), s.bindings.end(), by_key);
    std::sort(s.exceptions.begin(), s.exceptions.end(), by_key);
    std::sort(s.assigned.begin(), s.assigned.end(), by_key);
    return s;
}

}  // namespace nmid::test
