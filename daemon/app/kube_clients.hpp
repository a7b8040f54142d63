#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "nmid/config/config.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/crd/identity_validation.hpp"
#include "nmid/kube/config.hpp"
#include "nmid/kube/transport.hpp"

namespace nmid::app {

/// A configuration that cannot run (unreadable kubeconfig, bad kubelet URL, ...): start()
/// turns it into its one-line reason.
struct StartupError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Where pods and identity objects come from (files win over the cluster).
bool pods_from_api_server(const config::Config& c);
bool pods_from_kubelet(const config::Config& c);
bool crds_from_api_server(const config::Config& c);

/// What --allow-cross-namespace-secrets and --aad-authority-allowlist allow (issue 11);
/// throws StartupError on a malformed allowlist.
IdentityPolicy identity_policy(const CrdSettings& settings);

/// The connection to the API server and the kubelet, built once at start-up. Every part is
/// optional: standalone mode (both files) needs none of them, and then an API server is
/// only used for Secrets (service-principal identities) when one is configured.
struct KubeClients {
    std::optional<kube::KubeConfig> config;
    std::shared_ptr<kube::TokenProvider> token;
    std::unique_ptr<kube::ApiServerClient> api;
    std::unique_ptr<kube::KubeletClient> kubelet;
};

/// Builds the clients `c` needs; throws StartupError when a required one cannot be built.
KubeClients make_kube_clients(const config::Config& c, boost::asio::io_context& ioc, Clock& clock,
                              const std::string& user_agent);

}  // namespace nmid::app
