#include "connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <exception>
#include <mutex>
#include <string_view>
#include <utility>

#include "response_head.hpp"

namespace nmid::http::detail {
namespace {

using boost::system::error_code;

constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

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

enum class ReadResult {
    complete,
    closed,  ///< peer closed or reset mid-request: nothing to answer
    timed_out,
    header_too_large,
    body_too_large,
    bad,
};

/// How far write_now() got.
enum class WriteNow { done, pending, failed };

/// Writes what the socket takes of `head` then `body` without waiting (one sendmsg) and leaves
/// the rest in them.
WriteNow write_now(Conn& c, std::string_view& head, std::string_view& body) {
    error_code ec;
    const std::array<asio::const_buffer, 2> both{asio::buffer(head), asio::buffer(body)};
    const std::size_t n = c.socket.write_some(both, ec);
    if (!ec && n == head.size() + body.size()) {
        return WriteNow::done;
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        return WriteNow::failed;
    }
    const std::size_t written = ec ? 0 : n;
    if (written >= head.size()) {
        body.remove_prefix(written - head.size());
        head = {};
    } else {
        head.remove_prefix(written);
    }
    return WriteNow::pending;
}

/// The rest of a write that write_now() could not finish, under the write deadline.
asio::awaitable<bool> write_rest(const State& st, Conn& c, std::string_view head,
                                 std::string_view body) {
    c.phase = Phase::writing;
    set_deadline(c, Clock::now() + st.settings.write_timeout);
    const std::array<asio::const_buffer, 2> rest{asio::buffer(head), asio::buffer(body)};
    const auto [ec, sent] = co_await asio::async_write(c.socket, rest, kUseTuple);
    c.phase = Phase::busy;
    co_return !ec && !c.timed_out;
}

/// Writes `head` then `body`: straight into the socket when it has room (the usual case: no
/// suspension), else waits under the write deadline.
asio::awaitable<bool> write_all(const State& st, Conn& c, std::string_view head,
                                std::string_view body = {}) {
    const WriteNow now = write_now(c, head, body);
    if (now != WriteNow::pending) {
        co_return now == WriteNow::done;
    }
    co_return co_await write_rest(st, c, head, body);
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

bool expects_continue(const RequestData& r) {
    return r.version >= 11 && r.expects_continue;
}

/// Parses one request from the buffer, reading more as needed until `deadline`.
asio::awaitable<ReadResult> read_request(const State& st, Conn& c, SteadyTime deadline) {
    RequestParser& p = *c.parser;
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
        if (!continue_sent && p.is_header_done() && expects_continue(c.request)) {
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
    const std::string_view body = serialize(resp, false, false, 11, c.out);
    c.linger = true;
    co_await write_all(st, c, c.out, body);
}

/// The request/response loop. Returns when the connection should close.
asio::awaitable<void> serve(State& st, Conn& c) {
    // A fresh connection that stays silent is held no longer than a slow request would be:
    // clients send at once, and idle connects must not pin max_connections for idle_timeout.
    Millis wait_for_request = std::min(st.settings.idle_timeout, st.settings.read_timeout);
    for (;;) {
        if (c.buffer.size() == 0) {
            // Idle between requests: stop() closes here; a silent close on the idle deadline.
            // A fresh connection still gets its first request read and answered (Connection:
            // close) within the read deadline.
            if (c.answered && st.stopping.load(std::memory_order_acquire)) {
                co_return;
            }
            c.phase = Phase::idle;
            const SteadyTime now = Clock::now();
            set_deadline(c, now + wait_for_request);
            // A keep-alive connection between requests may be closed for a new connection
            // (per-pod and global caps); a fresh one is owed its first answer.
            if (c.answered) {
                c.link.mark.idle(std::max<std::int64_t>(1, now.time_since_epoch().count()));
            }
            const auto [ec, n] =
                co_await c.socket.async_read_some(c.buffer.prepare(kReadChunk), kUseTuple);
            c.phase = Phase::busy;
            if (c.answered && !c.link.mark.busy()) {
                co_return;  // claimed while idle: a new connection takes its place
            }
            if (ec || c.timed_out) {
                co_return;
            }
            c.buffer.commit(n);
        }

        const SteadyTime started = Clock::now();
        ReadResult r = ReadResult::complete;
        const auto* const data = static_cast<const char*>(c.buffer.data().data());
        const std::size_t simple = parse_simple_head(std::string_view{data, c.buffer.size()},
                                                     st.settings.header_limit, c.request);
        if (simple != 0) {
            c.buffer.consume(simple);
        } else {
            c.parser.emplace(c.request);
            c.parser->eager(true);
            c.parser->header_limit(static_cast<std::uint32_t>(
                std::min<std::size_t>(st.settings.header_limit, UINT32_MAX)));
            c.parser->body_limit(st.settings.body_limit);
            r = co_await read_request(st, c, started + st.settings.read_timeout);
            c.request.keep_alive = r == ReadResult::complete && c.parser->keep_alive();
        }
        if (r == ReadResult::closed) {
            co_return;
        }
        if (r != ReadResult::complete) {
            co_await answer_unreadable(st, c, r);
            co_return;
        }

        const RequestData& msg = c.request;
        if ((msg.version != 10 && msg.version != 11) || (msg.version == 11 && !msg.has_host)) {
            // RFC 9112 3.2 (and Go's server): an HTTP/1.1 request without Host is a 400.
            co_await answer_unreadable(st, c, ReadResult::bad);
            co_return;
        }

        st.requests.fetch_add(1, std::memory_order_relaxed);
        c.headers.reset(&msg);
        HttpRequest req;
        req.method = msg.view(msg.method);
        req.target = msg.view(msg.target);
        req.version = msg.version;
        req.peer = c.peer;
        req.received_at = started;
        req.headers = &c.headers;
        req.body = msg.body;

        HttpResponse resp;
        bool failed = false;
        try {
            std::optional<HttpResponse> now = st.handler.handle_now(req);
            if (now) {
                resp = std::move(*now);
            } else {
                resp = co_await st.handler.handle(req);
            }
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
            c.request.keep_alive && !resp.close && !st.stopping.load(std::memory_order_acquire);
        std::string_view body =
            serialize(resp, msg.verb == bhttp::verb::head, keep_alive, req.version, c.out);
        std::string_view head = c.out;
        // The usual write completes at once: no coroutine for it.
        const WriteNow now = write_now(c, head, body);
        bool written = now == WriteNow::done;
        if (now == WriteNow::pending) {
            written = co_await write_rest(st, c, head, body);
        }
        give_back_response_buffer(std::move(resp.body));
        c.answered = true;
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

/// Removes the connection from the registry and its IP's list when its frame unwinds,
/// whatever the path. (Its IP's count is released by the accept loop's completion handler.)
class Registration {
public:
    Registration(State& st, std::uint64_t id, Conn& c, Peer& peer) : st_(st), id_(id), c_(c) {
        c.link.id = id;
        std::lock_guard lock{st_.conns_mutex};
        st_.conns.emplace(id_, State::Entry{&c, c.socket.get_executor()});
        PeerTable::link(peer, c.link);
    }
    ~Registration() {
        std::lock_guard lock{st_.conns_mutex};
        PeerTable::unlink(c_.link);
        st_.conns.erase(id_);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

private:
    State& st_;
    std::uint64_t id_;
    Conn& c_;
};

}  // namespace

asio::awaitable<void> connection(StatePtr st, tcp::socket socket, std::uint64_t id,
                                 asio::ip::address address, Peer& peer) {
    using asio::experimental::awaitable_operators::operator||;
    Conn c{std::move(socket), st->settings.header_limit + kReadChunk};
    error_code ec;
    c.socket.non_blocking(true, ec);
    c.socket.set_option(tcp::no_delay(true), ec);
    c.peer = std::move(address);
    const Registration registration{*st, id, c, peer};
    // `session` never throws and ends by cancelling the watchdog's timer.
    co_await (session(*st, c) || watchdog(c));
}

}  // namespace nmid::http::detail
