// DebugHandler against real snapshots (PodIndex, CrdStore, TokenCache) on a manual clock.

#include "nmid/explain/debug_handler.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"
#include "support/fake_http_server.hpp"
#include "support/fake_pod_source.hpp"
#include "support/fake_token_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid::explain {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr const char* kClient = "0123abcd-0000-0000-0000-00000000beef";

class NoHeaders final : public http::HeaderView {
public:
    [[nodiscard]] std::string_view get(std::string_view /*name*/) const override { return {}; }
    [[nodiscard]] bool contains(std::string_view /*name*/) const override { return false; }
    void for_each(void (* /*fn*/)(void*, std::string_view, std::string_view),
                  void* /*ctx*/) const override {}
};

class DebugHandlerTest : public ::testing::Test {
protected:
    DebugHandlerTest() {
        PodInfo bound = test::make_pod("default", "app", "10.0.0.5");
        bound.labels["aadpodidbinding"] = "sel";
        PodInfo plain = test::make_pod("default", "plain", "10.0.0.7");
        PodInfo wi = test::make_pod("default", "wi", "10.0.0.8");
        wi.labels["azure.workload.identity/use"] = "true";
        wi.service_account = "web";
        pod_source_.set(PodList{{bound, plain, wi}});
        run(pods_.refresh());

        auto snap = std::make_shared<CrdSnapshot>();
        AzureIdentity id;
        id.meta.namespace_name = "default";
        id.meta.name = "id-a";
        id.client_id = kClient;
        snap->identities.push_back(id);
        AzureIdentityBinding b;
        b.meta.namespace_name = "default";
        b.meta.name = "b-a";
        b.azure_identity = "id-a";
        b.selector = "sel";
        snap->bindings.push_back(b);
        crds_.publish(snap);

        TokenRequest request;
        request.identity.identity_namespace = "default";
        request.identity.identity_name = "id-a";
        request.identity.client_id = kClient;
        request.resource = "https://vault.azure.net";
        EXPECT_TRUE(run(cache_.get(request)).token);
        request.identity.identity_name = "someone-else";
        EXPECT_TRUE(run(cache_.get(request)).token);
        clock_.advance(3s);
    }

    DebugDependencies deps(handlers::WorkloadDependencies* workload = nullptr) {
        return DebugDependencies{
            .pods = pods_,
            .crds = crds_,
            .cache = cache_,
            .clock = clock_,
            .crd_age = [] { return Millis{250}; },
            .workload = workload,
            .identity = IdentitySettings{.mode = OperationMode::managed, .force_namespaced = true},
            .pod_source = "kubelet"};
    }

    template <class T>
    T run(asio::awaitable<T> task) {
        std::optional<T> out;
        asio::co_spawn(ioc_, std::move(task), [&](const std::exception_ptr& e, T value) {
            if (e) {
                std::rethrow_exception(e);
            }
            out = std::move(value);
        });
        ioc_.restart();
        EXPECT_TRUE(test::run_until(ioc_, [&] { return out.has_value(); }));
        return out.value_or(T{});
    }

    http::HttpResponse get(DebugHandler& handler, const std::string& target,
                           std::string_view method = "GET") {
        http::HttpRequest request;
        request.method = method;
        request.target = target;
        request.peer = asio::ip::make_address("127.0.0.1");
        request.headers = &no_headers_;
        return run(handler.handle(request));
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    test::FakePodSource pod_source_;
    PodIndex pods_{ioc_.get_executor(), pod_source_, clock_, PodSettings{}};
    CrdStore crds_;
    test::FakeTokenSource token_source_{clock_};
    TokenCache cache_{ioc_.get_executor(), token_source_, clock_, TokenCacheSettings{}};
    NoHeaders no_headers_;
};

TEST_F(DebugHandlerTest, ExplainsABoundPodByIpWithItsOwnCacheEntriesOnly) {
    DebugHandler handler{deps()};
    const auto r = get(handler, "/debug/explain?ip=10.0.0.5");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
    EXPECT_NE(r.body.find("pod: default/app\n"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("found in the pod source \"kubelet\" (read 3.0s ago)"),
              std::string::npos);
    EXPECT_NE(r.body.find("identities: managed mode, namespaced; snapshot read 0.2s ago"),
              std::string::npos);
    EXPECT_NE(r.body.find("  yes binding default/b-a: selector \"sel\" matches"),
              std::string::npos);
    EXPECT_NE(r.body.find("answer: token for AzureIdentity default/id-a (type 0, client "
                          "0123##### REDACTED #####beef)"),
              std::string::npos);
    EXPECT_NE(r.body.find("  default/id-a https://vault.azure.net: expires "), std::string::npos);
    EXPECT_EQ(r.body.find("someone-else"), std::string::npos);
    EXPECT_EQ(r.body.find(kClient), std::string::npos);
}

TEST_F(DebugHandlerTest, ExplainsADenialByNameAndAnUnknownIp) {
    DebugHandler handler{deps()};
    const auto denied = get(handler, "/debug/explain?namespace=default&pod=plain&format=json");
    EXPECT_EQ(denied.status, 200);
    EXPECT_EQ(denied.content_type, "application/json");
    const auto json = nlohmann::json::parse(denied.body);
    EXPECT_EQ(json["pod"]["name"], "plain");
    EXPECT_EQ(json["answer"]["reason"], "no_binding_label");
    EXPECT_EQ(json["answer"]["message"],
              "failed to get AzureIdentities for pod default/plain, error: pod has no "
              "aadpodidbinding label");
    EXPECT_TRUE(json["cache"].empty());

    const auto unknown = get(handler, "/debug/explain?ip=10.9.9.9");
    EXPECT_EQ(unknown.status, 200);
    EXPECT_EQ(unknown.body,
              "pod: not found (pod_not_found): no pod with IP 10.9.9.9 in the pod source "
              "\"kubelet\" (read 3.0s ago)\n");
}

TEST_F(DebugHandlerTest, WorkloadIdentityPodsGetWorkloadIdentitysAnswer) {
    TokenCache wi_cache{ioc_.get_executor(), token_source_, clock_, TokenCacheSettings{}};
    auto account = std::make_shared<workload::ServiceAccountInfo>();
    account->namespace_name = "default";
    account->name = "web";
    account->client_id = kClient;
    account->has_client_id = true;
    handlers::WorkloadDependencies workload{
        .find_account = [account](std::string_view ns, std::string_view name)
            -> std::shared_ptr<const workload::ServiceAccountInfo> {
            return ns == "default" && name == "web" ? account : nullptr;
        },
        .cache = wi_cache,
        .default_tenant = "tenant-a",
        .authority = "https://login.microsoftonline.com/",
        .projected = false};
    DebugHandler handler{deps(&workload)};
    const auto r = get(handler, "/debug/explain?ip=10.0.0.8");
    EXPECT_NE(r.body.find("workload identity: the pod opted in (azure.workload.identity/use=true), "
                          "ServiceAccount default/web"),
              std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find("answer: token from Azure AD for client 0123##### REDACTED #####beef in "
                          "tenant tenant-a"),
              std::string::npos);

    account->has_client_id = false;
    account->client_id.clear();
    const auto denied = get(handler, "/debug/explain?ip=10.0.0.8");
    EXPECT_NE(denied.body.find("answer: denied (workload identity, no_client_id): "),
              std::string::npos)
        << denied.body;
}

TEST_F(DebugHandlerTest, BadQueriesMethodsAndPathsAreRefused) {
    DebugHandler handler{deps()};
    const auto bad = get(handler, "/debug/explain?ip=10.0.0.5&namespace=default");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(bad.body,
              "bad query: give exactly one of ip=<pod IP> or namespace=<ns>&pod=<name>\n");
    EXPECT_EQ(get(handler, "/debug/explain?ip=10.0.0.5", "POST").status, 405);
    EXPECT_EQ(get(handler, "/metrics").status, 404);
    EXPECT_EQ(get(handler, "/debug/explain/../explain?ip=10.0.0.5").status, 404);
}

}  // namespace
}  // namespace nmid::explain
