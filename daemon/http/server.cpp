#include "nmid/http/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "connection.hpp"
#include "server_state.hpp"

namespace nmid::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;
using detail::Admission;
using detail::Clock;
using detail::Conn;
using detail::kMaxLinger;
using detail::kMaxLingerBytes;
using detail::kUseTuple;
using detail::Phase;
using detail::State;
using detail::StatePtr;
using tcp = asio::ip::tcp;

/// Refusals in progress beyond this are closed without the 503 (a flood must not pin fds).
constexpr std::size_t kMaxRefusing = 256;
constexpr Millis kAcceptBackoff{50};

constexpr std::string_view kRefusedResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Length: 0\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n\r\n";

/// Over max_connections_per_pod with no idle connection of that IP to close: IMDS's 429 shape.
constexpr std::string_view kPodLimitResponse =
    "HTTP/1.1 429 Too Many Requests\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 117\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n\r\n"
    R"({"error":"too_many_requests","error_description":"too many connections from this pod; retry after closing idle ones"})";

/// Over a cap: `response` (kRefusedResponse, kPodLimitResponse) and a lingering close, never a
/// silent drop.
asio::awaitable<void> refuse(StatePtr st, tcp::socket socket, std::string_view response) {
    beast::tcp_stream stream{std::move(socket)};
    stream.expires_after(st->settings.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(response), kUseTuple);
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

/// The client's address, IPv4-mapped IPv6 as IPv4 (pods are counted and handlers see it so).
std::optional<asio::ip::address> peer_address(const tcp::socket& socket) {
    error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec) {
        return std::nullopt;
    }
    asio::ip::address address = remote.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    return address;
}

/// Over a cap: claims an idle keep-alive connection to close for the new one (over the per-pod
/// cap, the pod's own oldest; over the global cap, one of the IP holding the most) and wakes it.
/// Call with `conns_mutex` held. False when there is none to close.
bool trim_for(const StatePtr& st, Admission admission, detail::Peer& peer) {
    detail::PeerLink* const victim = admission == Admission::over_peer_limit
                                         ? detail::PeerTable::claim_idle(peer)
                                         : st->peers.claim_idle_of_busiest();
    if (victim == nullptr) {
        return false;
    }
    st->trimmed.fetch_add(1, std::memory_order_relaxed);
    const auto it = st->conns.find(victim->id);
    if (it != st->conns.end()) {
        State::post_to(st, victim->id, it->second, [](Conn& c) {
            error_code ignored;
            c.socket.cancel(ignored);  // its idle read ends; it sees the claim and closes
        });
    }
    return true;
}

asio::awaitable<void> accept_loop(StatePtr st) {
    while (!st->stopping.load(std::memory_order_acquire)) {
        auto [ec, socket] = co_await st->acceptor.async_accept(connection_executor(*st), kUseTuple);
        // A connection accepted before stop() closed the listener is served even when stop()
        // came first: its client connected to a live listener and may have sent its request
        // already (closing it here would reset it). The loop ends after it.
        if (ec) {
            if (ec == asio::error::operation_aborted ||
                st->stopping.load(std::memory_order_acquire) || !st->acceptor.is_open()) {
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
        std::optional<asio::ip::address> address = peer_address(socket);
        if (!address) {
            socket.close(ec);  // reset before we looked at it
            continue;
        }
        Admission admission = Admission::accept;
        detail::Peer* peer = nullptr;
        {
            std::lock_guard lock{st->conns_mutex};
            detail::Peer& reserved = st->peers.reserve(*address);
            admission =
                detail::admit(reserved.count - 1, st->active.load(std::memory_order_relaxed),
                              st->settings.max_connections_per_pod, st->settings.max_connections);
            if (admission != Admission::accept && trim_for(st, admission, reserved)) {
                admission = Admission::accept;
            }
            if (admission == Admission::accept) {
                peer = &reserved;
            } else {
                st->peers.release(reserved);
            }
        }
        if (admission != Admission::accept) {
            const bool pod = admission == Admission::over_peer_limit;
            (pod ? st->refused_per_pod : st->refused).fetch_add(1, std::memory_order_relaxed);
            if (st->refusing.load(std::memory_order_relaxed) >= kMaxRefusing) {
                socket.close(ec);
                continue;
            }
            st->refusing.fetch_add(1, std::memory_order_relaxed);
            st->tasks.fetch_add(1, std::memory_order_acq_rel);
            asio::co_spawn(executor,
                           refuse(st, std::move(socket),
                                  pod ? std::string_view{kPodLimitResponse} : kRefusedResponse),
                           [st](const std::exception_ptr& /*unused*/) {
                               st->refusing.fetch_sub(1, std::memory_order_relaxed);
                               st->task_done(st);
                           });
            continue;
        }
        st->active.fetch_add(1, std::memory_order_relaxed);
        st->tasks.fetch_add(1, std::memory_order_acq_rel);
        asio::co_spawn(
            executor,
            detail::connection(st, std::move(socket), ++st->next_id, std::move(*address), *peer),
            [st, peer](const std::exception_ptr& e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        spdlog::error("http: connection failed: {}", ex.what());
                    } catch (...) {
                        spdlog::error("http: connection failed");
                    }
                }
                {
                    std::lock_guard lock{st->conns_mutex};
                    st->peers.release(*peer);
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
            // Idle keep-alive and lingering connections close now; one mid-request finishes
            // it, and a fresh one waits (read deadline, drain deadline) for its first request.
            if ((c.phase == Phase::idle && c.answered) || c.phase == Phase::lingering) {
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
    s.refused_per_pod = st.refused_per_pod.load(std::memory_order_relaxed);
    s.trimmed = st.trimmed.load(std::memory_order_relaxed);
    s.requests = st.requests.load(std::memory_order_relaxed);
    s.bad_requests = st.bad_requests.load(std::memory_order_relaxed);
    s.active = st.active.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid::http
