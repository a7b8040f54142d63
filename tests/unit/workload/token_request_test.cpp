#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nmid/workload/service_account_token.hpp"
#include "support/manual_clock.hpp"

namespace nmid::workload {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kJwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

PodInfo pod(std::string ns = "shop", std::string sa = "web") {
    PodInfo p;
    p.namespace_name = std::move(ns);
    p.name = "web-0";
    p.uid = "0f0e0d0c-0b0a-4009-8807-060504030201";
    p.service_account = std::move(sa);
    return p;
}

TEST(TokenRequestWire, TheBodyBindsTheTokenToThePodForAzureAd) {
    const auto body = nlohmann::json::parse(token_request_body(pod()));
    EXPECT_EQ(body, nlohmann::json::parse(R"({
      "apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",
      "spec":{"audiences":["api://AzureADTokenExchange"],"expirationSeconds":3600,
              "boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"web-0",
                                "uid":"0f0e0d0c-0b0a-4009-8807-060504030201"}}})"));
}

TEST(TokenRequestWire, TheTargetNamesTheServiceAccountOnlyWhenItsNamesAreValid) {
    EXPECT_EQ(token_request_target(pod()).value(),
              "/api/v1/namespaces/shop/serviceaccounts/web/token");
    EXPECT_EQ(token_request_target(pod("shop", "")).value(),
              "/api/v1/namespaces/shop/serviceaccounts/default/token");
    EXPECT_EQ(token_request_target(pod("shop", "ci.bot-1")).value(),
              "/api/v1/namespaces/shop/serviceaccounts/ci.bot-1/token");
    for (const auto& [ns, sa] :
         std::vector<std::pair<std::string, std::string>>{{"shop", "../secrets"},
                                                          {"shop", "web/token?x"},
                                                          {"Shop", "web"},
                                                          {"shop", "Web"},
                                                          {"", "web"},
                                                          {"shop", "-web"},
                                                          {"shop", "web."},
                                                          {"sh%2Fop", "web"},
                                                          {std::string(64, 'a'), "web"},
                                                          {"shop", std::string(254, 'a')}}) {
        EXPECT_FALSE(token_request_target(pod(ns, sa))) << ns << " " << sa;
    }
}

kube::Response answer(int status, std::string body, std::string retry_after = {}) {
    return kube::Response{status, std::move(body), std::move(retry_after)};
}

std::string granted(std::string_view token, std::string_view expiry) {
    return R"({"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{},)"
           R"("status":{"token":")" +
           std::string{token} + R"(","expirationTimestamp":")" + std::string{expiry} + R"("}})";
}

TEST(TokenRequestWire, AGrantedTokenTrustsTheServersExpiry) {
    // 2026-12-06T11:00:00Z = 1796554800; the server shortened 3600 s to 1800 s.
    const SaTokenResult r = parse_token_request_response(
        answer(201, granted(kJwt, "2026-12-06T11:30:00Z")), 1796554800);
    ASSERT_TRUE(r) << r.error().upstream_body;
    EXPECT_EQ(r->token, kJwt);
    EXPECT_EQ(r->expires_on, 1796556600);
    EXPECT_EQ(r->issued_at, 1796554800);
}

TEST(TokenRequestWire, RefusalsKeepTheApiServersMessage) {
    const struct {
        int status;
        Errc code;
    } cases[] = {{404, Errc::upstream_refused},     {400, Errc::upstream_refused},
                 {409, Errc::upstream_refused},     {422, Errc::upstream_refused},
                 {403, Errc::upstream_refused},     {429, Errc::upstream_throttled},
                 {500, Errc::upstream_unavailable}, {503, Errc::upstream_unavailable}};
    for (const auto& c : cases) {
        const SaTokenResult r = parse_token_request_response(
            answer(c.status,
                   R"({"kind":"Status","status":"Failure","message":"pods \"web-0\" not found"})",
                   "7"),
            1796554800);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, c.code) << c.status;
        EXPECT_EQ(r.error().upstream_status, c.status);
        EXPECT_NE(r.error().upstream_body.find("pods \"web-0\" not found"), std::string::npos);
        EXPECT_EQ(r.error().retry_after.count(), c.status == 429 ? 7 : 0);
    }
}

TEST(TokenRequestWire, HostileAnswersAreBadPayloadsNeverTokens) {
    const std::string big(kMaxServiceAccountToken, 'a');
    const std::vector<std::string> bodies = {
        "",
        "not json",
        R"({"status":"x"})",
        R"({"status":{}})",
        R"({"status":{"token":7,"expirationTimestamp":"2026-12-06T11:30:00Z"}})",
        granted("", "2026-12-06T11:30:00Z"),
        granted("no-dots", "2026-12-06T11:30:00Z"),
        granted("a.b.c\\n", "2026-12-06T11:30:00Z"),
        granted("a.b.c d", "2026-12-06T11:30:00Z"),
        granted(".a.b", "2026-12-06T11:30:00Z"),
        granted(big + ".b.c", "2026-12-06T11:30:00Z"),
        granted(kJwt, "tomorrow"),
        granted(kJwt, "2026-12-06T10:00:00Z"),  // already expired
        R"({"status":{"token":"a.b.c"}})",
    };
    for (const std::string& body : bodies) {
        const SaTokenResult r = parse_token_request_response(answer(201, body), 1796554800);
        ASSERT_FALSE(r) << body.substr(0, 120);
        EXPECT_EQ(r.error().code, Errc::upstream_bad_payload) << body.substr(0, 120);
        EXPECT_EQ(r.error().upstream_body.find("a.b.c"), std::string::npos)
            << "a token-like value is never echoed";
    }
}

class RecordingApi final : public kube::ApiServerClient {
public:
    asio::awaitable<Result<kube::Response>> get(std::string, SteadyTime) override {
        co_return Errc::io_error;
    }
    asio::awaitable<Result<kube::Response>> post(std::string target, std::string body,
                                                 SteadyTime) override {
        targets.push_back(std::move(target));
        bodies.push_back(std::move(body));
        co_return reply;
    }
    asio::awaitable<Result<kube::Response>> patch(std::string, std::string, std::string,
                                                  SteadyTime) override {
        co_return Errc::io_error;
    }
    asio::awaitable<Result<kube::WatchResult>> watch(std::string, SteadyTime,
                                                     kube::LineHandler) override {
        co_return Errc::io_error;
    }
    Result<kube::Response> reply = Errc::io_error;
    std::vector<std::string> targets;
    std::vector<std::string> bodies;
};

TEST(ApiTokenRequester, PostsTheTokenRequestAndReportsEachStatus) {
    asio::io_context ioc;
    test::ManualClock clock;
    RecordingApi api;
    std::vector<int> seen;
    ApiTokenRequester requester{api, clock, [&](int status) { seen.push_back(status); }};
    const PodInfo web = pod();  // request() keeps a reference until it completes
    const auto run = [&] {
        auto f = asio::co_spawn(ioc, requester.request(web, SteadyTime::max()), asio::use_future);
        ioc.restart();
        ioc.run();
        return f.get();
    };
    api.reply = answer(201, granted(kJwt, "2099-01-01T00:00:00Z"));
    const SaTokenResult ok = run();
    ASSERT_TRUE(ok) << ok.error().upstream_body;
    ASSERT_EQ(api.targets.size(), 1U);
    EXPECT_EQ(api.targets[0], "/api/v1/namespaces/shop/serviceaccounts/web/token");
    EXPECT_EQ(api.bodies[0], token_request_body(pod()));
    api.reply = Errc::io_error;
    const SaTokenResult down = run();
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, Errc::upstream_unavailable);
    EXPECT_EQ(seen, (std::vector<int>{201, 0}));
}

}  // namespace
}  // namespace nmid::workload
