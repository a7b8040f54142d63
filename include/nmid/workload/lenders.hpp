#pragma once

// Which pods may lend their ServiceAccount token for a workload identity key. Pure.

#include <memory>
#include <string_view>
#include <vector>

#include "nmid/model/pod.hpp"

namespace nmid::workload {

/// The pods of `list` that are in the pod index (pods/pod_eligibility.hpp indexed_by_ip),
/// opted in (uses_workload_identity), in `namespace_name` and run under `service_account`;
/// with `projected`, only those with a token volume for Azure AD (azure_projection). In list
/// order. The pointers share the list's ownership.
[[nodiscard]] std::vector<PodInfoPtr> lenders(const std::shared_ptr<const PodList>& list,
                                              std::string_view namespace_name,
                                              std::string_view service_account, bool projected);

/// The uids of every pod of `list` (the provider's retain()).
[[nodiscard]] std::vector<std::string> pod_uids(const PodList& list);

}  // namespace nmid::workload
