#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"

namespace nmid::net {

/// The parts of an `http` or `https` URL an HTTP client needs, as written.
struct HttpUrl {
    bool https = false;
    std::string host{};       ///< name or IP literal, IPv6 without brackets
    std::uint16_t port = 0;   ///< explicit, or the scheme's default (443, 80)
    std::string authority{};  ///< `host[:port]` as written (IPv6 brackets kept): a Host header
    std::string path{};       ///< from the first `/` up to `?` or `#`, as written; "" for none
    std::string query{};      ///< from the first `?` or `#` on, as written; "" for none

    friend bool operator==(const HttpUrl&, const HttpUrl&) = default;
};

/// Splits `scheme://authority[/path][?query][#fragment]`. Only the `http` and `https` schemes
/// (any case). The host is a name or IPv4 literal (letters, digits, `.`, `-`, `_`) or an
/// IPv6 literal in brackets (hex digits, `.` and at least one `:`); a port, when given, is
/// decimal 1-65535. User info, an empty host and an empty port after `:` are
/// Errc::invalid_config. The path and the query are returned unchecked: callers have their
/// own rules for them. Pure, never throws.
[[nodiscard]] Result<HttpUrl> parse_http_url(std::string_view url);

}  // namespace nmid::net
