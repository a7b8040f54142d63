#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon_impl.hpp"

namespace nmid::app {

HttpServerSettings server_settings(const config::Config& config) {
    HttpServerSettings s = config.server;
    s.strand_per_connection = config.io_threads > 1;
    return s;
}

std::string kubenet_refusal(const config::Config& c) {
    if (c.allow_network_plugin_kubenet || !c.pods.pods_file.empty()) {
        return {};
    }
    std::error_code ec;
    if (!std::filesystem::exists(c.kubelet_config, ec)) {
        return {};
    }
    std::ifstream in(c.kubelet_config);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
        return "cannot read --kubelet-config " + c.kubelet_config;
    }
    if (text.str().find("--network-plugin=kubenet") != std::string::npos) {
        return "AAD Pod Identity is not supported for Kubenet. Review "
               "https://azure.github.io/aad-pod-identity/docs/configure/"
               "aad_pod_identity_on_kubenet/ for more details.";
    }
    return {};
}

PodSettings pod_settings(const config::Config& c) {
    PodSettings s = c.pods;
    if (pods_from_kubelet(c)) {
        s.poll_interval = c.pods.kubelet_poll_interval;
    }
    return s;
}

iptables::Settings iptables_settings(const config::Config& c) {
    iptables::Settings s;
    s.backend = iptables::parse_backend_choice(c.iptables.backend)
                    .value_or(iptables::BackendChoice::automatic);
    s.metadata_ip = c.upstream.metadata_ip;
    s.metadata_port = c.upstream.metadata_port;
    s.target_ip = c.server.address;
    s.target_port = c.server.port;
    s.update_interval = c.iptables.update_interval;
    s.set_route_localnet = c.iptables.set_route_localnet;
    s.enable_conntrack_deletion = c.iptables.enable_conntrack_deletion;
    s.cleanup_on_exit = c.iptables.cleanup_on_exit;
    return s;
}

}  // namespace nmid::app
