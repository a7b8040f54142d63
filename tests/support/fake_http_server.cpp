#include "support/fake_http_server.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
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
#include <stdexcept>

namespace nmid::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

// Exceptions in the server's coroutines are test bugs: surface them from ioc.run().
void rethrow(const std::exception_ptr& e) {
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
    beast::tcp_stream* stream = nullptr;
    bool idle = false;  ///< waiting for the next request
};

void close_stream(beast::tcp_stream& stream, bool reset) {
    error_code ignored;
    if (reset) {
        stream.socket().set_option(asio::socket_base::linger{true, 0}, ignored);
    } else {
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    stream.socket().close(ignored);
}

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const noexcept {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                        [](char x, char y) { return lower(x) < lower(y); });
}

std::string FakeRequest::header(std::string_view name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
}

namespace detail {

struct FakeHttpServerState {
    explicit FakeHttpServerState(asio::io_context& ioc)
        : executor{ioc.get_executor()}, acceptor{ioc} {}

    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    FakeHttpServer::Handler handler;
    bool stopped = false;
    std::size_t accepted = 0;
    std::vector<FakeRequest> received;
    std::map<std::size_t, Connection> connections;
    std::vector<std::shared_ptr<Hold>> holds;
    std::vector<std::shared_ptr<LiveStream>> streams;
};

}  // namespace detail

namespace {

using StatePtr = std::shared_ptr<detail::FakeHttpServerState>;

// Keeps the connection registry exact however the session ends, including when the
// io_context destroys a suspended coroutine frame.
struct Registration {
    Registration(detail::FakeHttpServerState& state, std::size_t id, beast::tcp_stream& stream)
        : state{state}, id{id} {
        state.connections[id] = Connection{&stream, false};
    }
    ~Registration() { state.connections.erase(id); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    void set_idle(bool idle) { state.connections[id].idle = idle; }

    detail::FakeHttpServerState& state;
    std::size_t id;
};

FakeRequest to_fake_request(const http::request<http::string_body>& msg, std::size_t connection,
                            const asio::ip::address& peer) {
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

bool has_field(const FakeResponse& r, std::string_view name) {
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

asio::awaitable<bool> write_chunk(beast::tcp_stream& stream, const std::string& chunk) {
    if (chunk.empty()) {
        co_return true;  // a zero-size chunk would end the body
    }
    auto [ec, n] =
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(chunk)), kUseTuple);
    co_return !ec;
}

// Chunked response: header, `r.chunks`, then whatever `live` supplies until it finishes.
// Returns false when the connection must close (write failed, stream aborted or stopped).
asio::awaitable<bool> write_chunked(beast::tcp_stream& stream, const FakeResponse& r,
                                    bool keep_alive, const std::shared_ptr<LiveStream>& live,
                                    const detail::FakeHttpServerState& st) {
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
asio::awaitable<bool> respond(beast::tcp_stream& stream, const FakeResponse& r,
                              bool request_keep_alive, const StatePtr& st) {
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

asio::awaitable<void> session(StatePtr st, tcp::socket socket, std::size_t id) {
    error_code ec;
    const auto peer = socket.remote_endpoint(ec).address();
    // Chunks are written one by one; Nagle plus delayed ACKs would add 40 ms to each.
    socket.set_option(tcp::no_delay{true}, ec);
    beast::tcp_stream stream{std::move(socket)};
    Registration registration{*st, id, stream};
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
        st->received.push_back(to_fake_request(msg, id, peer));
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
    close_stream(stream, reset);
}

asio::awaitable<void> accept_loop(StatePtr st) {
    while (!st->stopped) {
        auto [ec, socket] = co_await st->acceptor.async_accept(kUseTuple);
        if (ec) {
            if (st->stopped || ec == asio::error::operation_aborted ||
                ec == asio::error::bad_descriptor) {
                co_return;
            }
            continue;
        }
        const std::size_t id = ++st->accepted;
        asio::co_spawn(st->executor, session(st, std::move(socket), id), rethrow);
    }
}

}  // namespace

FakeHttpServer::FakeHttpServer(asio::io_context& ioc, Handler handler, const std::string& address)
    : state_{std::make_shared<detail::FakeHttpServerState>(ioc)} {
    state_->handler = std::move(handler);
    const tcp::endpoint endpoint{asio::ip::make_address(address), 0};
    state_->acceptor.open(endpoint.protocol());
    state_->acceptor.set_option(asio::socket_base::reuse_address{true});
    state_->acceptor.bind(endpoint);
    state_->acceptor.listen();
    asio::co_spawn(state_->executor, accept_loop(state_), rethrow);
}

FakeHttpServer::~FakeHttpServer() {
    stop();
}

std::uint16_t FakeHttpServer::port() const {
    error_code ec;
    return state_->acceptor.local_endpoint(ec).port();
}

std::string FakeHttpServer::address() const {
    error_code ec;
    return state_->acceptor.local_endpoint(ec).address().to_string();
}

void FakeHttpServer::set_handler(Handler handler) {
    state_->handler = std::move(handler);
}

std::size_t FakeHttpServer::requests() const {
    return state_->received.size();
}

std::size_t FakeHttpServer::connections() const {
    return state_->accepted;
}

std::size_t FakeHttpServer::open_connections() const {
    return state_->connections.size();
}

const std::vector<FakeRequest>& FakeHttpServer::received() const {
    return state_->received;
}

std::size_t FakeHttpServer::held() const {
    return state_->holds.size();
}

void FakeHttpServer::release() {
    for (const auto& hold : state_->holds) {
        hold->released = true;
        hold->signal.notify();
    }
}

std::size_t FakeHttpServer::streams() const {
    return state_->streams.size();
}

bool FakeHttpServer::stream_open(std::size_t stream) const {
    return stream < state_->streams.size() && state_->streams[stream]->open;
}

void FakeHttpServer::push(std::size_t stream, std::string data) {
    auto& live = *state_->streams.at(stream);
    live.pending.push_back(std::move(data));
    live.signal.notify();
}

void FakeHttpServer::finish(std::size_t stream) {
    auto& live = *state_->streams.at(stream);
    live.finished = true;
    live.signal.notify();
}

void FakeHttpServer::abort(std::size_t stream) {
    auto& live = *state_->streams.at(stream);
    live.aborted = true;
    live.signal.notify();
}

void FakeHttpServer::close_idle_connections() {
    for (auto& [id, connection] : state_->connections) {
        if (connection.idle) {
            // Closing synchronously sends the FIN now; the session's pending read then ends.
            close_stream(*connection.stream, false);
        }
    }
}

void FakeHttpServer::stop() {
    auto& st = *state_;
    if (st.stopped) {
        return;
    }
    st.stopped = true;
    error_code ignored;
    st.acceptor.close(ignored);
    for (auto& [id, connection] : st.connections) {
        close_stream(*connection.stream, false);
    }
    for (const auto& hold : st.holds) {
        hold->signal.notify();
    }
    for (const auto& live : st.streams) {
        live->signal.notify();
    }
}

bool run_until(asio::io_context& ioc, const std::function<bool()>& done,
               std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    if (ioc.stopped()) {
        ioc.restart();
    }
    while (!done()) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) {
            break;
        }
        if (ioc.run_one_for(end - now) == 0 && ioc.stopped()) {
            break;
        }
    }
    return done();
}

}  // namespace nmid::test
