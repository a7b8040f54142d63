#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <thread>

#include "server_fixture.hpp"

namespace nmid::http::test {
namespace {

TEST_F(HttpServerTest, GetAnswersWithExactBytes) {
    handler_.respond = [](const HttpRequest&) {
        HttpResponse r;
        r.content_type = "application/json";
        r.body = R"({"a":1})";
        r.headers.emplace_back("X-Extra", "v");
        r.headers.emplace_back("Content-Length", "999");        // owned by the server
        r.headers.emplace_back("X-Split", "a\r\nInjected: 1");  // dropped: CR/LF
        return r;
    };
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, get("/metadata/instance?api-version=1", "Connection: close\r\n"));
        const ReadAll all = co_await read_to_end(s);
        EXPECT_EQ(all.data,
                  "HTTP/1.1 200 OK\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: 7\r\n"
                  "X-Extra: v\r\n"
                  "Connection: close\r\n"
                  "\r\n"
                  R"({"a":1})");
        EXPECT_EQ(all.ec, asio::error::eof);
    });
    const auto seen = handler_.seen();
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].method, "GET");
    EXPECT_EQ(seen[0].target, "/metadata/instance?api-version=1");
    EXPECT_EQ(seen[0].version, 11U);
    EXPECT_EQ(seen[0].body, "");
    EXPECT_EQ(server_->stats().requests, 1U);
    EXPECT_EQ(server_->stats().accepted, 1U);
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        std::string pending;
        co_await send(s, get("/first"));
        const auto first = co_await read_response(s, pending);
        co_await send(s, get("/second"));
        const auto second = co_await read_response(s, pending);
        EXPECT_TRUE(first && first->status() == 200 && first->body == "/first");
        EXPECT_TRUE(second && second->status() == 200 && second->body == "/second");
        EXPECT_FALSE(first && first->has("Connection: close"));
    });
    EXPECT_EQ(server_->stats().accepted, 1U);
    EXPECT_EQ(server_->stats().requests, 2U);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, get("/1") + get("/2") +
                             "POST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody" +
                             get("/4", "Connection: close\r\n"));
        std::string pending;
        std::vector<std::string> bodies;
        while (auto r = co_await read_response(s, pending)) {
            bodies.push_back(r->body);
        }
        EXPECT_EQ(bodies, (std::vector<std::string>{"/1", "/2", "/3:body", "/4"}));
    });
    EXPECT_EQ(server_->stats().requests, 4U);
}

TEST_F(HttpServerTest, Http10ClosesAfterResponseUnlessKeepAlive) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, "GET /old HTTP/1.0\r\n\r\n");
        const ReadAll all = co_await read_to_end(s);
        EXPECT_NE(all.data.find("Connection: close\r\n"), std::string::npos);
        EXPECT_TRUE(all.data.ends_with("/old"));
        EXPECT_EQ(all.ec, asio::error::eof);

        auto k = co_await connect(port());
        std::string pending;
        co_await send(k, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        const auto a = co_await read_response(k, pending);
        co_await send(k, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        const auto b = co_await read_response(k, pending);
        EXPECT_TRUE(a && a->has("Connection: keep-alive") && a->body == "/a");
        EXPECT_TRUE(b && b->body == "/b");
    });
    const auto seen = handler_.seen();
    ASSERT_EQ(seen.size(), 3U);
    EXPECT_EQ(seen[0].version, 10U);
}

TEST_F(HttpServerTest, HeaderOverLimitAnswers431AndCloses) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, get("/", "X-Big: " + std::string(9000, 'a') + "\r\n"));
        const ReadAll all = co_await read_to_end(s);
        EXPECT_TRUE(all.data.starts_with("HTTP/1.1 431 ")) << all.data.substr(0, 40);
        EXPECT_NE(all.data.find("Connection: close\r\n"), std::string::npos);
        EXPECT_EQ(all.ec, asio::error::eof);
    });
    EXPECT_EQ(server_->stats().bad_requests, 1U);
    EXPECT_EQ(server_->stats().requests, 0U);
    EXPECT_TRUE(handler_.seen().empty());
}

TEST_F(HttpServerTest, BodyOverLimitAnswers413AndCloses) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" +
                             std::string(5000, 'b'));
        const ReadAll all = co_await read_to_end(s);
        EXPECT_TRUE(all.data.starts_with("HTTP/1.1 413 ")) << all.data.substr(0, 40);
        EXPECT_EQ(all.ec, asio::error::eof);  // a lingering close, not a reset
    });
    EXPECT_EQ(server_->stats().bad_requests, 1U);
    EXPECT_TRUE(handler_.seen().empty());
}

TEST_F(HttpServerTest, GarbageAnswers400AndCloses) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, std::string_view{"\x16\x03\x01\x02\x00 not http\r\n\r\n\x00", 19});
        const ReadAll all = co_await read_to_end(s);
        EXPECT_TRUE(all.data.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        EXPECT_TRUE(all.data.ends_with(
            R"({"error":"invalid_request","error_description":"malformed request"})"));

        auto no_host = co_await connect(port());
        co_await send(no_host, "GET / HTTP/1.1\r\n\r\n");
        const ReadAll second = co_await read_to_end(no_host);
        EXPECT_TRUE(second.data.starts_with("HTTP/1.1 400 "));
    });
    EXPECT_EQ(server_->stats().bad_requests, 2U);
    EXPECT_TRUE(handler_.seen().empty());
}

/// What Beast's own request parser makes of `bytes` (complete requests only), as the server
/// must answer it: the status of an unreadable request, or the request the handler must see
/// and whether the connection stays open.
struct BeastView {
    int status = 200;
    Seen seen;
    bool keep_alive = false;
};

BeastView parse_with_beast(std::string_view bytes) {
    namespace bhttp = boost::beast::http;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.eager(true);
    parser.header_limit(static_cast<std::uint32_t>(HttpServerSettings{}.header_limit));
    parser.body_limit(HttpServerSettings{}.body_limit);
    error_code ec;
    parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    BeastView out;
    if (ec == bhttp::error::need_more || (!ec && !parser.is_done())) {
        ADD_FAILURE() << "incomplete test request: " << bytes;
        out.status = 0;
        return out;
    }
    if (ec) {
        out.status = ec == bhttp::error::header_limit ? 431
                     : ec == bhttp::error::body_limit ? 413
                                                      : 400;
        return out;
    }
    const auto& msg = parser.get();
    if (msg.version() == 11 && msg.find(bhttp::field::host) == msg.end()) {
        out.status = 400;
        return out;
    }
    out.seen.method = msg.method_string();
    out.seen.target = msg.target();
    out.seen.version = msg.version();
    out.seen.body = msg.body();
    for (const auto& field : msg) {
        out.seen.fields.emplace_back(field.name_string(), field.value());
    }
    out.keep_alive = parser.keep_alive();
    return out;
}

TEST_F(HttpServerTest, EveryRequestIsSeenAsBeastParsesIt) {
    // Plain requests take the server's fast path, the rest Beast's parser: whichever path a
    // request takes, the handler and the client must see what Beast makes of it.
    const std::string host = "Host: h\r\n";
    const std::vector<std::string> requests = {
        "GET /metadata/identity/oauth2/token?resource=x HTTP/1.1\r\n" + host +
            "Metadata: true\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Ows:  \t v a l \t \r\nX-Empty:\r\nX-Sp: \r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Fold: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Fold:\r\n\tb\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Bad : a\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Utf8: caf\xc3\xa9\r\n\r\n",
        "GET /caf\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n",
        "GET / HTTP/1.1\r\nhOST: lower\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "POST /p HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello",
        "POST /p HTTP/1.1\r\n" + host + "content-length: 0\r\n\r\n",
        "POST /p HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "get /lower HTTP/1.1\r\n" + host + "\r\n",
        "M-SEARCH * HTTP/1.1\r\n" + host + "\r\n",
        "G@T / HTTP/1.1\r\n" + host + "\r\n",
        "GET / HTTP/1.2\r\n" + host + "\r\n",
        "GET / HTTP/2.0\r\n" + host + "\r\n",
        "GET  / HTTP/1.1\r\n" + host + "\r\n",
        "GET / HTTP/1.1 \r\n" + host + "\r\n",
        "GET / http/1.1\r\n" + host + "\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Ctl: a\x01z\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Del: a\x7fz\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Cr: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Na\x01me: a\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + ": no name\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Dup: 1\r\nx-dup: 2\r\nX-DUP: 3\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "Proxy-Connection: close\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Long: " + std::string(8000, 'l') + "\r\n\r\n",
        "GET / HTTP/1.1\r\n" + host + "X-Long: " + std::string(8200, 'l') + "\r\n\r\n",
        "GET http://169.254.169.254/metadata/instance?x=1 HTTP/1.1\r\n" + host + "\r\n",
        "GET /a%20b?q=\"x\"&y={} HTTP/1.1\r\n" + host + "X-Q: \"quoted\" ; ,\r\n\r\n",
    };
    std::vector<BeastView> expected;
    expected.reserve(requests.size());
    for (const auto& request : requests) {
        expected.push_back(parse_with_beast(request));
    }
    start();
    std::size_t answered = 0;
    run([&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < requests.size(); ++i) {
            const std::size_t seen_before = handler_.seen().size();
            auto s = co_await connect(port());
            co_await send(s, requests[i]);
            std::string pending;
            const auto response = co_await read_response(s, pending);
            if (!response) {
                ADD_FAILURE() << "no response to request " << i;
                continue;
            }
            ++answered;
            EXPECT_EQ(response->status(), expected[i].status) << "request " << i;
            if (expected[i].status != 200) {
                EXPECT_TRUE(response->has("Connection: close")) << "request " << i;
                continue;
            }
            const auto seen = handler_.seen();
            if (seen.size() != seen_before + 1) {
                ADD_FAILURE() << "handler did not see request " << i;
                continue;
            }
            const Seen& got = seen.back();
            const Seen& want = expected[i].seen;
            EXPECT_EQ(got.method, want.method) << "request " << i;
            EXPECT_EQ(got.target, want.target) << "request " << i;
            EXPECT_EQ(got.version, want.version) << "request " << i;
            EXPECT_EQ(got.body, want.body) << "request " << i;
            EXPECT_EQ(got.fields, want.fields) << "request " << i;
            EXPECT_EQ(response->has("Connection: close"), !expected[i].keep_alive)
                << "request " << i;
        }
    });
    EXPECT_EQ(answered, requests.size());
}

TEST_F(HttpServerTest, MaxConnectionsRefusesWith503) {
    // The open connection is mid-request: nothing idle to close for the new one.
    handler_.hold = true;
    start({.max_connections = 1});
    run([&]() -> asio::awaitable<void> {
        auto first = co_await connect(port());
        std::string pending;
        co_await send(first, get("/in"));
        co_await handler_.wait_for_calls(1);

        auto second = co_await connect(port());
        co_await send(second, get("/over"));
        const ReadAll refused = co_await read_to_end(second);
        EXPECT_EQ(refused.data,
                  "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                  "Retry-After: 1\r\nConnection: close\r\n\r\n");
        EXPECT_EQ(refused.ec, asio::error::eof);
        EXPECT_EQ(server_->stats().active, 1U);

        handler_.release.set();
        const auto ok = co_await read_response(first, pending);
        EXPECT_TRUE(ok && ok->status() == 200);
    });
    EXPECT_EQ(server_->stats().refused, 1U);
    EXPECT_EQ(server_->stats().accepted, 2U);
    EXPECT_EQ(server_->stats().requests, 1U);
    EXPECT_EQ(server_->stats().trimmed, 0U);
}

TEST_F(HttpServerTest, IdleConnectionIsClosedSilently) {
    start({.idle_timeout = 50ms});
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        std::string pending;
        co_await send(s, get("/x"));
        const auto r = co_await read_response(s, pending);
        EXPECT_TRUE(r && r->status() == 200);
        const ReadAll after = co_await read_to_end(s);  // idle deadline closes it
        EXPECT_EQ(after.data, "");
        EXPECT_EQ(after.ec, asio::error::eof);

        auto silent = co_await connect(port());  // never sends a byte
        const ReadAll never = co_await read_to_end(silent);
        EXPECT_EQ(never.data, "");
        EXPECT_EQ(never.ec, asio::error::eof);
    });
    EXPECT_EQ(server_->stats().bad_requests, 0U);
}

TEST_F(HttpServerTest, SilentNewConnectionIsHeldOnlyForReadTimeout) {
    start({.read_timeout = 50ms, .idle_timeout = 60s});
    run([&]() -> asio::awaitable<void> {
        auto silent = co_await connect(port());  // never sends a byte
        const ReadAll never = co_await read_to_end(silent);
        EXPECT_EQ(never.data, "");  // closed quietly, no 408 for a request that never began
        EXPECT_EQ(never.ec, asio::error::eof);
    });
    EXPECT_EQ(server_->stats().bad_requests, 0U);
}

TEST_F(HttpServerTest, SlowRequestAnswers408) {
    start({.read_timeout = 50ms});
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, "GET / HTTP/1.1\r\nHost: h\r\n");  // header never completed
        const ReadAll all = co_await read_to_end(s);
        EXPECT_TRUE(all.data.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        EXPECT_NE(all.data.find("Connection: close\r\n"), std::string::npos);
    });
    EXPECT_EQ(server_->stats().bad_requests, 1U);
}

TEST_F(HttpServerTest, HandlerExceptionAnswers500Json) {
    handler_.respond = [](const HttpRequest& r) -> HttpResponse {
        if (r.target == "/boom") {
            throw std::runtime_error{"bug"};
        }
        HttpResponse resp;
        resp.body = "fine";
        return resp;
    };
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        std::string pending;
        co_await send(s, get("/boom"));
        const auto r = co_await read_response(s, pending);
        EXPECT_TRUE(r && r->status() == 500);
        EXPECT_TRUE(r && r->has("Content-Type: application/json"));
        EXPECT_EQ(r ? r->body : "",
                  R"({"error":"server_error","error_description":"internal error"})");
        co_await send(s, get("/after"));  // the connection survives a handler bug
        const auto after = co_await read_response(s, pending);
        EXPECT_TRUE(after && after->body == "fine");
    });
}

TEST_F(HttpServerTest, AnswerAtHandIsWrittenWithoutHandleAndItsExceptionAnswers500) {
    handler_.respond_now = [](const HttpRequest& r) -> std::optional<HttpResponse> {
        if (r.target == "/now-boom") {
            throw std::runtime_error{"bug"};
        }
        if (r.target != "/now") {
            return std::nullopt;
        }
        HttpResponse resp;
        resp.body = "at hand";
        return resp;
    };
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        std::string pending;
        co_await send(s, get("/now"));
        const auto now = co_await read_response(s, pending);
        EXPECT_TRUE(now && now->status() == 200 && now->body == "at hand");
        co_await send(s, get("/now-boom"));
        const auto boom = co_await read_response(s, pending);
        EXPECT_TRUE(boom && boom->status() == 500);
        co_await send(s, get("/later"));  // given up: handle() answers, on the same connection
        const auto later = co_await read_response(s, pending);
        EXPECT_TRUE(later && later->body == "/later");
    });
    EXPECT_EQ(handler_.handle_calls, 1);
}

TEST_F(HttpServerTest, ResetFlagAbortsTheConnection) {
    handler_.respond = [](const HttpRequest&) {
        HttpResponse resp;
        resp.reset = true;
        return resp;
    };
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, get("/"));
        const ReadAll all = co_await read_to_end(s);
        EXPECT_EQ(all.data, "");
        EXPECT_EQ(all.ec, asio::error::connection_reset);
    });
}

TEST_F(HttpServerTest, HeadAnswersLengthWithoutBody) {
    handler_.respond = [](const HttpRequest&) {
        HttpResponse resp;
        resp.body = "hello";
        return resp;
    };
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s, "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        const ReadAll all = co_await read_to_end(s);
        EXPECT_EQ(all.data, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    });
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        co_await send(s,
                      "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                      "Content-Length: 4\r\n\r\n");
        EXPECT_EQ(co_await read_exactly(s, 25), "HTTP/1.1 100 Continue\r\n\r\n");
        co_await send(s, "data");
        std::string pending;
        const auto r = co_await read_response(s, pending);
        EXPECT_TRUE(r && r->body == "/p:data");
    });
}

TEST_F(HttpServerTest, HeaderViewIsCaseInsensitiveAndInWireOrder) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        std::string pending;
        co_await send(s, get("/h", "Metadata: true\r\nX-Dup: one\r\nx-dup: two\r\n"));
        EXPECT_TRUE(co_await read_response(s, pending));
    });
    const auto seen = handler_.seen();
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].metadata_lower, "true");
    EXPECT_EQ(seen[0].metadata_upper, "true");
    EXPECT_TRUE(seen[0].has_metadata);
    EXPECT_FALSE(seen[0].has_missing);
    EXPECT_EQ(seen[0].dup, "one");
    const std::vector<std::pair<std::string, std::string>> expected{
        {"Host", "169.254.169.254"}, {"Metadata", "true"}, {"X-Dup", "one"}, {"x-dup", "two"}};
    EXPECT_EQ(seen[0].fields, expected);
}

TEST_F(HttpServerTest, PeerIsTheClientAddress) {
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port(), "127.0.0.2");
        std::string pending;
        co_await send(s, get("/peer"));
        EXPECT_TRUE(co_await read_response(s, pending));
    });
    const auto seen = handler_.seen();
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].peer, asio::ip::make_address("127.0.0.2"));
}

TEST_F(HttpServerTest, StopClosesIdleAndFinishesInFlight) {
    start();
    bool idle_closed_before_release = false;
    run([&]() -> asio::awaitable<void> {
        auto idle = co_await connect(port());
        std::string idle_pending;
        co_await send(idle, get("/warm"));
        EXPECT_TRUE(co_await read_response(idle, idle_pending));

        handler_.hold = true;
        auto busy = co_await connect(port());
        co_await send(busy, get("/slow"));
        co_await handler_.started.wait();

        server_->stop();
        const ReadAll idle_end = co_await read_to_end(idle);
        EXPECT_EQ(idle_end.data, "");
        EXPECT_EQ(idle_end.ec, asio::error::eof);
        idle_closed_before_release = !handler_.release.is_set();

        handler_.release.set();
        std::string pending;
        const auto r = co_await read_response(busy, pending);
        EXPECT_TRUE(r && r->body == "/slow");
        EXPECT_TRUE(r && r->has("Connection: close"));
        const ReadAll busy_end = co_await read_to_end(busy);
        EXPECT_EQ(busy_end.ec, asio::error::eof);

        // New connections are no longer accepted.
        tcp::socket late{co_await asio::this_coro::executor};
        auto [ec] = co_await late.async_connect(
            tcp::endpoint{asio::ip::make_address("127.0.0.1"), port()}, kUseTuple);
        EXPECT_EQ(ec, asio::error::connection_refused);
    });
    EXPECT_TRUE(idle_closed_before_release);
}

TEST_F(HttpServerTest, ConnectionAcceptedBeforeStopGetsItsFirstRequestAnswered) {
    // A client that connected to a live listener and writes its request a little later (a
    // restart's handover) is answered, with Connection: close, not closed without a response.
    start();
    run([&]() -> asio::awaitable<void> {
        auto fresh = co_await connect(port());
        // Connections are accepted in order: once a later one is answered, `fresh` is open.
        auto later = co_await connect(port());
        std::string later_pending;
        co_await send(later, get("/later"));
        EXPECT_TRUE(co_await read_response(later, later_pending));

        server_->stop();
        const ReadAll later_end = co_await read_to_end(later);  // idle keep-alive: closed
        EXPECT_EQ(later_end.ec, asio::error::eof);

        co_await send(fresh, get("/first"));
        std::string pending;
        const auto r = co_await read_response(fresh, pending);
        EXPECT_TRUE(r && r->body == "/first");
        EXPECT_TRUE(r && r->has("Connection: close"));
        const ReadAll fresh_end = co_await read_to_end(fresh);
        EXPECT_EQ(fresh_end.ec, asio::error::eof);
    });
}

TEST_F(HttpServerTest, ResponseLargerThanTheSocketBufferIsWrittenWhole) {
    // 16 MiB cannot go out in one write: the rest is written as the client reads, and the
    // connection then serves the next request.
    std::string big(std::size_t{16} << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<char>('a' + i % 26);
    }
    handler_.respond = [&](const HttpRequest& r) {
        HttpResponse resp;
        resp.content_type = "application/octet-stream";
        resp.body = r.target == "/big" ? big : "small";
        return resp;
    };
    start();
    run([&]() -> asio::awaitable<void> {
        auto s = co_await connect(port());
        std::string pending;
        co_await send(s, get("/big"));
        const auto first = co_await read_response(s, pending);
        co_await send(s, get("/next"));
        const auto second = co_await read_response(s, pending);
        EXPECT_TRUE(first && first->status() == 200);
        EXPECT_TRUE(first && first->body == big);
        EXPECT_TRUE(second && second->body == "small");
    });
    EXPECT_EQ(server_->stats().requests, 2U);
}

TEST_F(HttpServerTest, DrainDeadlineClosesStuckConnections) {
    start();
    bool drained = false;
    bool done = false;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
            handler_.hold = true;
            auto stuck = co_await connect(port());
            co_await send(stuck, get("/stuck"));
            co_await handler_.started.wait();
            server_->stop();
            co_await server_->drain(std::chrono::steady_clock::now() + 50ms);
            drained = true;
            const ReadAll end = co_await read_to_end(stuck);  // closed without a response
            EXPECT_EQ(end.data, "");
            handler_.release.set();  // the handler's late answer goes nowhere
            co_await server_->drain(std::chrono::steady_clock::now() + 5s);
            done = true;
        },
        [](const std::exception_ptr& e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    ioc_.run_for(kSafetyNet);
    EXPECT_TRUE(drained);
    EXPECT_TRUE(done);
    EXPECT_TRUE(run_returned_);
    EXPECT_EQ(server_->stats().active, 0U);
}

TEST_F(HttpServerTest, ConcurrentClientsOnTwoThreads) {
    constexpr int kClients = 16;
    constexpr int kRequests = 25;
    start();
    std::atomic<int> ok{0};
    std::atomic<int> finished{0};
    for (int i = 0; i < kClients; ++i) {
        asio::co_spawn(
            ioc_,
            [&, i]() -> asio::awaitable<void> {
                auto s = co_await connect(port());
                std::string pending;
                for (int j = 0; j < kRequests; ++j) {
                    const std::string target = "/c" + std::to_string(i) + "/" + std::to_string(j);
                    co_await send(s, get(target));
                    const auto r = co_await read_response(s, pending);
                    if (r && r->body == target) {
                        ok.fetch_add(1);
                    }
                }
                if (finished.fetch_add(1) + 1 == kClients) {
                    server_->stop();
                    co_await server_->drain(std::chrono::steady_clock::now() + 5s);
                }
            },
            [](const std::exception_ptr& e) {
                if (e) {
                    std::rethrow_exception(e);
                }
            });
    }
    std::thread second{[&] { ioc_.run_for(kSafetyNet); }};
    ioc_.run_for(kSafetyNet);
    second.join();
    EXPECT_EQ(ok.load(), kClients * kRequests);
    EXPECT_TRUE(run_returned_);
    EXPECT_EQ(server_->stats().requests, static_cast<std::uint64_t>(kClients * kRequests));
    EXPECT_EQ(server_->stats().active, 0U);
}

TEST(HttpServerListen, InvalidAddressIsInvalidConfig) {
    asio::io_context ioc;
    TestHandler handler{ioc.get_executor()};
    HttpServer server{ioc.get_executor(), handler, {.address = "not-an-ip", .port = 0}};
    const auto r = server.listen();
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::invalid_config);
}

TEST(HttpServerListen, PortInUseIsIoError) {
    asio::io_context ioc;
    TestHandler handler{ioc.get_executor()};
    HttpServer first{
        ioc.get_executor(), handler, {.address = "127.0.0.1", .port = 0, .reuse_port = false}};
    ASSERT_TRUE(first.listen().has_value());
    HttpServer second{ioc.get_executor(),
                      handler,
                      {.address = "127.0.0.1", .port = first.port(), .reuse_port = false}};
    const auto r = second.listen();
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::io_error);
}

TEST(HttpServerListen, ReusePortLetsTwoListenersShareAPort) {
    asio::io_context ioc;
    TestHandler handler{ioc.get_executor()};
    HttpServer first{ioc.get_executor(), handler, {.address = "127.0.0.1", .port = 0}};
    ASSERT_TRUE(first.listen().has_value());
    HttpServer second{ioc.get_executor(), handler, {.address = "127.0.0.1", .port = first.port()}};
    EXPECT_TRUE(second.listen().has_value());
    EXPECT_EQ(second.port(), first.port());
}

}  // namespace
}  // namespace nmid::http::test
