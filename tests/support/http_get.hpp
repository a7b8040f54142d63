#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nmid::test {

struct SimpleResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  ///< names lower-cased
    std::string body;
};

/// One blocking HTTP/1.1 request over a fresh loopback connection whose source address is
/// `source_ip` (127.0.0.2 looks like another pod). Returns nullopt on connect/IO failure
/// or when `timeout` passes. `Connection: close` is sent; the body is read to EOF.
std::optional<SimpleResponse> http_request(
    const std::string& source_ip, int port, const std::string& method, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    const std::string& body = {},
    std::chrono::milliseconds timeout = std::chrono::milliseconds{10'000});

inline std::optional<SimpleResponse> http_get(
    const std::string& source_ip, int port, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return http_request(source_ip, port, "GET", target, headers);
}

}  // namespace nmid::test
