#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"

namespace nmid::cloud {

/// AzureIdentity `spec.adEndpoint` when empty (reference nmi-behaviour 5.1).
inline constexpr std::string_view kDefaultAdEndpoint = "https://login.microsoftonline.com/";

/// Where one tenant's AAD v1 token endpoint is, and the exact URL adal puts in a client
/// assertion's `aud`.
struct AadEndpoint {
    bool https = true;         ///< false only for an explicit `http://` authority (tests)
    std::string host{};        ///< as written, without IPv6 brackets
    std::uint16_t port = 443;  ///< explicit, or 443 / 80 by scheme
    std::string authority{};   ///< `host[:port]` as written (brackets kept): the Host header
    std::string
        token_target{};       ///< origin-form: `<base path><tenant>/oauth2/token?api-version=1.0`
    std::string token_url{};  ///< `<scheme>://<authority><token_target>` (assertion `aud`)

    /// `<scheme>://<authority>` (lower-case scheme): one HTTP client per origin.
    [[nodiscard]] std::string origin() const;

    friend bool operator==(const AadEndpoint&, const AadEndpoint&) = default;
};

/// Which Azure AD token endpoint: v1 (`oauth2/token?api-version=1.0`, `resource`; what adal and
/// NMI use for service principals) or v2 (`oauth2/v2.0/token`, `scope`; workload identity's
/// federated exchange).
enum class AadTokenApi { v1, v2 };

/// Resolves `<tenant>/oauth2/token?api-version=1.0` (v2: `<tenant>/oauth2/v2.0/token`) against
/// `ad_endpoint` as adal does (a relative reference: the authority's path up to its last `/` is
/// kept, so a path needs a trailing `/`). An empty `ad_endpoint` is kDefaultAdEndpoint. Query and
/// fragment of the authority are dropped. Only `https` and `http` schemes; no user info; the tenant
/// must be a GUID or a domain name (letters, digits, `.`, `-`, `_`). Errors: Errc::invalid_config.
/// Pure, never throws.
[[nodiscard]] Result<AadEndpoint> parse_aad_endpoint(std::string_view ad_endpoint,
                                                     std::string_view tenant_id,
                                                     AadTokenApi api = AadTokenApi::v1);

}  // namespace nmid::cloud
