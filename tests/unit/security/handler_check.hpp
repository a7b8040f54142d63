#pragma once

// Judges one request served by HandlerRig: what went upstream while it was served and the
// tokens in its answer, against the oracle. Every class found is "unsafe:...".

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "handler_rig.hpp"
#include "oracle.hpp"
#include "targets.hpp"

namespace nmid::security_test {

struct Marks {
    std::size_t fetches = 0;
    std::size_t aad = 0;
    std::size_t forwarded = 0;
};

inline Marks marks_of(const HandlerRig& rig) {
    return {rig.fetches.size(), rig.aad_fetches().size(), rig.forwarded.size()};
}

inline std::string param(const std::map<std::string, std::string>& q, const char* name) {
    const auto it = q.find(name);
    return it == q.end() ? std::string{} : it->second;
}

/// "" when the IMDS token fetch `q` names an identity the caller may use.
inline std::string why_imds_fetch_not_allowed(const Cluster& c, const GenPod* pod,
                                              const Selectors& s,
                                              const std::map<std::string, std::string>& q) {
    const std::string client = param(q, "client_id");
    const std::string res =
        param(q, "msi_res_id").empty() ? param(q, "mi_res_id") : param(q, "msi_res_id");
    if (client.empty() && res.empty()) {
        return "node_default_identity";  // IMDS answers with the VM's own identity
    }
    if (pod == nullptr) {
        return "unknown_caller";
    }
    std::string why = "not_bound";
    for (const Candidate& cand : bound_identities(*pod, c)) {
        const AzureIdentity& id = *cand.identity;
        if (id.type != 0 || (!client.empty() && id.client_id != client) ||
            (!res.empty() && !same_ci(id.resource_id, res))) {
            continue;
        }
        if (cand.verdict.usable == Tri::no) {
            why = "invalid_identity:" + cand.verdict.why;
        } else if (!selector_matches(id, s)) {
            why = "selector_mismatch";
        } else {
            return "";
        }
    }
    return why;
}

/// "" when the AAD fetch `r` is for an identity the caller may use, with its own fields.
inline std::string why_aad_fetch_not_allowed(const Cluster& c, const GenPod* pod,
                                             const Selectors& s, const TokenRequest& r) {
    if (pod == nullptr) {
        return "unknown_caller";
    }
    for (const Candidate& cand : bound_identities(*pod, c)) {
        const AzureIdentity& id = *cand.identity;
        if (id.meta.namespace_name != r.identity.identity_namespace ||
            id.meta.name != r.identity.identity_name) {
            continue;
        }
        bool tenant_ok = r.identity.tenant_id == id.tenant_id;
        for (const std::string& aux : id.auxiliary_tenant_ids) {
            tenant_ok = tenant_ok || r.identity.tenant_id == aux;
        }
        if (r.identity.client_id != id.client_id || !tenant_ok ||
            !(r.identity.secret == id.client_password) ||
            r.identity.ad_endpoint != id.ad_endpoint) {
            return "identity_fields_differ";
        }
        if (cand.verdict.usable == Tri::no) {
            return "invalid_identity:" + cand.verdict.why;
        }
        return selector_matches(id, s) ? "" : "selector_mismatch";
    }
    return "not_bound";
}

inline void collect_tokens(const nlohmann::json& j, std::vector<std::string>& out) {
    if (j.is_array()) {
        for (const auto& e : j) {
            collect_tokens(e, out);
        }
    } else if (j.is_object()) {
        if (j.contains("access_token") && j["access_token"].is_string()) {
            out.push_back(j["access_token"].get<std::string>());
        }
        if (j.contains("token")) {
            collect_tokens(j["token"], out);
        }
    }
}

inline std::string tags_text(const std::vector<std::string>& tags) {
    std::string out;
    for (const std::string& t : tags) {
        out += (out.empty() ? "" : "+") + t;
    }
    return out.empty() ? "plain" : out;
}

inline std::vector<std::string> check_request(const Cluster& c, const GenRequest& g,
                                              const Answer& a, const HandlerRig& rig,
                                              const Marks& before) {
    std::vector<std::string> found;
    const GenPod* pod = pod_at(c, g.peer);
    const Tri excepted = pod == nullptr ? Tri::no : is_excepted(*pod, c);
    if (!a.completed) {
        found.emplace_back("harness:no_answer");
        return found;
    }
    for (std::size_t i = before.fetches; i < rig.fetches.size(); ++i) {
        const std::string why = why_imds_fetch_not_allowed(c, pod, g.selectors, rig.fetches[i]);
        if (!why.empty()) {
            found.push_back("unsafe:imds_fetch_for_" + why);
        }
    }
    for (std::size_t i = before.aad; i < rig.aad_fetches().size(); ++i) {
        const std::string why =
            why_aad_fetch_not_allowed(c, pod, g.selectors, rig.aad_fetches()[i]);
        if (!why.empty()) {
            found.push_back("unsafe:aad_fetch_for_" + why);
        }
    }
    for (std::size_t i = before.forwarded; i < rig.forwarded.size(); ++i) {
        // nmid's own question for the VM's tenant (`/metadata/identity/info`, issue 14): a
        // fixed request that carries nothing of the pod's (spelling, query, headers, body).
        if (rig.forwarded[i] == "/metadata/identity/info?api-version=2018-02-01") {
            continue;
        }
        const std::vector<std::string> cut = canonical_segments(rig.forwarded[i]);
        const std::vector<std::string> whole = canonical_segments(rig.forwarded[i], false);
        if (!under_identity(cut) && !under_identity(whole)) {
            continue;
        }
        const std::string where = g.endpoint + " spelled " + main_spelling(g.spelling);
        if (excepted == Tri::no) {
            found.push_back("unsafe:identity_path_forwarded_for_non_excepted[" + where + "]");
        } else if (!is_token_route(whole)) {
            found.push_back("unsafe:identity_endpoint_forwarded_for_excepted[" + where + "]");
        }
    }
    if (a.status != 200) {
        return found;
    }
    std::vector<std::string> tokens;
    collect_tokens(nlohmann::json::parse(a.body, nullptr, false), tokens);
    for (const std::string& t : tokens) {
        std::string why;
        if (t.starts_with("imds-")) {
            const std::size_t n = std::stoul(t.substr(5));
            why = n < rig.fetches.size()
                      ? why_imds_fetch_not_allowed(c, pod, g.selectors, rig.fetches[n])
                      : "unknown_token";
        } else if (t.starts_with("token-")) {
            const std::size_t n = std::stoul(t.substr(6));
            why = n >= 1 && n <= rig.aad_fetches().size()
                      ? why_aad_fetch_not_allowed(c, pod, g.selectors, rig.aad_fetches()[n - 1])
                      : "unknown_token";
        } else if (t.starts_with("proxy-")) {
            why = excepted == Tri::no ? "passthrough_to_non_excepted" : "";
        }
        if (!why.empty()) {
            found.push_back("unsafe:token_answer_" + why);
        }
    }
    return found;
}

}  // namespace nmid::security_test
