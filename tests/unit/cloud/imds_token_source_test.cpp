#include "nmid/cloud/imds_token_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <string>

#include "nmid/net/http_client.hpp"
#include "support/fake_http_server.hpp"
#include "support/manual_clock.hpp"

namespace nmid::cloud {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::FakeRequest;
using test::FakeResponse;

constexpr const char* kTokenBody =
    R"({"access_token":"secret-token","client_id":"c","expires_in":"86399",)"
    R"("expires_on":"1714730400","ext_expires_in":"86399","not_before":"1714643700",)"
    R"("resource":"https://vault.azure.net","token_type":"Bearer"})";

TokenRequest type0(std::string client_id, std::string resource) {
    TokenRequest r;
    r.identity.type = 0;
    r.identity.client_id = std::move(client_id);
    r.resource = std::move(resource);
    return r;
}

class ImdsTokenSourceTest : public ::testing::Test {
protected:
    void serve(test::FakeHttpServer::Handler handler) {
        server_ = std::make_unique<test::FakeHttpServer>(ioc_, std::move(handler));
        connect(server_->port());
    }

    void connect(std::uint16_t port) {
        net::HttpClientSettings s;
        s.host = "127.0.0.1";
        s.port = port;
        client_ = std::make_unique<net::HttpClient>(ioc_.get_executor(), s);
        source_ = std::make_unique<ImdsTokenSource>(*client_, clock_, "nmid-test/1.0");
    }

    using Outcome = std::shared_ptr<std::optional<FetchResult>>;

    Outcome start(TokenRequest request, SteadyTime deadline, asio::cancellation_slot slot = {}) {
        auto out = std::make_shared<std::optional<FetchResult>>();
        asio::co_spawn(
            ioc_,
            [this, request = std::move(request), deadline]() -> asio::awaitable<FetchResult> {
                co_return co_await source_->fetch(request, deadline);
            },
            asio::bind_cancellation_slot(slot, [out](const std::exception_ptr& e, FetchResult r) {
                if (e) {
                    std::rethrow_exception(e);
                }
                out->emplace(std::move(r));
            }));
        return out;
    }

    FetchResult fetch(TokenRequest request,
                      SteadyTime deadline = std::chrono::steady_clock::now() + 10s) {
        auto out = start(std::move(request), deadline);
        EXPECT_TRUE(test::run_until(ioc_, [&] { return out->has_value(); }));
        if (!out->has_value()) {
            return FetchError{};
        }
        return std::move(**out);
    }

    asio::io_context ioc_;
    test::ManualClock clock_;  // wall time only: 1'700'000'000 (2023-11-14T22:13:20Z)
    std::unique_ptr<test::FakeHttpServer> server_;
    std::unique_ptr<net::HttpClient> client_;
    std::unique_ptr<ImdsTokenSource> source_;
};

FakeResponse answer(int status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    FakeResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    return r;
}

TEST_F(ImdsTokenSourceTest, SendsTheRequestNmiSends) {
    serve([](const FakeRequest&) { return answer(200, kTokenBody); });
    const auto r = fetch(type0("7d2c1f0e-1111-2222-3333-444455556666", "https://vault.azure.net"));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(server_->requests(), 1U);
    const auto& got = server_->received()[0];
    EXPECT_EQ(got.method, "GET");
    EXPECT_EQ(got.target,
              "/metadata/identity/oauth2/token?api-version=2018-02-01"
              "&client_id=7d2c1f0e-1111-2222-3333-444455556666"
              "&resource=https%3A%2F%2Fvault.azure.net");
    EXPECT_EQ(got.header("Metadata"), "true");
    EXPECT_EQ(got.header("User-Agent"), "nmid-test/1.0");
    EXPECT_EQ(got.body, "");
}

TEST_F(ImdsTokenSourceTest, EncodesTheResource) {
    serve([](const FakeRequest&) { return answer(200, kTokenBody); });
    ASSERT_TRUE(fetch(type0("c1", "api://my app/x?y=1&z")).has_value());
    EXPECT_EQ(server_->received()[0].target,
              "/metadata/identity/oauth2/token?api-version=2018-02-01&client_id=c1"
              "&resource=api%3A%2F%2Fmy%20app%2Fx%3Fy%3D1%26z");
}

TEST_F(ImdsTokenSourceTest, NamesAnIdentityWithoutClientIdByItsResourceId) {
    serve([](const FakeRequest&) { return answer(200, kTokenBody); });
    TokenRequest r = type0("", "https://vault.azure.net");
    r.identity.resource_id =
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/kv reader";
    ASSERT_TRUE(fetch(r).has_value());
    EXPECT_EQ(server_->received()[0].target,
              "/metadata/identity/oauth2/token?api-version=2018-02-01"
              "&msi_res_id=%2Fsubscriptions%2Fs%2Fresourcegroups%2Frg%2Fproviders%2F"
              "Microsoft.ManagedIdentity%2FuserAssignedIdentities%2Fkv%20reader"
              "&resource=https%3A%2F%2Fvault.azure.net");
    // With a client ID, it alone names the identity (as NMI sends it).
    r.identity.client_id = "c1";
    ASSERT_TRUE(fetch(r).has_value());
    EXPECT_EQ(server_->received()[1].target,
              "/metadata/identity/oauth2/token?api-version=2018-02-01&client_id=c1"
              "&resource=https%3A%2F%2Fvault.azure.net");
}

// Issue 11 finding 2: IMDS answers a token request naming no identity with the VM's
// system-assigned identity. nmid refuses it without sending anything.
TEST_F(ImdsTokenSourceTest, NeverSendsARequestThatNamesNoIdentity) {
    serve([](const FakeRequest&) { return answer(200, kTokenBody); });
    const auto r = fetch(type0("", "https://vault.azure.net"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::identity_unsupported);
    EXPECT_EQ(r.error().upstream_status, 0);
    EXPECT_NE(r.error().upstream_body.find("neither a client ID nor a resource ID"),
              std::string::npos);
    EXPECT_EQ(server_->requests(), 0U);
}

TEST_F(ImdsTokenSourceTest, SuccessParsesTheToken) {
    serve([](const FakeRequest&) { return answer(200, kTokenBody); });
    const auto r = fetch(type0("c", "https://vault.azure.net"));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->access_token, "secret-token");
    EXPECT_EQ(r->expires_on, 1714730400);
    EXPECT_EQ(r->not_before, 1714643700);
    EXPECT_EQ(r->expires_in, 86399);
    EXPECT_EQ(r->resource, "https://vault.azure.net");
    EXPECT_EQ(r->token_type, "Bearer");
}

TEST_F(ImdsTokenSourceTest, ExpiryFromExpiresInUsesTheInjectedClock) {
    serve([](const FakeRequest&) {
        return answer(200, R"({"access_token":"t","expires_in":"600","resource":"r"})");
    });
    const auto r = fetch(type0("c", "r"));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->expires_on, clock_.unix_seconds() + 600);
}

TEST_F(ImdsTokenSourceTest, MapsUpstreamStatuses) {
    struct Case {
        int status;
        std::string body;
        std::vector<std::pair<std::string, std::string>> headers;
        Errc code;
        std::chrono::seconds retry_after;
        bool body_kept;
    };
    const std::string refused =
        R"({"error":"invalid_request","error_description":"Identity not found"})";
    const Case cases[] = {
        {400, refused, {}, Errc::upstream_refused, 0s, true},
        {403, "forbidden", {}, Errc::upstream_refused, 0s, true},
        {405, "", {}, Errc::upstream_refused, 0s, true},
        {404, "updating", {}, Errc::upstream_unavailable, 0s, true},
        {410, "gone", {}, Errc::upstream_unavailable, 0s, true},
        {429, "slow down", {{"Retry-After", "7"}}, Errc::upstream_throttled, 7s, true},
        // 30 s after the ManualClock's wall time.
        {429,
         "",
         {{"Retry-After", "Tue, 14 Nov 2023 22:13:50 GMT"}},
         Errc::upstream_throttled,
         30s,
         true},
        {429, "", {{"Retry-After", "whenever"}}, Errc::upstream_throttled, 0s, true},
        {429, "", {}, Errc::upstream_throttled, 0s, true},
        {500,
         R"({"error":"unknown","error_description":"Failed to retrieve token"})",
         {},
         Errc::upstream_unavailable,
         0s,
         true},
        {503, "", {}, Errc::upstream_unavailable, 0s, true},
        {302, "", {{"Location", "/elsewhere"}}, Errc::upstream_unavailable, 0s, true},
        {200, "not json", {}, Errc::upstream_bad_payload, 0s, false},
        {200, R"({"access_token":"half-a-secret"})", {}, Errc::upstream_bad_payload, 0s, false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.status);
        SCOPED_TRACE(c.body);
        serve([&](const FakeRequest&) { return answer(c.status, c.body, c.headers); });
        const auto r = fetch(type0("c", "https://vault.azure.net"));
        ASSERT_TRUE(r.has_error());
        EXPECT_EQ(r.error().code, c.code);
        EXPECT_EQ(r.error().upstream_status, c.status);
        EXPECT_EQ(r.error().retry_after, c.retry_after);
        EXPECT_EQ(r.error().upstream_body, c.body_kept ? c.body : "");
        EXPECT_EQ(server_->requests(), 1U) << "exactly one attempt";
    }
}

TEST_F(ImdsTokenSourceTest, CapsTheKeptErrorBody) {
    serve([](const FakeRequest&) { return answer(400, std::string(10'000, 'e')); });
    const auto r = fetch(type0("c", "r"));
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().upstream_body, std::string(4096, 'e'));
}

TEST_F(ImdsTokenSourceTest, TransportFailureIsUnavailableWithoutStatus) {
    serve([](const FakeRequest&) {
        FakeResponse r;
        r.close_without_response = true;
        return r;
    });
    const auto r = fetch(type0("c", "r"));
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_EQ(r.error().upstream_status, 0);
    EXPECT_EQ(server_->requests(), 1U);
}

TEST_F(ImdsTokenSourceTest, ConnectRefusedIsUnavailableWithoutStatus) {
    asio::ip::tcp::acceptor reserved{ioc_};
    reserved.open(asio::ip::tcp::v4());
    reserved.bind({asio::ip::make_address("127.0.0.1"), 0});
    connect(reserved.local_endpoint().port());
    const auto r = fetch(type0("c", "r"));
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
    EXPECT_EQ(r.error().upstream_status, 0);
}

TEST_F(ImdsTokenSourceTest, DeadlineIsTimeout) {
    serve([](const FakeRequest&) {
        FakeResponse r = answer(200, kTokenBody);
        r.hold = true;
        return r;
    });
    const auto r = fetch(type0("c", "r"), std::chrono::steady_clock::now() + 30ms);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().code, Errc::timeout);
    EXPECT_EQ(server_->held(), 1U);
}

TEST_F(ImdsTokenSourceTest, CancellationIsCancelled) {
    serve([](const FakeRequest&) {
        FakeResponse r = answer(200, kTokenBody);
        r.hold = true;
        return r;
    });
    asio::cancellation_signal cancel;
    auto out = start(type0("c", "r"), std::chrono::steady_clock::now() + 10s, cancel.slot());
    ASSERT_TRUE(test::run_until(ioc_, [&] { return server_->held() == 1; }));
    cancel.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(test::run_until(ioc_, [&] { return out->has_value(); }));
    ASSERT_TRUE((*out)->has_error());
    EXPECT_EQ((*out)->error().code, Errc::cancelled);
}

TEST_F(ImdsTokenSourceTest, ServicePrincipalsAreUnsupportedAndSendNothing) {
    serve([](const FakeRequest&) { return answer(200, kTokenBody); });
    for (const int type : {1, 2}) {
        TokenRequest request = type0("c", "r");
        request.identity.type = type;
        request.identity.tenant_id = "t";
        const auto r = fetch(request);
        ASSERT_TRUE(r.has_error());
        EXPECT_EQ(r.error().code, Errc::identity_unsupported);
    }
    EXPECT_EQ(server_->connections(), 0U);
}

}  // namespace
}  // namespace nmid::cloud
