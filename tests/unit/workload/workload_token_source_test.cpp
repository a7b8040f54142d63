#include "nmid/workload/workload_token_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nmid::workload {
namespace {

namespace asio = boost::asio;

// Hands out "sa-token-<pod name>" or the scripted failure of a pod.
class ScriptedTokens final : public ServiceAccountTokenProvider {
public:
    asio::awaitable<SaTokenResult> token(PodInfoPtr pod, SteadyTime /*deadline*/) override {
        asked.push_back(pod->name);
        if (const auto it = failures.find(pod->name); it != failures.end()) {
            co_return it->second;
        }
        ServiceAccountToken token;
        token.token = "sa-token-" + pod->name;
        token.expires_on = 4000;
        co_return token;
    }
    void retain(const std::vector<std::string>& /*live_uids*/) override {}

    std::map<std::string, FetchError> failures;
    std::vector<std::string> asked;
};

struct Recorded {
    std::string client_id, tenant_id, authority, resource, assertion;
};

FetchError error(Errc code, int status, std::string body) {
    FetchError e;
    e.code = code;
    e.upstream_status = status;
    e.upstream_body = std::move(body);
    return e;
}

PodInfoPtr make_pod(std::string name) {
    auto p = std::make_shared<PodInfo>();
    p->namespace_name = "shop";
    p->name = std::move(name);
    p->service_account = "web";
    return p;
}

class WorkloadTokenSourceTest : public ::testing::Test {
protected:
    FetchResult fetch(const TokenRequest& request) {
        WorkloadTokenSource source{
            tokens_,
            [this](std::string_view ns, std::string_view sa) {
                asked_for_ = std::string{ns} + "/" + std::string{sa};
                return pods_;
            },
            [this](const FederatedCall& call, SteadyTime) -> asio::awaitable<FetchResult> {
                calls_.push_back({std::string{call.client_id}, std::string{call.tenant_id},
                                  std::string{call.authority}, std::string{call.resource},
                                  std::string{call.assertion}});
                Token token;
                token.access_token = "aad-token";
                token.resource = call.resource;
                token.expires_on = 5000;
                co_return token;
            }};
        auto future =
            asio::co_spawn(ioc_, source.fetch(request, SteadyTime::max()), asio::use_future);
        ioc_.run();
        ioc_.restart();
        return future.get();
    }

    static TokenRequest request() {
        return {.identity = workload_identity("shop", "web", "client-1", "tenant-1",
                                              "https://login.microsoftonline.com/"),
                .resource = "https://vault.azure.net"};
    }

    asio::io_context ioc_;
    ScriptedTokens tokens_;
    std::vector<PodInfoPtr> pods_;
    std::string asked_for_;
    std::vector<Recorded> calls_;
};

TEST_F(WorkloadTokenSourceTest, ExchangesAPodsServiceAccountTokenForTheKeysIdentity) {
    pods_ = {make_pod("web-0"), make_pod("web-1")};
    const FetchResult result = fetch(request());
    ASSERT_TRUE(result) << result.error().upstream_body;
    EXPECT_EQ(result->access_token, "aad-token");
    EXPECT_EQ(asked_for_, "shop/web");
    ASSERT_EQ(calls_.size(), 1U);
    EXPECT_EQ(calls_[0].client_id, "client-1");
    EXPECT_EQ(calls_[0].tenant_id, "tenant-1");
    EXPECT_EQ(calls_[0].authority, "https://login.microsoftonline.com/");
    EXPECT_EQ(calls_[0].resource, "https://vault.azure.net");
    EXPECT_EQ(calls_[0].assertion, "sa-token-web-0");
    EXPECT_EQ(tokens_.asked, (std::vector<std::string>{"web-0"}));
}

TEST_F(WorkloadTokenSourceTest, APodWhoseTokenFailsIsSkippedForTheNext) {
    pods_ = {make_pod("web-0"), make_pod("web-1")};
    tokens_.failures["web-0"] = error(Errc::upstream_refused, 404, "pods \"web-0\" not found");
    const FetchResult result = fetch(request());
    ASSERT_TRUE(result);
    ASSERT_EQ(calls_.size(), 1U);
    EXPECT_EQ(calls_[0].assertion, "sa-token-web-1");
}

TEST_F(WorkloadTokenSourceTest, NoPodOfTheServiceAccountIsARefusalSayingSo) {
    const FetchResult result = fetch(request());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, Errc::upstream_refused);
    EXPECT_NE(result.error().upstream_body.find("no running pod of ServiceAccount shop/web"),
              std::string::npos);
    EXPECT_TRUE(calls_.empty());
}

TEST_F(WorkloadTokenSourceTest, AtMostThreePodsAreTriedAndTheLastErrorIsKept) {
    for (int i = 0; i < 5; ++i) {
        pods_.push_back(make_pod("web-" + std::to_string(i)));
        tokens_.failures["web-" + std::to_string(i)] =
            error(Errc::upstream_unavailable, 503, "apiserver down " + std::to_string(i));
    }
    const FetchResult result = fetch(request());
    ASSERT_FALSE(result);
    EXPECT_EQ(tokens_.asked.size(), 3U);
    EXPECT_EQ(result.error().code, Errc::upstream_unavailable);
    EXPECT_NE(result.error().upstream_body.find("no ServiceAccount token for shop/web: apiserver "
                                                "down 2"),
              std::string::npos)
        << result.error().upstream_body;
    EXPECT_TRUE(calls_.empty());
}

TEST_F(WorkloadTokenSourceTest, OtherKeysAreRefused) {
    pods_ = {make_pod("web-0")};
    TokenRequest imds = request();
    imds.identity.type = 0;
    const FetchResult result = fetch(imds);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, Errc::identity_unsupported);
    EXPECT_TRUE(tokens_.asked.empty());
}

TEST(WorkloadIdentityKey, SeparatesEveryFieldThatNamesAnotherToken) {
    const TokenIdentity base = workload_identity("shop", "web", "c", "t", "https://a/");
    EXPECT_EQ(base, workload_identity("shop", "web", "c", "t", "https://a/"));
    EXPECT_NE(base, workload_identity("shop2", "web", "c", "t", "https://a/"));
    EXPECT_NE(base, workload_identity("shop", "web2", "c", "t", "https://a/"));
    EXPECT_NE(base, workload_identity("shop", "web", "c2", "t", "https://a/"));
    EXPECT_NE(base, workload_identity("shop", "web", "c", "t2", "https://a/"));
    EXPECT_NE(base, workload_identity("shop", "web", "c", "t", "https://b/"));
    EXPECT_EQ(base.type, kWorkloadIdentityType);
}

}  // namespace
}  // namespace nmid::workload
