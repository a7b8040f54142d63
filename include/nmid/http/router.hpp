#pragma once

#include <span>
#include <string>
#include <string_view>

namespace nmid::http {

/// NMI's routing table (reference nmi-behaviour 3.1), evaluated in this order.
enum class Route {
    token,               ///< `/{metadata any case}/identity/oauth2/token...`
    invalid_token_path,  ///< odd token-looking or undecodable path: answer 400, never proxy
    host_token,          ///< `/host/token...`
    instance,            ///< `/{metadata any case}/instance...`: the handler blocks or proxies
    proxy,               ///< everything else: proxied to IMDS
};

/// "token", "invalid_token_path", "host_token", "instance", "proxy".
[[nodiscard]] std::string_view to_string(Route route) noexcept;

/// The route of a request target and its raw parts (views into the target).
struct RoutedTarget {
    Route route = Route::proxy;
    std::string_view path;   ///< raw path as received (not decoded); absolute-form: the path part
    std::string_view query;  ///< raw, after the first '?'; "" when absent
};

/// Routes a request target (origin-form `/p?q`; absolute-form `http://h/p?q` is routed by its
/// path, as Go's server does). Matching uses the percent-decoded path cleaned like Go's
/// `path.Clean` (`//`, `/./`, `/../`), so a token path cannot be smuggled past nmid through
/// encoding or dot-segments: a decoded path that only looks like a token path before cleaning
/// is `invalid_token_path`. A path with an invalid percent escape, which Go's server rejects
/// with 400 before routing, is `invalid_token_path` too (answered 400, never proxied). Pure; no
/// allocation for paths up to 512 bytes.
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
