#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/model/crd.hpp"
#include "nmid/model/pod.hpp"

namespace nmid::identity {

/// The identity selectors a token request may carry. At most one is honoured, in this
/// order: client_id, resource_id (`msi_res_id`, else `mi_res_id`), object_id.
struct TokenQuery {
    std::string_view client_id{};
    std::string_view resource_id{};
    std::string_view object_id{};

    [[nodiscard]] bool names_identity() const {
        return !client_id.empty() || !resource_id.empty() || !object_id.empty();
    }
};

/// Why a request was denied. Each maps to one NMI status and message (see `describe`).
enum class DenyReason {
    no_binding_label,           ///< managed: pod has no `aadpodidbinding` label
    no_matching_binding,        ///< managed: no binding in the pod's namespace selects it
    no_identity_for_binding,    ///< managed: bindings name identities that do not exist there
    requested_identity_not_bound,  ///< a client_id / resource id / object id not bound to the pod
    no_assignment,              ///< standard: no AzureAssignedIdentity for the pod
    assignment_pending,         ///< standard: only `Created` assignments so far
};

enum class DecisionKind { excepted, bound, denied };

/// The outcome of `resolve`. `identity` points into the snapshot passed to `resolve` and is
/// valid as long as that snapshot is alive.
struct Decision {
    DecisionKind kind = DecisionKind::denied;
    const AzureIdentity* identity = nullptr;  ///< set when kind == bound
    DenyReason reason = DenyReason::no_binding_label;  ///< meaningful when kind == denied
};

/// Decides what a pod may do with a token request. Pure: no I/O, no clock, no logging.
///
/// Managed mode (NMI managed.go): bindings in the pod's namespace whose `spec.selector`
/// equals the pod's `aadpodidbinding` label (exact), identities named by them in the same
/// namespace. Standard mode: AzureAssignedIdentity objects for the pod (states "" and
/// `Assigned` usable; `Created` only is `assignment_pending`), filtered to the pod's namespace
/// when `force_namespaced` or the identity's `aadpodidentity.k8s.io/Behavior: namespaced`.
/// Exceptions (checked first): in both modes, any exception in the pod's namespace with any
/// `podLabels` entry equal, case-insensitively, to the pod's label of that key; in standard
/// mode only, MIC itself: a pod whose namespace equals mic_namespace case-insensitively and
/// whose one controller owner reference (`controller: true`) is exactly apiVersion `apps/v1`,
/// kind `ReplicaSet` (case-sensitive), name starting with "mic-". Other owner references,
/// a second controller, another kind, case or apiVersion never make a pod MIC (NMI took any
/// ownerReference of kind replicaset in any case: forgeable by anyone creating pods there).
/// Selection: client_id exact, else resource id exact (case-insensitive ARM comparison), else
/// object id exact; with none named, the candidate whose (namespace, name) sorts first, so the
/// choice is deterministic and documented.
[[nodiscard]] Decision resolve(const PodInfo& pod, const CrdSnapshot& crds,
                               const TokenQuery& query, const IdentitySettings& settings);

/// Standard mode: true when MIC is expected to assign an identity to the pod, i.e. some
/// AzureIdentityBinding's selector equals the pod's `aadpodidbinding` label (in the pod's
/// namespace only with `force_namespaced`). A denial for a pod MIC will not serve is answered
/// at once; only an expected assignment is worth waiting for.
[[nodiscard]] bool assignment_expected(const PodInfo& pod, const CrdSnapshot& crds,
                                       const IdentitySettings& settings);

/// True when any exception in the pod's namespace matches the pod (NMI's matching).
[[nodiscard]] bool is_excepted(const PodInfo& pod,
                               const std::vector<AzurePodIdentityException>& exceptions);

/// NMI's error text for a denial (reference nmi-behaviour 3.5), client IDs redacted.
[[nodiscard]] std::string describe(DenyReason reason, const PodInfo& pod,
                                   const TokenQuery& query, const IdentitySettings& settings);

/// NMI's client-ID redaction: first 4 and last 4 characters kept, `##### REDACTED #####`
/// between; shorter values are returned unchanged.
[[nodiscard]] std::string redact(std::string_view client_id);

}  // namespace nmid::identity
