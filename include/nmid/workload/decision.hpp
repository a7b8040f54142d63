#pragma once

// Which pods workload identity serves, and with what (issue 12 item 1). Pure: no I/O, no
// clock, no logging; table-tested in tests/unit/workload/decision_test.cpp.

#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/workload/service_accounts.hpp"

namespace nmid::workload {

enum class Verdict {
    not_workload,  ///< the pod did not opt in: pod identity decides
    serve,         ///< exchange the pod's ServiceAccount token for `client_id` in `tenant_id`
    deny,          ///< the pod opted in and cannot be served: `denial` says why
};

enum class Denial {
    account_unknown,       ///< the pod's ServiceAccount is not in the snapshot
    no_client_id,          ///< the ServiceAccount has no client-id annotation
    invalid_annotation,    ///< an annotation failed validation (ServiceAccountInfo::invalid_reason)
    no_tenant,             ///< no tenant annotation and no --workload-identity-tenant-id
    selector_unsupported,  ///< msi_res_id, mi_res_id or object_id in the request
    client_id_mismatch,    ///< client_id in the request is not the annotation's
    no_projected_token,    ///< projected source: the pod has no token volume for Azure AD
};

struct Decision {
    Verdict verdict = Verdict::not_workload;
    Denial denial = Denial::account_unknown;  ///< meaningful when verdict == deny
    /// When verdict == serve: views into the ServiceAccountInfo (or the settings) passed in.
    std::string_view client_id{};
    std::string_view tenant_id{};
};

struct DecisionSettings {
    std::string_view default_tenant{};  ///< --workload-identity-tenant-id
    bool projected = false;             ///< --workload-identity-token-source=projected
};

/// The decision for a token request of `pod` (feature on). `account` is the pod's
/// ServiceAccount (service_account_of(pod) in the pod's namespace) from the current snapshot,
/// nullptr when absent. Order: opt-in label (else not_workload, whatever else the pod has:
/// the label is the pod's explicit choice and wins over bindings and exceptions), the
/// ServiceAccount, its annotations, the tenant, the request's selectors (msi_res_id, mi_res_id
/// and object_id name nothing here; client_id must equal the annotation, compared without
/// ASCII case as GUIDs are), and for the projected source the pod's token volume.
[[nodiscard]] Decision decide(const PodInfo& pod, const ServiceAccountInfo* account,
                              const identity::TokenQuery& query, const DecisionSettings& settings);

/// The projection the pod's token is read from: the first whose audience is exactly
/// api://AzureADTokenExchange, else nullptr.
[[nodiscard]] const TokenProjection* azure_projection(const PodInfo& pod) noexcept;

/// The answer's status class for a denial (all are "this identity is not available to you":
/// NMI's 404, retryable for SDKs).
[[nodiscard]] Errc errc_for(Denial denial) noexcept;

/// The text the pod receives (error_description), client IDs redacted.
[[nodiscard]] std::string describe(Denial denial, const PodInfo& pod,
                                   const ServiceAccountInfo* account,
                                   const identity::TokenQuery& query);

}  // namespace nmid::workload
