#include "nmid/cloud/aad_endpoint.hpp"

#include <charconv>

namespace nmid::cloud {

namespace {

constexpr std::string_view kTokenSuffix = "/oauth2/token?api-version=1.0";

constexpr bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

constexpr char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

bool valid_reg_name(std::string_view host) {
    if (host.empty()) {
        return false;
    }
    for (const char c : host) {
        if (!is_alnum(c) && c != '.' && c != '-' && c != '_') {
            return false;
        }
    }
    return true;
}

bool valid_ipv6(std::string_view host) {
    if (host.empty()) {
        return false;
    }
    for (const char c : host) {
        const bool hex = (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f');
        if (!hex && c != ':' && c != '.') {
            return false;
        }
    }
    return true;
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

Result<AadEndpoint> parse_aad_endpoint(std::string_view ad_endpoint, std::string_view tenant_id) {
    if (ad_endpoint.empty()) {
        ad_endpoint = kDefaultAdEndpoint;
    }
    if (!valid_tenant(tenant_id)) {
        return Errc::invalid_config;
    }
    AadEndpoint out;
    const auto scheme_end = ad_endpoint.find("://");
    if (scheme_end == std::string_view::npos) {
        return Errc::invalid_config;
    }
    const std::string_view scheme = ad_endpoint.substr(0, scheme_end);
    if (iequals(scheme, "https")) {
        out.https = true;
        out.port = 443;
    } else if (iequals(scheme, "http")) {
        out.https = false;
        out.port = 80;
    } else {
        return Errc::invalid_config;
    }
    std::string_view rest = ad_endpoint.substr(scheme_end + 3);
    if (const auto end = rest.find_first_of("?#"); end != std::string_view::npos) {
        rest = rest.substr(0, end);
    }
    const auto path_start = rest.find('/');
    const std::string_view authority = rest.substr(0, path_start);
    std::string_view path =
        path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
    if (authority.find('@') != std::string_view::npos) {
        return Errc::invalid_config;
    }

    std::string_view host;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return Errc::invalid_config;
        }
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return Errc::invalid_config;
            }
            port = after.substr(1);
        }
        if (!valid_ipv6(host)) {
            return Errc::invalid_config;
        }
    } else {
        const auto colon = authority.rfind(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
        }
        if (!valid_reg_name(host)) {
            return Errc::invalid_config;
        }
    }
    if (!port.empty()) {
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 || value > 65535) {
            return Errc::invalid_config;
        }
        out.port = static_cast<std::uint16_t>(value);
    } else if (authority.back() == ':') {
        return Errc::invalid_config;
    }
    if (!valid_path(path)) {
        return Errc::invalid_config;
    }
    out.host = std::string{host};
    out.authority = std::string{authority};

    // Relative resolution (RFC 3986 5.2.3): keep the base path up to its last '/'.
    if (path.empty()) {
        path = "/";
    }
    out.token_target = std::string{path.substr(0, path.rfind('/') + 1)};
    out.token_target += tenant_id;
    out.token_target += kTokenSuffix;
    out.token_url = out.origin() + out.token_target;
    return out;
}

}  // namespace nmid::cloud
