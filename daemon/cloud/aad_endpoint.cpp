#include "nmid/cloud/aad_endpoint.hpp"

#include <utility>

#include "nmid/net/url.hpp"

namespace nmid::cloud {

namespace {

constexpr std::string_view kTokenSuffix = "/oauth2/token?api-version=1.0";
constexpr std::string_view kV2TokenSuffix = "/oauth2/v2.0/token";

constexpr bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 3986 pchar plus '/': what may appear in the authority's path as written.
bool valid_path(std::string_view path) {
    for (const char c : path) {
        if (!is_alnum(c) &&
            std::string_view{"-._~/%!$&'()*+,;=:@"}.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

bool valid_tenant(std::string_view tenant) {
    if (tenant.empty() || tenant == "." || tenant == "..") {
        return false;
    }
    for (const char c : tenant) {
        if (!is_alnum(c) && c != '.' && c != '-' && c != '_') {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string AadEndpoint::origin() const {
    return (https ? "https://" : "http://") + authority;
}

Result<AadEndpoint> parse_aad_endpoint(std::string_view ad_endpoint, std::string_view tenant_id,
                                       AadTokenApi api) {
    if (ad_endpoint.empty()) {
        ad_endpoint = kDefaultAdEndpoint;
    }
    if (!valid_tenant(tenant_id)) {
        return Errc::invalid_config;
    }
    auto url = net::parse_http_url(ad_endpoint);
    // The authority's query and fragment play no part in resolving the token path.
    if (!url || !valid_path(url->path)) {
        return Errc::invalid_config;
    }
    AadEndpoint out;
    out.https = url->https;
    out.host = std::move(url->host);
    out.port = url->port;
    out.authority = std::move(url->authority);
    std::string_view path = url->path;

    // Relative resolution (RFC 3986 5.2.3): keep the base path up to its last '/'.
    if (path.empty()) {
        path = "/";
    }
    out.token_target = std::string{path.substr(0, path.rfind('/') + 1)};
    out.token_target += tenant_id;
    out.token_target += api == AadTokenApi::v2 ? kV2TokenSuffix : kTokenSuffix;
    out.token_url = out.origin() + out.token_target;
    return out;
}

}  // namespace nmid::cloud
