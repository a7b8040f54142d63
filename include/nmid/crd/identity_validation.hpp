#pragma once

// Which AzureIdentity objects nmid will serve at all, decided once per published snapshot
// (design.md section 3, "Never the node's identity for a pod"). Identity objects are written by
// tenants, so each is checked before any binding can reach it; a refused one is dropped from the
// snapshot with a typed reason. No I/O, no clock, no logging.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/crd.hpp"

namespace nmid {

/// Why an AzureIdentity is refused (the `reason` label of `nmid_identities_rejected`).
enum class RejectReason : std::uint8_t {
    /// Type 0 without clientID and resourceID: IMDS would answer with the node's
    /// system-assigned identity.
    no_client_or_resource_id = 0,
    unsupported_type,         ///< spec.type is not 0, 1 or 2
    no_tenant_id,             ///< type 1 or 2 without tenantID
    tenant_id_invalid,        ///< tenantID or an auxiliary tenant is not a GUID or domain name
    no_client_id,             ///< type 1 or 2 without clientID
    no_secret_reference,      ///< type 1 or 2: clientPassword without a name or a namespace
    cross_namespace_secret,   ///< the Secret is not in the identity's own namespace
    ad_endpoint_invalid,      ///< adEndpoint is not a URL nmid can check (see validate)
    ad_endpoint_not_https,    ///< adEndpoint is not `https`
    ad_endpoint_not_allowed,  ///< adEndpoint's host is not an allowed Azure AD authority
};
inline constexpr std::size_t kRejectReasonCount = 10;

/// "no_client_or_resource_id", ... (metric label, logs, /readyz).
[[nodiscard]] std::string_view to_string(RejectReason reason) noexcept;

struct Rejection {
    RejectReason reason = RejectReason::unsupported_type;
    std::string text{};  ///< one line for an operator; names fields, never a secret

    friend bool operator==(const Rejection&, const Rejection&) = default;
};

/// One allowed Azure AD authority: a host (lower case, a name or an IPv4 literal) and, when
/// given, the only port allowed (nullopt: any port).
struct AadAuthority {
    std::string host{};
    std::optional<std::uint16_t> port{};

    friend bool operator==(const AadAuthority&, const AadAuthority&) = default;
};

/// The Azure AD authorities of the public, US Government and China clouds, on port 443.
inline constexpr std::array<std::string_view, 4> kAzureAdAuthorities{
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
};

/// What a deployment allows beyond the built-in rules (module `crd`).
struct IdentityPolicy {
    /// --allow-cross-namespace-secrets: a service principal may name a Secret in another
    /// namespace (NMI compatibility; lets whoever writes an AzureIdentity read any Secret nmid
    /// can read).
    bool allow_cross_namespace_secrets = false;
    /// --aad-authority-allowlist: authorities allowed besides kAzureAdAuthorities.
    std::vector<AadAuthority> extra_authorities{};
};

/// Parses `--aad-authority-allowlist`: comma-separated `host` or `host:port` items (spaces
/// around items and empty items ignored). A host is a DNS name or an IPv4 literal (letters,
/// digits, `.`, `-`, `_`; compared case-insensitively); a port is 1-65535.
/// Errors: Errc::invalid_config, with the offending item in `*error` (if not null). Pure.
[[nodiscard]] Result<std::vector<AadAuthority>> parse_aad_authority_allowlist(
    std::string_view text, std::string* error = nullptr);

/// The policy --allow-cross-namespace-secrets and --aad-authority-allowlist describe.
/// Errors: Errc::invalid_config (the allowlist does not parse; `*error` says why). Pure.
[[nodiscard]] Result<IdentityPolicy> make_identity_policy(const CrdSettings& settings,
                                                          std::string* error = nullptr);

/// Checks one AzureIdentity against the rules; nullopt when nmid may serve it.
/// - type 0 (user-assigned MSI): clientID or resourceID non-empty.
/// - types 1 and 2 (service principal): tenantID, clientID, clientPassword.name and
///   .namespace non-empty; tenantID and auxiliaryTenantIDs are GUIDs or domain names (letters,
///   digits, `.`, `-`, `_`; not `.` or `..`), as they become a path segment of the token URL; the
///   namespace is the identity's own unless `allow_cross_namespace_secrets`; adEndpoint ("" is
///   https://login.microsoftonline.com/) is `https://host[:port][/path]`, where host and port are
///   as the HTTP client reads them (no user info, no IPv6 literal, no percent-encoding or backslash
///   in the authority), and host is a built-in authority on port 443 or matches
///   `extra_authorities`.
/// - any other type: unsupported_type.
/// Pure; never throws.
[[nodiscard]] std::optional<Rejection> validate(const AzureIdentity& identity,
                                                const IdentityPolicy& policy);

/// The adEndpoint rule of validate() alone, for any Azure AD authority nmid is given (workload
/// identity's --workload-identity-authority-host): https, host[:port] as the HTTP client reads
/// it, a built-in authority or one of `extra_authorities`. Pure.
[[nodiscard]] std::optional<Rejection> check_authority(std::string_view url,
                                                       const IdentityPolicy& policy);

/// An object left out of a published snapshot, and why.
struct RejectedIdentity {
    /// "AzureIdentity", or "AzureAssignedIdentity" when the identity embedded in an
    /// assignment (standard mode) is refused: the assignment is dropped.
    std::string_view kind{};
    std::string namespace_name{};
    std::string name{};
    std::string resource_version{};
    Rejection rejection{};

    friend bool operator==(const RejectedIdentity&, const RejectedIdentity&) = default;
};

/// What screening a snapshot found.
struct ScreenedSnapshot {
    /// The input without the refused objects; nullopt when nothing was refused (publish the
    /// input as it is, without a copy).
    std::optional<CrdSnapshot> kept;
    std::vector<RejectedIdentity> rejected;  ///< in the snapshot's order, identities first
};

/// Applies `validate` to every identity and every assignment's embedded identity of `in`.
/// Order and everything else are kept. Pure; never throws.
[[nodiscard]] ScreenedSnapshot screen_snapshot(const CrdSnapshot& in, const IdentityPolicy& policy);

}  // namespace nmid
