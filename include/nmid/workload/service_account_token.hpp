#pragma once

// The ServiceAccount token workload identity exchanges at Azure AD, and the TokenRequest API
// that mints one bound to the calling pod (reference/workload-identity.md §1).

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "nmid/core/clock.hpp"
#include "nmid/kube/client.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::workload {

struct ServiceAccountToken {
    std::string token;            ///< the JWT, never logged
    std::int64_t expires_on = 0;  ///< Unix seconds
    std::int64_t issued_at = 0;   ///< Unix seconds (when nmid got it, if the token does not say)
};

/// A token, or why there is none (FetchError: code, the API server's status and message).
using SaTokenResult = boost::system::result<ServiceAccountToken, FetchError>;

/// Mints one ServiceAccount token for `pod` (no caching).
class TokenRequester {
public:
    virtual ~TokenRequester() = default;
    virtual boost::asio::awaitable<SaTokenResult> request(const PodInfo& pod,
                                                          SteadyTime deadline) = 0;
};

/// The largest token nmid accepts from the API server.
inline constexpr std::size_t kMaxServiceAccountToken = std::size_t{16} * 1024;

/// `/api/v1/namespaces/<ns>/serviceaccounts/<sa>/token` for the pod's ServiceAccount;
/// Errc::bad_request when the namespace is not a DNS label or the name not a DNS subdomain
/// (names come from the pod list: never spliced into a path unchecked). Pure.
[[nodiscard]] Result<std::string> token_request_target(const PodInfo& pod);

/// The TokenRequest nmid sends: audience api://AzureADTokenExchange, 3600 s, bound to the pod
/// (kind Pod, its name and uid) so the token dies with it. Pure.
[[nodiscard]] std::string token_request_body(const PodInfo& pod);

/// The API server's answer: 200/201 with `status.token` (JWT-shaped, at most
/// kMaxServiceAccountToken bytes) and `status.expirationTimestamp` (RFC 3339, trusted over the
/// seconds asked for: the server may shorten them). Errors keep the Status `message`:
/// 404/400/409/422/403 are upstream_refused, 429 upstream_throttled (with Retry-After), 5xx
/// upstream_unavailable, anything unparsable upstream_bad_payload. `now`: Unix seconds,
/// recorded as issued_at. Pure; never throws.
[[nodiscard]] SaTokenResult parse_token_request_response(const kube::Response& response,
                                                         std::int64_t now);

/// TokenRequester over the API server. `observe` (optional) sees each answer's HTTP status
/// (0: no answer), for nmid_tokenrequests_total{status}.
class ApiTokenRequester final : public TokenRequester {
public:
    ApiTokenRequester(kube::ApiServerClient& api, Clock& clock,
                      std::function<void(int status)> observe = {});
    boost::asio::awaitable<SaTokenResult> request(const PodInfo& pod, SteadyTime deadline) override;

private:
    kube::ApiServerClient& api_;
    Clock& clock_;
    std::function<void(int)> observe_;
};

}  // namespace nmid::workload
