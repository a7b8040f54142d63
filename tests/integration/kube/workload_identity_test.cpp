// Workload identity end to end against the fakes (issue 12): the real nmid binary, a fake API
// server answering ServiceAccount list/watch and TokenRequest with RS256 JWTs, and a fake
// Azure AD that verifies each assertion against the issuer's key and its federated credentials.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "integration/kube/kube_harness.hpp"

namespace nmid {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using test::KubeCluster;
using test::token_appid;

const test::TestIdentity kReader = test::test_identity("kv-reader", "a1");
constexpr const char* kClient = "6f0a6a3e-7e3b-4b38-9a4c-0123456789ab";
constexpr const char* kOtherClient = "11111111-2222-3333-4444-555555555555";
constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr const char* kSubject = "system:serviceaccount:shop:web";

Json workload_pod(const std::string& name, const std::string& ip, const std::string& sa = "web",
                  bool projected = false) {
    test::FakePod p;
    p.name = name;
    p.namespace_name = "shop";
    p.ip = ip;
    p.uid = "0f0e0d0c-0b0a-4009-8807-0000000000" + ip.substr(ip.rfind('.') + 1);
    p.service_account = sa;
    p.labels["azure.workload.identity/use"] = "true";
    Json pod = test::kubelet_pod(p);
    if (projected) {
        pod["spec"]["volumes"] = Json::parse(R"([{"name":"azure-identity-token","projected":{
            "sources":[{"serviceAccountToken":{"audience":"api://AzureADTokenExchange",
            "expirationSeconds":3600,"path":"azure-identity-token"}}]}}])");
    }
    return pod;
}

Json service_account(const std::string& name, const std::string& client_id) {
    return {{"apiVersion", "v1"},
            {"kind", "ServiceAccount"},
            {"metadata",
             {{"name", name},
              {"namespace", "shop"},
              {"annotations",
               {{"azure.workload.identity/client-id", client_id},
                {"azure.workload.identity/tenant-id", kTenant}}}}}};
}

class WorkloadIdentity : public ::testing::Test {
protected:
    void SetUp() override {
        if (!KubeCluster::binaries_built()) {
            GTEST_SKIP() << "build nmid and imds-emulator first (scripts/build.sh)";
        }
        cluster_ = std::make_unique<KubeCluster>();
    }
    KubeCluster& c() { return *cluster_; }

    /// A pod-identity pod (127.0.0.2), workload identity pods of shop/web at `ips`, and
    /// shop/api (127.0.0.9: annotated, not federated).
    void seed(const std::vector<std::string>& ips, bool projected = false) {
        c().on_fakes([&] {
            c().api().create("azureidentities", test::identity_object(kReader));
            c().api().create("azureidentitybindings",
                             test::binding_object("kv-reader-binding", "kv-reader", "kv-reader"));
            c().kubelet().put(test::bound_pod("demo", "127.0.0.2", "kv-reader"));
            std::size_t i = 0;
            for (const auto& ip : ips) {
                const Json pod = workload_pod("web-" + std::to_string(i++), ip, "web", projected);
                c().kubelet().put(pod);
                c().api().create("pods", pod);
            }
            const Json api_pod = workload_pod("api-0", "127.0.0.9", "api", projected);
            c().kubelet().put(api_pod);
            c().api().create("pods", api_pod);
            c().api().create("serviceaccounts", service_account("web", kClient));
            c().api().create("serviceaccounts", service_account("api", kOtherClient));
            c().federated().add_federated_credential(kClient, c().issuer().issuer(), kSubject);
        });
    }

    void start(const std::vector<std::string>& extra = {}) {
        c().start_emulator({kReader});
        std::vector<std::string> args{"--workload-identity",
                                      "--workload-identity-authority-host=" +
                                          c().on_fakes([&] { return c().federated().base_url(); })};
        args.insert(args.end(), extra.begin(), extra.end());
        c().start_nmid(args);
        ASSERT_TRUE(c().wait_ready()) << c().nmid().output();
    }

    std::size_t tokenrequests() {
        return c().on_fakes([&] { return c().issuer().calls().size(); });
    }
    std::size_t aad_calls() {
        return c().on_fakes([&] { return c().federated().calls().size(); });
    }

    std::unique_ptr<KubeCluster> cluster_;
};

TEST_F(WorkloadIdentity, TokenRequestSourceServesWorkloadAndPodIdentityInOneRun) {
    seed({"127.0.0.5"});
    start();
    const auto wi = c().token("127.0.0.5");
    ASSERT_TRUE(wi);
    ASSERT_EQ(wi->status, 200) << wi->body << c().nmid().output();
    EXPECT_EQ(token_appid(*wi), kClient);
    const Json body = Json::parse(wi->body);
    EXPECT_EQ(body["resource"], test::kVaultResource);
    EXPECT_TRUE(body["expires_on"].is_string());
    c().on_fakes([&] {
        ASSERT_EQ(c().federated().calls().size(), 1U);
        const auto& call = c().federated().calls()[0];
        EXPECT_EQ(call.subject, kSubject);
        EXPECT_EQ(call.tenant, kTenant);
        EXPECT_EQ(call.form.at("scope"), test::kVaultResource + "/.default");
        ASSERT_EQ(c().issuer().calls().size(), 1U);
        const auto& tr = c().issuer().calls()[0];
        EXPECT_EQ(tr.status, 201);
        EXPECT_EQ(tr.body["spec"]["boundObjectRef"]["name"], "web-0");
        EXPECT_EQ(tr.body["spec"]["audiences"], Json::array({"api://AzureADTokenExchange"}));
    });
    // The same run serves the pod-identity pod from IMDS.
    const auto pi = c().token("127.0.0.2");
    ASSERT_TRUE(pi);
    ASSERT_EQ(pi->status, 200) << pi->body;
    EXPECT_EQ(token_appid(*pi), kReader.client_id);

    // 100 requests from one pod for one resource: 1 TokenRequest, 1 Azure AD call.
    for (int i = 0; i < 99; ++i) {
        ASSERT_EQ(c().token("127.0.0.5")->status, 200);
    }
    EXPECT_EQ(tokenrequests(), 1U);
    EXPECT_EQ(aad_calls(), 1U);
    EXPECT_TRUE(c().nmid().wait_for_text("source=workload-identity", 5s));
}

TEST_F(WorkloadIdentity, AThousandConcurrentFirstRequestsFromTenPodsCostOneExchange) {
    std::vector<std::string> ips;
    for (int i = 10; i < 20; ++i) {
        ips.push_back("127.0.0." + std::to_string(i));
    }
    seed(ips);
    start();
    std::vector<std::future<int>> answers;
    answers.reserve(100);
    for (int t = 0; t < 100; ++t) {
        answers.push_back(std::async(std::launch::async, [&, t] {
            int ok = 0;
            for (int k = 0; k < 10; ++k) {
                const auto r = c().token(ips[static_cast<std::size_t>((t + k) % 10)]);
                ok += r && r->status == 200 ? 1 : 0;
            }
            return ok;
        }));
    }
    int ok = 0;
    for (auto& a : answers) {
        ok += a.get();
    }
    EXPECT_EQ(ok, 1000);
    EXPECT_LE(tokenrequests(), 10U);
    EXPECT_EQ(aad_calls(), 1U);
}

TEST_F(WorkloadIdentity, AServiceAccountWithoutAFederatedCredentialGetsAzureAdsError) {
    seed({"127.0.0.5"});
    start();
    const auto r = c().token("127.0.0.9");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << r->body;
    const Json body = Json::parse(r->body);
    EXPECT_EQ(body["error"], "invalid_request");
    EXPECT_NE(body["error_description"].get<std::string>().find("AADSTS70021"), std::string::npos)
        << r->body;
    EXPECT_NE(body["error_description"].get<std::string>().find("system:serviceaccount:shop:api"),
              std::string::npos);
}

TEST_F(WorkloadIdentity, AnAnnotationChangeThroughTheWatchAppliesAtOnce) {
    seed({"127.0.0.5"});
    start();
    ASSERT_EQ(token_appid(*c().token("127.0.0.5")), kClient);
    c().on_fakes([&] {
        c().federated().add_federated_credential(kOtherClient, c().issuer().issuer(), kSubject);
        c().api().update("serviceaccounts", service_account("web", kOtherClient));
    });
    std::string appid;
    for (const auto start = std::chrono::steady_clock::now();
         std::chrono::steady_clock::now() - start < 5s && appid != kOtherClient;) {
        const auto r = c().token("127.0.0.5");
        appid = r && r->status == 200 ? token_appid(*r) : "";
    }
    EXPECT_EQ(appid, kOtherClient);
}

TEST_F(WorkloadIdentity, ProjectedSourceReadsTheKubeletsFileWithoutTokenRequests) {
    seed({"127.0.0.5"}, /*projected=*/true);
    const auto root = c().dir() / "kubelet";
    const std::string uid = "0f0e0d0c-0b0a-4009-8807-00000000005";
    const auto volume =
        root / "pods" / uid / "volumes" / "kubernetes.io~projected" / "azure-identity-token";
    std::filesystem::create_directories(volume / "..2026_12_06");
    std::ofstream{volume / "..2026_12_06" / "azure-identity-token"} << c().on_fakes([&] {
        return c().issuer().mint("shop", "web", "web-0", uid, "api://AzureADTokenExchange", 3600);
    });
    std::filesystem::create_directory_symlink("..2026_12_06", volume / "..data");
    std::filesystem::create_symlink("..data/azure-identity-token", volume / "azure-identity-token");
    start({"--workload-identity-token-source=projected", "--kubelet-root-dir=" + root.string()});
    const auto r = c().token("127.0.0.5");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body << c().nmid().output();
    EXPECT_EQ(token_appid(*r), kClient);
    EXPECT_EQ(tokenrequests(), 0U);
    EXPECT_EQ(aad_calls(), 1U);
    // A pod without the volume (shop/api has one, but the file is not there): 403 saying so.
    const auto missing = c().token("127.0.0.9");
    ASSERT_TRUE(missing);
    EXPECT_NE(missing->body.find("no projected token file"), std::string::npos) << missing->body;
}

}  // namespace
}  // namespace nmid
