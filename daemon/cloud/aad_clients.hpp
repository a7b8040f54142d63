#pragma once

// What the two Azure AD token sources share (module-private): one HTTP client per Azure AD
// origin with the TLS settings of AadSettings, and one form POST with its answer mapped to a
// FetchResult.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "nmid/cloud/aad_endpoint.hpp"
#include "nmid/cloud/aad_token_source.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::cloud::detail {

/// `client_assertion_type` of a JWT client assertion (certificate or federated).
inline constexpr std::string_view kAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Appends `key=value` (both percent-encoded) to a form body.
void add_field(std::string& form, std::string_view key, std::string_view value);

/// HTTP clients per Azure AD origin, created on first use (at most settings.max_origins, least
/// recently used dropped). Thread-safe.
class AadClients {
public:
    /// Throws std::invalid_argument (start-up) when the configured CAs cannot be loaded.
    AadClients(boost::asio::any_io_executor executor, AadSettings settings);

    /// The client for `endpoint`'s origin; null with `error` set when its TLS settings cannot
    /// be loaded.
    std::shared_ptr<net::HttpClient> client_for(const AadEndpoint& endpoint, std::string& error);
    [[nodiscard]] const AadSettings& settings() const { return settings_; }

private:
    boost::asio::any_io_executor executor_;
    AadSettings settings_;
    std::mutex mutex_;
    /// (origin, client), most recently used last. In-flight requests keep a client's state
    /// alive, so dropping one from here never cuts a request.
    std::vector<std::pair<std::string, std::shared_ptr<net::HttpClient>>> clients_;
};

/// One POST of `form` (application/x-www-form-urlencoded) to `endpoint`'s token target: 200 is
/// the token (upstream_bad_payload when unusable), 429 upstream_throttled with Retry-After,
/// another 4xx but 408 upstream_refused with Azure AD's error body, the rest (408, 5xx,
/// transport, TLS failures with OpenSSL's reason) upstream_unavailable; `deadline`: timeout.
boost::asio::awaitable<FetchResult> post_token_form(AadClients& clients,
                                                    const AadEndpoint& endpoint, std::string form,
                                                    Clock& clock, SteadyTime deadline);

}  // namespace nmid::cloud::detail
