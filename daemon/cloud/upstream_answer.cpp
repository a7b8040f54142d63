#include "upstream_answer.hpp"

#include <utility>

#include "nmid/cloud/token_json.hpp"

namespace nmid::cloud::detail {

FetchError transport_error(const boost::system::error_code& error, std::string why) {
    if (error == Errc::timeout) {
        return fetch_error(Errc::timeout);
    }
    if (error == Errc::cancelled) {
        return fetch_error(Errc::cancelled);
    }
    return fetch_error(Errc::upstream_unavailable, 0, std::move(why));
}

FetchResult token_from(const net::ClientResponse& response, std::int64_t now_unix) {
    auto token = parse_token_response(response.body, now_unix);
    if (!token) {
        return fetch_error(Errc::upstream_bad_payload, response.status);
    }
    return std::move(*token);
}

FetchError throttled(net::ClientResponse& response, WallTime now) {
    const auto retry_after = net::parse_retry_after(response.header("Retry-After"), now)
                                 .value_or(std::chrono::seconds{0});
    return fetch_error(Errc::upstream_throttled, response.status, std::move(response.body),
                       retry_after);
}

}  // namespace nmid::cloud::detail
