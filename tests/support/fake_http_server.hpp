#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nmid::test {

namespace detail {
struct FakeHttpServerState;
}  // namespace detail

/// Orders header names case-insensitively (ASCII).
struct CaseInsensitiveLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept;
};

/// One request as the fake server received it.
struct FakeRequest {
    std::string method{};
    std::string target{};  ///< as received (origin-form, still percent-encoded)
    unsigned version = 11;
    /// Header fields by name (case-insensitive); a repeated field keeps its first value.
    std::map<std::string, std::string, CaseInsensitiveLess> headers{};
    std::vector<std::pair<std::string, std::string>> fields{};  ///< every field, wire order
    std::string body{};
    std::size_t connection = 0;  ///< 1-based index of the accepted connection it came on
    boost::asio::ip::address peer{};
    /// TLS: common name (CN) of the client certificate the server verified, "" when none.
    std::string client_subject{};

    /// Value of header `name`, "" when absent.
    [[nodiscard]] std::string header(std::string_view name) const;
};

/// What the fake server does with one request.
struct FakeResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers{};  ///< sent in this order
    std::string body{};  ///< Content-Length is added unless `headers` sets it (or TE)
    unsigned version = 11;

    bool hold = false;                    ///< answer only after FakeHttpServer::release()
    bool close_without_response = false;  ///< close the connection (FIN) instead of answering
    bool reset = false;                   ///< abort the connection (RST) instead of answering
    bool keep_alive = true;    ///< false: `Connection: close` (or none for 1.0), then close
    bool close_after = false;  ///< close after answering without announcing it (silent close)
    bool chunked = false;      ///< send `body` with chunked transfer-encoding
    /// Non-empty: chunked response, each element written (and flushed) as its own chunk.
    std::vector<std::string> chunks{};
    /// Streaming response: header (chunked) first, then chunks given to push() until
    /// finish() or abort() (a watch stream). Streams are numbered from 0 in opening order.
    bool stream = false;
    /// Non-empty: these bytes are written verbatim instead of a built response.
    std::string raw{};
};

/// TLS for FakeHttpServer (HTTPS). Tests that use it link OpenSSL (through nmid_net).
struct FakeTlsOptions {
    std::string cert_pem{};  ///< server certificate chain, leaf first (PEM)
    std::string key_pem{};   ///< its private key (PEM)
    /// Non-empty: ask the client for a certificate and verify it against these CAs; the
    /// verified certificate's CN is recorded in FakeRequest::client_subject.
    std::string client_ca_pem{};
    bool require_client_cert = false;  ///< with `client_ca_pem`: no certificate, no handshake
};

/// Loopback HTTP/1.1 server for tests (Beast), bound to `address`:0 on the given io_context.
/// Every request is answered by the handler; time never drives it (holds and streams are
/// released by the test), so tests complete from the protocol alone.
/// Not thread-safe: use it and run its io_context on one thread.
class FakeHttpServer {
public:
    using Handler = std::function<FakeResponse(const FakeRequest&)>;

    FakeHttpServer(boost::asio::io_context& ioc, Handler handler,
                   const std::string& address = "127.0.0.1");
    /// HTTPS server (fake_http_server_tls.cpp). Throws when the certificate or key is bad.
    FakeHttpServer(boost::asio::io_context& ioc, Handler handler, const std::string& address,
                   const FakeTlsOptions& tls);
    ~FakeHttpServer();
    FakeHttpServer(const FakeHttpServer&) = delete;
    FakeHttpServer& operator=(const FakeHttpServer&) = delete;

    [[nodiscard]] std::uint16_t port() const;
    [[nodiscard]] std::string address() const;
    void set_handler(Handler handler);

    [[nodiscard]] std::size_t requests() const;     ///< requests received
    [[nodiscard]] std::size_t connections() const;  ///< connections accepted
    [[nodiscard]] std::size_t open_connections() const;
    /// TLS: connections whose handshake failed (a client that rejected the certificate, or
    /// one without the required client certificate).
    [[nodiscard]] std::size_t tls_handshake_failures() const;
    /// Every request received so far, in arrival order.
    [[nodiscard]] const std::vector<FakeRequest>& received() const;

    /// Requests currently held (FakeResponse::hold).
    [[nodiscard]] std::size_t held() const;
    /// Lets every held request be answered (on the next run of the io_context).
    void release();

    /// Streaming responses opened so far (FakeResponse::stream), open or not.
    [[nodiscard]] std::size_t streams() const;
    [[nodiscard]] bool stream_open(std::size_t stream) const;
    /// Queues `data` as one chunk of stream `stream`.
    void push(std::size_t stream, std::string data);
    /// Ends stream `stream` with the last chunk (the connection stays usable).
    void finish(std::size_t stream);
    /// Closes the connection of stream `stream` mid-body.
    void abort(std::size_t stream);

    /// Closes every connection that is waiting for its next request (a server idle timeout).
    void close_idle_connections();
    /// Stops accepting and closes every connection.
    void stop();

private:
    std::shared_ptr<detail::FakeHttpServerState> state_;
};

/// Runs `ioc` one handler at a time until `done()` holds, the context runs out of work, or
/// `limit` passes (a safety net only: tests must complete from the protocol). Returns done().
bool run_until(boost::asio::io_context& ioc, const std::function<bool()>& done,
               std::chrono::milliseconds limit = std::chrono::seconds{10});

}  // namespace nmid::test
