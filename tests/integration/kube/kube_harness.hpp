#pragma once

// A fake cluster for the real nmid binary: a TLS FakeApiServer (kubeconfig with the test CA and
// a tokenFile), a TLS FakeKubelet, a FakeAad and the IMDS emulator, with nmid as a child
// process. The fakes live on one thread of their own (FakeThread); the test talks to them
// through on_fakes() and waits on their state with wait_fakes(), and to nmid over HTTP from
// source addresses 127.0.0.x (nmid sees each as a pod IP). Header-only: shared by the
// integration tests and bench/kube_pod_discovery_bench.cpp.

#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "integration/kube/fake_thread.hpp"
#include "support/base64.hpp"
#include "support/fake_aad.hpp"
#include "support/fake_api_server.hpp"
#include "support/fake_federated_aad.hpp"
#include "support/fake_kubelet.hpp"
#include "support/fake_node_status.hpp"
#include "support/fake_token_issuer.hpp"
#include "support/http_get.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

namespace nmid::test {

using namespace std::chrono_literals;

inline const std::string kVaultResource = "https://vault.azure.net";
inline const std::string kTokenPath = "/metadata/identity/oauth2/token";
inline const std::string kInitialToken = "sa-token-1";

/// A user-assigned managed identity of the emulated VM.
struct TestIdentity {
    std::string name;
    std::string client_id;
    std::string resource_id;
};

inline TestIdentity test_identity(const std::string& name, const std::string& client_suffix) {
    return {name, "00000000-0000-0000-0000-0000000000" + client_suffix,
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/" +
                name};
}

inline nlohmann::json identity_object(const TestIdentity& id, const std::string& ns = "default") {
    return {{"apiVersion", "aadpodidentity.k8s.io/v1"},
            {"kind", "AzureIdentity"},
            {"metadata", {{"name", id.name}, {"namespace", ns}}},
            {"spec", {{"type", 0}, {"resourceID", id.resource_id}, {"clientID", id.client_id}}}};
}

inline nlohmann::json binding_object(const std::string& name, const std::string& identity,
                                     const std::string& selector,
                                     const std::string& ns = "default") {
    return {{"apiVersion", "aadpodidentity.k8s.io/v1"},
            {"kind", "AzureIdentityBinding"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec", {{"azureIdentity", identity}, {"selector", selector}}}};
}

/// MIC's AzureAssignedIdentity for `pod` (label nodename=<node>, as MIC writes it).
inline nlohmann::json assigned_object(const nlohmann::json& identity, const nlohmann::json& binding,
                                      const std::string& pod, const std::string& node,
                                      const std::string& status,
                                      const std::string& ns = "default") {
    const std::string identity_name = identity["metadata"]["name"];
    return {{"apiVersion", "aadpodidentity.k8s.io/v1"},
            {"kind", "AzureAssignedIdentity"},
            {"metadata",
             {{"name", pod + "-" + ns + "-" + identity_name},
              {"namespace", ns},
              {"labels", {{"nodename", node}}}}},
            {"spec",
             {{"azureIdentityRef", identity},
              {"azureBindingRef", binding},
              {"pod", pod},
              {"podNamespace", ns},
              {"nodename", node}}},
            {"status", {{"status", status}}}};
}

/// A pod labelled for binding selector `selector` ("" : no label) at `ip`.
inline FakePod bound_pod(const std::string& name, const std::string& ip,
                         const std::string& selector, const std::string& node = "node-1") {
    FakePod p;
    p.name = name;
    p.ip = ip;
    p.node = node;
    p.labels["app"] = name;
    if (!selector.empty()) {
        p.labels["aadpodidbinding"] = selector;
    }
    return p;
}

/// The `appid` claim of the emulator's JWT in an IMDS-shaped answer ("" when none): the
/// client id of the identity nmid chose.
inline std::string token_appid(const SimpleResponse& r) {
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("access_token") || !body["access_token"].is_string()) {
        return {};
    }
    const std::string jwt = body["access_token"];
    const auto first = jwt.find('.');
    const auto second = jwt.find('.', first + 1);
    if (first == std::string::npos || second == std::string::npos) {
        return {};
    }
    const auto claims = nlohmann::json::parse(
        base64url_decode(jwt.substr(first + 1, second - first - 1)).value_or(""), nullptr, false);
    return claims.is_object() && claims.contains("appid") && claims["appid"].is_string()
               ? claims["appid"].get<std::string>()
               : std::string{};
}

/// Unix seconds now (the fakes' clock: nmid runs on the real one).
inline std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The fakes (on their thread), the test PKI on disk, a kubeconfig, the token file, and the
/// processes. Throws std::runtime_error (with the child's output) when a process does not
/// start.
class KubeCluster {
public:
    KubeCluster() {
        const auto& pki = test_pki();
        files_.write("ca.crt", pki.ca.cert_pem());
        write_token(kInitialToken);
        fakes_.run([&] {
            issuer_ = std::make_unique<FakeTokenIssuer>(unix_now);
            FakeApiServerOptions options = with_nodes(with_service_accounts());
            options.token = kInitialToken;
            // Non-numeric resourceVersions catch a client that parses or compares them.
            options.resource_version_prefix = "rv-";
            const FakeTlsOptions tls{.cert_pem = pki.server.cert_pem,
                                     .key_pem = pki.server.key_pem};
            // The TokenRequest subresource is answered by the issuer, nodes/status by the
            // node status fake, the rest by the fake API server.
            api_ = std::make_unique<FakeApiServer>(options, [&](FakeHttpServer::Handler h) {
                return std::make_unique<FakeHttpServer>(
                    fakes_.ioc(), issuer_->wrap(node_status_.wrap(std::move(h))), "127.0.0.1", tls);
            });
            issuer_->attach(*api_);
            node_status_.attach(*api_);
            federated_ = std::make_unique<FakeFederatedAad>(fakes_.ioc(), unix_now, tls);
            federated_->trust_issuer(issuer_->issuer(), issuer_->public_pem());
            kubelet_ = std::make_unique<FakeKubelet>(fakes_.ioc(),
                                                     FakeKubeletOptions{.token = kInitialToken});
            // Over TLS (the test CA's 127.0.0.1 certificate): nmid refuses an http adEndpoint.
            aad_ = std::make_unique<FakeAad>(fakes_.ioc(), unix_now, "/", tls);
        });
        write_kubeconfig();
    }

    ~KubeCluster() {
        nmid_.reset();
        emulator_.reset();
        fakes_.run([&] {
            federated_.reset();
            aad_.reset();
            kubelet_.reset();
            api_.reset();
            issuer_.reset();
        });
        fakes_.stop();
    }

    KubeCluster(const KubeCluster&) = delete;
    KubeCluster& operator=(const KubeCluster&) = delete;

    // --- fakes (use api(), kubelet() and aad() only inside on_fakes / wait_fakes) ---------

    template <class F>
    auto on_fakes(F&& f) {
        return fakes_.run(std::forward<F>(f));
    }
    bool wait_fakes(std::function<bool()> pred, std::chrono::milliseconds timeout = 10s) {
        return fakes_.wait_until(std::move(pred), timeout);
    }
    [[nodiscard]] FakeApiServer& api() { return *api_; }
    [[nodiscard]] FakeKubelet& kubelet() { return *kubelet_; }
    [[nodiscard]] FakeAad& aad() { return *aad_; }
    /// Workload identity: the API server's TokenRequest issuer and Azure AD's v2 endpoint
    /// (it trusts the issuer's key).
    [[nodiscard]] FakeTokenIssuer& issuer() { return *issuer_; }
    [[nodiscard]] FakeFederatedAad& federated() { return *federated_; }
    /// The Node status subresource (--node-condition).
    [[nodiscard]] FakeNodeStatus& node_status() { return node_status_; }
    /// The fakes' io_context, for extra fakes a test makes (inside on_fakes only).
    [[nodiscard]] boost::asio::io_context& fakes_ioc() { return fakes_.ioc(); }

    // --- files ----------------------------------------------------------------------------

    [[nodiscard]] const std::filesystem::path& dir() const { return files_.path(); }
    [[nodiscard]] std::string kubeconfig() const { return (dir() / "kubeconfig").string(); }
    [[nodiscard]] std::string ca_file() const { return (dir() / "ca.crt").string(); }
    /// Replaces the token file atomically (a rename, as the kubelet swaps its symlink).
    void write_token(const std::string& token) const {
        files_.write("token.next", token + "\n");
        std::filesystem::rename(dir() / "token.next", dir() / "token");
    }

    // --- processes ------------------------------------------------------------------------

    static std::string bin(const std::string& name) {
        return std::string{NMID_BIN_DIR} + "/" + name;
    }
    static bool binaries_built() {
        return std::filesystem::exists(bin("nmid")) &&
               std::filesystem::exists(bin("imds-emulator"));
    }

    /// The IMDS emulator with these user-assigned identities.
    void start_emulator(const std::vector<TestIdentity>& identities) {
        std::vector<std::string> args{"--listen", "127.0.0.1:0"};
        for (const auto& id : identities) {
            args.insert(args.end(), {"--identity", id.client_id + ":" + id.resource_id});
        }
        emulator_ = std::make_unique<PumpedChild>(bin("imds-emulator"), args);
        const auto line = emulator_->wait_for_line("listening on", 20s);
        if (!line) {
            throw std::runtime_error("imds-emulator did not start: " + emulator_->output());
        }
        emulator_port_ = port_after(*line, "listening on").value_or(-1);
    }

    /// The arguments start_nmid() always passes (managed mode, OS-chosen ports, the fakes).
    [[nodiscard]] std::vector<std::string> base_args() const {
        std::vector<std::string> args = local_nmid_args(emulator_port_);
        args.insert(args.end(), {
                                    "--kubeconfig=" + kubeconfig(),
                                    "--kubelet-url=" + kubelet_url_,
                                    "--kubelet-ca-file=" + ca_file(),
                                    // Hermetic: never read this machine's /etc/default/kubelet.
                                    "--kubelet-config=" + (dir() / "no-kubelet-defaults").string(),
                                    "--node=node-1",
                                    // The FakeAad: trusted CA and an allowed authority.
                                    "--aad-ca-file=" + ca_file(),
                                    "--aad-authority-allowlist=127.0.0.1",
                                });
        return args;
    }

    /// Starts nmid with base_args() then `extra` (later flags win) and waits for its
    /// listener. Does not wait for readiness (wait_ready()).
    void start_nmid(const std::vector<std::string>& extra = {}) {
        auto args = base_args();
        args.insert(args.end(), extra.begin(), extra.end());
        nmid_ = std::make_unique<PumpedChild>(bin("nmid"), args);
        const auto line = nmid_->wait_for_line("listening on", 20s);
        if (!line) {
            throw std::runtime_error("nmid did not start: " + nmid_->output());
        }
        const NmidPorts ports = nmid_ports(*line);
        port_ = ports.token;
        probe_port_ = ports.probe;
        metrics_port_ = ports.metrics;
    }

    /// Both sources loaded (the daemon logs each) and /readyz agrees.
    bool wait_ready(std::chrono::milliseconds timeout = 20s) {
        if (!nmid_->wait_for_text("pod index: ready", timeout) ||
            !nmid_->wait_for_text("crds synced from the API server", timeout)) {
            return false;
        }
        const auto r = http_get("127.0.0.1", probe_port_, "/readyz");
        return r && r->status == 200;
    }

    [[nodiscard]] PumpedChild& nmid() { return *nmid_; }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] int probe_port() const { return probe_port_; }
    void set_kubelet_url(std::string url) { kubelet_url_ = std::move(url); }

    /// A token request from pod IP `ip`.
    std::optional<SimpleResponse> token(const std::string& ip,
                                        const std::string& resource = kVaultResource,
                                        std::chrono::milliseconds timeout = 10s) const {
        return http_request(ip, port_, "GET",
                            kTokenPath + "?api-version=2018-02-01&resource=" + resource,
                            {{"Metadata", "true"}}, {}, timeout);
    }

    /// The IMDS emulator's counters (GET /_emulator/stats; null when it does not answer).
    [[nodiscard]] nlohmann::json emulator_stats() const {
        const auto r = http_get("127.0.0.1", emulator_port_, "/_emulator/stats");
        return r && r->status == 200 ? nlohmann::json::parse(r->body, nullptr, false)
                                     : nlohmann::json{};
    }

    /// The value of the first sample of `name` on /metrics (-1 when absent).
    [[nodiscard]] double metric(const std::string& name) const {
        const auto r = http_get("127.0.0.1", metrics_port_, "/metrics");
        if (!r) {
            return -1;
        }
        const std::string key = "\n" + name + " ";
        const auto at = r->body.find(key);
        return at == std::string::npos ? -1 : std::atof(r->body.c_str() + at + key.size());
    }

private:
    void write_kubeconfig() {
        const std::uint16_t api_port = on_fakes([&] { return api_->port(); });
        kubelet_url_ = on_fakes([&] { return kubelet_->url(); });
        const std::string ca = base64_encode(test_pki().ca.cert_pem());
        files_.write("kubeconfig",
                     "apiVersion: v1\n"
                     "kind: Config\n"
                     "clusters:\n"
                     "- name: fake\n"
                     "  cluster:\n"
                     "    server: https://127.0.0.1:" +
                         std::to_string(api_port) +
                         "\n"
                         "    certificate-authority-data: " +
                         ca +
                         "\n"
                         "contexts:\n"
                         "- name: fake\n"
                         "  context: {cluster: fake, user: nmid, namespace: default}\n"
                         "current-context: fake\n"
                         "users:\n"
                         "- name: nmid\n"
                         "  user:\n"
                         "    tokenFile: " +
                         (dir() / "token").string() + "\n");
    }

    PemDir files_;
    FakeThread fakes_;
    FakeNodeStatus node_status_;
    std::unique_ptr<FakeTokenIssuer> issuer_;
    std::unique_ptr<FakeApiServer> api_;
    std::unique_ptr<FakeKubelet> kubelet_;
    std::unique_ptr<FakeAad> aad_;
    std::unique_ptr<FakeFederatedAad> federated_;
    std::string kubelet_url_;
    std::unique_ptr<PumpedChild> emulator_;
    std::unique_ptr<PumpedChild> nmid_;
    int emulator_port_ = -1;
    int port_ = -1;
    int probe_port_ = -1;
    int metrics_port_ = -1;
};

}  // namespace nmid::test
