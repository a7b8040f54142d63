#pragma once

// Pure parts of `/metadata/identity/info` (issue 14): which tenant a bound identity names, the
// tenant IMDS reports, and the answer's body.

#include <optional>
#include <string>
#include <string_view>

#include "nmid/model/crd.hpp"

namespace nmid::handlers::detail {

/// A tenant id nmid echoes: 1 to 64 characters of letters, digits, '-' and '.' (GUIDs, and
/// the domain names AAD also accepts as tenants). Anything else is never put in an answer.
[[nodiscard]] bool valid_tenant_id(std::string_view tenant);

/// Where the tenant of a bound AzureIdentity comes from.
struct IdentityTenant {
    /// Service principals (types 1 and 2): their `spec.tenantID`, when valid.
    std::optional<std::string_view> tenant;
    /// Managed identities (type 0): the VM's tenant, which IMDS's own
    /// `/metadata/identity/info` reports.
    bool ask_imds = false;
};
[[nodiscard]] IdentityTenant tenant_of(const AzureIdentity& identity);

/// The tenant of an IMDS `/metadata/identity/info` body (`{"tenantId": "..."}`), when it is
/// a JSON object with a valid `tenantId` string; nullopt otherwise. Never throws.
[[nodiscard]] std::optional<std::string> parse_tenant_info(std::string_view body);

/// `{"tenantId":"<tenant>"}` (tenant already valid).
[[nodiscard]] std::string tenant_info_json(std::string_view tenant);

}  // namespace nmid::handlers::detail
