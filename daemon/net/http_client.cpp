#include "nmid/net/http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cerrno>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <type_traits>

#include "nmid/core/ascii.hpp"
#include "tls_context.hpp"

namespace nmid::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kStreamBuffer = std::size_t{16} * 1024;

Errc classify(const error_code& ec) {
    if (ec == beast::error::timeout) {
        return Errc::timeout;
    }
    if (ec == asio::error::operation_aborted) {
        return Errc::cancelled;
    }
    if (ec.category() == http::make_error_code(http::error::end_of_stream).category()) {
        // EOF before or inside the response is the transport failing, not a malformed answer.
        if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
            return Errc::io_error;
        }
        return Errc::parse_error;
    }
    return Errc::io_error;
}

// A pooled connection whose peer has closed it (or that holds bytes nobody asked for) cannot
// carry a request. Peeking without blocking costs one syscall and catches the common case of
// a server idle timeout before the request is written.
bool looks_alive(tcp::socket& socket) {
    if (!socket.is_open()) {
        return false;
    }
    char byte = 0;
    const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void close_quietly(beast::tcp_stream& stream) {
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
}

// TLS connections are closed without close_notify: nothing is left to protect once the
// exchange is over, and waiting for the peer's answer would need a deadline of its own.
void close_quietly(TlsStream& stream) {
    close_quietly(beast::get_lowest_layer(stream));
}

bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return is_alnum(c) || std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
    });
}

bool is_field_value(std::string_view s) {
    return std::none_of(s.begin(), s.end(),
                        [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

bool is_target(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7f;
    });
}

bool valid(const ClientRequest& req) {
    if (!is_token(req.method) || !is_target(req.target)) {
        return false;
    }
    return std::all_of(req.headers.begin(), req.headers.end(), [](const auto& field) {
        return is_token(field.first) && is_field_value(field.second);
    });
}

template <class Message>
void copy_header(const Message& res, ClientResponse& response) {
    response.status = static_cast<int>(res.result_int());
    response.headers.reserve(static_cast<std::size_t>(std::distance(res.begin(), res.end())));
    for (const auto& field : res) {
        response.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    }
}

/// Outcome of one request/response exchange on one connection.
template <class Response>
struct Exchange {
    Result<Response> result{Errc::io_error};
    bool reusable = false;  ///< the connection may carry another request
    bool stale = false;     ///< failed at transport level before any response byte
};

/// Arms the exchange's deadline and writes the request. False, with `out` filled, when the
/// write failed (on a pooled connection: the connection was stale).
template <class Stream, class Response>
asio::awaitable<bool> send(Stream& stream, const http::request<http::string_body>& msg,
                           SteadyTime deadline, Exchange<Response>& out) {
    beast::get_lowest_layer(stream).expires_at(deadline);
    auto [ec, written] = co_await http::async_write(stream, msg, kUseTuple);
    (void)written;
    if (ec) {
        out.result = classify(ec);
        out.stale = out.result.error() == Errc::io_error;
        co_return false;
    }
    co_return true;
}

/// Fills `out` for a response (header) that could not be read: stale when not a byte of it
/// arrived.
template <class Response, class Parser>
void read_failed(Exchange<Response>& out, const error_code& ec, const Parser& parser,
                 const beast::flat_buffer& buffer) {
    out.result = classify(ec);
    out.stale = out.result.error() == Errc::io_error && !parser.got_some() && buffer.size() == 0;
}

template <class Stream>
asio::awaitable<Exchange<ClientResponse>> exchange(Stream& stream,
                                                   const http::request<http::string_body>& msg,
                                                   std::size_t body_limit, SteadyTime deadline) {
    Exchange<ClientResponse> out;
    const bool sent = co_await send(stream, msg, deadline, out);
    if (!sent) {
        co_return out;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(static_cast<std::uint64_t>(body_limit));
    if (msg.method() == http::verb::head) {
        parser.skip(true);
    }
    auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    (void)read;
    if (read_ec) {
        read_failed(out, read_ec, parser, buffer);
        co_return out;
    }
    auto& res = parser.get();
    ClientResponse response;
    copy_header(res, response);
    response.body = std::move(res.body());
    // Leftover bytes would belong to no request: such a connection is not reused.
    out.reusable = res.keep_alive() && !res.need_eof() && buffer.size() == 0;
    out.result = std::move(response);
    co_return out;
}

template <class Stream>
asio::awaitable<Exchange<StreamedResponse>> stream_exchange(
    Stream& stream, const http::request<http::string_body>& msg, std::size_t error_body_limit,
    SteadyTime deadline, const BodyHandler& on_data) {
    Exchange<StreamedResponse> out;
    const bool sent = co_await send(stream, msg, deadline, out);
    if (!sent) {
        co_return out;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(boost::none);  // a watch is unbounded; error bodies are bounded below
    auto [header_ec, header_read] =
        co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    (void)header_read;
    if (header_ec) {
        read_failed(out, header_ec, parser, buffer);
        co_return out;
    }
    StreamedResponse response;
    copy_header(parser.get(), response.response);
    const bool streamed = response.response.status == 200;
    std::array<char, kStreamBuffer> chunk{};
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kUseTuple);
        (void)n;
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        const std::size_t got = chunk.size() - parser.get().body().size;
        if (got > 0) {
            const std::string_view data{chunk.data(), got};
            if (!streamed) {
                if (response.response.body.size() + got > error_body_limit) {
                    out.result = Errc::parse_error;
                    co_return out;
                }
                response.response.body.append(data);
            } else if (!on_data(data)) {
                response.end = BodyEnd::stopped;
                out.result = std::move(response);
                co_return out;
            }
        }
        if (ec) {
            const Errc e = classify(ec);
            if (e == Errc::timeout) {
                // The header arrived: a watch that outlives its deadline ended, not failed.
                response.end = BodyEnd::deadline;
                out.result = std::move(response);
            } else {
                out.result = e;
            }
            co_return out;
        }
    }
    const auto& res = parser.get();
    out.reusable = res.keep_alive() && !res.need_eof() && buffer.size() == 0;
    out.result = std::move(response);
    co_return out;
}

bool is_ip_literal(std::string_view name) {
    error_code ec;
    (void)asio::ip::make_address(name, ec);
    return !ec;
}

}  // namespace

std::string_view ClientResponse::header(std::string_view name) const {
    for (const auto& [field, value] : headers) {
        if (iequals(field, name)) {
            return value;
        }
    }
    return {};
}

struct HttpClient::Impl {
    Impl(asio::any_io_executor ex, HttpClientSettings s)
        : executor{std::move(ex)}, settings{std::move(s)} {
        std::string_view host = settings.host;
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
            host = host.substr(1, host.size() - 2);
        }
        error_code ec;
        const auto parsed = asio::ip::make_address(host, ec);
        if (!ec) {
            address = parsed;
        }
        name = std::string{host};
        const std::uint16_t default_port = settings.tls.enabled ? 443 : 80;
        if (!settings.host_header.empty()) {
            host_header = settings.host_header;
        } else {
            host_header = address && address->is_v6() ? "[" + name + "]" : name;
            if (settings.port != default_port) {
                host_header += ":" + std::to_string(settings.port);
            }
        }
        if (settings.tls.enabled) {
            tls = detail::make_tls_context(settings.tls);
            std::string_view server = settings.tls.server_name;
            if (server.empty()) {
                server = name;
            } else if (server.size() > 2 && server.front() == '[' && server.back() == ']') {
                server = server.substr(1, server.size() - 2);
            }
            server_name = std::string{server};
            server_is_ip = is_ip_literal(server_name);
        }
    }

    /// Emplaces a connected stream into `out`, or returns why not (Errc::ok on success).
    asio::awaitable<Errc> connect(std::optional<PlainStream>& out, SteadyTime deadline);
    /// TCP connect plus TLS handshake and verification.
    asio::awaitable<Errc> connect(std::optional<TlsStream>& out, SteadyTime deadline);

    /// request() and stream(): counters, and cancellation as a value.
    template <class Response>
    static asio::awaitable<Result<Response>> call(std::shared_ptr<Impl> impl,
                                                  const ClientRequest& req, SteadyTime deadline,
                                                  const BodyHandler* on_data);
    /// One exchange on a pooled connection or a new one. `Response` is ClientResponse
    /// (request(), `on_data` unused) or StreamedResponse (stream()).
    template <class Stream, class Response>
    asio::awaitable<Result<Response>> run(const ClientRequest& req, SteadyTime deadline,
                                          const BodyHandler* on_data);

    /// The request message, or Errc::bad_request.
    [[nodiscard]] Result<http::request<http::string_body>> build(const ClientRequest& req) const;

    template <class Stream>
    std::deque<Stream>& pool() {
        if constexpr (std::is_same_v<Stream, PlainStream>) {
            return idle;
        } else {
            return idle_tls;
        }
    }

    template <class Stream>
    std::optional<Stream> take_idle() {
        const std::lock_guard lock{mutex};
        auto& streams = pool<Stream>();
        while (!streams.empty()) {
            Stream stream{std::move(streams.back())};
            streams.pop_back();
            if (looks_alive(beast::get_lowest_layer(stream).socket())) {
                return stream;
            }
            close_quietly(stream);
        }
        return std::nullopt;
    }

    template <class Stream>
    void put_idle(Stream& stream) {
        // Idle sockets carry no deadline: the next request sets its own.
        beast::get_lowest_layer(stream).expires_never();
        const std::lock_guard lock{mutex};
        if (settings.pool_size == 0) {
            close_quietly(stream);
            return;
        }
        auto& streams = pool<Stream>();
        if (streams.size() >= settings.pool_size) {
            // The oldest idle connection is the likeliest to hit the server's idle timeout.
            close_quietly(streams.front());
            streams.pop_front();
        }
        streams.emplace_back(std::move(stream));
    }

    template <class F>
    void update(F&& f) {
        const std::lock_guard lock{mutex};
        f(counters);
    }

    const asio::any_io_executor executor;
    const HttpClientSettings settings;
    std::optional<asio::ip::address> address;  ///< set when `host` is an IP literal
    std::string name;                          ///< host without IPv6 brackets
    std::string host_header;
    std::shared_ptr<asio::ssl::context> tls;  ///< null: plain HTTP
    std::string server_name;                  ///< verified name (TLS)
    bool server_is_ip = false;                ///< verify an IP SAN, send no SNI

    // Guards `idle`, `idle_tls`, `counters` and `last_tls_error`: request() may run on several
    // I/O threads.
    mutable std::mutex mutex;
    std::deque<PlainStream> idle;  ///< back() is the most recently used (LIFO)
    std::deque<TlsStream> idle_tls;
    HttpClientStats counters;
    std::string last_tls_error;
};

// Not Result<tcp_stream>: basic_stream's variadic constructor makes that result ambiguous.
asio::awaitable<Errc> HttpClient::Impl::connect(std::optional<PlainStream>& out,
                                                SteadyTime deadline) {
    const auto connect_deadline =
        std::min(deadline, std::chrono::steady_clock::now() + settings.connect_timeout);
    beast::tcp_stream stream{executor};
    error_code ec;
    if (address) {
        stream.expires_at(connect_deadline);
        std::tie(ec) =
            co_await stream.async_connect(tcp::endpoint{*address, settings.port}, kUseTuple);
    } else {
        // Names are rare here (IMDS and the kubelet are IP literals). The resolver cannot be
        // bounded by a deadline, so the deadline is checked once it answers.
        tcp::resolver resolver{executor};
        auto [resolve_ec, results] =
            co_await resolver.async_resolve(name, std::to_string(settings.port), kUseTuple);
        if (resolve_ec) {
            co_return resolve_ec == asio::error::operation_aborted ? Errc::cancelled
                                                                   : Errc::io_error;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return Errc::timeout;
        }
        stream.expires_at(connect_deadline);
        tcp::endpoint endpoint;
        std::tie(ec, endpoint) = co_await stream.async_connect(results, kUseTuple);
    }
    if (ec) {
        const Errc e = classify(ec);
        // Only the request's own deadline is a timeout; connect_timeout is a connect failure.
        if (e == Errc::timeout && std::chrono::steady_clock::now() < deadline) {
            co_return Errc::io_error;
        }
        co_return e;
    }
    error_code ignored;
    stream.socket().set_option(tcp::no_delay{true}, ignored);
    if (!tls) {
        update([](HttpClientStats& c) { ++c.connects; });
    }
    out.emplace(std::move(stream));
    co_return Errc::ok;
}

asio::awaitable<Errc> HttpClient::Impl::connect(std::optional<TlsStream>& out,
                                                SteadyTime deadline) {
    // The handshake belongs to connecting: bounded by connect_timeout as well as `deadline`.
    const auto connect_deadline =
        std::min(deadline, std::chrono::steady_clock::now() + settings.connect_timeout);
    std::optional<PlainStream> tcp_stream;
    const Errc connected = co_await connect(tcp_stream, deadline);
    if (connected != Errc::ok) {
        co_return connected;
    }
    TlsStream stream{std::move(*tcp_stream), *tls};
    SSL* ssl = stream.native_handle();
    if (!settings.tls.insecure_skip_verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        const int set = server_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                                     : X509_VERIFY_PARAM_set1_host(param, server_name.data(),
                                                                   server_name.size());
        if (set != 1) {
            close_quietly(stream);
            co_return Errc::io_error;
        }
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    // RFC 6066: SNI carries host names only, never IP literals.
    if (!server_is_ip && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
        close_quietly(stream);
        co_return Errc::io_error;
    }
    beast::get_lowest_layer(stream).expires_at(connect_deadline);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kUseTuple);
    if (ec) {
        const long verified = SSL_get_verify_result(ssl);
        close_quietly(stream);
        Errc e = classify(ec);
        if (e == Errc::timeout && std::chrono::steady_clock::now() < deadline) {
            e = Errc::io_error;
        }
        if (e == Errc::io_error) {
            std::string why = verified == X509_V_OK ? ec.message()
                                                    : std::string{"certificate verify failed: "} +
                                                          X509_verify_cert_error_string(verified);
            const std::lock_guard lock{mutex};
            ++counters.tls_failures;
            last_tls_error = std::move(why);
        }
        co_return e;
    }
    update([](HttpClientStats& c) { ++c.connects; });
    out.emplace(std::move(stream));
    co_return Errc::ok;
}

Result<http::request<http::string_body>> HttpClient::Impl::build(const ClientRequest& req) const {
    if (!valid(req)) {
        return Errc::bad_request;
    }
    http::request<http::string_body> msg;
    msg.method_string(req.method);
    msg.target(req.target);
    msg.version(11);
    bool has_host = false;
    for (const auto& [field, value] : req.headers) {
        has_host = has_host || iequals(field, "host");
        msg.insert(field, value);
    }
    if (!has_host) {
        msg.set(http::field::host, host_header);
    }
    if (settings.pool_size == 0) {
        msg.keep_alive(false);
    }
    msg.body() = req.body;
    const auto verb = msg.method();
    if (!req.body.empty() || verb == http::verb::post || verb == http::verb::put ||
        verb == http::verb::patch) {
        msg.content_length(req.body.size());
    }
    return msg;
}

template <class Stream, class Response>
asio::awaitable<Result<Response>> HttpClient::Impl::run(const ClientRequest& req,
                                                        SteadyTime deadline,
                                                        const BodyHandler* on_data) {
    auto built = build(req);
    if (!built) {
        co_return built.error();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
        co_return Errc::timeout;
    }
    const auto& msg = *built;

    std::optional<Stream> stream = take_idle<Stream>();
    bool pooled = stream.has_value();
    for (;;) {
        if (!stream) {
            const Errc connected = co_await connect(stream, deadline);
            if (connected != Errc::ok) {
                co_return connected;
            }
        }
        Exchange<Response> ex;
        if constexpr (std::is_same_v<Response, ClientResponse>) {
            (void)on_data;
            ex = co_await exchange(*stream, msg, settings.max_response_body, deadline);
        } else {
            ex = co_await stream_exchange(*stream, msg, settings.max_response_body, deadline,
                                          *on_data);
        }
        if (ex.stale && pooled) {
            // The pooled connection died while idle; the request never reached a live peer.
            close_quietly(*stream);
            stream.reset();
            pooled = false;
            continue;
        }
        if (ex.result && pooled) {
            update([](HttpClientStats& c) { ++c.reused; });
        }
        if (ex.result && ex.reusable) {
            put_idle(*stream);
        } else {
            close_quietly(*stream);
        }
        co_return std::move(ex.result);
    }
}

HttpClient::HttpClient(asio::any_io_executor executor, HttpClientSettings settings)
    : impl_{std::make_shared<Impl>(std::move(executor), std::move(settings))} {}

HttpClient::~HttpClient() {
    close_idle();
}

template <class Response>
asio::awaitable<Result<Response>> HttpClient::Impl::call(std::shared_ptr<Impl> impl,
                                                         const ClientRequest& req,
                                                         SteadyTime deadline,
                                                         const BodyHandler* on_data) {
    impl->update([](HttpClientStats& c) { ++c.requests; });
    Result<Response> result{Errc::io_error};
    try {
        if (impl->tls) {
            result = co_await impl->run<TlsStream, Response>(req, deadline, on_data);
        } else {
            result = co_await impl->run<PlainStream, Response>(req, deadline, on_data);
        }
    } catch (const boost::system::system_error& e) {
        // A cancelled coroutine throws operation_aborted at its next co_await; the caller
        // asked for a value.
        if (e.code() != asio::error::operation_aborted) {
            throw;
        }
        result = Errc::cancelled;
    }
    if (!result) {
        impl->update([](HttpClientStats& c) { ++c.failures; });
    }
    co_return result;
}

// Not coroutines themselves: the returned coroutine is the only frame, and it holds `impl_`
// so that it may outlive `*this`.
asio::awaitable<Result<ClientResponse>> HttpClient::request(const ClientRequest& req,
                                                            SteadyTime deadline) {
    return Impl::call<ClientResponse>(impl_, req, deadline, nullptr);
}

asio::awaitable<Result<StreamedResponse>> HttpClient::stream(const ClientRequest& req,
                                                             SteadyTime deadline,
                                                             const BodyHandler& on_data) {
    return Impl::call<StreamedResponse>(impl_, req, deadline, &on_data);
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(asio::any_io_executor executor,
                                                       HttpClientSettings settings,
                                                       std::string* error) {
    try {
        return std::make_unique<HttpClient>(std::move(executor), std::move(settings));
    } catch (const std::invalid_argument& e) {
        if (error != nullptr) {
            *error = e.what();
        }
        return Errc::invalid_config;
    }
}

HttpClientStats HttpClient::stats() const {
    const std::lock_guard lock{impl_->mutex};
    HttpClientStats out = impl_->counters;
    out.idle = impl_->idle.size() + impl_->idle_tls.size();
    return out;
}

std::string HttpClient::last_tls_error() const {
    const std::lock_guard lock{impl_->mutex};
    return impl_->last_tls_error;
}

void HttpClient::close_idle() {
    const std::lock_guard lock{impl_->mutex};
    for (auto& stream : impl_->idle) {
        close_quietly(stream);
    }
    impl_->idle.clear();
    for (auto& stream : impl_->idle_tls) {
        close_quietly(stream);
    }
    impl_->idle_tls.clear();
}

}  // namespace nmid::net
