#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nmid/model/crd.hpp"

namespace nmid {

/// An access token as fetched from IMDS or AAD. Immutable once cached.
struct Token {
    std::string access_token;
    std::string refresh_token;  ///< usually ""
    std::string token_type{"Bearer"};
    std::string resource;         ///< as the upstream echoed it (responses echo the request)
    std::int64_t expires_on = 0;  ///< Unix seconds
    std::int64_t not_before = 0;  ///< Unix seconds (0 when upstream sent none)
    std::int64_t expires_in = 0;  ///< lifetime in seconds as fetched (informational)
    /// IMDS 2023-07-01's `client_id`: as the upstream sent it, else the identity's client id
    /// (filled by the cache); "" when neither is known. Echoed to the pod after NMI's fields.
    std::string client_id{};
    /// Unix seconds when the upstream's extended lifetime ends (`ext_expires_in` at fetch time
    /// plus the fetch time); 0 when the upstream sent no `ext_expires_in` (then none is sent).
    std::int64_t ext_expires_on = 0;

    friend bool operator==(const Token&, const Token&) = default;
};

using TokenPtr = std::shared_ptr<const Token>;

/// Which upstream identity to ask for a token. Built by the handler from the AzureIdentity
/// chosen by the resolver; `cache_key()` says which requests may share a token.
struct TokenIdentity {
    /// The AzureIdentity object's namespace and name: part of the cache key, so two objects
    /// never share a cached token (a tenant's object naming another's Secret or client ID
    /// gets its own fetch, not the other's cached answer).
    std::string identity_namespace;
    std::string identity_name;
    int type = 0;             ///< AzureIdentity spec.type
    std::string client_id;    ///< spec.clientID: what is sent upstream when set
    std::string resource_id;  ///< type 0: sent to IMDS as msi_res_id when client_id is empty
    std::string tenant_id;    ///< types 1 and 2
    std::string ad_endpoint;  ///< types 1 and 2
    SecretRef secret;         ///< types 1 and 2

    friend bool operator==(const TokenIdentity&, const TokenIdentity&) = default;
};

/// One token fetch: identity plus the AAD v1 resource (App ID URI) exactly as requested.
struct TokenRequest {
    TokenIdentity identity;
    std::string resource;

    friend bool operator==(const TokenRequest&, const TokenRequest&) = default;
};

}  // namespace nmid
