// The admin listeners (probes and metrics) and the debug listener, opened by Daemon::start.

#include "daemon_impl.hpp"
#include "nmid/config/config.hpp"

namespace nmid::app {

std::string Daemon::Impl::open_admin_listeners() {
    // /healthz and /readyz on the probe port, /metrics on the Prometheus port; all three on
    // both when the ports are the same.
    std::vector<std::uint16_t> admin_ports{config.admin.probe_port};
    if (config.admin.prometheus_port != config.admin.probe_port || config.admin.probe_port == 0) {
        admin_ports.push_back(config.admin.prometheus_port);
    }
    for (auto port : admin_ports) {
        HttpServerSettings s;
        s.address = config.admin.address;
        s.port = port;
        s.max_connections = 64;
        s.max_connections_per_pod = 0;  // probes and scrapes come from few IPs
        // SO_REUSEPORT here too: a new nmid (a DaemonSet rollout with maxSurge) starts while
        // the old one still holds the probe and metrics ports; either may answer a probe or a
        // scrape during the overlap.
        s.reuse_port = true;
        auto server = std::make_unique<http::HttpServer>(ioc.get_executor(), admin_handler, s);
        if (auto r = server->listen(); !r) {
            return "cannot listen on " + s.address + ":" + std::to_string(port) + ": " +
                   r.error().message();
        }
        admin_servers.push_back(std::move(server));
    }
    return {};
}

std::string Daemon::Impl::open_debug_listener() {
    std::string host;
    std::uint16_t port = 0;
    if (!config::split_endpoint(config.admin.debug_address, host, port)) {
        return {};  // "" (off); config validated anything else
    }
    debug_handler = std::make_unique<explain::DebugHandler>(
        explain::DebugDependencies{.pods = pods,
                                   .crds = crd_store,
                                   .cache = cache,
                                   .clock = clock,
                                   .crd_age = [this] { return crd_source->snapshot_age(); },
                                   .workload = workload ? &workload->deps : nullptr,
                                   .identity = config.identity,
                                   .pod_source = pod_source_name()});
    HttpServerSettings s;
    s.address = host;
    s.port = port;
    s.max_connections = 8;          // a person or a script asking, not traffic
    s.max_connections_per_pod = 0;  // loopback: one peer
    s.reuse_port = true;            // a rollout's old and new nmid overlap, as for probes
    debug_server = std::make_unique<http::HttpServer>(ioc.get_executor(), *debug_handler, s);
    if (auto r = debug_server->listen(); !r) {
        return "cannot listen on " + config.admin.debug_address +
               " (--debug-address): " + r.error().message();
    }
    return {};
}

}  // namespace nmid::app
