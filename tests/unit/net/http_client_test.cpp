#include "nmid/net/http_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>

#include "support/fake_http_server.hpp"

namespace nmid::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;

using Outcome = std::shared_ptr<std::optional<Result<ClientResponse>>>;

SteadyTime in(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
}

FakeResponse ok(std::string body = "ok") {
    FakeResponse r;
    r.body = std::move(body);
    r.headers = {{"Content-Type", "text/plain"}};
    return r;
}

class HttpClientTest : public ::testing::Test {
protected:
    void serve(FakeHttpServer::Handler handler) {
        server_ = std::make_unique<FakeHttpServer>(ioc_, std::move(handler));
    }

    HttpClientSettings settings() const {
        HttpClientSettings s;
        s.host = "127.0.0.1";
        s.port = server_ ? server_->port() : 80;
        return s;
    }

    HttpClient& client(HttpClientSettings s) {
        client_ = std::make_unique<HttpClient>(ioc_.get_executor(), std::move(s));
        return *client_;
    }
    HttpClient& client() { return client(settings()); }

    Outcome start(HttpClient& c, ClientRequest req, SteadyTime deadline,
                  asio::cancellation_slot slot = {}) {
        auto out = std::make_shared<std::optional<Result<ClientResponse>>>();
        asio::co_spawn(
            ioc_,
            [&c, req = std::move(req), deadline]() -> asio::awaitable<Result<ClientResponse>> {
                co_return co_await c.request(req, deadline);
            },
            asio::bind_cancellation_slot(
                slot, [out](const std::exception_ptr& e, Result<ClientResponse> r) {
                    if (e) {
                        std::rethrow_exception(e);
                    }
                    *out = std::move(r);
                }));
        return out;
    }

    Result<ClientResponse> get(HttpClient& c, std::string target = "/",
                               SteadyTime deadline = in(10s)) {
        ClientRequest req;
        req.target = std::move(target);
        auto out = start(c, std::move(req), deadline);
        EXPECT_TRUE(wait(out));
        return out->has_value() ? std::move(**out) : Result<ClientResponse>{Errc::io_error};
    }

    bool wait(const Outcome& out) {
        return test::run_until(ioc_, [&] { return out->has_value(); });
    }
    bool wait_for(const std::function<bool()>& done) { return test::run_until(ioc_, done); }

    asio::io_context ioc_;
    std::unique_ptr<FakeHttpServer> server_;
    std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpClientTest, GetReturnsStatusHeadersAndBody) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok("hello");
        r.status = 201;
        r.headers.emplace_back("X-Test", "yes");
        return r;
    });
    auto& c = client();
    ClientRequest req;
    req.target = "/path?q=1";
    req.headers = {{"Accept", "application/json"}};
    auto out = start(c, req, in(10s));
    ASSERT_TRUE(wait(out));
    const auto& res = **out;
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 201);
    EXPECT_EQ(res->body, "hello");
    EXPECT_EQ(res->header("x-test"), "yes");
    EXPECT_EQ(res->header("CONTENT-TYPE"), "text/plain");
    EXPECT_EQ(res->header("absent"), "");

    ASSERT_EQ(server_->received().size(), 1U);
    const auto& got = server_->received()[0];
    EXPECT_EQ(got.method, "GET");
    EXPECT_EQ(got.target, "/path?q=1");
    EXPECT_EQ(got.version, 11U);
    EXPECT_EQ(got.header("Host"), "127.0.0.1:" + std::to_string(server_->port()));
    EXPECT_EQ(got.header("Accept"), "application/json");
    EXPECT_EQ(got.headers.count("Content-Length"), 0U);
    const auto stats = c.stats();
    EXPECT_EQ(stats.requests, 1U);
    EXPECT_EQ(stats.connects, 1U);
    EXPECT_EQ(stats.failures, 0U);
    EXPECT_EQ(stats.idle, 1U);
}

TEST_F(HttpClientTest, ExplicitHostHeaderWins) {
    serve([](const FakeRequest&) { return ok(); });
    auto s = settings();
    s.host_header = "169.254.169.254";
    auto& c = client(s);
    ClientRequest req;
    req.target = "/";
    ASSERT_TRUE(get(c).has_value());
    req.headers = {{"host", "example"}};
    auto out = start(c, req, in(10s));
    ASSERT_TRUE(wait(out));
    ASSERT_EQ(server_->received().size(), 2U);
    EXPECT_EQ(server_->received()[0].header("Host"), "169.254.169.254");
    EXPECT_EQ(server_->received()[1].header("Host"), "example");
    EXPECT_EQ(server_->received()[1].fields.size(), 1U);
}

TEST_F(HttpClientTest, PostSendsBodyWithContentLength) {
    serve([](const FakeRequest& r) { return ok(r.body); });
    auto& c = client();
    ClientRequest req;
    req.method = "POST";
    req.target = "/tenant/oauth2/token";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = "grant_type=client_credentials";
    auto out = start(c, req, in(10s));
    ASSERT_TRUE(wait(out));
    ASSERT_TRUE((*out)->has_value());
    EXPECT_EQ((**out)->body, "grant_type=client_credentials");
    EXPECT_EQ(server_->received()[0].method, "POST");
    EXPECT_EQ(server_->received()[0].header("Content-Length"), "29");

    req.body.clear();
    out = start(c, req, in(10s));
    ASSERT_TRUE(wait(out));
    EXPECT_EQ(server_->received()[1].header("Content-Length"), "0");
}

TEST_F(HttpClientTest, KeepAliveReusesOneConnection) {
    serve([](const FakeRequest&) { return ok(); });
    auto& c = client();
    for (int i = 0; i < 3; ++i) {
        const auto res = get(c);
        ASSERT_TRUE(res.has_value());
        EXPECT_EQ(res->status, 200);
    }
    EXPECT_EQ(server_->connections(), 1U);
    EXPECT_EQ(server_->requests(), 3U);
    const auto stats = c.stats();
    EXPECT_EQ(stats.connects, 1U);
    EXPECT_EQ(stats.reused, 2U);
    EXPECT_EQ(stats.idle, 1U);
}

TEST_F(HttpClientTest, PoolKeepsAtMostPoolSizeIdleConnections) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok();
        r.hold = true;
        return r;
    });
    auto s = settings();
    s.pool_size = 2;
    auto& c = client(s);
    std::vector<Outcome> outs;
    for (int i = 0; i < 4; ++i) {
        ClientRequest req;
        req.target = "/";
        outs.push_back(start(c, req, in(10s)));
    }
    ASSERT_TRUE(wait_for([&] { return server_->held() == 4; }));
    EXPECT_EQ(server_->connections(), 4U);
    server_->release();
    ASSERT_TRUE(wait_for([&] {
        return std::all_of(outs.begin(), outs.end(), [](const auto& o) { return o->has_value(); });
    }));
    for (const auto& o : outs) {
        EXPECT_TRUE(o->value().has_value());
    }
    EXPECT_EQ(c.stats().idle, 2U);
    // The two connections over the limit are closed: the server sees them go.
    EXPECT_TRUE(wait_for([&] { return server_->open_connections() == 2; }));

    server_->set_handler([](const FakeRequest&) { return ok(); });
    ASSERT_TRUE(get(c).has_value());
    ASSERT_TRUE(get(c).has_value());
    EXPECT_EQ(server_->connections(), 4U);
    EXPECT_EQ(c.stats().reused, 2U);
}

TEST_F(HttpClientTest, ZeroPoolSizeAsksForCloseAndNeverReuses) {
    serve([](const FakeRequest&) { return ok(); });
    auto s = settings();
    s.pool_size = 0;
    auto& c = client(s);
    ASSERT_TRUE(get(c).has_value());
    ASSERT_TRUE(get(c).has_value());
    EXPECT_EQ(server_->connections(), 2U);
    EXPECT_EQ(server_->received()[0].header("Connection"), "close");
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientTest, IdleConnectionClosedByServerIsReplacedByAFreshOne) {
    serve([](const FakeRequest&) { return ok(); });
    auto& c = client();
    ASSERT_TRUE(get(c).has_value());
    EXPECT_EQ(c.stats().idle, 1U);
    server_->close_idle_connections();
    ASSERT_TRUE(wait_for([&] { return server_->open_connections() == 0; }));

    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(server_->connections(), 2U);
    EXPECT_EQ(server_->requests(), 2U);
    EXPECT_EQ(c.stats().connects, 2U);
    EXPECT_EQ(c.stats().reused, 0U);
}

TEST_F(HttpClientTest, PooledConnectionDyingBeforeResponseIsReplacedOnce) {
    serve([this](const FakeRequest&) {
        FakeResponse r = ok();
        // The second request arrives on the pooled connection, which dies unanswered.
        r.close_without_response = server_->requests() == 2;
        return r;
    });
    auto& c = client();
    ASSERT_TRUE(get(c).has_value());
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(server_->requests(), 3U);
    EXPECT_EQ(server_->connections(), 2U);
    EXPECT_EQ(server_->received()[1].connection, 1U);
    EXPECT_EQ(server_->received()[2].connection, 2U);
    EXPECT_EQ(c.stats().failures, 0U);
}

TEST_F(HttpClientTest, FreshConnectionClosedWithoutResponseIsIoErrorWithoutRetry) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.close_without_response = true;
        return r;
    });
    auto& c = client();
    const auto res = get(c);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::io_error);
    EXPECT_EQ(server_->requests(), 1U);
    EXPECT_EQ(c.stats().failures, 1U);
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientTest, ResetConnectionIsIoError) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.reset = true;
        return r;
    });
    auto& c = client();
    const auto res = get(c);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::io_error);
}

TEST_F(HttpClientTest, ConnectionCloseResponseIsNotPooled) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok();
        r.keep_alive = false;
        return r;
    });
    auto& c = client();
    auto res = get(c);
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->header("Connection"), "close");
    EXPECT_EQ(c.stats().idle, 0U);
    ASSERT_TRUE(get(c).has_value());
    EXPECT_EQ(server_->connections(), 2U);
}

TEST_F(HttpClientTest, Http10ResponseWithoutKeepAliveIsNotPooled) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok("old");
        r.version = 10;
        r.keep_alive = false;
        return r;
    });
    auto& c = client();
    const auto res = get(c);
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->body, "old");
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientTest, ResponseEndedByEofIsReadWholeAndNotPooled) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
        r.keep_alive = false;
        return r;
    });
    auto& c = client();
    const auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->body, "until the end");
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientTest, DeadlineAlreadyPassedIsTimeoutWithoutConnecting) {
    serve([](const FakeRequest&) { return ok(); });
    auto& c = client();
    const auto res = get(c, "/", std::chrono::steady_clock::now() - 1ms);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::timeout);
    EXPECT_EQ(server_->connections(), 0U);
    EXPECT_EQ(c.stats().failures, 1U);
}

TEST_F(HttpClientTest, DeadlineWhileServerHoldsIsTimeout) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok();
        r.hold = true;  // never released: only the deadline can end the request
        return r;
    });
    auto& c = client();
    const auto res = get(c, "/", in(50ms));
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::timeout);
    EXPECT_EQ(server_->held(), 1U);
    EXPECT_EQ(c.stats().idle, 0U);
    // The timed-out connection was closed, not pooled: once released, the server finds it gone.
    server_->release();
    EXPECT_TRUE(wait_for([&] { return server_->open_connections() == 0; }));
}

TEST_F(HttpClientTest, BodyOverLimitIsParseError) {
    serve([](const FakeRequest&) { return ok(std::string(100, 'x')); });
    auto s = settings();
    s.max_response_body = 16;
    auto& c = client(s);
    const auto res = get(c);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::parse_error);
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientTest, ChunkedBodyOverLimitIsParseError) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.chunks = {std::string(10, 'a'), std::string(10, 'b')};
        return r;
    });
    auto s = settings();
    s.max_response_body = 16;
    auto& c = client(s);
    const auto res = get(c);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::parse_error);
}

TEST_F(HttpClientTest, MalformedResponseIsParseError) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.raw = "HTTP/1.1 2x0 Fine\r\nContent-Length: 0\r\n\r\n";
        return r;
    });
    auto& c = client();
    const auto res = get(c);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::parse_error);
}

TEST_F(HttpClientTest, CancellationAbortsTheRequest) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok();
        r.hold = true;
        return r;
    });
    auto& c = client();
    asio::cancellation_signal cancel;
    ClientRequest req;
    req.target = "/";
    auto out = start(c, req, in(10s), cancel.slot());
    ASSERT_TRUE(wait_for([&] { return server_->held() == 1; }));
    cancel.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(wait(out));
    ASSERT_TRUE((*out)->has_error());
    EXPECT_EQ((*out)->error(), Errc::cancelled);
    EXPECT_EQ(c.stats().idle, 0U);
    EXPECT_EQ(c.stats().failures, 1U);
}

TEST_F(HttpClientTest, ChunkedResponseIsDechunkedAndConnectionReused) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.chunks = {"{\"a\":", "1", "}"};
        return r;
    });
    auto& c = client();
    auto res = get(c);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->body, "{\"a\":1}");
    EXPECT_EQ(res->header("Transfer-Encoding"), "chunked");
    res = get(c);
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(server_->connections(), 1U);
}

TEST_F(HttpClientTest, ConnectRefusedIsIoError) {
    // A bound socket that does not listen refuses connections on that port.
    asio::ip::tcp::acceptor reserved{ioc_};
    reserved.open(asio::ip::tcp::v4());
    reserved.bind({asio::ip::make_address("127.0.0.1"), 0});
    HttpClientSettings s;
    s.host = "127.0.0.1";
    s.port = reserved.local_endpoint().port();
    auto& c = client(s);
    const auto res = get(c);
    ASSERT_TRUE(res.has_error());
    EXPECT_EQ(res.error(), Errc::io_error);
    EXPECT_EQ(c.stats().connects, 0U);
}

TEST_F(HttpClientTest, HostNameIsResolved) {
    serve([](const FakeRequest&) { return ok("named"); });
    auto s = settings();
    s.host = "localhost";
    auto& c = client(s);
    const auto res = get(c);
    // localhost may resolve to ::1 first; the connect tries every address.
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->body, "named");
    EXPECT_EQ(server_->received()[0].header("Host"), "localhost:" + std::to_string(s.port));
}

TEST_F(HttpClientTest, HeaderInjectionIsRejectedBeforeConnecting) {
    serve([](const FakeRequest&) { return ok(); });
    auto& c = client();
    ClientRequest req;
    req.target = "/";
    req.headers = {{"User-Agent", "x\r\nX-Evil: 1"}};
    auto out = start(c, req, in(10s));
    ASSERT_TRUE(wait(out));
    EXPECT_EQ((*out)->error(), Errc::bad_request);
    req.headers.clear();
    req.target = "/a b";
    out = start(c, req, in(10s));
    ASSERT_TRUE(wait(out));
    EXPECT_EQ((*out)->error(), Errc::bad_request);
    EXPECT_EQ(server_->connections(), 0U);
}

TEST_F(HttpClientTest, CloseIdleClosesPooledConnections) {
    serve([](const FakeRequest&) { return ok(); });
    auto& c = client();
    ASSERT_TRUE(get(c).has_value());
    EXPECT_EQ(server_->open_connections(), 1U);
    c.close_idle();
    EXPECT_EQ(c.stats().idle, 0U);
    EXPECT_TRUE(wait_for([&] { return server_->open_connections() == 0; }));
}

TEST_F(HttpClientTest, RequestInFlightOutlivesTheClient) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok("late");
        r.hold = true;
        return r;
    });
    client();
    ClientRequest req;
    req.target = "/";
    auto out = std::make_shared<std::optional<Result<ClientResponse>>>();
    asio::co_spawn(
        ioc_,
        [c = client_.get(), req]() -> asio::awaitable<Result<ClientResponse>> {
            co_return co_await c->request(req, in(10s));
        },
        [out](const std::exception_ptr& e, Result<ClientResponse> r) {
            if (e) {
                std::rethrow_exception(e);
            }
            *out = std::move(r);
        });
    ASSERT_TRUE(wait_for([&] { return server_->held() == 1; }));
    client_.reset();
    server_->release();
    ASSERT_TRUE(wait(out));
    ASSERT_TRUE((*out)->has_value());
    EXPECT_EQ((**out)->body, "late");
}

TEST_F(HttpClientTest, SilentlyClosedConnectionIsNotUsedAgain) {
    serve([](const FakeRequest&) {
        FakeResponse r = ok();
        r.close_after = true;  // announces keep-alive, then closes
        return r;
    });
    auto& c = client();
    for (int i = 0; i < 2; ++i) {
        const auto res = get(c);
        ASSERT_TRUE(res.has_value()) << res.error().message();
        EXPECT_EQ(res->header("Connection"), "");
    }
    EXPECT_EQ(server_->connections(), 2U);
    EXPECT_EQ(c.stats().failures, 0U);
}

TEST_F(HttpClientTest, StreamedChunksArriveAsOneBody) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.stream = true;
        return r;
    });
    auto& c = client();
    ClientRequest req;
    req.target = "/watch";
    auto out = start(c, req, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "{\"type\":\"ADDED\"}\n");
    server_->push(0, "{\"type\":\"DELETED\"}\n");
    EXPECT_TRUE(server_->stream_open(0));
    server_->finish(0);
    ASSERT_TRUE(wait(out));
    ASSERT_TRUE((*out)->has_value()) << (*out)->error().message();
    EXPECT_EQ((**out)->body, "{\"type\":\"ADDED\"}\n{\"type\":\"DELETED\"}\n");
    EXPECT_EQ(c.stats().idle, 1U);
    EXPECT_TRUE(wait_for([&] { return !server_->stream_open(0); }));
}

TEST_F(HttpClientTest, StreamAbortedMidBodyIsIoError) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.stream = true;
        return r;
    });
    auto& c = client();
    ClientRequest req;
    req.target = "/watch";
    auto out = start(c, req, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "partial");
    server_->abort(0);
    ASSERT_TRUE(wait(out));
    ASSERT_TRUE((*out)->has_error());
    EXPECT_EQ((*out)->error(), Errc::io_error);
}

}  // namespace
}  // namespace nmid::net
