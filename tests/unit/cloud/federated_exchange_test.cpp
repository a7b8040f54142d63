#include "nmid/cloud/federated_exchange.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <map>
#include <string>
#include <vector>

#include "support/fake_aad.hpp"
#include "support/fake_http_server.hpp"
#include "support/manual_clock.hpp"

namespace nmid::cloud {
namespace {

namespace asio = boost::asio;

TEST(FederatedScope, AppendsDefaultAndTrimsNothing) {
    const struct {
        std::string_view resource, scope;
    } cases[] = {
        {"https://vault.azure.net", "https://vault.azure.net/.default"},
        {"https://management.azure.com/", "https://management.azure.com//.default"},
        {"https://management.core.windows.net/", "https://management.core.windows.net//.default"},
        {"https://storage.azure.com/.default", "https://storage.azure.com/.default"},
        {"api://6f0a6a3e-7e3b-4b38-9a4c-0123456789ab",
         "api://6f0a6a3e-7e3b-4b38-9a4c-0123456789ab/.default"},
        {"https://x/.DEFAULT", "https://x/.DEFAULT/.default"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(scope_for_resource(c.resource), c.scope) << c.resource;
    }
}

TEST(FederatedForm, CarriesTheAssertionAsAJwtBearerClientCredential) {
    const std::string form = federated_form("c1&x=y", "https://vault.azure.net/.default", "a.b.c");
    EXPECT_EQ(form.find("x=y"), std::string::npos) << "values are percent-encoded: " << form;
    const auto fields = test::parse_form(form);
    EXPECT_EQ(
        fields,
        (std::map<std::string, std::string>{
            {"client_assertion", "a.b.c"},
            {"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
            {"client_id", "c1&x=y"},
            {"grant_type", "client_credentials"},
            {"scope", "https://vault.azure.net/.default"}}));
}

class FederatedExchangeTest : public ::testing::Test {
protected:
    FetchResult exchange(std::string_view tenant, std::string_view authority = {}) {
        const std::string base = authority.empty()
                                     ? "http://127.0.0.1:" + std::to_string(aad_.port()) + "/"
                                     : std::string{authority};
        auto f =
            asio::co_spawn(ioc_,
                           exchange_.exchange("client-1", tenant, base, "https://vault.azure.net",
                                              "a.b.c", SteadyTime::max()),
                           asio::use_future);
        ioc_.restart();
        EXPECT_TRUE(test::run_until(ioc_, [&] {
            return f.wait_for(std::chrono::seconds{0}) == std::future_status::ready;
        }));
        return f.get();
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    std::vector<test::FakeRequest> seen_;
    test::FakeResponse reply_{.status = 200,
                              .headers = {{"Content-Type", "application/json"}},
                              .body = R"({"token_type":"Bearer","expires_in":3599,)"
                                      R"("ext_expires_in":3599,"access_token":"aad-token"})"};
    test::FakeHttpServer aad_{ioc_, [this](const test::FakeRequest& r) {
                                  seen_.push_back(r);
                                  return reply_;
                              }};
    FederatedExchange exchange_{ioc_.get_executor(), clock_, AadSettings{}};
};

TEST_F(FederatedExchangeTest, PostsToTheTenantsV2EndpointAndAnswersForTheResourceAsked) {
    const FetchResult r = exchange("72f988bf-86f1-41af-91ab-2d7cd011db47");
    ASSERT_TRUE(r) << r.error().upstream_body;
    EXPECT_EQ(r->access_token, "aad-token");
    EXPECT_EQ(r->resource, "https://vault.azure.net");
    EXPECT_EQ(r->expires_on, clock_.unix_seconds() + 3599);
    ASSERT_EQ(seen_.size(), 1U);
    EXPECT_EQ(seen_[0].method, "POST");
    EXPECT_EQ(seen_[0].target, "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
    EXPECT_EQ(seen_[0].header("Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(test::parse_form(seen_[0].body).at("scope"), "https://vault.azure.net/.default");
}

TEST_F(FederatedExchangeTest, AzureAdsRefusalKeepsItsErrorForThePod) {
    reply_ = {.status = 400,
              .headers = {{"Content-Type", "application/json"}},
              .body = R"({"error":"invalid_request","error_description":"AADSTS70021: No )"
                      R"(matching federated identity record found","error_codes":[70021]})"};
    const FetchResult r = exchange("tenant-a");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::upstream_refused);
    EXPECT_EQ(r.error().upstream_status, 400);
    EXPECT_NE(r.error().upstream_body.find("AADSTS70021"), std::string::npos);
}

TEST_F(FederatedExchangeTest, ThrottledAndUnavailableAreRetryable) {
    reply_ = {.status = 429, .headers = {{"Retry-After", "4"}}, .body = "{}"};
    FetchResult r = exchange("tenant-a");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::upstream_throttled);
    EXPECT_EQ(r.error().retry_after.count(), 4);
    reply_ = {.status = 503, .headers = {}, .body = "{}"};
    r = exchange("tenant-a");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::upstream_unavailable);
}

TEST_F(FederatedExchangeTest, AHostileTenantSendsNothing) {
    for (const std::string_view tenant : {"", "..", "a/b", "a?b", "a#b", "a%2Fb", "tenant a"}) {
        const FetchResult r = exchange(tenant);
        ASSERT_FALSE(r) << tenant;
        EXPECT_EQ(r.error().code, Errc::identity_unsupported) << tenant;
    }
    EXPECT_TRUE(seen_.empty());
}

}  // namespace
}  // namespace nmid::cloud
