#pragma once

// Pure parts of `/metadata/identity/info` (issue 14): which tenant a bound identity names, the
// tenant IMDS reports, and the answer's body. A tenant is valid as workload::valid_tenant_id
// says (a GUID or a domain name): nothing else is ever written into an answer.

#include <optional>
#include <string>
#include <string_view>

#include "nmid/model/crd.hpp"

namespace nmid::handlers::detail {

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
