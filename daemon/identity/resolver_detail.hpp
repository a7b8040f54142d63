#pragma once

// Predicates shared by resolver.cpp and explain.cpp, so an explanation applies exactly the
// rules the resolver does. Private to the identity module.

#include <string>
#include <string_view>
#include <utility>

#include "nmid/model/crd.hpp"
#include "nmid/model/pod.hpp"

namespace nmid::identity::detail {

/// The identity carries `aadpodidentity.k8s.io/Behavior: namespaced`.
[[nodiscard]] bool is_namespaced_identity(const AzureIdentity& id);

/// An AzureAssignedIdentity state that serves tokens ("" or "Assigned").
[[nodiscard]] bool usable_state(std::string_view status);

/// The exception's first `podLabels` entry equal to the pod's label of that key (values
/// compared case-insensitively, as NMI), or null. The namespace is the caller's to check.
[[nodiscard]] const std::pair<const std::string, std::string>* matching_label(
    const AzurePodIdentityException& exception, const PodInfo& pod);

}  // namespace nmid::identity::detail
