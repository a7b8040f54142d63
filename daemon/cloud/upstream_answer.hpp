#pragma once

// What IMDS and AAD answers have in common, as FetchResults (module-private).

#include <chrono>
#include <cstdint>
#include <string>

#include "nmid/core/clock.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/token/token_source.hpp"

namespace nmid::cloud::detail {

using nmid::fetch_error;

/// The FetchError for an HttpClient failure: Errc::timeout and Errc::cancelled as they are,
/// anything else (connect, TLS, transport, an answer that is not HTTP) upstream_unavailable
/// with `why` as the body.
[[nodiscard]] FetchError transport_error(const boost::system::error_code& error,
                                         std::string why = {});

/// A 200 answer: its token, or upstream_bad_payload (the body is not kept: it may hold a
/// token-like secret).
[[nodiscard]] FetchResult token_from(const net::ClientResponse& response, std::int64_t now_unix);

/// A 429 answer: upstream_throttled with the status, the body and its Retry-After (0 when
/// absent or unparsable).
[[nodiscard]] FetchError throttled(net::ClientResponse& response, WallTime now);

}  // namespace nmid::cloud::detail
