#pragma once

// A Cluster as the Kubernetes JSON nmid reads (a kubelet PodList, a `kubectl get -o json` List
// of aad-pod-identity objects), and the values nmid builds from it with its own parsers, so
// the test checks what a real cluster would produce, new fields included.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "model.hpp"
#include "nmid/crd/crd_parse.hpp"
#include "nmid/crd/identity_validation.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/pods/pod_list_json.hpp"

namespace nmid::security_test {

using Json = nlohmann::ordered_json;

inline Json meta_json(const ObjectMeta& m) {
    Json j{{"name", m.name}, {"namespace", m.namespace_name}};
    if (!m.annotations.empty()) {
        j["annotations"] = m.annotations;
    }
    return j;
}

inline Json identity_spec_json(const AzureIdentity& id) {
    Json spec{{"type", id.type}, {"clientID", id.client_id}, {"resourceID", id.resource_id}};
    if (!id.object_id.empty()) {
        spec["objectID"] = id.object_id;
    }
    spec["tenantID"] = id.tenant_id;
    spec["clientPassword"] = {{"name", id.client_password.name},
                              {"namespace", id.client_password.namespace_name}};
    spec["adEndpoint"] = id.ad_endpoint;
    if (!id.auxiliary_tenant_ids.empty()) {
        spec["auxiliaryTenantIDs"] = id.auxiliary_tenant_ids;
    }
    return spec;
}

inline Json identity_json(const AzureIdentity& id) {
    return {{"apiVersion", "aadpodidentity.k8s.io/v1"},
            {"kind", "AzureIdentity"},
            {"metadata", meta_json(id.meta)},
            {"spec", identity_spec_json(id)}};
}

inline std::string crds_json(const Cluster& c) {
    Json items = Json::array();
    for (const AzureIdentity& id : c.identities) {
        items.push_back(identity_json(id));
    }
    for (const AzureIdentityBinding& b : c.bindings) {
        items.push_back(
            {{"apiVersion", "aadpodidentity.k8s.io/v1"},
             {"kind", "AzureIdentityBinding"},
             {"metadata", meta_json(b.meta)},
             {"spec", {{"azureIdentity", b.azure_identity}, {"selector", b.selector}}}});
    }
    for (const AzurePodIdentityException& e : c.exceptions) {
        items.push_back({{"apiVersion", "aadpodidentity.k8s.io/v1"},
                         {"kind", "AzurePodIdentityException"},
                         {"metadata", meta_json(e.meta)},
                         {"spec", {{"podLabels", e.pod_labels}}}});
    }
    for (const AzureAssignedIdentity& a : c.assigned) {
        Json binding{
            {"metadata", {{"name", "b"}, {"namespace", a.identity_ref.meta.namespace_name}}},
            {"spec", {{"azureIdentity", a.identity_ref.meta.name}, {"selector", "x"}}}};
        items.push_back({{"apiVersion", "aadpodidentity.k8s.io/v1"},
                         {"kind", "AzureAssignedIdentity"},
                         {"metadata", meta_json(a.meta)},
                         {"spec",
                          {{"pod", a.pod},
                           {"podNamespace", a.pod_namespace},
                           {"nodename", a.node_name},
                           {"azureIdentityRef", identity_json(a.identity_ref)},
                           {"azureBindingRef", binding}}},
                         {"status", {{"status", a.status}}}});
    }
    return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump();
}

inline std::string pods_json(const Cluster& c) {
    Json items = Json::array();
    for (const GenPod& p : c.pods) {
        Json owners = Json::array();
        for (const OwnerRef& r : p.owners) {
            Json o{{"apiVersion", r.api_version},
                   {"kind", r.kind},
                   {"name", r.name},
                   {"uid", "uid-" + r.name}};
            if (r.controller) {
                o["controller"] = *r.controller;
            }
            owners.push_back(std::move(o));
        }
        Json meta{{"name", p.name},
                  {"namespace", p.namespace_name},
                  {"uid", "uid-" + p.name},
                  {"labels", p.labels}};
        if (!owners.empty()) {
            meta["ownerReferences"] = owners;
        }
        items.push_back({{"metadata", meta},
                         {"spec", {{"serviceAccountName", "default"}, {"nodeName", "node-1"}}},
                         {"status", {{"phase", "Running"}, {"podIP", p.ip}}}});
    }
    return Json{{"apiVersion", "v1"}, {"kind", "PodList"}, {"items", items}}.dump();
}

/// The pods as nmid's kubelet parser reads them.
inline PodList to_pod_list(const Cluster& c) {
    std::string detail;
    auto parsed = parse_pod_list(pods_json(c), &detail);
    EXPECT_TRUE(parsed) << detail;
    return parsed ? std::move(*parsed) : PodList{};
}

/// The step that turns what the CRD source parsed into the snapshot the resolver sees: the
/// snapshot-time identity screening CrdStore::publish applies, with default settings (no
/// --allow-cross-namespace-secrets, no --aad-authority-allowlist).
inline CrdSnapshot admit(CrdSnapshot parsed) {
    ScreenedSnapshot screened = screen_snapshot(parsed, IdentityPolicy{});
    return screened.kept ? std::move(*screened.kept) : std::move(parsed);
}

/// The CRD objects as nmid's CRD parser reads them, then admit().
inline CrdSnapshot to_snapshot(const Cluster& c) {
    std::string detail;
    auto parsed = parse_crds(crds_json(c), &detail);
    EXPECT_TRUE(parsed) << detail;
    return admit(parsed ? std::move(*parsed) : CrdSnapshot{});
}

/// nmid's identity settings for the cluster. New issue-11 fields keep their defaults.
inline IdentitySettings identity_settings(const Cluster& c) {
    IdentitySettings s;
    s.mode = c.mode;
    s.force_namespaced = c.force_namespaced;
    s.mic_namespace = c.mic_namespace;
    // Standard mode would wait for MIC (16 x 5 s) on a clock that never moves: answer at once.
    s.retry_attempts_for_created = 0;
    s.retry_attempts_for_assigned = 0;
    return s;
}

}  // namespace nmid::security_test
