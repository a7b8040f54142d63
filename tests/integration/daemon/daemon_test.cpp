// The real nmid and imds-emulator binaries, as separate processes on loopback. Clients bind
// 127.0.0.2 (pod default/demo, bound), 127.0.0.3 (default/unbound), 127.0.0.4 (kube-system,
// excepted) so nmid sees them as different pods.
#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include "daemon_fixture.hpp"

namespace nmid {
namespace {

using namespace nmid::test;  // the fixture's constants (kVault, kClientId, ...)
using Daemon = test::DaemonTest;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST_F(Daemon, BoundPodGetsImdsShapedTokenServedFromCacheAfterwards) {
    start_emulator();
    start_nmid();
    auto r = token("127.0.0.2", kVault);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->headers["content-type"].rfind("application/json", 0), 0U);
    // NMI's field order, every value a string, resource echoed exactly.
    const std::vector<std::string> order{"access_token", "refresh_token", "expires_in",
                                         "expires_on",   "not_before",    "resource",
                                         "token_type"};
    std::size_t last = 0;
    for (const auto& key : order) {
        const auto at = r->body.find("\"" + key + "\":\"");
        ASSERT_NE(at, std::string::npos) << key << " missing or not a string: " << r->body;
        EXPECT_GE(at, last) << key << " out of order";
        last = at;
    }
    auto j = body_json(*r);
    EXPECT_EQ(j["resource"], "https://vault.azure.net");
    EXPECT_EQ(j["token_type"], "Bearer");
    EXPECT_EQ(std::to_string(std::stoll(j["expires_on"].get<std::string>())), j["expires_on"]);
    EXPECT_LE(std::stoll(j["expires_in"].get<std::string>()), 86400);
    // The emulator's JWT names the identity nmid chose (aud = resource, appid = client id).
    const std::string jwt = j["access_token"];
    EXPECT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2);

    auto again = token("127.0.0.2", kVault);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    EXPECT_EQ(body_json(*again)["access_token"], j["access_token"]);
    EXPECT_EQ(emulator_stats()["token_requests"], 1) << "second request must come from cache";
}

TEST_F(Daemon, MissingOrWrongMetadataHeaderIsAFast400WithImdsBody) {
    start_emulator();
    start_nmid();
    for (const Headers& h :
         {Headers{}, Headers{{"Metadata", "True"}}, Headers{{"Metadata", "1"}}}) {
        auto r = token("127.0.0.9", kVault, h);  // unknown IP: no lookup happens first
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400);
        EXPECT_EQ(
            body_json(*r),
            nlohmann::json::parse(
                R"({"error":"invalid_request","error_description":"Required metadata header not specified"})"));
    }
    // The JS SDK probe: no query string, no Metadata.
    auto probe = test::http_get("127.0.0.2", port_, kTokenPath);
    ASSERT_TRUE(probe);
    EXPECT_EQ(probe->status, 400);
    EXPECT_EQ(emulator_stats()["token_requests"], 0);
}

TEST_F(Daemon, RequestShapeErrorsAnswer400) {
    start_emulator();
    start_nmid();
    auto xff = token("127.0.0.2", kVault, {{"Metadata", "true"}, {"X-Forwarded-For", "10.0.0.1"}});
    ASSERT_TRUE(xff);
    EXPECT_EQ(xff->status, 400);
    auto no_resource = token("127.0.0.2", "api-version=2018-02-01");
    ASSERT_TRUE(no_resource);
    EXPECT_EQ(no_resource->status, 400);
    EXPECT_EQ(body_json(*no_resource)["error_description"], "parameter resource cannot be empty");
    for (const char* path :
         {"/metadata/identity\\oauth2\\token", "/metadata/identity%5Coauth2%5Ctoken"}) {
        auto odd = test::http_get("127.0.0.2", port_, std::string{path} + "?" + kVault,
                                  {{"Metadata", "true"}});
        ASSERT_TRUE(odd);
        EXPECT_EQ(odd->status, 400) << path;
        EXPECT_EQ(body_json(*odd)["error_description"], "Invalid request") << path;
    }
    // Another path under /metadata/identity: nmid's own 404, never IMDS's answer.
    auto other = test::http_get("127.0.0.2", port_, "/METADATA/identity/x/oauth2/y/token?" + kVault,
                                {{"Metadata", "true"}});
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    EXPECT_EQ(body_json(*other)["error"], "not_found");
    EXPECT_EQ(emulator_stats()["token_requests"], 0);
}

TEST_F(Daemon, UnknownPodIs500AndAmbiguousIpIsNeverGuessed) {
    start_emulator();
    auto pods = nlohmann::json::parse(read_file(dir_ / "pods.json"));
    auto twin = pods["items"][1];
    twin["metadata"]["name"] = "twin";
    twin["status"]["podIP"] = "127.0.0.2";  // claims demo's IP
    twin["status"]["podIPs"] = nlohmann::json::array({{{"ip", "127.0.0.2"}}});
    twin["metadata"]["labels"]["aadpodidbinding"] = "kv-reader";
    pods["items"].push_back(twin);
    std::ofstream(dir_ / "pods.json") << pods.dump();
    start_nmid();
    auto unknown = token("127.0.0.9", kVault);
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->status, 500);
    EXPECT_EQ(body_json(*unknown)["error_description"], "pod list is empty");
    auto ambiguous = token("127.0.0.2", kVault);
    ASSERT_TRUE(ambiguous);
    EXPECT_EQ(ambiguous->status, 500);
    EXPECT_NE(ambiguous->body.find("127.0.0.2"), std::string::npos);
    EXPECT_EQ(emulator_stats()["token_requests"], 0);
}

TEST_F(Daemon, UnboundPodIs404OrRetryable503WithFlag) {
    start_emulator();
    start_nmid();
    auto r = token("127.0.0.3", kVault);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    auto named = token("127.0.0.2", kVault + "&client_id=11111111-2222-3333-4444-555555555555");
    ASSERT_TRUE(named);
    EXPECT_EQ(named->status, 404);
    EXPECT_NE(body_json(*named)["error_description"].get<std::string>().find(
                  "no azure identity found for request clientID 1111##### REDACTED #####5555"),
              std::string::npos)
        << named->body;
    nmid_.reset();
    start_nmid({"--set-retry-after-header"});
    auto retry = token("127.0.0.3", kVault);
    ASSERT_TRUE(retry);
    EXPECT_EQ(retry->status, 503);
    EXPECT_EQ(retry->headers["retry-after"], "20");
}

TEST_F(Daemon, IdentitySelectorsPickTheBoundIdentity) {
    start_emulator();
    start_nmid();
    for (const std::string& q :
         {"&client_id=" + kClientId, "&msi_res_id=" + kResourceId, "&mi_res_id=" + kResourceId}) {
        auto r = token("127.0.0.2", kVault + q);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << q << ": " << r->body;
    }
}

TEST_F(Daemon, ExceptedPodIsPassedThroughToImds) {
    start_emulator();
    start_nmid();
    auto r = token("127.0.0.4", kVault);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    // IMDS's own body (the emulator adds client_id and ext_expires_in; nmid's does not).
    auto j = body_json(*r);
    EXPECT_EQ(j["client_id"], kClientId);
    EXPECT_TRUE(j.contains("ext_expires_in"));
    // Not cached by nmid: every call reaches IMDS.
    ASSERT_TRUE(token("127.0.0.4", kVault));
    EXPECT_EQ(emulator_stats()["token_requests"], 2);
}

TEST_F(Daemon, UpstreamRefusalIs403AndThrottlingKeeps429) {
    start_emulator();
    auto crds = read_file(dir_ / "crds.yaml");
    // An identity the emulated VM does not have: IMDS answers 400 Identity not found.
    const std::string other = "00000000-0000-0000-0000-0000000000b2";
    crds.replace(crds.find(kClientId), kClientId.size(), other);
    std::ofstream(dir_ / "crds.yaml") << crds;
    start_nmid({"--token-fetch-deadline=2s"});
    auto refused = token("127.0.0.2", kVault);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 403) << refused->body;
    EXPECT_NE(refused->body.find("Identity not found"), std::string::npos) << refused->body;

    nmid_.reset();
    crds.replace(crds.find(other), other.size(), kClientId);
    std::ofstream(dir_ / "crds.yaml") << crds;
    // Retry-After longer than the fetch deadline: nmid gives up at once and keeps the 429.
    set_faults(R"({"sequence":[{"status":429,"retry_after":30},{"status":429,"retry_after":30}]})");
    start_nmid({"--token-fetch-deadline=2s"});
    auto throttled = token("127.0.0.2", kVault);
    ASSERT_TRUE(throttled);
    EXPECT_EQ(throttled->status, 429) << throttled->body;
    EXPECT_FALSE(throttled->headers["retry-after"].empty());
    // Remembered: the next request is answered without another upstream call.
    const auto before = emulator_stats()["token_requests"].get<int>();
    auto again = token("127.0.0.2", kVault);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 429);
    EXPECT_EQ(emulator_stats()["token_requests"].get<int>(), before);
}

TEST_F(Daemon, HostTokenOnlyForLoopbackCallersWithPodHeaders) {
    start_emulator();
    start_nmid();
    const std::string target = "/host/token/?resource=https://vault.azure.net";
    auto missing = test::http_get("127.0.0.1", port_, target);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 400);
    const Headers pod{{"podns", "default"}, {"podname", "demo"}};
    auto remote = test::http_get("127.0.0.2", port_, target, pod);
    ASSERT_TRUE(remote);
    EXPECT_EQ(remote->status, 403);
    auto ok = test::http_get("127.0.0.1", port_, target, pod);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->status, 200) << ok->body;
    auto j = body_json(*ok);
    EXPECT_EQ(j["clientid"], kClientId);
    EXPECT_EQ(j["token"]["resource"], "https://vault.azure.net");
    auto unknown =
        test::http_get("127.0.0.1", port_, target, {{"podns", "default"}, {"podname", "nope"}});
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->status, 404);
}

TEST_F(Daemon, OtherPathsAreProxiedAndInstanceMetadataCanBeBlocked) {
    start_emulator();
    start_nmid();
    auto instance = test::http_get("127.0.0.2", port_, "/metadata/instance?api-version=2021-02-01",
                                   {{"Metadata", "true"}});
    ASSERT_TRUE(instance);
    EXPECT_EQ(instance->status, 200);
    EXPECT_TRUE(body_json(*instance).contains("compute"));
    auto capital = test::http_get("127.0.0.2", port_, "/metadata/Identity/oauth2/token?" + kVault,
                                  {{"Metadata", "true"}});
    ASSERT_TRUE(capital);
    EXPECT_EQ(capital->status, 400) << "an odd spelling of the token path: nmid's own 400";
    auto no_header =
        test::http_get("127.0.0.2", port_, "/metadata/instance?api-version=2021-02-01");
    ASSERT_TRUE(no_header);
    EXPECT_EQ(no_header->status, 400);
    nmid_.reset();
    start_nmid({"--block-instance-metadata"});
    auto blocked = test::http_get("127.0.0.2", port_, "/metadata/instance?api-version=2021-02-01",
                                  {{"Metadata", "true"}});
    ASSERT_TRUE(blocked);
    EXPECT_EQ(blocked->status, 403);
}

TEST_F(Daemon, NotReadyAnswers503WithRetryAfterUntilPodsAreLoaded) {
    start_emulator();
    fs::rename(dir_ / "pods.json", dir_ / "pods.later");
    start_nmid({}, /*wait_ready=*/false);
    auto early = token("127.0.0.2", kVault);
    ASSERT_TRUE(early);
    EXPECT_EQ(early->status, 503);
    EXPECT_FALSE(early->headers["retry-after"].empty());
    auto readyz = test::http_get("127.0.0.1", probe_port_, "/readyz");
    ASSERT_TRUE(readyz);
    EXPECT_EQ(readyz->status, 503);
    fs::rename(dir_ / "pods.later", dir_ / "pods.json");
    wait_until_ready();
    auto late = token("127.0.0.2", kVault);
    ASSERT_TRUE(late);
    EXPECT_EQ(late->status, 200);
}

// Standard mode with NMI's default budget (16 x 5 s): a pod MIC will serve waits for its
// assignment and is answered when it arrives (here: the CRD file gains it while the request
// is pending); a pod no binding selects is answered at once instead of after 80 s. Both
// requests run under http_request's 10 s client timeout, far inside the 80 s budget, so
// an answer at all proves neither waited for the budget.
TEST_F(Daemon, StandardModeAnswersWhenTheAssignmentArrivesAndUnselectedPodsAtOnce) {
    start_emulator();
    start_nmid({"--operation-mode=standard", "--find-identity-retry-interval=5"});

    auto unbound = token("127.0.0.3", kVault);
    ASSERT_TRUE(unbound);
    EXPECT_EQ(unbound->status, 404) << unbound->body;

    std::optional<test::SimpleResponse> bound;
    std::thread client{[&] { bound = token("127.0.0.2", kVault); }};
    // Parked on the snapshot: the gauge says so (bounded: each probe is a round trip).
    bool parked = false;
    for (int i = 0; i < 2000 && !parked; ++i) {
        auto m = test::http_get("127.0.0.1", metrics_port_, "/metrics");
        parked = m && m->body.find("\nnmid_assignment_waiters 1") != std::string::npos;
    }
    ASSERT_TRUE(parked);
    const std::string assignment = R"(---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureAssignedIdentity
metadata:
  name: demo-default-kv-reader
  namespace: default
  labels: {nodename: node-1}
spec:
  azureIdentityRef:
    metadata: {name: kv-reader, namespace: default}
    spec:
      type: 0
      clientID: )" + kClientId + R"(
      resourceID: )" + kResourceId +
                                   R"(
  azureBindingRef:
    metadata: {name: kv-reader-binding, namespace: default}
    spec: {azureIdentity: kv-reader, selector: kv-reader}
  pod: demo
  podNamespace: default
  nodename: node-1
status: {status: Assigned}
)";
    {
        std::ofstream out(dir_ / "crds.next");
        out << read_file(dir_ / "crds.yaml") << assignment;
    }
    fs::rename(dir_ / "crds.next", dir_ / "crds.yaml");
    client.join();
    ASSERT_TRUE(bound) << nmid_->output();
    EXPECT_EQ(bound->status, 200) << bound->body;
    EXPECT_EQ(body_json(*bound)["resource"], "https://vault.azure.net");
}

TEST_F(Daemon, AdminEndpointsServeHealthReadinessAndNmiMetrics) {
    start_emulator();
    start_nmid();
    ASSERT_TRUE(token("127.0.0.2", kVault));
    auto health = test::http_get("127.0.0.1", probe_port_, "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(health->body, "Active");
    auto metrics = test::http_get("127.0.0.1", metrics_port_, "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
    for (const char* name :
         {"aadpodidentity_nmi_operations_duration_seconds_bucket",
          "aadpodidentity_imds_operations_duration_seconds_bucket", "nmid_requests_total",
          "nmid_token_cache_entries", "nmid_pod_index_pods"}) {
        EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
    }
}

TEST_F(Daemon, SigtermExitsZero) {
    start_emulator();
    start_nmid();
    EXPECT_EQ(nmid_->signal_and_wait(SIGTERM, 10s), 0) << nmid_->output();
}

TEST(DaemonCli, HelpExitsZeroAndBadFlagExitsTwoWithOneLine) {
    const std::string nmid = std::string{NMID_BIN_DIR} + "/nmid";
    if (!fs::exists(nmid)) {
        GTEST_SKIP() << "nmid not built";
    }
    test::ChildProcess help(nmid, {"--help"});
    EXPECT_TRUE(help.wait_for_line("--metadata-header-required", 10s)) << help.output();
    EXPECT_EQ(help.signal_and_wait(0, 10s), 0);
    test::ChildProcess bad(nmid, {"--nmi-port=abc"});
    auto line = bad.wait_for_line("nmi-port", 10s);
    ASSERT_TRUE(line) << bad.output();
    EXPECT_EQ(bad.signal_and_wait(0, 10s), 2);
    EXPECT_EQ(std::count(bad.output().begin(), bad.output().end(), '\n'), 1) << bad.output();
}

TEST(DaemonCli, StartupRefusalsNameTheProblemAndExitOne) {
    const std::string nmid = std::string{NMID_BIN_DIR} + "/nmid";
    if (!fs::exists(nmid)) {
        GTEST_SKIP() << "nmid not built";
    }
    const fs::path dir = fs::temp_directory_path() / ("nmid-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string kubelet_config = (dir / "kubelet").string();
    std::ofstream(kubelet_config) << "KUBELET_FLAGS=--foo --network-plugin=kubenet --bar\n";
    const std::vector<std::string> base{"--manage-iptables=false", "--nmi-port=0",
                                        "--http-probe-port=0", "--prometheus-port=0",
                                        "--kubelet-config=" + kubelet_config};
    const auto run = [&](std::vector<std::string> extra, const std::string& expect) {
        std::vector<std::string> args = base;
        args.insert(args.end(), extra.begin(), extra.end());
        test::ChildProcess child(nmid, args);
        EXPECT_TRUE(child.wait_for_line(expect, 10s)) << child.output();
        EXPECT_EQ(child.signal_and_wait(0, 10s), 1) << child.output();
    };
    // NMI's kubenet refusal, word for word, in a cluster...
    run({"--kubelet-url=https://127.0.0.1:1"}, "AAD Pod Identity is not supported for Kubenet");
    // ... waived by the flag; then the missing API server connection is named.
    run({"--allow-network-plugin-kubenet"}, "no API server connection");
    // No kubelet address at all.
    run({"--allow-network-plugin-kubenet", "--crds-file=" + kubelet_config}, "no kubelet URL");
    fs::remove_all(dir);
}

}  // namespace
}  // namespace nmid
