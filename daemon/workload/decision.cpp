#include "nmid/workload/decision.hpp"

#include "nmid/core/ascii.hpp"
#include "nmid/workload/constants.hpp"

namespace nmid::workload {
namespace {

Decision denied(Denial denial) {
    return {.verdict = Verdict::deny, .denial = denial};
}

std::string pod_name(const PodInfo& pod) {
    return pod.namespace_name + "/" + pod.name;
}

std::string account_name(const PodInfo& pod) {
    return pod.namespace_name + "/" + std::string{service_account_of(pod)};
}

}  // namespace

const TokenProjection* azure_projection(const PodInfo& pod) noexcept {
    for (const TokenProjection& projection : pod.token_projections) {
        if (projection.audience == kTokenAudience) {
            return &projection;
        }
    }
    return nullptr;
}

Decision decide(const PodInfo& pod, const ServiceAccountInfo* account,
                const identity::TokenQuery& query, const DecisionSettings& settings) {
    if (!uses_workload_identity(pod)) {
        return {};
    }
    if (account == nullptr) {
        return denied(Denial::account_unknown);
    }
    if (!account->invalid_reason.empty()) {
        return denied(Denial::invalid_annotation);
    }
    if (!account->has_client_id || account->client_id.empty()) {
        return denied(Denial::no_client_id);
    }
    const std::string_view tenant =
        account->tenant_id.empty() ? settings.default_tenant : std::string_view{account->tenant_id};
    if (tenant.empty()) {
        return denied(Denial::no_tenant);
    }
    if (!query.resource_id.empty() || !query.object_id.empty()) {
        return denied(Denial::selector_unsupported);
    }
    if (!query.client_id.empty() && !iequals(query.client_id, account->client_id)) {
        return denied(Denial::client_id_mismatch);
    }
    if (settings.projected && azure_projection(pod) == nullptr) {
        return denied(Denial::no_projected_token);
    }
    return {.verdict = Verdict::serve, .client_id = account->client_id, .tenant_id = tenant};
}

Errc errc_for(Denial /*denial*/) noexcept {
    return Errc::identity_not_found;
}

std::string describe(Denial denial, const PodInfo& pod, const ServiceAccountInfo* account,
                     const identity::TokenQuery& query) {
    std::string who = "pod " + pod_name(pod) + " (labelled " + std::string{kUseLabel} +
                      "=true) uses workload identity";
    switch (denial) {
        case Denial::account_unknown:
            return who + ", but its ServiceAccount " + account_name(pod) +
                   " is not known to nmid (not created, or the ServiceAccount watch is behind)";
        case Denial::no_client_id:
            return who + ", but its ServiceAccount " + account_name(pod) + " has no " +
                   std::string{kClientIdAnnotation} + " annotation";
        case Denial::invalid_annotation:
            return who + ", but its ServiceAccount " + account_name(pod) +
                   " has an invalid annotation: " +
                   (account != nullptr ? account->invalid_reason : std::string{"unknown"});
        case Denial::no_tenant:
            return who + ", but no tenant is known for its ServiceAccount " + account_name(pod) +
                   ": annotate it with " + std::string{kTenantIdAnnotation} +
                   " or start nmid with --workload-identity-tenant-id";
        case Denial::selector_unsupported:
            return who +
                   ": msi_res_id, mi_res_id and object_id name nothing here; ask without "
                   "them, or with client_id set to its ServiceAccount's " +
                   std::string{kClientIdAnnotation};
        case Denial::client_id_mismatch:
            return "identity not found: client_id " + identity::redact(query.client_id) +
                   " is not the workload identity of pod " + pod_name(pod) +
                   " (its ServiceAccount " + account_name(pod) + " names " +
                   identity::redact(account != nullptr ? account->client_id : "") + ")";
        case Denial::no_projected_token:
            return who + ", but it has no projected ServiceAccount token volume with audience " +
                   std::string{kTokenAudience} +
                   " (the azure-workload-identity webhook adds it; nmid reads tokens from it with "
                   "--workload-identity-token-source=projected)";
    }
    return who;
}

}  // namespace nmid::workload
