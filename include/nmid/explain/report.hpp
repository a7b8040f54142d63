#pragma once

// `/debug/explain` (issue 13 item 3): why a pod gets the answer it gets. The query is parsed
// and the report rendered by pure functions (query.cpp, report_text.cpp, report_json.cpp);
// debug_handler.cpp gathers the report from the running daemon.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/identity/explain.hpp"
#include "nmid/model/crd.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::explain {

/// `?ip=<pod IP>` or `?namespace=<ns>&pod=<name>`, and `format=text|json` (default text).
struct Query {
    std::string ip;  ///< as given (validated as an IPv4 or IPv6 address)
    std::string namespace_name;
    std::string pod;
    bool json = false;
};

/// The longest query string accepted.
inline constexpr std::size_t kMaxQuery = 1024;

/// Parses a raw query string. Exactly one of `ip` or (`namespace` and `pod`); names are
/// validated as Kubernetes names (namespace: DNS label; pod: DNS subdomain); unknown, repeated
/// or empty parameters are refused. Returns the error text on refusal.
[[nodiscard]] std::variant<Query, std::string> parse_query(std::string_view query);

/// Workload identity's part, when the feature is on and the pod opted in.
struct WorkloadPart {
    std::string service_account;  ///< namespace/name
    bool served = false;
    std::string client_id;  ///< redacted
    std::string tenant_id;
    std::string denial;       ///< the denial's name when not served
    std::string denial_text;  ///< the text the pod receives
};

/// Everything the report shows. Built by the handler; rendered by render_text / render_json.
struct Report {
    Query query;
    WallTime now{};
    // The pod.
    PodInfoPtr pod;          ///< null when not found
    std::string pod_error;   ///< why not found (pod_not_found, pod_ip_ambiguous)
    std::string pod_source;  ///< "kubelet", "apiserver", "file"
    std::optional<std::chrono::milliseconds> pod_source_age;  ///< none before the first read
    // Pod identity.
    IdentitySettings identity;
    std::optional<std::chrono::milliseconds> identity_age;  ///< the CRD snapshot's age
    CrdSnapshotPtr crds;                                    ///< keeps explanation's pointers valid
    identity::Explanation explanation;                      ///< meaningful when pod is set
    std::string denial_text;  ///< the text a denied pod receives (NMI's)
    std::optional<WorkloadPart> workload;
    /// Cache entries of the identities the pod may use (or of its workload identity).
    std::vector<CacheEntryInfo> cache;
};

/// "no_binding_label", "no_matching_binding", ... (the DenyReason's enumerator name).
[[nodiscard]] std::string_view deny_reason_name(identity::DenyReason reason) noexcept;

/// Plain text for a person at a terminal. Never a token, a secret or a clear client ID.
[[nodiscard]] std::string render_text(const Report& report);
/// The same as one JSON object (keys documented in README "Explain").
[[nodiscard]] std::string render_json(const Report& report);

}  // namespace nmid::explain
