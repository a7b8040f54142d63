#include "nmid/kube/url.hpp"

#include <algorithm>
#include <cctype>

namespace nmid::kube {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool is_host_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isxdigit(u) != 0 || c == ':' || c == '.';
}

bool parse_port(std::string_view s, std::uint16_t& port) {
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) != 0;
        })) {
        return false;
    }
    unsigned value = 0;
    for (const char c : s) {
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
        return false;
    }
    port = static_cast<std::uint16_t>(value);
    return true;
}

}  // namespace

Result<Url> parse_url(std::string_view url) {
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) {
        return Errc::invalid_config;
    }
    Url out;
    const std::string_view scheme = url.substr(0, sep);
    if (iequals(scheme, "https")) {
        out.scheme = "https";
        out.port = 443;
    } else if (iequals(scheme, "http")) {
        out.scheme = "http";
        out.port = 80;
    } else {
        return Errc::invalid_config;
    }
    std::string_view rest = url.substr(sep + 3);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return Errc::invalid_config;
    }
    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
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
            if (port.empty()) {
                return Errc::invalid_config;
            }
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
            if (port.empty()) {
                return Errc::invalid_config;
            }
        }
        if (!std::all_of(host.begin(), host.end(), is_host_char)) {
            return Errc::invalid_config;
        }
    }
    if (host.empty()) {
        return Errc::invalid_config;
    }
    if (!port.empty() && !parse_port(port, out.port)) {
        return Errc::invalid_config;
    }
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    if (std::any_of(path.begin(), path.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u == 0x7f;
        })) {
        return Errc::invalid_config;
    }
    out.host = std::string{host};
    out.path = std::string{path};
    return out;
}

}  // namespace nmid::kube
