#include "support/fake_http_server.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <stdexcept>

#include "support/fake_http_server_detail.hpp"

namespace nmid::test {

using namespace detail;

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const noexcept {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                        [](char x, char y) { return lower(x) < lower(y); });
}

std::string FakeRequest::header(std::string_view name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
}

namespace {

asio::awaitable<void> session(StatePtr st, tcp::socket socket, std::size_t id) {
    error_code ec;
    const auto peer = socket.remote_endpoint(ec).address();
    // Chunks are written one by one; Nagle plus delayed ACKs would add 40 ms to each.
    socket.set_option(tcp::no_delay{true}, ec);
    beast::tcp_stream stream{std::move(socket)};
    Registration registration{*st, id, stream};
    // Named: g++ 12 destroys a temporary argument of an awaited coroutine twice.
    const std::string no_client_subject;
    const bool reset = co_await serve_requests(st, stream, registration, peer, no_client_subject);
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
        st->start_session(st, std::move(socket), id);
    }
}

}  // namespace

void detail::start_listening(const StatePtr& state, const std::string& address) {
    const tcp::endpoint endpoint{asio::ip::make_address(address), 0};
    state->acceptor.open(endpoint.protocol());
    state->acceptor.set_option(asio::socket_base::reuse_address{true});
    state->acceptor.bind(endpoint);
    state->acceptor.listen();
    asio::co_spawn(state->executor, accept_loop(state), rethrow);
}

FakeHttpServer::FakeHttpServer(asio::io_context& ioc, Handler handler, const std::string& address)
    : state_{std::make_shared<detail::FakeHttpServerState>(ioc)} {
    state_->handler = std::move(handler);
    state_->start_session = [](const StatePtr& st, tcp::socket socket, std::size_t id) {
        asio::co_spawn(st->executor, session(st, std::move(socket), id), rethrow);
    };
    start_listening(state_, address);
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

std::size_t FakeHttpServer::tls_handshake_failures() const {
    return state_->tls_failures;
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
