#pragma once

// The authorisation property test's own description of a cluster and a request: plain data,
// independent of nmid's parsers. `render.hpp` turns a Cluster into the Kubernetes JSON nmid
// reads; `oracle.hpp` judges it from the rules alone.

#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/model/crd.hpp"

namespace nmid::security_test {

/// One entry of a pod's `metadata.ownerReferences`.
struct OwnerRef {
    std::string api_version;
    std::string kind;
    std::string name;
    std::optional<bool> controller;  ///< absent when std::nullopt
};

struct GenPod {
    std::string namespace_name;
    std::string name;
    std::string ip;
    std::map<std::string, std::string> labels;
    std::vector<OwnerRef> owners;
};

/// Everything a case's cluster holds, plus nmid's identity settings for it.
struct Cluster {
    OperationMode mode = OperationMode::standard;
    bool force_namespaced = false;
    std::string mic_namespace{"default"};
    std::vector<std::string> namespaces;
    std::vector<GenPod> pods;
    std::vector<AzureIdentity> identities;
    std::vector<AzureIdentityBinding> bindings;
    std::vector<AzurePodIdentityException> exceptions;
    std::vector<AzureAssignedIdentity> assigned;
};

/// A token request's identity selectors as the caller wrote them ("" = absent).
struct Selectors {
    std::string client_id;
    std::string msi_res_id;
    std::string mi_res_id;
    std::string object_id;
};

/// One HTTP request of a case (the handler-level test); the resolver level uses `caller` and
/// `selectors` only.
struct GenRequest {
    std::string peer;  ///< a pod's IP or an address no pod has
    std::string method{"GET"};
    std::string target;
    std::string endpoint;               ///< the path before disguise, e.g. /metadata/identity/info
    std::vector<std::string> spelling;  ///< how the path was disguised (tags, sorted)
    Selectors selectors;
    std::vector<std::pair<std::string, std::string>> headers;
};

inline std::string quoted(const std::string& s) {
    return "\"" + s + "\"";
}

inline std::string labels_text(const std::map<std::string, std::string>& labels) {
    std::string out = "{";
    for (const auto& [k, v] : labels) {
        out += (out.size() > 1 ? ", " : "") + k + "=" + quoted(v);
    }
    return out + "}";
}

inline std::string identity_text(const AzureIdentity& id) {
    std::ostringstream o;
    o << id.meta.namespace_name << "/" << id.meta.name << " type=" << id.type
      << " clientID=" << quoted(id.client_id) << " resourceID=" << quoted(id.resource_id);
    if (!id.object_id.empty()) {
        o << " objectID=" << quoted(id.object_id);
    }
    if (id.type != 0 || !id.client_password.name.empty() || !id.tenant_id.empty() ||
        !id.client_password.namespace_name.empty() || !id.ad_endpoint.empty()) {
        o << " tenantID=" << quoted(id.tenant_id)
          << " secret=" << quoted(id.client_password.namespace_name + "/" + id.client_password.name)
          << " adEndpoint=" << quoted(id.ad_endpoint);
    }
    if (!id.auxiliary_tenant_ids.empty()) {
        o << " auxTenants=" << id.auxiliary_tenant_ids.size();
    }
    if (!id.meta.annotations.empty()) {
        o << " annotations=" << labels_text(id.meta.annotations);
    }
    return o.str();
}

/// The cluster as a reader checks it by hand: one object per line.
inline std::string cluster_text(const Cluster& c) {
    std::ostringstream o;
    o << "  settings: mode=" << (c.mode == OperationMode::standard ? "standard" : "managed")
      << " forceNamespaced=" << (c.force_namespaced ? "true" : "false")
      << " MICNamespace=" << c.mic_namespace << "\n";
    for (const GenPod& p : c.pods) {
        o << "  Pod " << p.namespace_name << "/" << p.name << " ip=" << p.ip
          << " labels=" << labels_text(p.labels);
        for (const OwnerRef& r : p.owners) {
            o << " owner={apiVersion=" << quoted(r.api_version) << " kind=" << quoted(r.kind)
              << " name=" << quoted(r.name)
              << " controller=" << (r.controller ? (*r.controller ? "true" : "false") : "absent")
              << "}";
        }
        o << "\n";
    }
    for (const AzureIdentity& id : c.identities) {
        o << "  AzureIdentity " << identity_text(id) << "\n";
    }
    for (const AzureIdentityBinding& b : c.bindings) {
        o << "  AzureIdentityBinding " << b.meta.namespace_name << "/" << b.meta.name
          << " azureIdentity=" << quoted(b.azure_identity) << " selector=" << quoted(b.selector)
          << "\n";
    }
    for (const AzurePodIdentityException& e : c.exceptions) {
        o << "  AzurePodIdentityException " << e.meta.namespace_name << "/" << e.meta.name
          << " podLabels=" << labels_text(e.pod_labels) << "\n";
    }
    for (const AzureAssignedIdentity& a : c.assigned) {
        o << "  AzureAssignedIdentity " << a.meta.namespace_name << "/" << a.meta.name
          << " pod=" << a.pod_namespace << "/" << a.pod << " status=" << quoted(a.status)
          << " identityRef={" << identity_text(a.identity_ref) << "}\n";
    }
    return o.str();
}

inline std::string selectors_text(const Selectors& s) {
    std::string out;
    auto add = [&](const char* name, const std::string& v) {
        if (!v.empty()) {
            out += std::string{out.empty() ? "" : " "} + name + "=" + quoted(v);
        }
    };
    add("client_id", s.client_id);
    add("msi_res_id", s.msi_res_id);
    add("mi_res_id", s.mi_res_id);
    add("object_id", s.object_id);
    return out.empty() ? "(none)" : out;
}

inline std::string request_text(const GenRequest& r) {
    std::ostringstream o;
    o << r.method << " " << r.target << " from " << r.peer;
    for (const auto& [n, v] : r.headers) {
        o << " [" << n << ": " << v << "]";
    }
    if (!r.spelling.empty()) {
        o << " spelling=";
        for (std::size_t i = 0; i < r.spelling.size(); ++i) {
            o << (i == 0 ? "" : "+") << r.spelling[i];
        }
    }
    return o.str();
}

}  // namespace nmid::security_test
