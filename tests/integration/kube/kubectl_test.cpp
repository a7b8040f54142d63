// The fidelity check of FakeApiServer: a real kubectl (Debian package kubernetes-client)
// lists and watches the aadpodidentity CRDs over TLS with the test CA and the bearer token
// from the kubeconfig's tokenFile, after its own API discovery.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "integration/kube/kube_harness.hpp"

namespace nmid {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using test::KubeCluster;

const test::TestIdentity kReader = test::test_identity("kv-reader", "a1");
const test::TestIdentity kWriter = test::test_identity("kv-writer", "b2");

std::string find_kubectl() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs{path != nullptr ? path : "/usr/bin:/bin"};
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        const fs::path candidate = fs::path{dir} / "kubectl";
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) {
            return candidate.string();
        }
    }
    return {};
}

class Kubectl : public ::testing::Test {
protected:
    void SetUp() override {
        kubectl_ = find_kubectl();
        if (kubectl_.empty()) {
            GTEST_SKIP() << "kubectl is not installed (Debian package kubernetes-client): the "
                            "FakeApiServer fidelity check against a real client is skipped";
        }
        cluster_ = std::make_unique<KubeCluster>();
        cluster_->on_fakes([&] {
            auto& api = cluster_->api();
            api.create("azureidentities", test::identity_object(kReader));
            api.create("azureidentities", test::identity_object(kWriter, "team"));
            api.create("azureidentitybindings",
                       test::binding_object("kv-reader-binding", "kv-reader", "kv-reader"));
        });
    }

    /// kubectl with the cluster's kubeconfig and a private discovery cache, then `args`.
    std::unique_ptr<test::PumpedChild> kubectl(const std::vector<std::string>& args) {
        std::vector<std::string> all{"--kubeconfig=" + cluster_->kubeconfig(),
                                     "--cache-dir=" + (cluster_->dir() / "kubectl-cache").string()};
        all.insert(all.end(), args.begin(), args.end());
        return std::make_unique<test::PumpedChild>(kubectl_, all);
    }

    /// Runs kubectl to completion: its exit status and output.
    std::pair<int, std::string> run(const std::vector<std::string>& args) {
        auto child = kubectl(args);
        const int status = child->signal_and_wait(0, 30s);
        return {status, child->output()};
    }

    std::string kubectl_;
    std::unique_ptr<KubeCluster> cluster_;
};

TEST_F(Kubectl, ListsTheIdentityCrdsOverTlsWithTheBearerToken) {
    const auto [status, out] = run(
        {"get", "azureidentities", "--all-namespaces", "-o",
         R"(jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.clientID}{"\n"}{end})"});
    ASSERT_EQ(status, 0) << out;
    EXPECT_NE(out.find("default/kv-reader " + kReader.client_id + "\n"), std::string::npos) << out;
    EXPECT_NE(out.find("team/kv-writer " + kWriter.client_id + "\n"), std::string::npos) << out;

    // The table printer, one namespace.
    const auto [table_status, table] = run({"get", "azureidentitybindings", "-n", "default"});
    ASSERT_EQ(table_status, 0) << table;
    EXPECT_NE(table.find("NAME"), std::string::npos) << table;
    EXPECT_NE(table.find("kv-reader-binding"), std::string::npos) << table;

    // One object by name, as JSON.
    const auto [one_status, one] = run(
        {"get", "azureidentity.aadpodidentity.k8s.io", "kv-writer", "-n", "team", "-o", "json"});
    ASSERT_EQ(one_status, 0) << one;
    const auto object = Json::parse(one.substr(one.find('{')), nullptr, false);
    ASSERT_TRUE(object.is_object()) << one;
    EXPECT_EQ(object["kind"], "AzureIdentity");
    EXPECT_EQ(object["spec"]["resourceID"], kWriter.resource_id);

    // Missing objects are kubectl's NotFound, from the fake's Status body.
    const auto [missing_status, missing] = run({"get", "azureidentity", "nope", "-n", "default"});
    EXPECT_NE(missing_status, 0);
    EXPECT_NE(missing.find("NotFound"), std::string::npos) << missing;

    cluster_->on_fakes([&] {
        bool discovered = false;
        for (const auto& r : cluster_->api().requests()) {
            EXPECT_EQ(r.header("Authorization"), "Bearer " + test::kInitialToken) << r.target;
            discovered = discovered || r.target.rfind("/apis", 0) == 0;
        }
        EXPECT_TRUE(discovered) << "kubectl found the group through discovery";
    });
}

TEST_F(Kubectl, WatchesTheIdentityCrdsAsTheyChange) {
    auto watch = kubectl(
        {"get", "azureidentities", "--all-namespaces", "--watch", "--output-watch-events", "-o",
         R"(jsonpath={.type} {.object.metadata.namespace}/{.object.metadata.name} {.object.spec.clientID}{"\n"})"});
    // The initial list arrives as ADDED events.
    ASSERT_TRUE(watch->wait_for_line("ADDED default/kv-reader", 30s)) << watch->output();
    ASSERT_TRUE(watch->wait_for_line("ADDED team/kv-writer", 10s)) << watch->output();
    ASSERT_TRUE(cluster_->wait_fakes([&] { return cluster_->api().open_watches() == 1; }))
        << watch->output();

    auto later = test::test_identity("later", "c3");
    cluster_->on_fakes(
        [&] { cluster_->api().create("azureidentities", test::identity_object(later)); });
    ASSERT_TRUE(watch->wait_for_line("ADDED default/later " + later.client_id, 10s))
        << watch->output();

    const auto changed = test::test_identity("later", "d4");
    cluster_->on_fakes(
        [&] { cluster_->api().update("azureidentities", test::identity_object(changed)); });
    ASSERT_TRUE(watch->wait_for_line("MODIFIED default/later " + changed.client_id, 10s))
        << watch->output();

    cluster_->on_fakes([&] { cluster_->api().remove("azureidentities", "default", "later"); });
    ASSERT_TRUE(watch->wait_for_line("DELETED default/later", 10s)) << watch->output();

    cluster_->on_fakes([&] {
        const auto& w = cluster_->api().watches().back();
        EXPECT_EQ(w.plural, "azureidentities");
        EXPECT_FALSE(w.resource_version.empty()) << "kubectl watches from its list";
    });
    // `watch` is killed by PID when it goes out of scope.
}

}  // namespace
}  // namespace nmid
