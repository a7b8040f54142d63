// The token route for workload identity pods (issue 12): which pods it takes, what it asks
// the Azure AD cache for, what a denial and an Azure AD error look like to the pod, and that
// pod identity keeps serving the other pods of the same handler.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "handler_upstream_fixture.hpp"
#include "nmid/workload/workload_token_source.hpp"

namespace nmid::handlers {
namespace {

using test_support::kBoundPod;
using test_support::Reply;

constexpr std::string_view kWorkloadPod = "10.0.0.7";
constexpr std::string_view kPlainPod = "10.0.0.8";
constexpr std::string_view kClient = "6f0a6a3e-7e3b-4b38-9a4c-0123456789ab";
constexpr std::string_view kAuthority = "https://login.microsoftonline.com/";
constexpr std::string_view kToken =
    "/metadata/identity/oauth2/token?api-version=2018-02-01&"
    "resource=https://vault.azure.net";

class WorkloadRouteTest : public test_support::HandlerUpstreamTest {
protected:
    WorkloadRouteTest() {
        PodInfo bound = test::make_pod("default", "app", std::string{kBoundPod});
        bound.labels["aadpodidbinding"] = "sel";
        PodInfo wi = test::make_pod("shop", "web-0", std::string{kWorkloadPod});
        wi.labels["azure.workload.identity/use"] = "true";
        wi.labels["aadpodidbinding"] = "sel";  // the label wins over any binding
        wi.service_account = "web";
        PodInfo plain = test::make_pod("shop", "batch-0", std::string{kPlainPod});
        plain.service_account = "web";
        pod_source_.set(PodList{{bound, wi, plain}});
        clock_.advance(std::chrono::seconds{1});
        run_task(pods_.refresh());
        set_account(std::string{kClient}, "tenant-a");
    }

    void set_account(std::string client_id, std::string tenant) {
        auto account = std::make_shared<workload::ServiceAccountInfo>();
        account->namespace_name = "shop";
        account->name = "web";
        account->uid = "sa-uid";
        account->has_client_id = !client_id.empty();
        account->client_id = std::move(client_id);
        account->tenant_id = std::move(tenant);
        accounts_["shop/web"] = std::move(account);
    }

    NmiHandler make_workload_handler() { return make_handler({}, &workload_); }

    Reply token(NmiHandler& handler, std::string_view peer, const std::string& extra = {}) {
        return send(handler, "GET", std::string{kToken} + extra, peer);
    }

    std::string last_log_line() { return test_support::last_line_of(*log_); }

    std::map<std::string, std::shared_ptr<const workload::ServiceAccountInfo>> accounts_;
    test::FakeTokenSource aad_{clock_};
    TokenCache aad_cache_{ioc_.get_executor(), aad_, clock_, TokenCacheSettings{}};
    WorkloadDependencies workload_{
        .find_account = [this](std::string_view ns, std::string_view name)
            -> std::shared_ptr<const workload::ServiceAccountInfo> {
            const auto it = accounts_.find(std::string{ns} + "/" + std::string{name});
            return it == accounts_.end() ? nullptr : it->second;
        },
        .cache = aad_cache_,
        .default_tenant = "tenant-flag",
        .authority = std::string{kAuthority},
        .projected = false};
};

TEST_F(WorkloadRouteTest, LabelledPodGetsItsServiceAccountsTokenFromTheAzureAdCache) {
    NmiHandler handler = make_workload_handler();
    const Reply first = token(handler, kWorkloadPod);
    ASSERT_EQ(first.status, 200) << first.body;
    ASSERT_EQ(aad_.calls(), 1);
    EXPECT_EQ(token_source_.calls(), 0) << "the label wins over the pod's binding";
    const TokenIdentity& id = aad_.last_request().identity;
    EXPECT_EQ(id.type, workload::kWorkloadIdentityType);
    EXPECT_EQ(id.identity_namespace, "shop");
    EXPECT_EQ(id.identity_name, "web");
    EXPECT_EQ(id.client_id, kClient);
    EXPECT_EQ(id.tenant_id, "tenant-a");
    EXPECT_EQ(id.ad_endpoint, kAuthority);
    EXPECT_EQ(aad_.last_request().resource, "https://vault.azure.net");
    const auto body = nlohmann::json::parse(first.body);
    EXPECT_EQ(body["resource"], "https://vault.azure.net");
    EXPECT_TRUE(body["expires_on"].is_string());
    const std::string line = last_log_line();
    EXPECT_NE(line.find("source=workload-identity"), std::string::npos) << line;
    EXPECT_NE(line.find("cache=miss"), std::string::npos) << line;
    EXPECT_EQ(line.find(kClient), std::string::npos) << "client IDs are redacted: " << line;

    // The same pod again, and with its own client_id in any case: hits, no new call.
    EXPECT_EQ(token(handler, kWorkloadPod).status, 200);
    EXPECT_EQ(
        token(handler, kWorkloadPod, "&client_id=6F0A6A3E-7E3B-4B38-9A4C-0123456789AB").status,
        200);
    EXPECT_EQ(aad_.calls(), 1);
    EXPECT_NE(last_log_line().find("cache=hit"), std::string::npos) << last_log_line();
}

// Issue 14: IMDS 2023-07-01's fields and bypass_cache on the workload route, and its tenant.
TEST_F(WorkloadRouteTest, Imds2023ContractForWorkloadIdentityPods) {
    NmiHandler handler = make_workload_handler();
    const Reply first = token(handler, kWorkloadPod);
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(nlohmann::json::parse(first.body)["client_id"], kClient);
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(token(handler, kWorkloadPod, "&bypass_cache=true").status, 200);
    }
    EXPECT_EQ(aad_.calls(), 2);  // one forced exchange in the interval
    const std::string info = "/metadata/identity/info?api-version=2018-02-01";
    const Reply tenant = send(handler, "GET", info, kWorkloadPod);
    ASSERT_EQ(tenant.status, 200) << tenant.body;
    EXPECT_EQ(tenant.body, R"({"tenantId":"tenant-a"})");
    EXPECT_EQ(upstream_.requests(), 0U);  // the ServiceAccount's tenant: nothing asked of IMDS
    EXPECT_EQ(send(handler, "GET", info, kPlainPod).status, 404);
}

TEST_F(WorkloadRouteTest, OtherPodsKeepPodIdentityInTheSameHandler) {
    NmiHandler handler = make_workload_handler();
    const Reply bound = token(handler, kBoundPod);
    ASSERT_EQ(bound.status, 200) << bound.body;
    EXPECT_EQ(token_source_.calls(), 1);
    EXPECT_EQ(token_source_.last_request().identity.client_id, "client-a");
    // Same ServiceAccount, no label: not workload identity (and no binding: NMI's 404).
    EXPECT_EQ(token(handler, kPlainPod).status, 404);
    EXPECT_EQ(aad_.calls(), 0);
    EXPECT_EQ(last_log_line().find("source="), std::string::npos) << last_log_line();
}

TEST_F(WorkloadRouteTest, WithTheFeatureOffALabelledPodGetsPodIdentity) {
    NmiHandler handler = make_handler();
    const Reply reply = token(handler, kWorkloadPod);
    EXPECT_EQ(aad_.calls(), 0);
    EXPECT_EQ(token_source_.calls(), 0) << "shop has no binding: pod identity's 404";
    EXPECT_EQ(reply.status, 404) << reply.body;
}

TEST_F(WorkloadRouteTest, DenialsAre404sThatSayWhatToFix) {
    NmiHandler handler = make_workload_handler();
    const struct {
        const char* name;
        std::string query;
        std::function<void()> setup;
        std::string_view text;
    } cases[] = {
        {"foreign client_id", "&client_id=00000000-0000-0000-0000-000000000001", [] {},
         "is not the workload identity of pod shop/web-0"},
        {"object_id", "&object_id=00000000-0000-0000-0000-0000000000aa", [] {},
         "name nothing here"},
        {"msi_res_id", "&msi_res_id=/subscriptions/s/x", [] {}, "name nothing here"},
        {"no annotation", "", [this] { set_account("", ""); },
         "has no azure.workload.identity/client-id annotation"},
        {"unknown ServiceAccount", "", [this] { accounts_.clear(); },
         "ServiceAccount shop/web is not known to nmid"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        c.setup();
        const Reply reply = token(handler, kWorkloadPod, c.query);
        EXPECT_EQ(reply.status, 404) << reply.body;
        const auto body = nlohmann::json::parse(reply.body);
        EXPECT_NE(body["error_description"].get<std::string>().find(c.text), std::string::npos)
            << reply.body;
    }
    EXPECT_EQ(aad_.calls(), 0);
}

TEST_F(WorkloadRouteTest, AnAnnotationChangeIsANewKeyAtOnce) {
    NmiHandler handler = make_workload_handler();
    ASSERT_EQ(token(handler, kWorkloadPod).status, 200);
    set_account("11111111-2222-3333-4444-555555555555", "");  // new snapshot entry
    ASSERT_EQ(token(handler, kWorkloadPod).status, 200);
    ASSERT_EQ(aad_.calls(), 2);
    EXPECT_EQ(aad_.last_request().identity.client_id, "11111111-2222-3333-4444-555555555555");
    EXPECT_EQ(aad_.last_request().identity.tenant_id, "tenant-flag") << "the flag's tenant";
}

TEST_F(WorkloadRouteTest, AzureAdsErrorReachesThePodAsAzureAdWroteIt) {
    NmiHandler handler = make_workload_handler();
    FetchError refused;
    refused.code = Errc::upstream_refused;
    refused.upstream_status = 400;
    refused.upstream_body =
        R"({"error":"invalid_request","error_description":"AADSTS70021: No matching federated )"
        R"(identity record found for presented assertion. Assertion Subject: )"
        R"('system:serviceaccount:shop:web'.","error_codes":[70021]})";
    aad_.push(refused);
    const Reply reply = token(handler, kWorkloadPod);
    EXPECT_EQ(reply.status, 403) << reply.body;
    const auto body = nlohmann::json::parse(reply.body);
    EXPECT_EQ(body["error"], "invalid_request");
    EXPECT_NE(body["error_description"].get<std::string>().find("AADSTS70021"), std::string::npos);
    EXPECT_NE(last_log_line().find("error="), std::string::npos) << last_log_line();
}

}  // namespace
}  // namespace nmid::handlers
