// IMDS 2023-07-01's contract on nmid's token route and `/metadata/identity/info` (issue 14):
// client_id in the answer, bypass_cache=true limited per pod and key, the tenant answer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "handler_upstream_fixture.hpp"

namespace nmid::handlers::test_support {
namespace {

constexpr std::string_view kOtherBoundPod = "10.0.0.7";  // default/other, bound to id-b
constexpr std::string_view kUnboundPod = "10.0.0.8";     // default/unbound, no binding
constexpr std::string_view kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const std::string kVault =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net";
const std::string kInfo = "/metadata/identity/info?api-version=2018-02-01";

class Imds2023Test : public HandlerUpstreamTest {
protected:
    Imds2023Test() {
        // A second bound pod with its own identity, and a service principal identity.
        PodInfo bound = test::make_pod("default", "app", std::string{kBoundPod});
        bound.labels["aadpodidbinding"] = "sel";
        PodInfo excepted = test::make_pod("kube-system", "excepted", std::string{kExceptedPod});
        excepted.labels["app"] = "system";
        PodInfo other = test::make_pod("default", "other", std::string{kOtherBoundPod});
        other.labels["aadpodidbinding"] = "sel-b";
        PodInfo unbound = test::make_pod("default", "unbound", std::string{kUnboundPod});
        pod_source_.set(PodList{{bound, excepted, other, unbound}});
        clock_.advance(std::chrono::seconds{1});  // past the base fixture's read: a new one
        run_task(pods_.refresh());
        auto snap = std::make_shared<CrdSnapshot>(*crds_.snapshot());
        AzureIdentity b;
        b.meta.namespace_name = "default";
        b.meta.name = "id-b";
        b.type = 1;
        b.client_id = "client-b";
        b.tenant_id = std::string{kTenant};
        b.client_password = SecretRef{.namespace_name = "default", .name = "s"};
        snap->identities.push_back(b);
        AzureIdentityBinding bb;
        bb.meta.namespace_name = "default";
        bb.meta.name = "b-b";
        bb.azure_identity = "id-b";
        bb.selector = "sel-b";
        snap->bindings.push_back(bb);
        crds_.publish(snap);
        upstream_.set_handler([this](const test::FakeRequest&) { return imds_info_; });
    }

    test::FakeResponse imds_info_{.status = 200,
                                  .headers = {{"Content-Type", "application/json"}},
                                  .body = R"({"tenantId":"e1e1e1e1-0000-4000-8000-00000000e1e1"})"};
};

TEST_F(Imds2023Test, TokenAnswerNamesTheIdentityAfterNmiFields) {
    NmiHandler handler = make_handler();
    const Reply reply = send(handler, "GET", kVault);
    ASSERT_EQ(reply.status, 200) << reply.body;
    const auto body = nlohmann::json::parse(reply.body);
    EXPECT_EQ(body["client_id"], "client-a");  // the source sent none: the identity's own
    // After NMI's fields (nlohmann sorts keys: the wire order is checked on the text).
    EXPECT_LT(reply.body.find("\"token_type\""), reply.body.find("\"client_id\""));
}

TEST_F(Imds2023Test, BypassCacheForcesOneFetchPerPodAndKeyPerInterval) {
    NmiHandler handler = make_handler();
    ASSERT_EQ(send(handler, "GET", kVault, kOtherBoundPod).status, 200);
    const std::string other_token =
        nlohmann::json::parse(send(handler, "GET", kVault, kOtherBoundPod).body)["access_token"];
    ASSERT_EQ(send(handler, "GET", kVault).status, 200);
    const int before = token_source_.calls();
    ASSERT_EQ(before, 2);

    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const Reply reply = send(handler, "GET", kVault + "&bypass_cache=true");
        ASSERT_EQ(reply.status, 200) << reply.body;
        seen.insert(nlohmann::json::parse(reply.body)["access_token"].get<std::string>());
    }
    EXPECT_EQ(token_source_.calls(), before + 1);  // one extra upstream call in the interval
    EXPECT_EQ(seen.size(), 1U);                    // the forced token, then served from cache
    // The other pod's cached token is not disturbed: same token, no upstream call.
    const Reply other = send(handler, "GET", kVault, kOtherBoundPod);
    EXPECT_EQ(nlohmann::json::parse(other.body)["access_token"], other_token);
    EXPECT_EQ(token_source_.calls(), before + 1);
    // Spellings IMDS accepts; anything but "true" is not a bypass.
    clock_.advance(std::chrono::seconds{300});
    EXPECT_EQ(send(handler, "GET", kVault + "&bypass_cache=TRUE").status, 200);
    EXPECT_EQ(token_source_.calls(), before + 2);
    EXPECT_EQ(send(handler, "GET", kVault + "&bypass_cache=1", kOtherBoundPod).status, 200);
    EXPECT_EQ(send(handler, "GET", kVault + "&bypass_cache=yes", kOtherBoundPod).status, 200);
    EXPECT_EQ(token_source_.calls(), before + 2);
    EXPECT_NE(last_line_of(*log_).find("cache=hit"), std::string::npos) << last_line_of(*log_);
}

TEST_F(Imds2023Test, IdentityInfoOfAManagedIdentityIsAskedOfImdsOnce) {
    NmiHandler handler = make_handler();
    for (int i = 0; i < 3; ++i) {
        const Reply reply = send(handler, "GET", kInfo);
        ASSERT_EQ(reply.status, 200) << reply.body;
        EXPECT_EQ(reply.body, R"({"tenantId":"e1e1e1e1-0000-4000-8000-00000000e1e1"})");
    }
    ASSERT_EQ(upstream_.requests(), 1U);
    const test::FakeRequest& got = upstream_.received().front();
    EXPECT_EQ(got.target, kInfo);
    EXPECT_EQ(got.headers.at("Metadata"), "true");
}

TEST_F(Imds2023Test, IdentityInfoOfAServicePrincipalIsItsTenantWithoutUpstream) {
    NmiHandler handler = make_handler();
    const Reply reply = send(handler, "GET", kInfo, kOtherBoundPod);
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.body, R"({"tenantId":")" + std::string{kTenant} + "\"}");
    EXPECT_EQ(upstream_.requests(), 0U);
}

TEST_F(Imds2023Test, IdentityInfoRefusals) {
    NmiHandler handler = make_handler();
    // An excepted pod has no bound identity here: 404, and nothing reaches IMDS.
    Reply reply = send(handler, "GET", kInfo, kExceptedPod);
    EXPECT_EQ(reply.status, 404) << reply.body;
    EXPECT_NE(reply.body.find("kube-system/excepted"), std::string::npos);
    // Without Metadata: IMDS's 400, before any lookup.
    reply = send(handler, "GET", kInfo, FieldList{{}});
    EXPECT_EQ(reply.status, 400);
    // A pod without a binding: 404 naming it.
    reply = send(handler, "GET", kInfo, kUnboundPod);
    EXPECT_EQ(reply.status, 404) << reply.body;
    EXPECT_NE(reply.body.find("default/unbound"), std::string::npos);
    // Only GET, as IMDS.
    reply = send(handler, "POST", kInfo);
    EXPECT_EQ(reply.status, 405) << reply.body;
    EXPECT_EQ(upstream_.requests(), 0U);
}

TEST_F(Imds2023Test, IdentityInfoHostileImdsAnswersAreNotEchoedOrKept) {
    NmiHandler handler = make_handler();
    imds_info_.body = R"({"tenantId":"t\",\"x\":\"y"})";
    Reply reply = send(handler, "GET", kInfo);
    EXPECT_EQ(reply.status, 503) << reply.body;
    EXPECT_EQ(reply.body.find("\\\"x"), std::string::npos);
    imds_info_.status = 500;
    imds_info_.body = "{}";
    EXPECT_EQ(send(handler, "GET", kInfo).status, 503);
    // Failures are not remembered: the next good answer is served and then kept.
    imds_info_.status = 200;
    imds_info_.body = R"({"tenantId":"good-tenant"})";
    EXPECT_EQ(send(handler, "GET", kInfo).body, R"({"tenantId":"good-tenant"})");
    EXPECT_EQ(send(handler, "GET", kInfo).body, R"({"tenantId":"good-tenant"})");
    EXPECT_EQ(upstream_.requests(), 3U);
}

}  // namespace
}  // namespace nmid::handlers::test_support
