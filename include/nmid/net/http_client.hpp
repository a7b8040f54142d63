#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/core/hex.hpp"

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

/// TLS (OpenSSL, TLS 1.2 or newer) for HttpClient. Disabled by default: plain HTTP.
/// PEM data and files may both be given; every certificate of both is used.
struct TlsSettings {
    bool enabled = false;
    std::string ca_pem{};            ///< trusted CA certificates (PEM bundle)
    std::string ca_file{};           ///< ... or a PEM file; neither: the system's default CA paths
    bool add_system_ca = false;      ///< trust the system's default CA paths as well as these
    std::string client_cert_pem{};   ///< client certificate chain (PEM), leaf first
    std::string client_cert_file{};  ///< ... or a PEM file
    std::string client_key_pem{};    ///< its private key (PEM)
    std::string client_key_file{};   ///< ... or a PEM file
    /// Name sent as SNI and verified against the server certificate; default `host`. An IP
    /// literal is verified against the certificate's IP SANs and sent no SNI.
    std::string server_name{};
    bool insecure_skip_verify = false;  ///< no chain or name verification (tests, kubelets)
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
    /// Default `host`, plus `:port` unless the port is the scheme's default (80, or 443 with TLS).
    std::string host_header{};
    TlsSettings tls{};
};

/// How a streamed response body ended (HttpClient::stream).
enum class BodyEnd {
    complete,  ///< the whole body arrived (last chunk, Content-Length reached, or EOF)
    stopped,   ///< the BodyHandler returned false
    deadline,  ///< the deadline passed after the response header had arrived
};

/// Result of HttpClient::stream(): status and headers; `body` holds the whole body only when
/// the status is not 200 (an error answer is not streamed).
struct StreamedResponse {
    ClientResponse response{};
    BodyEnd end = BodyEnd::complete;
};

/// Receives the body of a 200 response as it arrives (any split, never empty). Returning
/// false stops reading (the connection is then closed).
using BodyHandler = std::function<bool(std::string_view data)>;

/// Counters for metrics. Exact under one I/O thread; a consistent snapshot otherwise.
struct HttpClientStats {
    std::uint64_t requests = 0;      ///< request() and stream() calls
    std::uint64_t connects = 0;      ///< connections established (TCP, plus the TLS handshake)
    std::uint64_t reused = 0;        ///< requests answered on a pooled connection
    std::uint64_t failures = 0;      ///< request() and stream() calls that returned an error
    std::uint64_t tls_failures = 0;  ///< TLS handshakes that failed (verification included)
    std::size_t idle = 0;            ///< pooled idle connections now
};

/// A small HTTP/1.1 client for one origin (plain TCP, or TLS when `settings.tls.enabled`)
/// with a keep-alive pool.
/// No retry (callers own retry policy), no redirects, no proxies.
/// Thread-safety: request(), stats() and close_idle() may be called from any thread; the pool
/// is guarded internally. In-flight requests keep the client's shared state alive, so the
/// client may be destroyed while requests still run (they finish normally).
class HttpClient {
public:
    /// `executor`: where the client's sockets and their timers run.
    /// Throws std::invalid_argument (start-up) when TLS material cannot be loaded: a CA,
    /// certificate or key that does not parse or cannot be read, a key without certificate
    /// or one that does not match it. create() returns that as a value instead.
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
    /// empty target or one with spaces or control characters). With TLS, a failed handshake
    /// or certificate verification is Errc::io_error; the handshake is bounded by
    /// `connect_timeout` and `deadline` like the TCP connect.
    boost::asio::awaitable<Result<ClientResponse>> request(const ClientRequest& req,
                                                           SteadyTime deadline);

    /// One request whose 200 body is handed to `on_data` as it arrives (a watch), on the
    /// awaiting coroutine, without a body size limit. `on_data` is used until the call ends;
    /// pass a named BodyHandler (g++ 12 destroys a lambda temporary built inside a co_await
    /// expression twice). Other statuses are read whole into
    /// `response.body` (under `max_response_body`) and `on_data` is not called. Connection
    /// reuse and the pooled-connection replacement are as for request(); a connection is
    /// pooled again only after a complete body.
    /// Ends: BodyEnd::complete, BodyEnd::stopped (`on_data` returned false) or
    /// BodyEnd::deadline (`deadline` passed after the header arrived; before it: Errc::timeout).
    /// Executor, cancellation and errors as request(); in addition a body cut by the peer
    /// before it is complete (a chunked body without its last chunk) is Errc::io_error even
    /// though `on_data` has seen part of it.
    boost::asio::awaitable<Result<StreamedResponse>> stream(const ClientRequest& req,
                                                            SteadyTime deadline,
                                                            const BodyHandler& on_data);

    /// As the constructor, with bad TLS material as Errc::invalid_config and its reason in
    /// `*error` (when not null).
    [[nodiscard]] static Result<std::unique_ptr<HttpClient>> create(
        boost::asio::any_io_executor executor, HttpClientSettings settings,
        std::string* error = nullptr);

    [[nodiscard]] HttpClientStats stats() const;
    /// Why the latest failed TLS handshake failed (OpenSSL's verification reason, such as
    /// "certificate verify failed: hostname mismatch"), "" when none has failed.
    [[nodiscard]] std::string last_tls_error() const;
    /// Closes every pooled idle connection (shutdown). Requests still running are not
    /// affected; their connections are pooled as usual when they finish.
    void close_idle();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// RFC 3986 percent-encoding of a query component (nmid/core/hex.hpp), named here for the
/// callers that build request targets.
using nmid::percent_encode;

/// `Retry-After` value (RFC 9110 10.2.3): delta-seconds, or an IMF-fixdate HTTP-date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) taken relative to `now` (a past date gives 0 s).
/// nullopt when empty or unparsable. Pure, never throws.
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                                    WallTime now);

}  // namespace nmid::net
