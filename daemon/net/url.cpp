#include "nmid/net/url.hpp"

#include <algorithm>

#include "nmid/core/ascii.hpp"

namespace nmid::net {

namespace {

bool is_host_char(char c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
    return is_digit(c) || (ascii_lower(c) >= 'a' && ascii_lower(c) <= 'f') || c == ':' || c == '.';
}

bool parse_port(std::string_view s, std::uint16_t& port) {
    if (s.empty()) {
        return false;
    }
    unsigned value = 0;
    for (const char c : s) {
        if (!is_digit(c)) {
            return false;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
        if (value > 65535) {
            return false;
        }
    }
    if (value == 0) {
        return false;
    }
    port = static_cast<std::uint16_t>(value);
    return true;
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) {
        return Errc::invalid_config;
    }
    HttpUrl out;
    const std::string_view scheme = url.substr(0, sep);
    if (iequals(scheme, "https")) {
        out.https = true;
        out.port = 443;
    } else if (iequals(scheme, "http")) {
        out.https = false;
        out.port = 80;
    } else {
        return Errc::invalid_config;
    }
    const std::string_view rest = url.substr(sep + 3);
    const auto query_start = std::min(rest.find_first_of("?#"), rest.size());
    const auto path_start = std::min(rest.find('/'), query_start);
    const std::string_view authority = rest.substr(0, path_start);
    if (authority.find('@') != std::string_view::npos) {
        return Errc::invalid_config;
    }

    std::string_view host;
    std::string_view port;
    bool has_port = false;
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
            has_port = true;
        }
        if (host.find(':') == std::string_view::npos ||
            !std::all_of(host.begin(), host.end(), is_ipv6_char)) {
            return Errc::invalid_config;
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            has_port = true;
        }
        if (!std::all_of(host.begin(), host.end(), is_host_char)) {
            return Errc::invalid_config;
        }
    }
    if (host.empty() || (has_port && !parse_port(port, out.port))) {
        return Errc::invalid_config;
    }
    out.host = std::string{host};
    out.authority = std::string{authority};
    out.path = std::string{rest.substr(path_start, query_start - path_start)};
    out.query = std::string{rest.substr(query_start)};
    return out;
}

}  // namespace nmid::net
