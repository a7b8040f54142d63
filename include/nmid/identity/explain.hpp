#pragma once

#include <string>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/model/crd.hpp"
#include "nmid/model/pod.hpp"

namespace nmid::identity {

/// What `explain` looked at for a pod.
enum class ConsideredKind {
    mic,         ///< standard mode: is the pod MIC itself?
    exception,   ///< an AzurePodIdentityException in the pod's namespace
    binding,     ///< managed mode: an AzureIdentityBinding in the pod's namespace
    assignment,  ///< standard mode: an AzureAssignedIdentity naming the pod
};

/// "mic", "exception", "binding", "assignment".
[[nodiscard]] std::string_view to_string(ConsideredKind kind) noexcept;

/// One object (or check) considered, whether it matched, and why, in words an operator can act
/// on. Never holds a client ID in clear (they are redacted), a secret or a token.
struct Consideration {
    ConsideredKind kind = ConsideredKind::exception;
    std::string namespace_name;  ///< of the object ("" for the MIC check)
    std::string name;
    bool matched = false;
    std::string why;
};

/// Why a pod gets the answer it gets.
struct Explanation {
    std::vector<Consideration> considered;  ///< exceptions first, then bindings or assignments
    /// resolve() for a request naming no identity (the same function answers pods: an
    /// explanation never disagrees with the handler).
    Decision decision;
    /// Every identity the pod may ask for (by client_id, msi_res_id or object_id), sorted by
    /// (namespace, name); empty unless decision.kind == bound. Points into the snapshot.
    std::vector<const AzureIdentity*> usable;
};

/// Pure: resolve() with its reasons. Lists the MIC check (standard mode), every exception of
/// the pod's namespace, and every binding of its namespace (managed) or every assignment
/// naming the pod (standard).
[[nodiscard]] Explanation explain(const PodInfo& pod, const CrdSnapshot& crds,
                                  const IdentitySettings& settings);

/// Standard mode: the pod is MIC itself (resolver.hpp documents the rule).
[[nodiscard]] bool is_mic(const PodInfo& pod, const IdentitySettings& settings);

}  // namespace nmid::identity
