#pragma once

// What the listener, its accept loop and every connection share. Private to the http module.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "connection_limits.hpp"
#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/http/message.hpp"

namespace nmid::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

/// Bytes asked from the kernel per read. Requests to IMDS are well under 1 KiB; the buffer
/// holds at most the unparsed part of one header plus one chunk.
inline constexpr std::size_t kReadChunk = std::size_t{4} * 1024;
/// Lingering close: how long and how much unread input is drained after an error response, so
/// the peer reads the response instead of a reset caused by closing with unread data.
inline constexpr Millis kMaxLinger{2'000};
inline constexpr std::size_t kMaxLingerBytes = std::size_t{1024} * 1024;

struct Conn;

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
    std::atomic<std::uint64_t> refused{0};          ///< over max_connections (503)
    std::atomic<std::uint64_t> refused_per_pod{0};  ///< over max_connections_per_pod (429)
    std::atomic<std::uint64_t> trimmed{0};  ///< idle keep-alive connections closed for new ones
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> bad_requests{0};
    std::atomic<std::size_t> active{0};
    std::atomic<std::size_t> refusing{0};
    std::atomic<std::size_t> tasks{0};  ///< connection and refusal coroutines alive

    // Guards `conns` and `peers`: written on connection strands (register, unregister) and by
    // the accept loop (reserve, claims), walked on `strand` by stop/drain. Taken per connection,
    // never per request.
    std::mutex conns_mutex;
    std::unordered_map<std::uint64_t, Entry> conns;
    PeerTable peers;

    /// Wakes connection `id` (claimed by the accept loop while idle) so that it closes. Call
    /// with `conns_mutex` held.
    void wake_claimed(const std::shared_ptr<State>& self, std::uint64_t id);

    /// Runs `fn(conn)` on connection `id`'s strand if it is still open. Safe because a Conn is
    /// destroyed only on its own strand, after it has left the registry.
    template <class Fn>
    void post_to_all(const std::shared_ptr<State>& self, Fn fn) {
        std::lock_guard lock{conns_mutex};
        for (const auto& [id, entry] : conns) {
            post_to(self, id, entry, fn);
        }
    }

    /// post_to_all() for the one connection `id` (registered as `entry`); call with
    /// `conns_mutex` held.
    template <class Fn>
    static void post_to(const std::shared_ptr<State>& self, std::uint64_t id, const Entry& entry,
                        Fn fn) {
        asio::post(entry.executor, [self, id, fn] {
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

    void task_done(const std::shared_ptr<State>& self) {
        if (tasks.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            asio::post(strand, [self] { self->drain_cv.cancel(); });
        }
    }
};

using StatePtr = std::shared_ptr<State>;

}  // namespace nmid::http::detail
