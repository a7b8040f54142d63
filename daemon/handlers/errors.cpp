#include "nmid/handlers/errors.hpp"

#include <string>

#include "nmid/handlers/imds_json.hpp"

namespace nmid::handlers {
namespace {

struct Mapping {
    int status;
    std::string_view error;  ///< OAuth-style `error` code in the body
    bool retryable;          ///< send Retry-After
};

Mapping mapping_for(Errc code, const HandlerSettings& settings, Endpoint endpoint) {
    switch (code) {
        // Malformed requests: 400, the only status an SDK treats as final.
        case Errc::metadata_header_missing:
        case Errc::forwarded_for_present:
        case Errc::resource_missing:
        case Errc::invalid_token_path:
        case Errc::host_headers_missing:
        case Errc::bad_request:
            return {400, "invalid_request", false};
        // NMI answered 500 for a non-loopback /host/token caller; 403 says what it is. Paths
        // nmid answers itself (issue 11) are never forwarded and never retried.
        case Errc::not_loopback:
        case Errc::instance_blocked:
        case Errc::path_not_allowed:
            return {403, "access_denied", false};
        case Errc::path_not_found:
            return {404, "not_found", false};
        case Errc::method_not_allowed:
            return {405, "method_not_allowed", false};
        // Pod lookup: NMI's 500, retried by every SDK.
        case Errc::remote_address_invalid:
        case Errc::pod_not_found:
        case Errc::pod_ip_ambiguous:
            return {500, "unknown", false};
        case Errc::pod_source_failed:
            return {500, "unknown", true};
        // Identity lookup: NMI's 404, or 503 + Retry-After with --set-retry-after-header
        // (never on /host/token, as NMI).
        case Errc::no_binding:
        case Errc::identity_not_found:
            if (settings.set_retry_after_header && endpoint == Endpoint::token) {
                return {503, "identity_not_found", true};
            }
            return {404, "identity_not_found", false};
        // Upstream: NMI answers 403 for a refused token and 503 for the rest.
        case Errc::upstream_refused:
            return {403, "upstream_refused", false};
        // A throttled IMDS keeps its 429, with IMDS's own code, so SDKs back off; and a pod
        // over its share (fetches, tokens or IMDS budget) is throttled alone.
        case Errc::upstream_throttled:
        case Errc::pod_over_limit:
            return {429, "too_many_requests", true};
        case Errc::identity_unsupported:
        case Errc::upstream_unavailable:
        case Errc::upstream_bad_payload:
        case Errc::timeout:
        case Errc::cancelled:
        case Errc::overloaded:
        case Errc::not_ready:
            return {503, "temporarily_unavailable", true};
        case Errc::ok:
        case Errc::parse_error:
        case Errc::io_error:
        case Errc::invalid_config:
            break;
    }
    return {500, "unknown", false};
}

}  // namespace

int status_for(Errc code, const HandlerSettings& settings, Endpoint endpoint) {
    return mapping_for(code, settings, endpoint).status;
}

namespace {

http::HttpResponse respond(Errc code, const Mapping& m, std::string_view error,
                           std::string_view description, const HandlerSettings& settings,
                           std::chrono::seconds retry_after) {
    http::HttpResponse response;
    response.status = m.status;
    response.content_type = "application/json; charset=utf-8";
    response.body = error_json(error, description);
    if (m.retryable) {
        std::chrono::seconds value = retry_after;
        if (value.count() <= 0) {
            value = code == Errc::no_binding || code == Errc::identity_not_found
                        ? settings.retry_after
                        : settings.not_ready_retry_after;
        }
        response.headers.emplace_back("Retry-After", std::to_string(value.count()));
    }
    return response;
}

}  // namespace

http::HttpResponse error_response(Errc code, std::string_view description,
                                  const HandlerSettings& settings, Endpoint endpoint,
                                  std::chrono::seconds retry_after) {
    const Mapping m = mapping_for(code, settings, endpoint);
    return respond(code, m, m.error, description, settings, retry_after);
}

http::HttpResponse error_response_as(Errc code, std::string_view error,
                                     std::string_view description, const HandlerSettings& settings,
                                     std::chrono::seconds retry_after) {
    return respond(code, mapping_for(code, settings, Endpoint::token), error, description, settings,
                   retry_after);
}

}  // namespace nmid::handlers
