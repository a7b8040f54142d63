#pragma once

// The property test's own model of who may use what, written from the rules (resolver.hpp's
// contract, reference nmi-behaviour 4, issue 11 "What to build" 2 and 3), never by calling
// the code under test. Where the rules leave a choice open the verdict is `either`: nmid may
// go either way and no property depends on it.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "model.hpp"

namespace nmid::security_test {

enum class Tri { no, either, yes };

inline char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string lowered(std::string_view s) {
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

inline bool same_ci(std::string_view a, std::string_view b) {
    return lowered(a) == lowered(b);
}

/// Whether an identity object may ever be used, and if not, why (a class name).
struct Verdict {
    Tri usable = Tri::yes;
    std::string why;  ///< the first reason it is unusable (or doubtful)
};

inline void worsen(Verdict& v, Tri to, const char* why) {
    if (to < v.usable) {
        v.usable = to;
        v.why = why;
    }
}

/// The Azure AD authorities of the public, US Government and China clouds.
inline Verdict judge_ad_endpoint(std::string_view url) {
    Verdict v;
    if (url.empty()) {
        return v;  // the public cloud's authority
    }
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        worsen(v, Tri::no, "ad_endpoint_not_https");
        return v;
    }
    const std::string scheme = lowered(url.substr(0, scheme_end));
    if (scheme == "http") {
        worsen(v, Tri::no, "ad_endpoint_http");
        return v;
    }
    if (scheme != "https") {
        worsen(v, Tri::no, "ad_endpoint_not_https");
        return v;
    }
    if (url.substr(0, scheme_end) != "https") {
        worsen(v, Tri::either, "ad_endpoint_scheme_case");
    }
    const std::string_view rest = url.substr(scheme_end + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#\\"));
    if (authority.find('@') != std::string_view::npos) {
        worsen(v, Tri::no, "ad_endpoint_userinfo");
        return v;
    }
    std::string_view host = authority;
    const std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
        host = authority.substr(0, colon);
    }
    const std::string h = lowered(host);
    if (h != "login.microsoftonline.com" && h != "login.microsoftonline.us" &&
        h != "login.chinacloudapi.cn") {
        worsen(v, Tri::no, "ad_endpoint_foreign_host");
        return v;
    }
    if (colon != std::string_view::npos) {
        worsen(v, Tri::either, "ad_endpoint_port");
    }
    if (h != host) {
        worsen(v, Tri::either, "ad_endpoint_host_case");
    }
    return v;
}

inline Verdict judge_identity(const AzureIdentity& id) {
    Verdict v;
    if (id.type == 0) {
        if (id.client_id.empty() && id.resource_id.empty()) {
            worsen(v, Tri::no, "empty_client_and_resource_id");
        }
        return v;
    }
    if (id.type != 1 && id.type != 2) {
        worsen(v, Tri::either, "unsupported_type");  // nmid cannot fetch it: no token either way
        return v;
    }
    if (id.client_id.empty()) {
        worsen(v, Tri::no, "sp_empty_client_id");
    }
    if (id.tenant_id.empty()) {
        worsen(v, Tri::no, "sp_empty_tenant_id");
    }
    const std::string& secret_ns = id.client_password.namespace_name;
    if (!secret_ns.empty() && secret_ns != id.meta.namespace_name) {
        worsen(v, Tri::no, "cross_namespace_secret");
    }
    const Verdict endpoint = judge_ad_endpoint(id.ad_endpoint);
    worsen(v, endpoint.usable, endpoint.why.c_str());
    if (secret_ns.empty()) {
        worsen(v, Tri::either, "secret_namespace_empty");
    }
    if (id.client_password.name.empty()) {
        worsen(v, Tri::either, "secret_name_empty");
    }
    if (id.auxiliary_tenant_ids.size() > 3) {
        worsen(v, Tri::either, "too_many_aux_tenants");
    }
    return v;
}

inline Tri any_of(Tri a, Tri b) {
    return std::max(a, b);
}

/// AzurePodIdentityException matching: an exception of the pod's namespace with any
/// podLabels entry equal, case-insensitively, to the pod's label of that key.
inline bool exception_matches(const GenPod& pod, const Cluster& c) {
    for (const AzurePodIdentityException& e : c.exceptions) {
        if (e.meta.namespace_name != pod.namespace_name) {
            continue;
        }
        for (const auto& [key, value] : e.pod_labels) {
            const auto it = pod.labels.find(key);
            if (it != pod.labels.end() && same_ci(it->second, value)) {
                return true;
            }
        }
    }
    return false;
}

/// The MIC exception: standard mode only, a pod of the MIC namespace whose controller owner
/// reference is an apps/v1 ReplicaSet named mic-...
inline Tri is_mic(const GenPod& pod, const Cluster& c) {
    if (c.mode != OperationMode::standard || !same_ci(pod.namespace_name, c.mic_namespace)) {
        return Tri::no;
    }
    for (const OwnerRef& r : pod.owners) {
        if (!r.controller.value_or(false) || r.api_version != "apps/v1") {
            continue;
        }
        Tri kind = r.kind == "ReplicaSet" ? Tri::yes
                                          : (same_ci(r.kind, "ReplicaSet") ? Tri::either : Tri::no);
        Tri name = r.name.starts_with("mic-")
                       ? Tri::yes
                       : (same_ci(r.name.substr(0, 4), "mic-") ? Tri::either : Tri::no);
        return std::min(kind, name);
    }
    return Tri::no;
}

inline Tri is_excepted(const GenPod& pod, const Cluster& c) {
    return any_of(exception_matches(pod, c) ? Tri::yes : Tri::no, is_mic(pod, c));
}

/// Why a pod that is not excepted by the rules might look excepted: for reports.
inline std::string forged_exception_kind(const GenPod& pod, const Cluster& c) {
    for (const OwnerRef& r : pod.owners) {
        if (same_ci(r.kind, "replicaset") && same_ci(r.name.substr(0, 3), "mic") &&
            same_ci(pod.namespace_name, c.mic_namespace)) {
            if (c.mode == OperationMode::managed) {
                return "mic_exception_in_managed_mode";
            }
            if (!r.controller.value_or(false)) {
                return "mic_owner_not_controller";
            }
            if (r.api_version != "apps/v1") {
                return "mic_owner_wrong_api_version";
            }
            return "mic_owner_name_or_kind";
        }
    }
    return "exception_mismatch";
}

/// A candidate identity of a pod: bound by the rules, with its verdict.
struct Candidate {
    const AzureIdentity* identity = nullptr;
    Verdict verdict;
};

inline bool key_less(const AzureIdentity& a, const AzureIdentity& b) {
    return std::tie(a.meta.namespace_name, a.meta.name) <
           std::tie(b.meta.namespace_name, b.meta.name);
}

/// The identities bound to `pod` (before selectors), sorted by (namespace, name).
inline std::vector<Candidate> bound_identities(const GenPod& pod, const Cluster& c) {
    std::vector<Candidate> out;
    auto add = [&](const AzureIdentity& id) {
        for (const Candidate& have : out) {
            if (have.identity->meta.namespace_name == id.meta.namespace_name &&
                have.identity->meta.name == id.meta.name) {
                return;
            }
        }
        out.push_back({&id, judge_identity(id)});
    };
    if (c.mode == OperationMode::managed) {
        const auto label = pod.labels.find("aadpodidbinding");
        if (label == pod.labels.end() || label->second.empty()) {
            return out;
        }
        for (const AzureIdentityBinding& b : c.bindings) {
            if (b.meta.namespace_name != pod.namespace_name || b.selector != label->second) {
                continue;
            }
            for (const AzureIdentity& id : c.identities) {
                if (id.meta.namespace_name == pod.namespace_name &&
                    id.meta.name == b.azure_identity) {
                    add(id);
                }
            }
        }
    } else {
        for (const AzureAssignedIdentity& a : c.assigned) {
            if (a.pod != pod.name || a.pod_namespace != pod.namespace_name ||
                (!a.status.empty() && a.status != "Assigned")) {
                continue;
            }
            const AzureIdentity& id = a.identity_ref;
            const auto behavior = id.meta.annotations.find("aadpodidentity.k8s.io/Behavior");
            const bool namespaced = c.force_namespaced || (behavior != id.meta.annotations.end() &&
                                                           behavior->second == "namespaced");
            if (namespaced && id.meta.namespace_name != pod.namespace_name) {
                continue;
            }
            add(id);
        }
    }
    std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
        return key_less(*a.identity, *b.identity);
    });
    return out;
}

/// The one selector honoured: client_id, else msi_res_id / mi_res_id, else object_id.
inline bool selector_matches(const AzureIdentity& id, const Selectors& s) {
    if (!s.client_id.empty()) {
        return id.client_id == s.client_id;
    }
    const std::string& res = s.msi_res_id.empty() ? s.mi_res_id : s.msi_res_id;
    if (!res.empty()) {
        return same_ci(id.resource_id, res);
    }
    if (!s.object_id.empty()) {
        return id.object_id == s.object_id;
    }
    return true;
}

inline const GenPod* pod_at(const Cluster& c, std::string_view ip) {
    for (const GenPod& p : c.pods) {
        if (p.ip == ip) {
            return &p;
        }
    }
    return nullptr;
}

/// Why `id` may not be the answer for `pod` asking with `s`; "" when it may.
inline std::string why_not_allowed(const GenPod* pod, const Cluster& c, const Selectors& s,
                                   const AzureIdentity& id) {
    if (pod == nullptr) {
        return "unknown_caller";
    }
    for (const Candidate& cand : bound_identities(*pod, c)) {
        const AzureIdentity& b = *cand.identity;
        if (b.meta.namespace_name != id.meta.namespace_name || b.meta.name != id.meta.name) {
            continue;
        }
        if (!(b == id)) {
            return "identity_fields_differ";
        }
        if (cand.verdict.usable == Tri::no) {
            return "invalid_identity:" + cand.verdict.why;
        }
        return selector_matches(b, s) ? "" : "selector_mismatch";
    }
    return "not_bound";
}

}  // namespace nmid::security_test
