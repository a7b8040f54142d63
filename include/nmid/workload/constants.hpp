#pragma once

// The objects the azure-workload-identity webhook reads (reference/workload-identity.md §2),
// read the same way by nmid so that a cluster set up for workload identity works unchanged.

#include <cstdint>
#include <string_view>

#include "nmid/model/pod.hpp"

namespace nmid::workload {

inline constexpr std::string_view kUseLabel = "azure.workload.identity/use";
inline constexpr std::string_view kClientIdAnnotation = "azure.workload.identity/client-id";
inline constexpr std::string_view kTenantIdAnnotation = "azure.workload.identity/tenant-id";
inline constexpr std::string_view kTokenAudience = "api://AzureADTokenExchange";
inline constexpr std::int64_t kTokenExpirationSeconds = 3600;

/// The pod opted in: label `azure.workload.identity/use` is exactly "true" (the webhook's
/// objectSelector; "True" or "1" do not select it either).
[[nodiscard]] bool uses_workload_identity(const PodInfo& pod) noexcept;

/// An RFC 1123 label (namespace and volume names): 1 to 63 of [a-z0-9-], no '-' at either end.
/// Names from pod specs are checked with it before they become paths. Pure.
[[nodiscard]] bool dns_label(std::string_view s) noexcept;

/// The pod's ServiceAccount name: spec.serviceAccountName, "default" when empty.
[[nodiscard]] std::string_view service_account_of(const PodInfo& pod) noexcept;

}  // namespace nmid::workload
