#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::cloud {

class SecretStore;

/// AAD client settings (module `cloud`).
struct AadSettings {
    Millis connect_timeout{2'000};
    std::size_t pool_size = 2;  ///< idle keep-alive connections per AAD origin
    std::size_t max_response_body = std::size_t{64} * 1024;
    std::size_t max_origins = 16;  ///< HTTP clients kept (one per adEndpoint origin)
    /// Client assertion lifetime. Microsoft's certificate-credential docs ask for 5 to 10
    /// minutes; adal (NMI) signs 24 h. The assertion is used once, at once, so a short life
    /// only limits what a leaked assertion is worth.
    std::chrono::seconds assertion_lifetime{600};
    std::string user_agent{"nmid"};
    /// CA certificates (PEM file, or PEM data) trusted for https AAD endpoints in addition to
    /// the system trust store (a private or sovereign AAD, tests). Empty: the system store only.
    std::string ca_file{};
    std::string ca_pem{};
};

/// Tokens of service principals (AzureIdentity types 1 and 2) from the AAD v1 token endpoint,
/// as NMI asks for them (reference nmi-behaviour 6.2, 6.3), with exactly one attempt; the
/// credential comes from the identity's Secret through `secrets`.
/// Threading: fetch() may run on any executor and thread; the per-origin HTTP clients are
/// created on `executor` and guarded internally.
class AadTokenSource final : public TokenSource {
public:
    /// `secrets` and `clock` outlive the source. Throws std::invalid_argument (start-up) when
    /// `settings.ca_file` or `settings.ca_pem` cannot be loaded.
    AadTokenSource(boost::asio::any_io_executor executor, SecretStore& secrets, Clock& clock,
                   AadSettings settings = {});
    ~AadTokenSource() override;
    AadTokenSource(const AadTokenSource&) = delete;
    AadTokenSource& operator=(const AadTokenSource&) = delete;

    /// One `POST <adEndpoint><tenantID>/oauth2/token?api-version=1.0`
    /// (`application/x-www-form-urlencoded`) for `request.identity.tenant_id`:
    /// type 1 `client_id, client_secret, grant_type=client_credentials, resource`;
    /// type 2 `client_assertion, client_assertion_type, client_id, grant_type, resource`.
    /// https endpoints: TLS 1.2+, the certificate verified against the system trust store and
    /// AadSettings' CAs, and against the endpoint's host (SNI too); plain `http://` endpoints
    /// (tests, a local emulator) are used as written.
    /// Executor: any. Cancellation: per-operation (terminal) cancellation of the awaiting
    /// coroutine gives Errc::cancelled. Errors (FetchError::code, upstream_body says why):
    /// - identity type not 1 or 2, a bad adEndpoint or tenantID, a Secret without a usable
    ///   credential (keys, PKCS#12, non-RSA key): identity_unsupported (no request sent);
    /// - the Secret cannot be read (not found, forbidden, API server down): upstream_unavailable
    ///   with status 0 (NMI answers 503);
    /// - a TLS handshake or certificate verification failure (untrusted issuer, host name
    ///   mismatch): upstream_unavailable with status 0 and OpenSSL's reason (fails closed);
    /// - AAD 200 with an unusable body: upstream_bad_payload; 429: upstream_throttled
    ///   (retry_after from Retry-After); 408, 5xx, other non-4xx statuses and transport
    ///   failures: upstream_unavailable; other 4xx (400 invalid_request, 401 invalid_client
    ///   ...): upstream_refused with AAD's error body (at most 4 KiB), and the Secret is read
    ///   again next time (it may have been rotated); `deadline`: timeout.
    /// Never logs; secrets, assertions and tokens never leave the request and the result.
    boost::asio::awaitable<FetchResult> fetch(const TokenRequest& request,
                                              SteadyTime deadline) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nmid::cloud
