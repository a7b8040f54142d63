#include "nmid/kube/url.hpp"

#include <algorithm>

#include "nmid/net/url.hpp"

namespace nmid::kube {

Result<Url> parse_url(std::string_view url) {
    auto parsed = net::parse_http_url(url);
    // A base URL has no query or fragment: request targets are appended to its path.
    if (!parsed || !parsed->query.empty()) {
        return Errc::invalid_config;
    }
    std::string_view path = parsed->path;
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    if (std::any_of(path.begin(), path.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u == 0x7f;
        })) {
        return Errc::invalid_config;
    }
    Url out;
    out.scheme = parsed->https ? "https" : "http";
    out.host = std::move(parsed->host);
    out.port = parsed->port;
    out.path = std::string{path};
    return out;
}

}  // namespace nmid::kube
