#pragma once

#include <span>
#include <string>
#include <string_view>

#include "nmid/http/canonical_target.hpp"

namespace nmid::http {

/// nmid's routing table, on the target's canonical form (canonical_target.hpp), in this order.
/// Nothing whose canonical path is /metadata/identity or under it is ever a proxy route.
enum class Route {
    malformed,           ///< the target cannot be read (CanonicalTarget::malformed): 400
    token,               ///< `/metadata/identity/oauth2/token` spelled as NMI's route matched it
    invalid_token_path,  ///< the token path in any other spelling: 400, as NMI
    identity_info,       ///< `/metadata/identity/info` (any case): the pod's tenant (issue 14)
    identity,            ///< anything else under `/metadata/identity`: nmid's own 404
    host_token,          ///< `/host/token...`
    instance,            ///< `/metadata/instance[/...]`: the handler blocks or proxies
    proxy,               ///< another IMDS path on the allowlist (see ImdsPath): proxied
    forbidden,           ///< any other path: nmid's own 403, never proxied
};

/// "malformed", "token", "invalid_token_path", "identity_info", "identity", "host_token",
/// "instance", "proxy", "forbidden".
[[nodiscard]] std::string_view to_string(Route route) noexcept;

/// The IMDS paths the proxy forwards (they carry no credentials).
enum class ImdsPath {
    none,              ///< not a proxy route
    instance,          ///< `/metadata/instance` and under it
    versions,          ///< `/metadata/versions`
    attested,          ///< `/metadata/attested` and under it
    scheduled_events,  ///< `/metadata/scheduledevents` (GET and POST)
    load_balancer,     ///< `/metadata/loadbalancer`
};

/// Whether the proxy forwards `method` (case-sensitive, as HTTP methods are) to `path`: GET,
/// and POST for scheduled events only. False for ImdsPath::none.
[[nodiscard]] bool method_allowed(ImdsPath path, std::string_view method) noexcept;

/// The `Allow` field value of a 405 for `path` ("GET" or "GET, POST").
[[nodiscard]] std::string_view allowed_methods(ImdsPath path) noexcept;

/// The route of a request target and its parts.
struct RoutedTarget {
    Route route = Route::forbidden;
    ImdsPath imds = ImdsPath::none;  ///< instance and proxy routes: which allowlisted path
    std::string_view path;   ///< raw path as received (not decoded); absolute-form: the path part
    std::string_view query;  ///< raw, after the first '?' (before any '#'); "" when absent
    CanonicalTarget canonical;  ///< the canonical form (views into the target)
};

/// Routes a request target (origin-form `/p?q`; absolute-form `http://h/p?q` by its path) on
/// its canonical form, ASCII case folded:
/// - malformed: Route::malformed;
/// - `/metadata/identity/oauth2/token`: Route::token when the raw path is
///   `/{metadata in any case}/identity/oauth2/token` with at most one trailing '/' and the
///   target has no fragment (NMI's route), else Route::invalid_token_path;
/// - `/metadata/identity` or under it: Route::identity;
/// - starting with `/host/token`: Route::host_token;
/// - `/metadata/instance` or under it: Route::instance;
/// - `/metadata/versions`, `/metadata/attested[/...]`, `/metadata/scheduledevents`,
///   `/metadata/loadbalancer`: Route::proxy;
/// - anything else: Route::forbidden.
/// Whether a route may be forwarded depends on the canonical path alone; the raw spelling
/// only tells token from invalid_token_path. Pure; no allocation when the target's path is
/// already canonical.
[[nodiscard]] RoutedTarget route(std::string_view target);

/// Value of query parameter `name` in a raw query string, percent-decoded ('+' is a space), as
/// Go's `url.ParseQuery` followed by `Get` does: the first pair whose decoded key equals `name`;
/// pairs containing ';' or an invalid escape are skipped. "" when absent.
/// One pass over `query`: `values[i]` receives the decoded first occurrence of `names[i]`
/// ("" when absent), with query_param's rules. `values` must be as long as `names`.
void query_params(std::string_view query, std::span<const std::string_view> names,
                  std::span<std::string> values);

[[nodiscard]] std::string query_param(std::string_view query, std::string_view name);

/// query_params() without copies where decoding changes nothing: `values[i]` views the raw
/// value inside `query`, or, when it had to be decoded, a part of `decoded` (which this
/// clears first and then holds every decoded value). Views are valid while `query` and
/// `decoded` are and `decoded` is not modified. `values` as long as `names`.
void query_param_views(std::string_view query, std::span<const std::string_view> names,
                       std::span<std::string_view> values, std::string& decoded);

}  // namespace nmid::http
