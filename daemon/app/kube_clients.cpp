#include "kube_clients.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <utility>

namespace nmid::app {

namespace asio = boost::asio;

bool pods_from_api_server(const config::Config& c) {
    return c.pods.pods_file.empty() && c.pods.source == "apiserver";
}
bool pods_from_kubelet(const config::Config& c) {
    return c.pods.pods_file.empty() && c.pods.source != "apiserver";
}
bool crds_from_api_server(const config::Config& c) {
    return c.crds.crds_file.empty();
}
IdentityPolicy identity_policy(const CrdSettings& settings) {
    std::string error;
    auto policy = make_identity_policy(settings, &error);
    if (!policy) {
        throw StartupError("--aad-authority-allowlist: " + error);
    }
    return std::move(*policy);
}

namespace {

bool api_server_configured(const config::Config& c) {
    return !c.kubeconfig.empty() || std::getenv("KUBECONFIG") != nullptr ||
           std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
}

}  // namespace

KubeClients make_kube_clients(const config::Config& c, asio::io_context& ioc, Clock& clock,
                              const std::string& user_agent) {
    KubeClients k;
    const bool required = pods_from_api_server(c) || crds_from_api_server(c);
    if (required || api_server_configured(c)) {
        std::string error;
        auto loaded = kube::load_kube_config(c.kubeconfig, error);
        if (!loaded) {
            if (required) {
                throw StartupError("no API server connection (" + error +
                                   "); give --kubeconfig, or --pods-file and --crds-file for "
                                   "standalone mode");
            }
            spdlog::warn(
                "no API server connection ({}): service-principal identities (types "
                "1 and 2) cannot read their Secrets",
                error);
        } else {
            k.config = std::move(*loaded);
            kube::ApiServerClientSettings api_settings;
            api_settings.user_agent = user_agent;
            auto token = kube::make_token_provider(*k.config, clock,
                                                   api_settings.token_reread_interval, error);
            if (!token) {
                throw StartupError(error);
            }
            k.token = std::move(*token);
            auto api = kube::make_api_server_client(ioc.get_executor(), *k.config, k.token,
                                                    api_settings, error);
            if (!api) {
                throw StartupError(error);
            }
            k.api = std::move(*api);
            spdlog::info("API server {} ({})", k.config->server, k.config->source);
        }
    }
    if (pods_from_kubelet(c)) {
        if (c.pods.kubelet_url.empty()) {
            throw StartupError(
                "no kubelet URL: give --kubelet-url or set HOST_IP (the DaemonSet sets it from "
                "status.hostIP), or --pods-file for standalone mode");
        }
        kube::KubeletClientSettings s;
        s.url = c.pods.kubelet_url;
        s.ca_file = c.pods.kubelet_ca_file;
        s.insecure_skip_tls_verify = c.pods.kubelet_insecure_tls;
        s.user_agent = user_agent;
        // Kubelet serving certificates are usually signed by the cluster CA.
        if (s.ca_file.empty() && k.config) {
            s.ca_file = k.config->ca_file;
            s.ca_pem = k.config->ca_pem;
        }
        std::string error;
        auto kubelet = kube::make_kubelet_client(ioc.get_executor(), s, k.token, error);
        if (!kubelet) {
            throw StartupError("--kubelet-url " + c.pods.kubelet_url + ": " + error);
        }
        k.kubelet = std::move(*kubelet);
    }
    return k;
}

}  // namespace nmid::app
