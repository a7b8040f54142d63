#include "nmid/crd/identity_validation.hpp"

#include <algorithm>
#include <utility>

#include "nmid/core/ascii.hpp"

namespace nmid {
namespace {

// AzureIdentity `spec.adEndpoint` when empty (as cloud::kDefaultAdEndpoint).
constexpr std::string_view kDefaultAdEndpoint = "https://login.microsoftonline.com/";
constexpr std::uint16_t kHttpsPort = 443;

Rejection reject(RejectReason reason, std::string text) {
    return Rejection{.reason = reason, .text = std::move(text)};
}

bool is_host_char(char c) {
    return is_alnum(c) || c == '.' || c == '-' || c == '_';
}

bool valid_host(std::string_view host) {
    return !host.empty() && std::all_of(host.begin(), host.end(), is_host_char);
}

std::string lower(std::string_view s) {
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

/// Decimal 1-65535; nullopt otherwise.
std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), is_digit)) {
        return std::nullopt;
    }
    unsigned value = 0;
    for (const char c : s) {
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

/// `host[:port]` with a host of is_host_char only; nullopt otherwise.
std::optional<AadAuthority> parse_host_port(std::string_view text) {
    const auto colon = text.find(':');
    AadAuthority out;
    const std::string_view host = text.substr(0, colon);
    if (!valid_host(host)) {
        return std::nullopt;
    }
    out.host = lower(host);
    if (colon != std::string_view::npos) {
        out.port = parse_port(text.substr(colon + 1));
        if (!out.port) {
            return std::nullopt;
        }
    }
    return out;
}

// RFC 3986 pchar plus '/', as cloud::parse_aad_endpoint accepts in the authority's path.
bool valid_path(std::string_view path) {
    return std::all_of(path.begin(), path.end(), [](char c) {
        return is_alnum(c) ||
               std::string_view{"-._~/%!$&'()*+,;=:@"}.find(c) != std::string_view::npos;
    });
}

// As cloud::parse_aad_endpoint: the tenant becomes one path segment of the token URL.
bool valid_tenant(std::string_view tenant) {
    return valid_host(tenant) && tenant != "." && tenant != "..";
}

bool allowed(const AadAuthority& endpoint, const IdentityPolicy& policy) {
    const std::uint16_t port = endpoint.port.value_or(kHttpsPort);
    if (port == kHttpsPort && std::find(kAzureAdAuthorities.begin(), kAzureAdAuthorities.end(),
                                        endpoint.host) != kAzureAdAuthorities.end()) {
        return true;
    }
    return std::any_of(policy.extra_authorities.begin(), policy.extra_authorities.end(),
                       [&](const AadAuthority& a) {
                           return a.host == endpoint.host && (!a.port || *a.port == port);
                       });
}

/// The authority of an adEndpoint, split exactly where net::parse_http_url splits it (the
/// first "://", then up to the first '/', '?' or '#'), so the host checked here is the host
/// nmid connects to. The URL itself is never echoed: it may carry user info.
std::optional<Rejection> check_ad_endpoint(std::string_view url, const IdentityPolicy& policy) {
    if (url.empty()) {
        url = kDefaultAdEndpoint;
    }
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) {
        return reject(RejectReason::ad_endpoint_invalid, "adEndpoint is not an absolute URL");
    }
    const std::string_view scheme = url.substr(0, sep);
    if (!iequals(scheme, "https")) {
        return reject(RejectReason::ad_endpoint_not_https,
                      "adEndpoint must be an https URL (Azure AD credentials never travel in "
                      "clear text)");
    }
    const std::string_view rest = url.substr(sep + 3);
    const auto query = std::min(rest.find_first_of("?#"), rest.size());
    const auto path_start = std::min(rest.find('/'), query);
    const auto endpoint = parse_host_port(rest.substr(0, path_start));
    if (!endpoint) {
        return reject(RejectReason::ad_endpoint_invalid,
                      "adEndpoint's authority must be host[:port] (a DNS name or IPv4 address; "
                      "no user info)");
    }
    if (!valid_path(rest.substr(path_start, query - path_start))) {
        return reject(RejectReason::ad_endpoint_invalid,
                      "adEndpoint's path has invalid characters");
    }
    if (!allowed(*endpoint, policy)) {
        std::string where = endpoint->host;
        if (endpoint->port) {
            where += ':';
            where += std::to_string(*endpoint->port);
        }
        return reject(RejectReason::ad_endpoint_not_allowed,
                      "adEndpoint host " + where +
                          " is not an Azure AD authority (add it to --aad-authority-allowlist "
                          "to trust it)");
    }
    return std::nullopt;
}

std::optional<Rejection> check_service_principal(const AzureIdentity& id,
                                                 const IdentityPolicy& policy) {
    if (id.tenant_id.empty()) {
        return reject(RejectReason::no_tenant_id, "a service principal needs spec.tenantID");
    }
    if (!valid_tenant(id.tenant_id) || !std::all_of(id.auxiliary_tenant_ids.begin(),
                                                    id.auxiliary_tenant_ids.end(), valid_tenant)) {
        return reject(RejectReason::tenant_id_invalid,
                      "spec.tenantID and spec.auxiliaryTenantIDs must be GUIDs or domain names");
    }
    if (id.client_id.empty()) {
        return reject(RejectReason::no_client_id, "a service principal needs spec.clientID");
    }
    const SecretRef& secret = id.client_password;
    if (secret.name.empty() || secret.namespace_name.empty()) {
        return reject(RejectReason::no_secret_reference,
                      "a service principal needs spec.clientPassword with a name and a namespace");
    }
    if (secret.namespace_name != id.meta.namespace_name && !policy.allow_cross_namespace_secrets) {
        return reject(RejectReason::cross_namespace_secret,
                      "spec.clientPassword names a Secret in another namespace than the "
                      "identity's own (--allow-cross-namespace-secrets allows it)");
    }
    return check_ad_endpoint(id.ad_endpoint, policy);
}

}  // namespace

std::optional<Rejection> check_authority(std::string_view url, const IdentityPolicy& policy) {
    return check_ad_endpoint(url, policy);
}

std::string_view to_string(RejectReason reason) noexcept {
    switch (reason) {
        case RejectReason::no_client_or_resource_id:
            return "no_client_or_resource_id";
        case RejectReason::unsupported_type:
            return "unsupported_type";
        case RejectReason::no_tenant_id:
            return "no_tenant_id";
        case RejectReason::tenant_id_invalid:
            return "tenant_id_invalid";
        case RejectReason::no_client_id:
            return "no_client_id";
        case RejectReason::no_secret_reference:
            return "no_secret_reference";
        case RejectReason::cross_namespace_secret:
            return "cross_namespace_secret";
        case RejectReason::ad_endpoint_invalid:
            return "ad_endpoint_invalid";
        case RejectReason::ad_endpoint_not_https:
            return "ad_endpoint_not_https";
        case RejectReason::ad_endpoint_not_allowed:
            return "ad_endpoint_not_allowed";
    }
    return "unknown";
}

Result<std::vector<AadAuthority>> parse_aad_authority_allowlist(std::string_view text,
                                                                std::string* error) {
    std::vector<AadAuthority> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
            item.remove_prefix(1);
        }
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
            item.remove_suffix(1);
        }
        if (item.empty()) {
            continue;
        }
        auto authority = parse_host_port(item);
        if (!authority) {
            if (error != nullptr) {
                // Appends, not "\"" + std::string: -Wrestrict false positive of g++ 12 at -O3.
                std::string text{"\""};
                text += item;
                text += "\" is not host or host:port (a DNS name or IPv4 address, port 1-65535)";
                *error = std::move(text);
            }
            return Errc::invalid_config;
        }
        out.push_back(std::move(*authority));
    }
    return out;
}

Result<IdentityPolicy> make_identity_policy(const CrdSettings& settings, std::string* error) {
    auto extra = parse_aad_authority_allowlist(settings.aad_authority_allowlist, error);
    if (!extra) {
        return extra.error();
    }
    return IdentityPolicy{.allow_cross_namespace_secrets = settings.allow_cross_namespace_secrets,
                          .extra_authorities = std::move(*extra)};
}

std::optional<Rejection> validate(const AzureIdentity& identity, const IdentityPolicy& policy) {
    switch (identity.type) {
        case static_cast<int>(IdentityType::user_assigned_msi):
            if (identity.client_id.empty() && identity.resource_id.empty()) {
                return reject(RejectReason::no_client_or_resource_id,
                              "a managed identity needs spec.clientID or spec.resourceID (IMDS "
                              "would answer with the node's own identity)");
            }
            return std::nullopt;
        case static_cast<int>(IdentityType::service_principal):
        case static_cast<int>(IdentityType::service_principal_certificate):
            return check_service_principal(identity, policy);
        default:
            return reject(RejectReason::unsupported_type,
                          "spec.type " + std::to_string(identity.type) +
                              " is not 0 (managed identity), 1 or 2 (service principal)");
    }
}

ScreenedSnapshot screen_snapshot(const CrdSnapshot& in, const IdentityPolicy& policy) {
    ScreenedSnapshot out;
    auto refuse = [&](std::string_view kind, const ObjectMeta& meta, Rejection why) {
        out.rejected.push_back(RejectedIdentity{.kind = kind,
                                                .namespace_name = meta.namespace_name,
                                                .name = meta.name,
                                                .resource_version = meta.resource_version,
                                                .rejection = std::move(why)});
    };
    std::vector<bool> identity_ok(in.identities.size(), true);
    for (std::size_t i = 0; i < in.identities.size(); ++i) {
        const AzureIdentity& id = in.identities[i];
        if (auto why = validate(id, policy)) {
            refuse("AzureIdentity", id.meta, std::move(*why));
            identity_ok[i] = false;
        }
    }
    std::vector<bool> assigned_ok(in.assigned.size(), true);
    for (std::size_t i = 0; i < in.assigned.size(); ++i) {
        const AzureAssignedIdentity& a = in.assigned[i];
        if (auto why = validate(a.identity_ref, policy)) {
            why->text = "embedded AzureIdentity " + a.identity_ref.meta.namespace_name + "/" +
                        a.identity_ref.meta.name + ": " + why->text;
            refuse("AzureAssignedIdentity", a.meta, std::move(*why));
            assigned_ok[i] = false;
        }
    }
    if (out.rejected.empty()) {
        return out;
    }
    CrdSnapshot kept;
    kept.bindings = in.bindings;
    kept.exceptions = in.exceptions;
    for (std::size_t i = 0; i < in.identities.size(); ++i) {
        if (identity_ok[i]) {
            kept.identities.push_back(in.identities[i]);
        }
    }
    for (std::size_t i = 0; i < in.assigned.size(); ++i) {
        if (assigned_ok[i]) {
            kept.assigned.push_back(in.assigned[i]);
        }
    }
    out.kept = std::move(kept);
    return out;
}

}  // namespace nmid
