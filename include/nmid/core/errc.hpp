#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string_view>
#include <type_traits>

namespace nmid {

/// The one error enumeration of nmid. Expected failures travel as values
/// (`Result<T>`); `handlers::to_http` is the only place that maps them to HTTP.
enum class Errc {
    ok = 0,
    // Request shape (answered before any lookup).
    metadata_header_missing = 1,  ///< `Metadata: true` absent or not exactly `true`
    forwarded_for_present,        ///< `X-Forwarded-For` present (IMDS rejects it)
    resource_missing,             ///< `resource` query parameter empty or absent
    invalid_token_path,           ///< odd token path such as `/metadata/identity\oauth2\token`
    bad_request,                  ///< anything else malformed
    remote_address_invalid,       ///< the peer address is not an IP
    not_loopback,                 ///< `/host/token` from a non-loopback peer
    host_headers_missing,         ///< `/host/token` without `podns`/`podname`
    instance_blocked,             ///< `--block-instance-metadata`
    path_not_allowed,             ///< a path the proxy does not forward (issue 11): 403
    path_not_found,               ///< an identity path nmid does not serve (issue 11): 404
    method_not_allowed,           ///< a method the proxied path does not take: 405
    // Pod lookup.
    pod_not_found,      ///< no Pending/Running pod with that IP (after a refresh)
    pod_ip_ambiguous,   ///< two or more pods claim the IP: never guessed
    pod_source_failed,  ///< the pod source could not be read
    // Identity resolution.
    no_binding,            ///< pod has no binding label or no binding matches it
    identity_not_found,    ///< bindings exist but no identity matches the request
    identity_unsupported,  ///< AzureIdentity type nmid cannot serve
    // Upstream token sources (IMDS, AAD).
    upstream_refused,      ///< IMDS/AAD answered a final 4xx (NMI: 403)
    upstream_throttled,    ///< 429 after retries (status kept when passed back)
    upstream_unavailable,  ///< transport error, timeout, 5xx after retries (NMI: 503)
    upstream_bad_payload,  ///< 200 without a usable token
    // Generic.
    timeout,
    cancelled,
    not_ready,    ///< start-up: snapshots not yet loaded
    overloaded,   ///< too many connections or waiters
    parse_error,  ///< untrusted bytes did not parse
    io_error,
    invalid_config,
    pod_over_limit,  ///< the calling pod is over one of its per-pod limits (429, Retry-After)
};

const boost::system::error_category& errc_category() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), errc_category()};
}

/// Short stable name of an error (`pod_not_found`), used in logs and metric labels.
std::string_view to_string(Errc e) noexcept;

/// `boost::system::result<T>` over nmid's error codes.
template <class T>
using Result = boost::system::result<T>;

}  // namespace nmid

template <>
struct boost::system::is_error_code_enum<nmid::Errc> : std::true_type {};
