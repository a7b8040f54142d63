// Per-pod connection caps at the listener (issue 11.4): clients bound to 127.0.0.2 and
// 127.0.0.3 stand for two pods.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "server_fixture.hpp"

namespace nmid::http::test {
namespace {

constexpr const char* kPodA = "127.0.0.2";
constexpr const char* kPodB = "127.0.0.3";

constexpr std::string_view kPodLimitAnswer =
    R"({"error":"too_many_requests","error_description":"too many connections from this pod; )"
    R"(retry after closing idle ones"})";

/// handle_now() answers every target except "/held", which goes to handle() (held while
/// `hold`): so held requests keep their connections busy while others are answered.
void answer_all_but_held(TestHandler& h) {
    h.hold = true;
    h.respond_now = [](const HttpRequest& r) -> std::optional<HttpResponse> {
        if (r.target == "/held") {
            return std::nullopt;
        }
        HttpResponse resp;
        resp.body = std::string{r.target};
        return resp;
    };
}

TEST_F(HttpServerTest, PodWithAllConnectionsBusyGets429AndAnotherPodIsServed) {
    answer_all_but_held(handler_);
    start({.max_connections_per_pod = 2});
    run([&]() -> asio::awaitable<void> {
        auto a1 = co_await connect(port(), kPodA);
        auto a2 = co_await connect(port(), kPodA);
        co_await send(a1, get("/held"));
        co_await send(a2, get("/held"));
        co_await handler_.wait_for_calls(2);

        auto a3 = co_await connect(port(), kPodA);
        co_await send(a3, get("/third"));
        std::string pending;
        const auto refused = co_await read_response(a3, pending);
        EXPECT_TRUE(refused && refused->status() == 429);
        EXPECT_TRUE(refused && refused->has("Retry-After: 1"));
        EXPECT_TRUE(refused && refused->has("Content-Type: application/json"));
        EXPECT_TRUE(refused && refused->has("Connection: close"));
        EXPECT_EQ(refused ? refused->body : "", kPodLimitAnswer);
        const ReadAll rest = co_await read_to_end(a3);
        EXPECT_EQ(rest.data, "");
        EXPECT_EQ(rest.ec, asio::error::eof);

        // Pod A at its cap does not stop pod B.
        auto b = co_await connect(port(), kPodB);
        co_await send(b, get("/b"));
        std::string b_pending;
        const auto served = co_await read_response(b, b_pending);
        EXPECT_TRUE(served && served->status() == 200 && served->body == "/b");

        handler_.release.set();
        std::string p1;
        std::string p2;
        const auto r1 = co_await read_response(a1, p1);
        const auto r2 = co_await read_response(a2, p2);
        EXPECT_TRUE(r1 && r1->status() == 200);
        EXPECT_TRUE(r2 && r2->status() == 200);
    });
    EXPECT_EQ(server_->stats().refused_per_pod, 1U);
    EXPECT_EQ(server_->stats().refused, 0U);
    EXPECT_EQ(server_->stats().trimmed, 0U);
}

TEST_F(HttpServerTest, PodAtItsCapLosesItsOldestIdleConnectionToItsNewOne) {
    answer_all_but_held(handler_);
    start({.max_connections_per_pod = 3});
    run([&]() -> asio::awaitable<void> {
        auto old_idle = co_await connect(port(), kPodA);
        auto newer_idle = co_await connect(port(), kPodA);
        auto busy = co_await connect(port(), kPodA);
        std::string p_old;
        std::string p_newer;
        co_await send(old_idle, get("/old"));
        const auto r_old = co_await read_response(old_idle, p_old);
        EXPECT_TRUE(r_old && r_old->status() == 200);
        co_await send(newer_idle, get("/newer"));
        const auto r_newer = co_await read_response(newer_idle, p_newer);
        EXPECT_TRUE(r_newer && r_newer->status() == 200);
        co_await send(busy, get("/held"));
        co_await handler_.wait_for_calls(1);

        auto fresh = co_await connect(port(), kPodA);
        co_await send(fresh, get("/fresh"));
        std::string p_fresh;
        const auto r_fresh = co_await read_response(fresh, p_fresh);
        EXPECT_TRUE(r_fresh && r_fresh->status() == 200 && r_fresh->body == "/fresh");

        const ReadAll trimmed = co_await read_to_end(old_idle);  // closed, silently
        EXPECT_EQ(trimmed.data, "");
        EXPECT_EQ(trimmed.ec, asio::error::eof);

        co_await send(newer_idle, get("/again"));  // still open
        const auto again = co_await read_response(newer_idle, p_newer);
        EXPECT_TRUE(again && again->status() == 200 && again->body == "/again");

        handler_.release.set();
        std::string p_busy;
        const auto r_busy = co_await read_response(busy, p_busy);
        EXPECT_TRUE(r_busy && r_busy->status() == 200);
    });
    EXPECT_EQ(server_->stats().trimmed, 1U);
    EXPECT_EQ(server_->stats().refused_per_pod, 0U);
}

TEST_F(HttpServerTest, AtTheGlobalCapTheBusiestPodLosesAnIdleConnection) {
    start({.max_connections = 4, .max_connections_per_pod = 0});
    run([&]() -> asio::awaitable<void> {
        // B's connection is idle longest, but A holds the most: A's oldest idle one goes.
        auto b1 = co_await connect(port(), kPodB);
        std::string p_b1;
        co_await send(b1, get("/b1"));
        EXPECT_TRUE(co_await read_response(b1, p_b1));
        std::vector<tcp::socket> a;
        std::vector<std::string> p_a(3);
        for (std::size_t i = 0; i < 3; ++i) {
            a.push_back(co_await connect(port(), kPodA));
            co_await send(a[i], get("/a"));
            EXPECT_TRUE(co_await read_response(a[i], p_a[i]));
        }

        auto b2 = co_await connect(port(), kPodB);
        co_await send(b2, get("/b2"));
        std::string p_b2;
        const auto r_b2 = co_await read_response(b2, p_b2);
        EXPECT_TRUE(r_b2 && r_b2->status() == 200 && r_b2->body == "/b2");

        const ReadAll trimmed = co_await read_to_end(a[0]);
        EXPECT_EQ(trimmed.data, "");
        EXPECT_EQ(trimmed.ec, asio::error::eof);
        co_await send(b1, get("/b1-again"));
        const auto r_b1 = co_await read_response(b1, p_b1);
        EXPECT_TRUE(r_b1 && r_b1->status() == 200);
    });
    EXPECT_EQ(server_->stats().trimmed, 1U);
    EXPECT_EQ(server_->stats().refused, 0U);
}

}  // namespace
}  // namespace nmid::http::test
