// nmid-fake-cloud: the fakes of workload identity as one process, for the end-to-end suite
// (tests/e2e/workload_identity_test.py), which runs nmid as it runs in a node: a TLS fake API
// server (ServiceAccounts and pods list/watch, the TokenRequest subresource signing RS256
// JWTs) and a TLS fake Azure AD v2 endpoint that verifies assertions against the issuer's key
// and the federated credentials it is given. Test tooling: never part of nmid.
//
// Usage: nmid-fake-cloud CONFIG.json DIR
//   CONFIG: {"pods": [Pod...], "serviceaccounts": [ServiceAccount...],
//            "federations": [{"client_id": C, "subject": "system:serviceaccount:ns:sa"}],
//            "projected": [{"namespace","service_account","pod","uid","volume","path"}]}
//   Writes DIR/kubeconfig (static bearer token), DIR/ca.crt (the test CA: --aad-ca-file), and
//   for each "projected" entry the kubelet's file under DIR/kubelet (--kubelet-root-dir);
//   prints `listening api=<url> aad=<url>` once both listen. GET <api>/_fake/calls answers
//   {"tokenrequests":[{namespace,service_account,pod,status}], "aad":[{client_id,subject,
//   status,error_code}]}. SIGTERM or SIGINT ends it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "support/base64.hpp"
#include "support/fake_federated_aad.hpp"
#include "support/fake_token_issuer.hpp"
#include "support/test_ca.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace nmid::test;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream{path} << text;
}

// The kubelet's atomic-writer layout: <volume>/..data -> ..e2e, <path> -> ..data/<path>.
void project(const fs::path& root, const Json& p, FakeTokenIssuer& issuer) {
    const fs::path volume = root / "pods" / p.at("uid").get<std::string>() / "volumes" /
                            "kubernetes.io~projected" / p.at("volume").get<std::string>();
    const std::string path = p.at("path");
    write(volume / "..e2e" / path,
          issuer.mint(p.at("namespace"), p.at("service_account"), p.at("pod"), p.at("uid"),
                      "api://AzureADTokenExchange", 3600));
    fs::create_directory_symlink("..e2e", volume / "..data");
    const std::string top = path.substr(0, path.find('/'));
    fs::create_symlink("..data/" + top, volume / top);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: nmid-fake-cloud CONFIG.json DIR\n";
        return 2;
    }
    const Json config = Json::parse(std::ifstream{argv[1]});
    const fs::path dir = argv[2];
    const auto& pki = test_pki();
    const FakeTlsOptions tls{.cert_pem = pki.server.cert_pem, .key_pem = pki.server.key_pem};
    boost::asio::io_context ioc;

    FakeTokenIssuer issuer{unix_now};
    std::unique_ptr<FakeFederatedAad> aad;
    FakeApiServerOptions options = with_service_accounts();
    options.token = "e2e-token";
    // GET /_fake/calls: what the fakes saw (the issuer answers TokenRequests before this).
    FakeApiServer api{
        options, [&](FakeHttpServer::Handler h) {
            auto calls = [&, h = std::move(h)](const FakeRequest& r) {
                if (r.target != "/_fake/calls") {
                    return h(r);
                }
                Json out = {{"tokenrequests", Json::array()}, {"aad", Json::array()}};
                for (const auto& c : issuer.calls()) {
                    out["tokenrequests"].push_back(
                        {{"namespace", c.namespace_name},
                         {"service_account", c.service_account},
                         {"pod", c.body.is_object()
                                     ? c.body["spec"]["boundObjectRef"].value("name", "")
                                     : ""},
                         {"status", c.status}});
                }
                for (const auto& c : aad->calls()) {
                    out["aad"].push_back(
                        {{"client_id", c.form.count("client_id") ? c.form.at("client_id") : ""},
                         {"subject", c.subject},
                         {"status", c.status},
                         {"error_code", c.error_code}});
                }
                return FakeResponse{.status = 200,
                                    .headers = {{"Content-Type", "application/json"}},
                                    .body = out.dump()};
            };
            return std::make_unique<FakeHttpServer>(ioc, issuer.wrap(calls), "127.0.0.1", tls);
        }};
    issuer.attach(api);
    aad = std::make_unique<FakeFederatedAad>(ioc, unix_now, tls);
    aad->trust_issuer(issuer.issuer(), issuer.public_pem());
    for (const auto& pod : config.value("pods", Json::array())) {
        api.create("pods", pod);
    }
    for (const auto& sa : config.value("serviceaccounts", Json::array())) {
        api.create("serviceaccounts", sa);
    }
    for (const auto& f : config.value("federations", Json::array())) {
        aad->add_federated_credential(f.at("client_id"), issuer.issuer(), f.at("subject"));
    }
    for (const auto& p : config.value("projected", Json::array())) {
        project(dir / "kubelet", p, issuer);
    }
    write(dir / "ca.crt", pki.ca.cert_pem());
    write(dir / "kubeconfig",
          "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: "
          "https://127.0.0.1:" +
              std::to_string(api.port()) +
              "\n    certificate-authority-data: " + base64_encode(pki.ca.cert_pem()) +
              "\ncontexts:\n- name: fake\n  context: {cluster: fake, user: nmid}\n"
              "current-context: fake\nusers:\n- name: nmid\n  user:\n    token: e2e-token\n");
    std::cout << "listening api=https://127.0.0.1:" << api.port() << " aad=" << aad->base_url()
              << std::endl;
    boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
    ioc.run();
    return 0;
}
