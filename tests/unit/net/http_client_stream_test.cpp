#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nmid/net/http_client.hpp"
#include "support/fake_http_server.hpp"
#include "support/test_ca.hpp"

namespace nmid::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;

SteadyTime in(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
}

FakeResponse streaming() {
    FakeResponse r;
    r.stream = true;
    r.headers = {{"Content-Type", "application/json"}};
    return r;
}

/// One stream() call in flight and everything it delivered.
struct Streamed {
    std::vector<std::string> pieces;
    std::optional<Result<StreamedResponse>> result;
    bool stop_after_first = false;

    [[nodiscard]] std::string joined() const {
        std::string out;
        for (const auto& p : pieces) {
            out += p;
        }
        return out;
    }
};

class HttpClientStreamTest : public ::testing::Test {
protected:
    void serve(FakeHttpServer::Handler handler) {
        server_ = std::make_unique<FakeHttpServer>(ioc_, std::move(handler));
    }
    void serve_tls(FakeHttpServer::Handler handler) {
        server_ = std::make_unique<FakeHttpServer>(
            ioc_, std::move(handler), "127.0.0.1",
            test::FakeTlsOptions{.cert_pem = test::test_pki().server.cert_pem,
                                 .key_pem = test::test_pki().server.key_pem});
    }

    HttpClient& client(bool tls = false) {
        HttpClientSettings s;
        s.host = "127.0.0.1";
        s.port = server_->port();
        s.max_response_body = 64;
        if (tls) {
            s.tls = TlsSettings{.enabled = true, .ca_pem = test::test_pki().ca.cert_pem()};
        }
        client_ = std::make_unique<HttpClient>(ioc_.get_executor(), std::move(s));
        return *client_;
    }

    std::shared_ptr<Streamed> start(HttpClient& c, SteadyTime deadline,
                                    bool stop_after_first = false,
                                    asio::cancellation_slot slot = {}) {
        auto out = std::make_shared<Streamed>();
        out->stop_after_first = stop_after_first;
        asio::co_spawn(
            ioc_,
            [&c, deadline, out]() -> asio::awaitable<Result<StreamedResponse>> {
                ClientRequest req;
                req.target = "/watch";
                // Named first: g++ 12 destroys a lambda temporary inside co_await twice.
                const BodyHandler on_data = [out](std::string_view data) {
                    out->pieces.emplace_back(data);
                    return !out->stop_after_first;
                };
                co_return co_await c.stream(req, deadline, on_data);
            },
            asio::bind_cancellation_slot(
                slot, [out](const std::exception_ptr& e, Result<StreamedResponse> r) {
                    if (e) {
                        std::rethrow_exception(e);
                    }
                    out->result = std::move(r);
                }));
        return out;
    }

    bool wait_for(const std::function<bool()>& done) { return test::run_until(ioc_, done); }
    bool finished(const std::shared_ptr<Streamed>& s) {
        return wait_for([&] { return s->result.has_value(); });
    }

    asio::io_context ioc_;
    std::unique_ptr<FakeHttpServer> server_;
    std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpClientStreamTest, BodyIsDeliveredAsItArrivesBeforeTheStreamEnds) {
    serve([](const FakeRequest&) { return streaming(); });
    auto& c = client();
    auto s = start(c, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "first-");
    ASSERT_TRUE(wait_for([&] { return s->joined() == "first-"; }));
    EXPECT_FALSE(s->result.has_value());
    server_->push(0, "second");
    ASSERT_TRUE(wait_for([&] { return s->joined() == "first-second"; }));
    EXPECT_FALSE(s->result.has_value());
    server_->finish(0);
    ASSERT_TRUE(finished(s));
    ASSERT_TRUE(s->result->has_value()) << s->result->error().message();
    const auto& res = **s->result;
    EXPECT_EQ(res.response.status, 200);
    EXPECT_EQ(res.response.header("content-type"), "application/json");
    EXPECT_EQ(res.response.body, "");
    EXPECT_EQ(res.end, BodyEnd::complete);
    // Larger than the client's max_response_body (64): a 200 stream has no size limit.
    EXPECT_EQ(c.stats().idle, 1U);
}

TEST_F(HttpClientStreamTest, StreamLongerThanBodyLimitIsNotLimited) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.chunks = {std::string(100, 'a'), std::string(100'000, 'b')};
        return r;
    });
    auto& c = client();
    auto s = start(c, in(10s));
    ASSERT_TRUE(finished(s));
    ASSERT_TRUE(s->result->has_value()) << s->result->error().message();
    EXPECT_EQ(s->joined().size(), 100'100U);
    EXPECT_EQ((*s->result)->end, BodyEnd::complete);
}

TEST_F(HttpClientStreamTest, CompleteStreamLeavesTheConnectionReusable) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.chunks = {"a", "b"};
        return r;
    });
    auto& c = client();
    for (int i = 0; i < 2; ++i) {
        auto s = start(c, in(10s));
        ASSERT_TRUE(finished(s));
        ASSERT_TRUE(s->result->has_value());
        EXPECT_EQ(s->joined(), "ab");
    }
    EXPECT_EQ(server_->connections(), 1U);
    EXPECT_EQ(c.stats().reused, 1U);
}

TEST_F(HttpClientStreamTest, BodyCutBeforeLastChunkIsIoError) {
    serve([](const FakeRequest&) { return streaming(); });
    auto& c = client();
    auto s = start(c, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "partial");
    ASSERT_TRUE(wait_for([&] { return s->joined() == "partial"; }));
    server_->abort(0);
    ASSERT_TRUE(finished(s));
    ASSERT_FALSE(s->result->has_value());
    EXPECT_EQ(s->result->error(), Errc::io_error);
    EXPECT_EQ(c.stats().failures, 1U);
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientStreamTest, DeadlineAfterHeaderEndsTheStreamAsAValue) {
    serve([](const FakeRequest&) { return streaming(); });
    auto& c = client();
    auto s = start(c, in(100ms));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "event");
    ASSERT_TRUE(finished(s));
    ASSERT_TRUE(s->result->has_value()) << s->result->error().message();
    EXPECT_EQ((*s->result)->end, BodyEnd::deadline);
    EXPECT_EQ(s->joined(), "event");
    EXPECT_EQ(c.stats().idle, 0U);
}

TEST_F(HttpClientStreamTest, DeadlineBeforeHeaderIsTimeout) {
    serve([](const FakeRequest&) {
        FakeResponse r = streaming();
        r.hold = true;
        return r;
    });
    auto& c = client();
    auto s = start(c, in(50ms));
    ASSERT_TRUE(finished(s));
    ASSERT_FALSE(s->result->has_value());
    EXPECT_EQ(s->result->error(), Errc::timeout);
}

TEST_F(HttpClientStreamTest, HandlerReturningFalseStopsAndClosesTheConnection) {
    serve([](const FakeRequest&) { return streaming(); });
    auto& c = client();
    auto s = start(c, in(10s), /*stop_after_first=*/true);
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "one");
    ASSERT_TRUE(finished(s));
    ASSERT_TRUE(s->result->has_value());
    EXPECT_EQ((*s->result)->end, BodyEnd::stopped);
    EXPECT_EQ(s->pieces.size(), 1U);
    EXPECT_EQ(c.stats().idle, 0U);
    // The half-read connection is gone: the next stream needs a new one.
    auto next = start(c, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 2; }));
    EXPECT_EQ(server_->connections(), 2U);
    server_->finish(1);
    ASSERT_TRUE(finished(next));
    EXPECT_TRUE(next->result->has_value());
}

TEST_F(HttpClientStreamTest, NonOkStatusIsCollectedWholeWithoutCallingTheHandler) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.status = 410;
        r.chunks = {R"({"kind":"Status",)", R"("code":410})"};
        return r;
    });
    auto& c = client();
    auto s = start(c, in(10s));
    ASSERT_TRUE(finished(s));
    ASSERT_TRUE(s->result->has_value()) << s->result->error().message();
    EXPECT_EQ((*s->result)->response.status, 410);
    EXPECT_EQ((*s->result)->response.body, R"({"kind":"Status","code":410})");
    EXPECT_TRUE(s->pieces.empty());
    EXPECT_EQ(c.stats().idle, 1U);
}

TEST_F(HttpClientStreamTest, NonOkBodyOverTheLimitIsParseError) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.status = 500;
        r.body = std::string(65, 'x');
        return r;
    });
    auto& c = client();
    auto s = start(c, in(10s));
    ASSERT_TRUE(finished(s));
    ASSERT_FALSE(s->result->has_value());
    EXPECT_EQ(s->result->error(), Errc::parse_error);
}

TEST_F(HttpClientStreamTest, CancellationClosesTheStream) {
    serve([](const FakeRequest&) { return streaming(); });
    auto& c = client();
    asio::cancellation_signal cancel;
    auto s = start(c, in(10s), false, cancel.slot());
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    cancel.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(finished(s));
    ASSERT_FALSE(s->result->has_value());
    EXPECT_EQ(s->result->error(), Errc::cancelled);
    EXPECT_EQ(c.stats().idle, 0U);
    // The server notices the closed connection on its next write.
    server_->push(0, "late");
    EXPECT_TRUE(wait_for([&] { return !server_->stream_open(0); }));
}

TEST_F(HttpClientStreamTest, StreamOverTlsDeliversAndDetectsACut) {
    serve_tls([](const FakeRequest&) { return streaming(); });
    auto& c = client(/*tls=*/true);
    auto s = start(c, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 1; }));
    server_->push(0, "tls-event");
    ASSERT_TRUE(wait_for([&] { return s->joined() == "tls-event"; }));
    server_->abort(0);
    ASSERT_TRUE(finished(s));
    ASSERT_FALSE(s->result->has_value());
    EXPECT_EQ(s->result->error(), Errc::io_error);

    auto again = start(c, in(10s));
    ASSERT_TRUE(wait_for([&] { return server_->streams() == 2; }));
    server_->push(1, "x");
    server_->finish(1);
    ASSERT_TRUE(finished(again));
    ASSERT_TRUE(again->result->has_value()) << again->result->error().message();
    EXPECT_EQ(again->joined(), "x");
    EXPECT_EQ((*again->result)->end, BodyEnd::complete);
}

}  // namespace
}  // namespace nmid::net
