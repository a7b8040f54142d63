#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"

namespace nmid::net {

/// One HTTP/1.1 request. `target` is origin-form (`/path?query`), already percent-encoded.
struct ClientRequest {
    std::string method{"GET"};
    std::string target{};
    std::vector<std::pair<std::string, std::string>> headers{};  ///< `Host` is added unless set
    std::string body{};  ///< Content-Length is set when non-empty (and for POST/PUT/PATCH)
};

struct ClientResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers{};  ///< wire order
    std::string body{};                                          ///< de-chunked

    /// Value of the first field named `name` (case-insensitive), "" when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const;
};

struct HttpClientSettings {
    /// IP literal (IPv6 with or without brackets), connected without DNS. A name is resolved
    /// by the system resolver on every connect; that lookup is neither bounded by the
    /// deadline (checked once it answers) nor cancellable, so production uses IP literals.
    std::string host{};
    std::uint16_t port = 80;
    Millis connect_timeout{2000};  ///< bounds a connect, within the request's own deadline
    std::size_t pool_size = 8;     ///< idle keep-alive connections kept (LIFO); 0: no reuse
    std::size_t max_response_body = 1 << 20;
    std::string host_header{};  ///< default `host`, plus `:port` unless the port is 80
};

/// Counters for metrics. Exact under one I/O thread; a consistent snapshot otherwise.
struct HttpClientStats {
    std::uint64_t requests = 0;  ///< request() calls
    std::uint64_t connects = 0;  ///< TCP connections established
    std::uint64_t reused = 0;    ///< requests answered on a pooled connection
    std::uint64_t failures = 0;  ///< request() calls that returned an error
    std::size_t idle = 0;        ///< pooled idle connections now
};

/// A small HTTP/1.1 client for one origin (plain TCP) with a keep-alive pool.
/// No retry (callers own retry policy), no redirects, no proxies.
/// Thread-safety: request(), stats() and close_idle() may be called from any thread; the pool
/// is guarded internally. In-flight requests keep the client's shared state alive, so the
/// client may be destroyed while requests still run (they finish normally).
class HttpClient {
public:
    /// `executor`: where the client's sockets and their timers run.
    HttpClient(boost::asio::any_io_executor executor, HttpClientSettings settings);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// One request, no retry, finished by `deadline` (a std::chrono::steady_clock time point).
    /// Reuses an idle keep-alive connection when one is pooled; a pooled connection found dead
    /// before any response byte arrives is replaced once by a fresh one (not a retry: the
    /// request never reached a live peer). A response is pooled only when it allows
    /// keep-alive (not `Connection: close`, not HTTP/1.0 without keep-alive, not ended by EOF).
    /// Executor: any (the caller's coroutine). Cancellation: per-operation cancellation
    /// (terminal) of the awaiting coroutine aborts the exchange and closes its connection.
    /// Errors: Errc::io_error (connect/transport, connect_timeout), Errc::timeout (`deadline`),
    /// Errc::cancelled, Errc::parse_error (malformed response, header or body over limit),
    /// Errc::bad_request (method or header name not a token, CR/LF/NUL in a header value,
    /// empty target or one with spaces or control characters).
    boost::asio::awaitable<Result<ClientResponse>> request(const ClientRequest& req,
                                                           SteadyTime deadline);

    [[nodiscard]] HttpClientStats stats() const;
    /// Closes every pooled idle connection (shutdown). Requests still running are not
    /// affected; their connections are pooled as usual when they finish.
    void close_idle();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// RFC 3986 percent-encoding of a query component: unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) are kept, every other byte becomes `%XX` (upper-case hex).
[[nodiscard]] std::string percent_encode(std::string_view s);

/// `Retry-After` value (RFC 9110 10.2.3): delta-seconds, or an IMF-fixdate HTTP-date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) taken relative to `now` (a past date gives 0 s).
/// nullopt when empty or unparsable. Pure, never throws.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                                    WallTime now);

}  // namespace nmid::net
