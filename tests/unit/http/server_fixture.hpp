#pragma once

// Test fixture for the listener: a recording handler, raw-socket client helpers and a server
// on an OS-chosen loopback port. Shared by the http test files that open sockets.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "nmid/http/server.hpp"

namespace nmid::http::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

inline constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
/// Safety net only: every test finishes through the protocol long before.
inline constexpr auto kSafetyNet = 20s;

/// A steady_timer used as a one-shot event.
class Event {
public:
    explicit Event(const asio::any_io_executor& ex) : timer_(ex, SteadyTime::max()) {}
    void set() {
        set_ = true;
        timer_.cancel();
    }
    asio::awaitable<void> wait() {
        while (!set_) {
            co_await timer_.async_wait(kUseTuple);
        }
    }
    [[nodiscard]] bool is_set() const { return set_; }

private:
    asio::steady_timer timer_;
    bool set_ = false;
};

struct Seen {
    std::string method;
    std::string target;
    std::string body;
    unsigned version = 0;
    asio::ip::address peer;
    std::vector<std::pair<std::string, std::string>> fields;
    std::string metadata_lower;
    std::string metadata_upper;
    std::string dup;
    bool has_metadata = false;
    bool has_missing = true;
};

/// Records what it sees and answers with `respond`; with `hold`, waits for `release` first.
class TestHandler final : public RequestHandler {
public:
    explicit TestHandler(const asio::any_io_executor& ex)
        : started(ex), release(ex), calls_changed_(ex, SteadyTime::max()) {}

    std::function<HttpResponse(const HttpRequest&)> respond = [](const HttpRequest& r) {
        HttpResponse resp;
        resp.content_type = "text/plain";
        resp.body = std::string{r.target};
        if (!r.body.empty()) {
            resp.body.append(":").append(r.body);
        }
        return resp;
    };
    /// handle_now()'s answer; std::nullopt (the default) leaves every request to handle().
    std::function<std::optional<HttpResponse>(const HttpRequest&)> respond_now =
        [](const HttpRequest&) { return std::optional<HttpResponse>{}; };
    bool hold = false;
    Event started;
    Event release;
    int handle_calls = 0;

    std::optional<HttpResponse> handle_now(const HttpRequest& r) override {
        std::optional<HttpResponse> answer = respond_now(r);
        if (answer) {
            record(r);
        }
        return answer;
    }

    asio::awaitable<HttpResponse> handle(const HttpRequest& r) override {
        ++handle_calls;
        calls_changed_.cancel();
        record(r);
        if (hold) {
            started.set();
            co_await release.wait();
        }
        co_return respond(r);
    }

    /// Completes once handle() has been called `n` times in all.
    asio::awaitable<void> wait_for_calls(int n) {
        while (handle_calls < n) {
            co_await calls_changed_.async_wait(kUseTuple);
        }
    }

    std::vector<Seen> seen() {
        std::lock_guard lock{mutex_};
        return seen_;
    }

private:
    void record(const HttpRequest& r) {
        Seen s;
        s.method = r.method;
        s.target = r.target;
        s.body = r.body;
        s.version = r.version;
        s.peer = r.peer;
        r.headers->for_each(
            [](void* ctx, std::string_view name, std::string_view value) {
                static_cast<Seen*>(ctx)->fields.emplace_back(name, value);
            },
            &s);
        s.metadata_lower = r.headers->get("metadata");
        s.metadata_upper = r.headers->get("METADATA");
        s.dup = r.headers->get("x-DUP");
        s.has_metadata = r.headers->contains("MetaData");
        s.has_missing = r.headers->contains("x-missing");
        std::lock_guard lock{mutex_};
        seen_.push_back(std::move(s));
    }

    asio::steady_timer calls_changed_;  ///< cancelled on each handle() call
    std::mutex mutex_;                  // guards seen_ (the two-thread test)
    std::vector<Seen> seen_;
};

inline asio::awaitable<tcp::socket> connect(std::uint16_t port, const char* from = "127.0.0.1") {
    tcp::socket s{co_await asio::this_coro::executor};
    s.open(tcp::v4());
    s.bind(tcp::endpoint{asio::ip::make_address(from), 0});
    co_await s.async_connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port},
                             asio::use_awaitable);
    co_return s;
}

inline asio::awaitable<void> send(tcp::socket& s, std::string_view data) {
    co_await asio::async_write(s, asio::buffer(data), asio::use_awaitable);
}

struct ReadAll {
    std::string data;
    error_code ec;  ///< how the stream ended: eof or connection_reset
};

inline asio::awaitable<ReadAll> read_to_end(tcp::socket& s) {
    ReadAll r;
    std::array<char, 4096> chunk{};
    for (;;) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), kUseTuple);
        r.data.append(chunk.data(), n);
        if (ec) {
            r.ec = ec;
            co_return r;
        }
    }
}

inline asio::awaitable<std::string> read_exactly(tcp::socket& s, std::size_t n) {
    std::string out(n, '\0');
    auto [ec, got] = co_await asio::async_read(s, asio::buffer(out), kUseTuple);
    out.resize(got);
    co_return out;
}

/// One response with a Content-Length body (what this server always sends).
struct Response {
    std::string head;
    std::string body;
    [[nodiscard]] int status() const { return std::stoi(head.substr(9, 3)); }
    [[nodiscard]] bool has(std::string_view line) const {
        return head.find(std::string{line} + "\r\n") != std::string::npos;
    }
};

inline asio::awaitable<std::optional<Response>> read_response(tcp::socket& s,
                                                              std::string& pending) {
    std::array<char, 4096> chunk{};
    std::size_t end = 0;
    while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), kUseTuple);
        if (ec) {
            co_return std::nullopt;
        }
        pending.append(chunk.data(), n);
    }
    Response r;
    r.head = pending.substr(0, end + 2);
    pending.erase(0, end + 4);
    std::size_t length = 0;
    if (const auto at = r.head.find("Content-Length: "); at != std::string::npos) {
        length = std::stoul(r.head.substr(at + 16));
    }
    while (pending.size() < length) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), kUseTuple);
        if (ec) {
            co_return std::nullopt;
        }
        pending.append(chunk.data(), n);
    }
    r.body = pending.substr(0, length);
    pending.erase(0, length);
    co_return r;
}

inline std::string get(std::string_view target, std::string_view extra = "") {
    std::string req = "GET ";
    req.append(target).append(" HTTP/1.1\r\nHost: 169.254.169.254\r\n");
    req.append(extra).append("\r\n");
    return req;
}

class HttpServerTest : public testing::Test {
protected:
    HttpServerSettings settings(HttpServerSettings s = {}) {
        s.address = "127.0.0.1";
        s.port = 0;
        s.reuse_port = false;
        return s;
    }

    void start(HttpServerSettings s) {
        server_.emplace(ioc_.get_executor(), handler_, settings(std::move(s)));
        const auto listened = server_->listen();
        ASSERT_TRUE(listened.has_value()) << listened.error().message();
        ASSERT_NE(server_->port(), 0);
        asio::co_spawn(ioc_, server_->run(), [this](const std::exception_ptr& e) {
            EXPECT_FALSE(e);
            run_returned_ = true;
        });
    }
    void start() { start(HttpServerSettings{}); }

    /// Runs `body`, then stop() and drain(); the io_context runs out of work when the
    /// server has wound down, so run_for returning early is the protocol's doing.
    void run(std::function<asio::awaitable<void>()> body) {
        bool done = false;
        asio::co_spawn(
            ioc_,
            [&]() -> asio::awaitable<void> {
                co_await body();
                server_->stop();
                co_await server_->drain(std::chrono::steady_clock::now() + 5s);
                done = true;
            },
            [](const std::exception_ptr& e) {
                if (e) {
                    std::rethrow_exception(e);
                }
            });
        ioc_.run_for(kSafetyNet);
        EXPECT_TRUE(done);
        EXPECT_TRUE(run_returned_);
        EXPECT_EQ(server_->stats().active, 0U);
    }

    std::uint16_t port() const { return server_->port(); }

    asio::io_context ioc_;
    TestHandler handler_{ioc_.get_executor()};
    std::optional<HttpServer> server_;
    bool run_returned_ = false;
};

}  // namespace nmid::http::test
