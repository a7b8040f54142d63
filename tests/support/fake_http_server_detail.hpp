#pragma once

// Internals of FakeHttpServer shared by its plain (fake_http_server.cpp) and TLS
// (fake_http_server_tls.cpp) translation units. The TLS one is linked only into tests that
// construct a TLS server, so the others need no OpenSSL. Not for use by tests.

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/fake_http_server.hpp"

namespace nmid::test::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

inline constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

inline char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

// Exceptions in the server's coroutines are test bugs: surface them from ioc.run().
inline void rethrow(const std::exception_ptr& e) {
    if (e) {
        std::rethrow_exception(e);
    }
}

/// Wakes one waiting coroutine: a timer that never expires, cancelled to wake. Waiters
/// re-check their condition, so a notify with nobody waiting is harmless.
struct Signal {
    explicit Signal(const asio::any_io_executor& ex)
        : timer{ex, asio::steady_timer::time_point::max()} {}
    void notify() { timer.cancel(); }
    asio::awaitable<void> wait() { co_await timer.async_wait(kUseTuple); }
    asio::steady_timer timer;
};

struct Hold {
    explicit Hold(const asio::any_io_executor& ex) : signal{ex} {}
    Signal signal;
    bool released = false;
};

struct LiveStream {
    explicit LiveStream(const asio::any_io_executor& ex) : signal{ex} {}
    Signal signal;
    std::deque<std::string> pending;
    bool finished = false;
    bool aborted = false;
    bool open = true;
};

struct Connection {
    beast::tcp_stream* stream = nullptr;  ///< the TCP layer (under TLS too)
    bool idle = false;                    ///< waiting for the next request
};

inline void close_stream(beast::tcp_stream& stream, bool reset) {
    error_code ignored;
    if (reset) {
        stream.socket().set_option(asio::socket_base::linger{true, 0}, ignored);
    } else {
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    stream.socket().close(ignored);
}

struct FakeHttpServerState {
    explicit FakeHttpServerState(asio::io_context& ioc)
        : executor{ioc.get_executor()}, acceptor{ioc} {}

    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    FakeHttpServer::Handler handler;
    bool stopped = false;
    std::size_t accepted = 0;
    std::size_t tls_failures = 0;
    std::vector<FakeRequest> received;
    std::map<std::size_t, Connection> connections;
    std::vector<std::shared_ptr<Hold>> holds;
    std::vector<std::shared_ptr<LiveStream>> streams;
    /// Serves one accepted connection (plain or TLS); set by the constructor.
    std::function<void(const std::shared_ptr<FakeHttpServerState>&, tcp::socket, std::size_t)>
        start_session;
};

using StatePtr = std::shared_ptr<FakeHttpServerState>;

// Keeps the connection registry exact however the session ends, including when the
// io_context destroys a suspended coroutine frame.
struct Registration {
    Registration(FakeHttpServerState& state, std::size_t id, beast::tcp_stream& stream)
        : state{state}, id{id} {
        state.connections[id] = Connection{&stream, false};
    }
    ~Registration() { state.connections.erase(id); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    void set_idle(bool idle) { state.connections[id].idle = idle; }

    FakeHttpServerState& state;
    std::size_t id;
};

inline FakeRequest to_fake_request(const http::request<http::string_body>& msg,
                                   std::size_t connection, const asio::ip::address& peer) {
    FakeRequest out;
    out.method = std::string{msg.method_string()};
    out.target = std::string{msg.target()};
    out.version = msg.version();
    for (const auto& field : msg) {
        out.fields.emplace_back(std::string{field.name_string()}, std::string{field.value()});
        out.headers.emplace(std::string{field.name_string()}, std::string{field.value()});
    }
    out.body = msg.body();
    out.connection = connection;
    out.peer = peer;
    return out;
}

inline bool has_field(const FakeResponse& r, std::string_view name) {
    return std::any_of(r.headers.begin(), r.headers.end(),
                       [&](const auto& f) { return iequals(f.first, name); });
}

template <class Message>
void fill_header(Message& msg, const FakeResponse& r, bool keep_alive) {
    msg.version(r.version);
    msg.result(static_cast<unsigned>(r.status));
    for (const auto& [name, value] : r.headers) {
        msg.insert(name, value);
    }
    msg.keep_alive(keep_alive);
}

template <class Stream>
asio::awaitable<bool> write_chunk(Stream& stream, const std::string& chunk) {
    if (chunk.empty()) {
        co_return true;  // a zero-size chunk would end the body
    }
    auto [ec, n] =
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk)), kUseTuple);
    co_return !ec;
}

// Chunked response: header, `r.chunks`, then whatever `live` supplies until it finishes.
// Returns false when the connection must close (write failed, stream aborted or stopped).
template <class Stream>
asio::awaitable<bool> write_chunked(Stream& stream, const FakeResponse& r, bool keep_alive,
                                    const std::shared_ptr<LiveStream>& live,
                                    const FakeHttpServerState& st) {
    http::response<http::empty_body> header;
    fill_header(header, r, keep_alive);
    header.chunked(true);
    http::response_serializer<http::empty_body> serializer{header};
    auto [ec, n] = co_await http::async_write_header(stream, serializer, kUseTuple);
    if (ec) {
        co_return false;
    }
    for (const auto& chunk : r.chunks) {
        const bool written = co_await write_chunk(stream, chunk);
        if (!written) {
            co_return false;
        }
    }
    if (r.chunks.empty()) {
        const bool written = co_await write_chunk(stream, r.body);
        if (!written) {
            co_return false;
        }
    }
    while (live) {
        while (!live->pending.empty()) {
            const std::string chunk = std::move(live->pending.front());
            live->pending.pop_front();
            const bool written = co_await write_chunk(stream, chunk);
            if (!written) {
                co_return false;
            }
        }
        if (live->aborted || st.stopped) {
            co_return false;
        }
        if (live->finished) {
            break;
        }
        co_await live->signal.wait();
    }
    std::tie(ec, n) = co_await asio::async_write(stream, http::make_chunk_last(), kUseTuple);
    co_return !ec;
}

// Answers one request; returns false when the connection must close afterwards.
template <class Stream>
asio::awaitable<bool> respond(Stream& stream, const FakeResponse& r, bool request_keep_alive,
                              const StatePtr& st) {
    const bool keep_alive = r.keep_alive && request_keep_alive && !r.close_after;
    if (!r.raw.empty()) {
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(r.raw), kUseTuple);
        co_return !ec && r.keep_alive && !r.close_after;
    }
    // A silent close keeps the announced keep-alive: the peer learns only from the FIN.
    const bool announce_keep_alive = r.keep_alive && request_keep_alive;
    if (r.stream || r.chunked || !r.chunks.empty()) {
        std::shared_ptr<LiveStream> live;
        if (r.stream) {
            live = std::make_shared<LiveStream>(st->executor);
            st->streams.push_back(live);
        }
        const bool ok = co_await write_chunked(stream, r, announce_keep_alive, live, *st);
        if (live) {
            live->open = false;
        }
        co_return ok&& keep_alive;
    }
    http::response<http::string_body> msg;
    fill_header(msg, r, announce_keep_alive);
    msg.body() = r.body;
    if (!has_field(r, "content-length") && !has_field(r, "transfer-encoding")) {
        msg.content_length(r.body.size());
    }
    auto [ec, n] = co_await http::async_write(stream, msg, kUseTuple);
    co_return !ec && keep_alive;
}

// Reads and answers requests until the connection must close. Returns true when it must be
// reset (RST) rather than closed.
template <class Stream>
asio::awaitable<bool> serve_requests(const StatePtr& st, Stream& stream, Registration& registration,
                                     const asio::ip::address& peer,
                                     const std::string& client_subject) {
    beast::flat_buffer buffer;
    bool reset = false;
    while (!st->stopped) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(64 * 1024);
        parser.body_limit(std::uint64_t{16} * 1024 * 1024);
        registration.set_idle(true);
        auto [read_ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
        registration.set_idle(false);
        if (read_ec || st->stopped) {
            break;
        }
        const auto& msg = parser.get();
        st->received.push_back(to_fake_request(msg, registration.id, peer));
        st->received.back().client_subject = client_subject;
        const FakeResponse response =
            st->handler ? st->handler(st->received.back()) : FakeResponse{.status = 404};
        if (response.hold) {
            auto hold = std::make_shared<Hold>(st->executor);
            st->holds.push_back(hold);
            while (!hold->released && !st->stopped) {
                co_await hold->signal.wait();
            }
            std::erase(st->holds, hold);
            if (st->stopped) {
                break;
            }
        }
        if (response.close_without_response || response.reset) {
            reset = response.reset;
            break;
        }
        const bool responded = co_await respond(stream, response, msg.keep_alive(), st);
        if (!responded) {
            break;
        }
    }
    co_return reset;
}

/// Binds and listens on `address`:0 and starts accepting (both constructors).
void start_listening(const StatePtr& state, const std::string& address);

}  // namespace nmid::test::detail
