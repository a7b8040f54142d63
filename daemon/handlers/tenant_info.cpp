#include "nmid/handlers/tenant_info.hpp"

#include <nlohmann/json.hpp>

#include "nmid/core/json.hpp"
#include "nmid/workload/service_accounts.hpp"

namespace nmid::handlers::detail {

using workload::valid_tenant_id;

IdentityTenant tenant_of(const AzureIdentity& identity) {
    if (identity.type == static_cast<int>(IdentityType::user_assigned_msi)) {
        return {.tenant = std::nullopt, .ask_imds = true};
    }
    if (valid_tenant_id(identity.tenant_id)) {
        return {.tenant = std::string_view{identity.tenant_id}, .ask_imds = false};
    }
    return {};
}

std::optional<std::string> parse_tenant_info(std::string_view body) {
    const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        return std::nullopt;
    }
    const auto it = doc.find("tenantId");
    if (it == doc.end() || !it->is_string()) {
        return std::nullopt;
    }
    std::string tenant = it->get<std::string>();
    if (!valid_tenant_id(tenant)) {
        return std::nullopt;
    }
    return tenant;
}

std::string tenant_info_json(std::string_view tenant) {
    std::string out = R"({"tenantId":")";
    append_json_escaped(out, tenant);
    out += "\"}";
    return out;
}

}  // namespace nmid::handlers::detail
