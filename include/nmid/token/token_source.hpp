#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <string>

#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/token.hpp"

namespace nmid {

/// Why one upstream token call failed. `code` is one of Errc::upstream_refused,
/// upstream_throttled, upstream_unavailable, upstream_bad_payload, timeout, cancelled,
/// identity_unsupported.
struct FetchError {
    Errc code = Errc::upstream_unavailable;
    int upstream_status = 0;              ///< last HTTP status from upstream (0: none)
    std::chrono::seconds retry_after{0};  ///< upstream Retry-After (0: none)
    std::string upstream_body{};          ///< upstream error body (never holds a token)
};

/// A FetchError; `body` is cut to 4 KiB (error bodies travel back to pods and sit in the
/// negative cache: the cap only guards against a misbehaving upstream).
[[nodiscard]] FetchError fetch_error(Errc code, int status = 0, std::string body = {},
                                     std::chrono::seconds retry_after = std::chrono::seconds{0});

/// boost::system::result needs this to turn a FetchError into an exception on `.value()`.
[[noreturn]] void throw_exception_from_error(const FetchError& e,
                                             const boost::source_location& loc);

using FetchResult = boost::system::result<Token, FetchError>;

/// Fetches one token from IMDS or AAD: exactly one upstream attempt, no retry (the token
/// module owns retries, budget and backoff). Never throws for remote failures.
/// Executor: any. Cancellation: per-operation cancellation of the awaiting coroutine aborts
/// the attempt with Errc::cancelled. The attempt ends by `deadline` (Errc::timeout).
class TokenSource {
public:
    virtual ~TokenSource() = default;
    virtual boost::asio::awaitable<FetchResult> fetch(const TokenRequest& request,
                                                      SteadyTime deadline) = 0;
};

}  // namespace nmid
