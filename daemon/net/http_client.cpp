#include "nmid/net/http_client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <deque>
#include <mutex>

#include "ascii.hpp"

namespace nmid::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kHeaderLimit = 16 * 1024;

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

bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return detail::is_alnum(c) ||
               std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
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

/// Outcome of one request/response exchange on one connection.
struct Exchange {
    Result<ClientResponse> result{Errc::io_error};
    bool reusable = false;  ///< the connection may carry another request
    bool stale = false;     ///< failed at transport level before any response byte
};

asio::awaitable<Exchange> exchange(beast::tcp_stream& stream,
                                   const http::request<http::string_body>& msg,
                                   std::size_t body_limit, SteadyTime deadline) {
    stream.expires_at(deadline);
    Exchange out;
    auto [write_ec, written] = co_await http::async_write(stream, msg, kUseTuple);
    (void)written;
    if (write_ec) {
        out.result = classify(write_ec);
        out.stale = out.result.error() == Errc::io_error;
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
        out.result = classify(read_ec);
        out.stale =
            out.result.error() == Errc::io_error && !parser.got_some() && buffer.size() == 0;
        co_return out;
    }
    auto& res = parser.get();
    ClientResponse response;
    response.status = static_cast<int>(res.result_int());
    response.headers.reserve(static_cast<std::size_t>(std::distance(res.begin(), res.end())));
    for (const auto& field : res) {
        response.headers.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    }
    response.body = std::move(res.body());
    // Leftover bytes would belong to no request: such a connection is not reused.
    out.reusable = res.keep_alive() && !res.need_eof() && buffer.size() == 0;
    out.result = std::move(response);
    co_return out;
}

}  // namespace

std::string_view ClientResponse::header(std::string_view name) const {
    for (const auto& [field, value] : headers) {
        if (detail::iequals(field, name)) {
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
        if (!settings.host_header.empty()) {
            host_header = settings.host_header;
        } else {
            host_header = address && address->is_v6() ? "[" + name + "]" : name;
            if (settings.port != 80) {
                host_header += ":" + std::to_string(settings.port);
            }
        }
    }

    /// Emplaces a connected stream into `out`, or returns why not (Errc::ok on success).
    asio::awaitable<Errc> connect(std::optional<beast::tcp_stream>& out, SteadyTime deadline);
    asio::awaitable<Result<ClientResponse>> run(const ClientRequest& req, SteadyTime deadline);

    std::optional<beast::tcp_stream> take_idle() {
        const std::lock_guard lock{mutex};
        while (!idle.empty()) {
            beast::tcp_stream stream{std::move(idle.back())};
            idle.pop_back();
            if (looks_alive(stream.socket())) {
                return stream;
            }
            close_quietly(stream);
        }
        return std::nullopt;
    }

    void put_idle(beast::tcp_stream& stream) {
        // Idle sockets carry no deadline: the next request sets its own.
        stream.expires_never();
        const std::lock_guard lock{mutex};
        if (settings.pool_size == 0) {
            close_quietly(stream);
            return;
        }
        if (idle.size() >= settings.pool_size) {
            // The oldest idle connection is the likeliest to hit the server's idle timeout.
            close_quietly(idle.front());
            idle.pop_front();
        }
        idle.emplace_back(std::move(stream));
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

    // Guards `idle` and `counters`: request() may run on several I/O threads at once.
    mutable std::mutex mutex;
    std::deque<beast::tcp_stream> idle;  ///< back() is the most recently used (LIFO)
    HttpClientStats counters;
};

// Not Result<tcp_stream>: basic_stream's variadic constructor makes that result ambiguous.
asio::awaitable<Errc> HttpClient::Impl::connect(std::optional<beast::tcp_stream>& out,
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
    update([](HttpClientStats& c) { ++c.connects; });
    out.emplace(std::move(stream));
    co_return Errc::ok;
}

asio::awaitable<Result<ClientResponse>> HttpClient::Impl::run(const ClientRequest& req,
                                                              SteadyTime deadline) {
    if (!valid(req)) {
        co_return Errc::bad_request;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
        co_return Errc::timeout;
    }
    http::request<http::string_body> msg;
    msg.method_string(req.method);
    msg.target(req.target);
    msg.version(11);
    bool has_host = false;
    for (const auto& [field, value] : req.headers) {
        has_host = has_host || detail::iequals(field, "host");
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

    std::optional<beast::tcp_stream> stream = take_idle();
    bool pooled = stream.has_value();
    for (;;) {
        if (!stream) {
            const Errc connected = co_await connect(stream, deadline);
            if (connected != Errc::ok) {
                co_return connected;
            }
        }
        Exchange ex = co_await exchange(*stream, msg, settings.max_response_body, deadline);
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

asio::awaitable<Result<ClientResponse>> HttpClient::request(const ClientRequest& req,
                                                            SteadyTime deadline) {
    // The coroutine may outlive `*this`: it keeps the shared state alive by itself.
    const std::shared_ptr<Impl> impl = impl_;
    impl->update([](HttpClientStats& c) { ++c.requests; });
    Result<ClientResponse> result{Errc::io_error};
    try {
        result = co_await impl->run(req, deadline);
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

HttpClientStats HttpClient::stats() const {
    const std::lock_guard lock{impl_->mutex};
    HttpClientStats out = impl_->counters;
    out.idle = impl_->idle.size();
    return out;
}

void HttpClient::close_idle() {
    const std::lock_guard lock{impl_->mutex};
    for (auto& stream : impl_->idle) {
        close_quietly(stream);
    }
    impl_->idle.clear();
}

}  // namespace nmid::net
