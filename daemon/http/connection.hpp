#pragma once

// One connection: its state and the coroutine that reads requests, calls the handler and writes
// responses until the connection closes. Private to the http module.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "connection_limits.hpp"
#include "request_head.hpp"
#include "server_state.hpp"

namespace nmid::http::detail {

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
    std::optional<RequestParser> parser;
    RequestData request;
    FieldsView headers;
    std::string out;  ///< serialised response, reused across requests
    asio::ip::address peer;
    PeerLink link;  ///< in its IP's list while registered; idle mark between requests
    SteadyTime deadline = SteadyTime::max();  ///< of the current wait
    SteadyTime armed = SteadyTime::max();     ///< when the watchdog's timer fires
    Phase phase = Phase::busy;
    bool timed_out = false;
    bool closing = false;
    bool linger = false;  ///< drain unread input before closing (after an error response)
    /// A response was written. Until then the connection is owed one answer even when stop()
    /// comes first (its client connected to a live listener); after, an idle keep-alive
    /// connection may be closed, which HTTP/1.1 clients handle by retrying on a new one.
    bool answered = false;
};

/// Serves the accepted `socket`, from `address`, until it closes; registered in `st`'s registry
/// and linked into `peer` (reserved by the accept loop) meanwhile. Executor: the socket's (the
/// connection's strand). Never throws.
asio::awaitable<void> connection(StatePtr st, tcp::socket socket, std::uint64_t id,
                                 asio::ip::address address, Peer& peer);

}  // namespace nmid::http::detail
