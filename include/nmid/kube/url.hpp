#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"

namespace nmid::kube {

/// An `http` or `https` base URL, as a kubeconfig `server` or `--kubelet-url` gives it.
struct Url {
    std::string scheme{};    ///< "http" or "https" (lower case)
    std::string host{};      ///< name or IP literal, IPv6 without brackets
    std::uint16_t port = 0;  ///< explicit, or the scheme's default (80, 443)
    std::string path{};      ///< path prefix without the trailing '/', "" for none

    [[nodiscard]] bool tls() const { return scheme == "https"; }
};

/// Parses `scheme://host[:port][/path]` (IPv6 hosts in brackets). Rejects other schemes,
/// user info, queries, fragments, an empty host and a port outside 1-65535 with
/// Errc::invalid_config. Pure, never throws.
[[nodiscard]] Result<Url> parse_url(std::string_view url);

}  // namespace nmid::kube
