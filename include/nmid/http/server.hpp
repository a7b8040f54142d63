#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "nmid/config/settings.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/http/message.hpp"

namespace nmid::http {

/// Counters read by the metrics collector (relaxed; exact under one I/O thread).
struct ServerStats {
    std::uint64_t accepted = 0;
    std::uint64_t refused = 0;  ///< over max_connections, none idle to trim: 503 and closed
    /// Over max_connections_per_pod, none of that IP's idle to trim: 429 and closed.
    std::uint64_t refused_per_pod = 0;
    /// Idle keep-alive connections closed to make room for a new one (either cap).
    std::uint64_t trimmed = 0;
    std::uint64_t requests = 0;
    std::uint64_t bad_requests = 0;  ///< unparsable, header/body limit, timeouts
    std::size_t active = 0;          ///< open connections now
};

/// HTTP/1.1 listener: one coroutine per connection (the frame owns the stream), keep-alive,
/// bounded pipelining, header/body limits, read/idle/write deadlines, a connection cap and a
/// per-source-IP cap (max_connections_per_pod, 0: none). A new connection from an IP at its
/// cap closes that IP's oldest idle keep-alive connection, or gets 429 (Retry-After: 1, IMDS
/// JSON) when none is idle; at max_connections, an idle keep-alive connection of the IP holding
/// the most is closed, else 503. The per-IP accounting is taken per connection (accept, close)
/// under the registry mutex; a request only flips its connection's idle mark (one atomic).
class HttpServer {
public:
    /// `executor`: where the accept loop runs; each connection gets its own strand on it.
    HttpServer(boost::asio::any_io_executor executor, RequestHandler& handler,
               HttpServerSettings settings);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// Opens, binds (SO_REUSEADDR, and SO_REUSEPORT when settings.reuse_port) and listens.
    /// Errors: Errc::io_error (address in use, permission), Errc::invalid_config (bad address).
    Result<void> listen();
    /// The bound port (useful with port 0). Valid after a successful listen().
    [[nodiscard]] std::uint16_t port() const;

    /// Accept loop; returns after stop(). Executor: the one given at construction.
    boost::asio::awaitable<void> run();
    /// Stops accepting and closes the listening socket. Connections with a request in flight
    /// finish it and are then closed; idle keep-alive connections are closed at once.
    /// Thread-safe (posts to the server's executor).
    void stop();
    /// Completes when every connection has closed, or at `deadline`, after which remaining
    /// connections are closed forcibly. Call after stop().
    boost::asio::awaitable<void> drain(SteadyTime deadline);

    [[nodiscard]] ServerStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nmid::http
