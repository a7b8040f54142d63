#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "nmid/core/clock.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::net {
class HttpClient;
}  // namespace nmid::net

namespace nmid::cloud {

/// Tokens of user-assigned managed identities (AzureIdentity type 0) from the IMDS token
/// endpoint, as NMI asks for them (reference nmi-behaviour 6.1), with exactly one attempt.
class ImdsTokenSource final : public TokenSource {
public:
    /// `client` talks to IMDS (metadata IP and port); `clock` gives the wall time for
    /// `expires_in` arithmetic and HTTP-date Retry-After; both outlive the source.
    ImdsTokenSource(net::HttpClient& client, Clock& clock, std::string user_agent);

    /// One `GET /metadata/identity/oauth2/token?api-version=2018-02-01&client_id=..&resource=..`
    /// with `Metadata: true`; `msi_res_id=<resource_id>` instead of client_id when the client
    /// ID is empty. An identity with neither is identity_unsupported and no request is sent
    /// (IMDS would answer with the VM's system-assigned identity).
    /// Executor: any. Cancellation: per-operation (terminal) cancellation of the awaiting
    /// coroutine gives Errc::cancelled. Errors (FetchError::code):
    /// 200 with an unusable body: upstream_bad_payload; 429: upstream_throttled (retry_after
    /// from Retry-After); 404, 410, 5xx, other non-200 and transport failures:
    /// upstream_unavailable (status 0 when no response); other 4xx: upstream_refused with the
    /// upstream body (at most 4 KiB); `deadline`: timeout; identity type 1 or 2:
    /// identity_unsupported (no request sent). Never logs; the token never leaves the result.
    boost::asio::awaitable<FetchResult> fetch(const TokenRequest& request,
                                              SteadyTime deadline) override;

private:
    net::HttpClient& client_;
    Clock& clock_;
    std::string user_agent_;
};

}  // namespace nmid::cloud
