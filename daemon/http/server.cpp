#include "nmid/http/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace nmid::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

/// Bytes asked from the kernel per read. Requests to IMDS are well under 1 KiB; the buffer
/// holds at most the unparsed part of one header plus one chunk.
constexpr std::size_t kReadChunk = 4 * 1024;
/// Lingering close: how long and how much unread input is drained after an error response, so
/// the peer reads the response instead of a reset caused by closing with unread data.
constexpr Millis kMaxLinger{2'000};
constexpr std::size_t kMaxLingerBytes = 1024 * 1024;
/// Refusals in progress beyond this are closed without the 503 (a flood must not pin fds).
constexpr std::size_t kMaxRefusing = 256;
constexpr Millis kAcceptBackoff{50};

constexpr std::string_view kRefusedResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Length: 0\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n\r\n";
constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kJson = "application/json";

using Parser = bhttp::request_parser<bhttp::string_body>;

/// HeaderView over the parser's fields: no copies; valid while the parser lives.
class FieldsView final : public HeaderView {
public:
    void reset(const bhttp::fields* fields) noexcept { fields_ = fields; }

    [[nodiscard]] std::string_view get(std::string_view name) const override {
        const auto it = fields_->find(name);
        return it == fields_->end() ? std::string_view{} : std::string_view{it->value()};
    }
    [[nodiscard]] bool contains(std::string_view name) const override {
        return fields_->find(name) != fields_->end();
    }
    void for_each(void (*fn)(void* ctx, std::string_view name, std::string_view value),
                  void* ctx) const override {
        for (const auto& field : *fields_) {
            fn(ctx, field.name_string(), field.value());
        }
    }

private:
    const bhttp::fields* fields_ = nullptr;
};

/// What the connection is waiting for; the watchdog enforces deadlines only while waiting.
enum class Phase { busy, idle, reading, writing, lingering };

/// Per-connection state. Lives in the connection coroutine's frame and is touched only on
/// the connection's strand.
struct Conn {
    Conn(tcp::socket s, std::size_t buffer_limit)
        : socket(std::move(s)), timer(socket.get_executor()), buffer(buffer_limit) {}

    tcp::socket socket;
    asio::steady_timer timer;  ///< the watchdog's
    beast::flat_buffer buffer;
    std::optional<Parser> parser;
    FieldsView headers;
    std::string out;  ///< serialised response, reused across requests
    asio::ip::address peer;
    SteadyTime deadline = SteadyTime::max();  ///< of the current wait
    SteadyTime armed = SteadyTime::max();     ///< when the watchdog's timer fires
    Phase phase = Phase::busy;
    bool timed_out = false;
    bool closing = false;
    bool linger = false;  ///< drain unread input before closing (after an error response)
};

/// Moves the deadline of the coming wait. The watchdog re-arms lazily when it fires, so only
/// a deadline earlier than the armed one costs a timer operation.
void set_deadline(Conn& c, SteadyTime deadline) {
    c.deadline = deadline;
    if (deadline < c.armed) {
        c.timer.cancel();
    }
}

asio::awaitable<void> watchdog(Conn& c) {
    for (;;) {
        c.armed = c.deadline;
        c.timer.expires_at(c.armed);
        co_await c.timer.async_wait(kUseTuple);
        if (c.closing) {
            co_return;
        }
        const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) {
            co_return;
        }
        if (Clock::now() < c.deadline) {
            continue;  // the deadline moved (cancel() re-arms earlier, expiry re-arms later)
        }
        if (c.phase != Phase::busy) {
            c.timed_out = true;
            error_code ignored;
            c.socket.cancel(ignored);
        }
        c.deadline = SteadyTime::max();
    }
}

void append_uint(std::string& out, std::size_t value) {
    std::array<char, 24> digits{};
    const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), end);
}

bool has_ctl(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char ch) {
        const auto u = static_cast<unsigned char>(ch);
        return u == '\r' || u == '\n' || u == 0;
    });
}

constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

/// Fields the server owns; a handler's copy would contradict the framing.
bool reserved_field(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "connection");
}

std::string_view reason_phrase(int status) {
    const auto s = bhttp::int_to_status(static_cast<unsigned>(status));
    return s == bhttp::status::unknown ? std::string_view{"Unknown"}
                                       : std::string_view{bhttp::obsolete_reason(s)};
}

/// Status line, Content-Type, Content-Length, extra fields, Connection, body: one buffer.
void serialize(const HttpResponse& r, bool head, bool keep_alive, unsigned version,
               std::string& out) {
    const int status = (r.status >= 100 && r.status <= 999) ? r.status : 500;
    const bool body_allowed = status >= 200 && status != 204 && status != 304;
    out.clear();
    out.append("HTTP/1.1 ");
    append_uint(out, static_cast<std::size_t>(status));
    out.push_back(' ');
    out.append(reason_phrase(status));
    out.append("\r\n");
    if (!r.content_type.empty() && !has_ctl(r.content_type)) {
        out.append("Content-Type: ").append(r.content_type).append("\r\n");
    }
    if (body_allowed) {
        out.append("Content-Length: ");
        append_uint(out, r.body.size());
        out.append("\r\n");
    }
    for (const auto& [name, value] : r.headers) {
        // CR/LF in a field would let echoed input split the response.
        if (name.empty() || has_ctl(name) || has_ctl(value) || reserved_field(name)) {
            continue;
        }
        out.append(name).append(": ").append(value).append("\r\n");
    }
    if (!keep_alive) {
        out.append("Connection: close\r\n");
    } else if (version == 10) {
        out.append("Connection: keep-alive\r\n");
    }
    out.append("\r\n");
    if (body_allowed && !head) {
        out.append(r.body);
    }
}

HttpResponse error_response(int status, std::string_view error, std::string_view description) {
    HttpResponse r;
    r.status = status;
    r.content_type = kJson;
    r.body.reserve(64 + description.size());
    r.body.append(R"({"error":")")
        .append(error)
        .append(R"(","error_description":")")
        .append(description)
        .append(R"("})");
    r.close = true;
    return r;
}

enum class ReadResult {
    complete,
    closed,  ///< peer closed or reset mid-request: nothing to answer
    timed_out,
    header_too_large,
    body_too_large,
    bad,
};

/// Shared by the server object, the accept loop and every connection: a connection can
/// outlive a call into HttpServer, never the State.
struct State {
    State(asio::any_io_executor ex, RequestHandler& h, HttpServerSettings s)
        : executor(std::move(ex)),
          strand(asio::make_strand(executor)),
          handler(h),
          settings(std::move(s)),
          acceptor(strand),
          drain_cv(strand) {}

    struct Entry {
        Conn* conn;
        asio::any_io_executor executor;  ///< the connection's strand
    };

    asio::any_io_executor executor;
    asio::strand<asio::any_io_executor> strand;  ///< acceptor, drain, registry walks
    RequestHandler& handler;
    const HttpServerSettings settings;
    tcp::acceptor acceptor;
    asio::steady_timer drain_cv;  ///< condition variable: cancelled when `tasks` reaches 0
    std::uint16_t port = 0;
    std::uint64_t next_id = 0;  ///< accept loop only

    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bad_requests{0};
    std::atomic<std::size_t> active{0};
    std::atomic<std::size_t> refusing{0};
    std::atomic<std::size_t> tasks{0};  ///< connection and refusal coroutines alive

    // Guards `conns` only: written on connection strands, walked on `strand` by stop/drain.
    std::mutex conns_mutex;
    std::unordered_map<std::uint64_t, Entry> conns;

    /// Runs `fn(conn)` on connection `id`'s strand if it is still open. Safe because a Conn is
    /// destroyed only on its own strand, after it has left the registry.
    template <class Fn>
    void post_to_all(const std::shared_ptr<State>& self, Fn fn) {
        std::lock_guard lock{conns_mutex};
        for (const auto& [id, entry] : conns) {
            asio::post(entry.executor, [self, id = id, fn] {
                Conn* conn = nullptr;
                {
                    std::lock_guard inner{self->conns_mutex};
                    const auto it = self->conns.find(id);
                    if (it != self->conns.end()) {
                        conn = it->second.conn;
                    }
                }
                if (conn != nullptr) {
                    fn(*conn);
                }
            });
        }
    }

    void task_done(const std::shared_ptr<State>& self) {
        if (tasks.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            asio::post(strand, [self] { self->drain_cv.cancel(); });
        }
    }
};

using StatePtr = std::shared_ptr<State>;

/// Writes all of `data`: straight into the socket when it has room (the usual case: no
/// suspension), else waits under the write deadline.
asio::awaitable<bool> write_all(const State& st, Conn& c, std::string_view data) {
    error_code ec;
    const std::size_t n = c.socket.write_some(asio::buffer(data), ec);
    if (!ec && n == data.size()) {
        co_return true;
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        co_return false;
    }
    data.remove_prefix(ec ? 0 : n);
    c.phase = Phase::writing;
    set_deadline(c, Clock::now() + st.settings.write_timeout);
    const auto [wec, written] = co_await asio::async_write(c.socket, asio::buffer(data), kUseTuple);
    c.phase = Phase::busy;
    co_return !wec && !c.timed_out;
}

ReadResult classify(const error_code& ec) {
    if (ec == bhttp::error::header_limit) {
        return ReadResult::header_too_large;
    }
    if (ec == bhttp::error::body_limit) {
        return ReadResult::body_too_large;
    }
    return ReadResult::bad;
}

bool expects_continue(const Parser& p) {
    if (p.get().version() < 11) {
        return false;
    }
    const auto it = p.get().find(bhttp::field::expect);
    return it != p.get().end() && iequals(it->value(), "100-continue");
}

/// Parses one request from the buffer, reading more as needed until `deadline`.
asio::awaitable<ReadResult> read_request(const State& st, Conn& c, SteadyTime deadline) {
    Parser& p = *c.parser;
    bool continue_sent = false;
    for (;;) {
        if (c.buffer.size() > 0) {
            error_code ec;
            const std::size_t n = p.put(c.buffer.data(), ec);
            c.buffer.consume(n);
            if (!ec) {
                if (p.is_done()) {
                    co_return ReadResult::complete;
                }
                if (n > 0) {
                    continue;
                }
            } else if (ec != bhttp::error::need_more) {
                co_return classify(ec);
            }
        }
        if (!continue_sent && p.is_header_done() && expects_continue(p)) {
            continue_sent = true;
            const bool written = co_await write_all(st, c, kContinueResponse);
            if (!written) {
                co_return ReadResult::closed;
            }
        }
        const std::size_t room = c.buffer.max_size() - c.buffer.size();
        if (room == 0) {
            co_return ReadResult::header_too_large;
        }
        c.phase = Phase::reading;
        set_deadline(c, deadline);
        const auto [ec, n] = co_await c.socket.async_read_some(
            c.buffer.prepare(std::min(room, kReadChunk)), kUseTuple);
        c.phase = Phase::busy;
        if (c.timed_out) {
            co_return ReadResult::timed_out;
        }
        if (ec) {
            if (ec == asio::error::eof) {
                error_code eof_ec;
                p.put_eof(eof_ec);
                if (!eof_ec && p.is_done()) {
                    co_return ReadResult::complete;
                }
            }
            co_return ReadResult::closed;
        }
        c.buffer.commit(n);
    }
}

/// Answers a request that could not be read, then closes with a lingering drain.
asio::awaitable<void> answer_unreadable(State& st, Conn& c, ReadResult r) {
    st.bad_requests.fetch_add(1, std::memory_order_relaxed);
    HttpResponse resp;
    switch (r) {
        case ReadResult::timed_out:
            resp = error_response(408, "invalid_request", "request not received in time");
            break;
        case ReadResult::header_too_large:
            resp = error_response(431, "invalid_request", "request header fields too large");
            break;
        case ReadResult::body_too_large:
            resp = error_response(413, "invalid_request", "request body too large");
            break;
        default:
            resp = error_response(400, "invalid_request", "malformed request");
            break;
    }
    c.timed_out = false;
    serialize(resp, false, false, 11, c.out);
    c.linger = true;
    co_await write_all(st, c, c.out);
}

/// The request/response loop. Returns when the connection should close.
asio::awaitable<void> serve(State& st, Conn& c) {
    // A fresh connection that stays silent is held no longer than a slow request would be:
    // clients send at once, and idle connects must not pin max_connections for idle_timeout.
    Millis wait_for_request = std::min(st.settings.idle_timeout, st.settings.read_timeout);
    for (;;) {
        if (c.buffer.size() == 0) {
            // Idle between requests: stop() closes here; a silent close on the idle deadline.
            if (st.stopping.load(std::memory_order_acquire)) {
                co_return;
            }
            c.phase = Phase::idle;
            set_deadline(c, Clock::now() + wait_for_request);
            const auto [ec, n] =
                co_await c.socket.async_read_some(c.buffer.prepare(kReadChunk), kUseTuple);
            c.phase = Phase::busy;
            if (ec || c.timed_out) {
                co_return;
            }
            c.buffer.commit(n);
        }

        const SteadyTime started = Clock::now();
        c.parser.emplace();
        c.parser->eager(true);
        c.parser->header_limit(static_cast<std::uint32_t>(
            std::min<std::size_t>(st.settings.header_limit, UINT32_MAX)));
        c.parser->body_limit(st.settings.body_limit);

        const ReadResult r = co_await read_request(st, c, started + st.settings.read_timeout);
        if (r == ReadResult::closed) {
            co_return;
        }
        if (r != ReadResult::complete) {
            co_await answer_unreadable(st, c, r);
            co_return;
        }

        auto& msg = c.parser->get();
        if ((msg.version() != 10 && msg.version() != 11) ||
            (msg.version() == 11 && msg.find(bhttp::field::host) == msg.end())) {
            // RFC 9112 3.2 (and Go's server): an HTTP/1.1 request without Host is a 400.
            co_await answer_unreadable(st, c, ReadResult::bad);
            co_return;
        }

        st.requests.fetch_add(1, std::memory_order_relaxed);
        c.headers.reset(&msg.base());
        HttpRequest req;
        req.method = msg.method_string();
        req.target = msg.target();
        req.version = msg.version();
        req.peer = c.peer;
        req.received_at = started;
        req.headers = &c.headers;
        req.body = msg.body();

        HttpResponse resp;
        bool failed = false;
        try {
            resp = co_await st.handler.handle(req);
        } catch (const std::exception& e) {
            spdlog::error("http: handler threw for {} {}: {}", req.method, req.target, e.what());
            failed = true;
        } catch (...) {
            spdlog::error("http: handler threw a non-exception for {} {}", req.method, req.target);
            failed = true;
        }
        if (failed) {
            resp = error_response(500, "server_error", "internal error");
            resp.close = false;
        }
        if (resp.reset) {
            error_code ignored;
            c.socket.set_option(asio::socket_base::linger(true, 0), ignored);
            c.socket.close(ignored);
            co_return;
        }
        if (!c.socket.is_open()) {
            co_return;  // closed by drain() while the handler ran
        }

        const bool keep_alive =
            c.parser->keep_alive() && !resp.close && !st.stopping.load(std::memory_order_acquire);
        serialize(resp, msg.method() == bhttp::verb::head, keep_alive, req.version, c.out);
        const bool written = co_await write_all(st, c, c.out);
        if (!written || !keep_alive) {
            co_return;
        }
        wait_for_request = st.settings.idle_timeout;
    }
}

/// Reads and discards what the peer still sends after our FIN, for a bounded time.
asio::awaitable<void> linger_close(const State& st, Conn& c) {
    error_code ec;
    c.socket.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
        co_return;
    }
    const SteadyTime until = Clock::now() + std::min(st.settings.read_timeout, kMaxLinger);
    std::size_t drained = 0;
    c.buffer.clear();
    while (drained < kMaxLingerBytes && !st.stopping.load(std::memory_order_acquire)) {
        c.phase = Phase::lingering;
        set_deadline(c, until);
        const auto [rec, n] =
            co_await c.socket.async_read_some(c.buffer.prepare(kReadChunk), kUseTuple);
        c.phase = Phase::busy;
        if (rec || c.timed_out) {
            break;
        }
        drained += n;
    }
}

asio::awaitable<void> session(State& st, Conn& c) {
    try {
        co_await serve(st, c);
        error_code ec;
        if (c.socket.is_open() && (c.linger || c.socket.available(ec) > 0)) {
            c.timed_out = false;
            co_await linger_close(st, c);
        }
    } catch (const std::exception& e) {
        // Bugs only (allocation failure, a broken invariant): the connection is dropped.
        spdlog::error("http: connection failed: {}", e.what());
    } catch (...) {
        spdlog::error("http: connection failed");
    }
    c.closing = true;
    c.timer.cancel();
    error_code ignored;
    c.socket.close(ignored);
}

/// Removes the connection from the registry when its frame unwinds, whatever the path.
class Registration {
public:
    Registration(State& st, std::uint64_t id, Conn& c) : st_(st), id_(id) {
        std::lock_guard lock{st_.conns_mutex};
        st_.conns.emplace(id_, State::Entry{&c, c.socket.get_executor()});
    }
    ~Registration() {
        std::lock_guard lock{st_.conns_mutex};
        st_.conns.erase(id_);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

private:
    State& st_;
    std::uint64_t id_;
};

asio::awaitable<void> connection(StatePtr st, tcp::socket socket, std::uint64_t id) {
    using asio::experimental::awaitable_operators::operator||;
    Conn c{std::move(socket), st->settings.header_limit + kReadChunk};
    error_code ec;
    c.socket.non_blocking(true, ec);
    c.socket.set_option(tcp::no_delay(true), ec);
    const auto remote = c.socket.remote_endpoint(ec);
    if (ec) {
        co_return;  // reset before we looked at it
    }
    c.peer = remote.address();
    if (c.peer.is_v6() && c.peer.to_v6().is_v4_mapped()) {
        c.peer = asio::ip::make_address_v4(asio::ip::v4_mapped, c.peer.to_v6());
    }
    const Registration registration{*st, id, c};
    // `session` never throws and ends by cancelling the watchdog's timer.
    co_await (session(*st, c) || watchdog(c));
}

/// Over max_connections: a minimal 503 and a lingering close, never a silent drop.
asio::awaitable<void> refuse(StatePtr st, tcp::socket socket) {
    beast::tcp_stream stream{std::move(socket)};
    stream.expires_after(st->settings.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kRefusedResponse), kUseTuple);
    if (!ec) {
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream.expires_after(std::min(st->settings.read_timeout, kMaxLinger));
        std::array<char, 1024> sink{};
        std::size_t drained = 0;
        while (!ec && drained < kMaxLingerBytes) {
            std::tie(ec, n) = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
            drained += n;
        }
    }
    stream.socket().close(ec);
}

/// The executor of a new connection: a strand of its own unless one I/O thread runs everything.
/// The strand is over the io_context's own executor when that is what we were given, which saves
/// a layer of type erasure on every completion.
asio::any_io_executor connection_executor(const State& st) {
    const asio::any_io_executor& executor = st.executor;
    if (!st.settings.strand_per_connection) {
        return executor;
    }
    if (const auto* io = executor.target<asio::io_context::executor_type>()) {
        return asio::make_strand(*io);
    }
    return asio::make_strand(executor);
}

asio::awaitable<void> accept_loop(StatePtr st) {
    while (!st->stopping.load(std::memory_order_acquire)) {
        auto [ec, socket] =
            co_await st->acceptor.async_accept(connection_executor(*st), kUseTuple);
        if (st->stopping.load(std::memory_order_acquire) || !st->acceptor.is_open()) {
            break;
        }
        if (ec) {
            if (ec == asio::error::operation_aborted) {
                break;
            }
            // EMFILE and friends: back off instead of spinning on a full descriptor table.
            spdlog::warn("http: accept failed: {}", ec.message());
            asio::steady_timer backoff{st->strand, kAcceptBackoff};
            co_await backoff.async_wait(kUseTuple);
            continue;
        }
        st->accepted.fetch_add(1, std::memory_order_relaxed);
        auto executor = socket.get_executor();
        if (st->active.load(std::memory_order_relaxed) >= st->settings.max_connections) {
            st->refused.fetch_add(1, std::memory_order_relaxed);
            if (st->refusing.load(std::memory_order_relaxed) >= kMaxRefusing) {
                socket.close(ec);
                continue;
            }
            st->refusing.fetch_add(1, std::memory_order_relaxed);
            st->tasks.fetch_add(1, std::memory_order_acq_rel);
            asio::co_spawn(executor, refuse(st, std::move(socket)), [st](std::exception_ptr) {
                st->refusing.fetch_sub(1, std::memory_order_relaxed);
                st->task_done(st);
            });
            continue;
        }
        st->active.fetch_add(1, std::memory_order_relaxed);
        st->tasks.fetch_add(1, std::memory_order_acq_rel);
        asio::co_spawn(executor, connection(st, std::move(socket), ++st->next_id),
                       [st](std::exception_ptr e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const std::exception& ex) {
                                   spdlog::error("http: connection failed: {}", ex.what());
                               } catch (...) {
                                   spdlog::error("http: connection failed");
                               }
                           }
                           st->active.fetch_sub(1, std::memory_order_relaxed);
                           st->task_done(st);
                       });
    }
}

asio::awaitable<void> drain_loop(StatePtr st, SteadyTime deadline) {
    while (st->tasks.load(std::memory_order_acquire) > 0 && Clock::now() < deadline) {
        st->drain_cv.expires_at(deadline);
        co_await st->drain_cv.async_wait(kUseTuple);
    }
    if (st->tasks.load(std::memory_order_acquire) > 0) {
        st->post_to_all(st, [](Conn& c) {
            error_code ignored;
            c.socket.close(ignored);
        });
    }
}

void raise_fd_limit(std::size_t wanted) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted ||
        limit.rlim_cur >= limit.rlim_max) {
        return;
    }
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        spdlog::warn("http: could not raise RLIMIT_NOFILE to {}", limit.rlim_max);
    }
}

}  // namespace

struct HttpServer::Impl {
    StatePtr state;
};

HttpServer::HttpServer(boost::asio::any_io_executor executor, RequestHandler& handler,
                       HttpServerSettings settings)
    : impl_(std::make_unique<Impl>(
          Impl{std::make_shared<State>(std::move(executor), handler, std::move(settings))})) {}

HttpServer::~HttpServer() {
    stop();
}

Result<void> HttpServer::listen() {
    State& st = *impl_->state;
    error_code ec;
    const auto address = asio::ip::make_address(st.settings.address, ec);
    if (ec) {
        spdlog::error("http: invalid listen address '{}'", st.settings.address);
        return Errc::invalid_config;
    }
    raise_fd_limit(st.settings.max_connections + 64);
    const tcp::endpoint endpoint{address, st.settings.port};
    const auto fail = [&](std::string_view what) -> Result<void> {
        spdlog::error("http: {} {}:{} failed: {}", what, st.settings.address, st.settings.port,
                      ec.message());
        error_code ignored;
        st.acceptor.close(ignored);
        return Errc::io_error;
    };
    if (st.acceptor.open(endpoint.protocol(), ec); ec) {
        return fail("open");
    }
    if (st.acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) {
        return fail("SO_REUSEADDR on");
    }
    if (st.settings.reuse_port) {
        using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
        if (st.acceptor.set_option(ReusePort(true), ec); ec) {
            return fail("SO_REUSEPORT on");
        }
    }
    if (st.acceptor.bind(endpoint, ec); ec) {
        return fail("bind");
    }
    if (st.acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
        return fail("listen on");
    }
    st.port = st.acceptor.local_endpoint(ec).port();
    return {};
}

std::uint16_t HttpServer::port() const {
    return impl_->state->port;
}

boost::asio::awaitable<void> HttpServer::run() {
    StatePtr st = impl_->state;
    co_await asio::co_spawn(st->strand, accept_loop(st), asio::use_awaitable);
}

void HttpServer::stop() {
    StatePtr st = impl_->state;
    st->stopping.store(true, std::memory_order_release);
    asio::post(st->strand, [st] {
        error_code ignored;
        st->acceptor.close(ignored);
        st->post_to_all(st, [](Conn& c) {
            // Idle and lingering connections close now; one mid-request finishes it.
            if (c.phase == Phase::idle || c.phase == Phase::lingering) {
                error_code ec;
                c.socket.cancel(ec);
            }
        });
    });
}

boost::asio::awaitable<void> HttpServer::drain(SteadyTime deadline) {
    StatePtr st = impl_->state;
    co_await asio::co_spawn(st->strand, drain_loop(st, deadline), asio::use_awaitable);
}

ServerStats HttpServer::stats() const {
    const State& st = *impl_->state;
    ServerStats s;
    s.accepted = st.accepted.load(std::memory_order_relaxed);
    s.refused = st.refused.load(std::memory_order_relaxed);
    s.requests = st.requests.load(std::memory_order_relaxed);
    s.bad_requests = st.bad_requests.load(std::memory_order_relaxed);
    s.active = st.active.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid::http
