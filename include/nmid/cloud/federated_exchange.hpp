#pragma once

// Workload identity's exchange at Azure AD (reference/workload-identity.md §4): a ServiceAccount
// token, presented as a client assertion, for an access token of the federated client.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "nmid/cloud/aad_token_source.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::cloud {

/// The v2 scope for an IMDS-style resource, as the Azure SDKs convert it: "/.default" appended
/// unless the resource already ends with it; nothing trimmed (Azure AD takes everything before
/// the last '/' as the v1 resource, so `https://management.core.windows.net/` becomes
/// `https://management.core.windows.net//.default` and round-trips). Pure.
[[nodiscard]] std::string scope_for_resource(std::string_view resource);

/// The form body of the exchange, keys sorted: client_assertion, client_assertion_type
/// (jwt-bearer), client_id, grant_type=client_credentials, scope. Pure.
[[nodiscard]] std::string federated_form(std::string_view client_id, std::string_view scope,
                                         std::string_view assertion);

/// One `POST <authority><tenant>/oauth2/v2.0/token` per call, no retry (the token cache
/// retries). Azure AD's TLS rules are AadTokenSource's (--aad-ca-file applies). Errors as
/// AadTokenSource::fetch: a 4xx keeps Azure AD's JSON (error, error_description with its
/// AADSTS code) in FetchError::upstream_body, so the pod sees why; an authority or tenant
/// that does not resolve to a token endpoint is identity_unsupported with nothing sent.
/// Thread-safe; `clock` outlives it.
class FederatedExchange {
public:
    /// Throws std::invalid_argument (start-up) when the configured CAs cannot be loaded.
    FederatedExchange(boost::asio::any_io_executor executor, Clock& clock, AadSettings settings);
    ~FederatedExchange();
    FederatedExchange(const FederatedExchange&) = delete;
    FederatedExchange& operator=(const FederatedExchange&) = delete;

    /// The token is for `resource` (as the pod asked) with expires_on from `expires_in`.
    boost::asio::awaitable<FetchResult> exchange(std::string_view client_id,
                                                 std::string_view tenant_id,
                                                 std::string_view authority,
                                                 std::string_view resource,
                                                 std::string_view assertion, SteadyTime deadline);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nmid::cloud
