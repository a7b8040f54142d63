// --node-condition: the reporter of the Node condition NmidReady, fed by /readyz's checks.

#include "daemon_impl.hpp"

namespace nmid::app {

std::string Daemon::Impl::make_node_condition() {
    if (!config.node_condition) {
        return {};
    }
    if (!kube.api) {
        return "--node-condition writes the Node's status through the API server: give "
               "--kubeconfig or run in a cluster";
    }
    if (config.node_name.empty()) {
        return "--node-condition needs the node name: give --node or set NODE_NAME";
    }
    try {
        node_condition = std::make_unique<node::ConditionReporter>(
            *kube.api, clock, node::ReporterSettings{.node = config.node_name}, [this] {
                std::vector<node::Check> checks;
                for (auto& c : readiness()) {
                    checks.push_back(node::Check{.name = std::move(c.name),
                                                 .ready = c.ready,
                                                 .detail = std::move(c.detail)});
                }
                return checks;
            });
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    auto* r = node_condition.get();
    metrics.add_counter("nmid_node_condition_writes_total",
                        "Successful writes of the Node condition NmidReady",
                        [r] { return static_cast<double>(r->stats().writes); });
    metrics.add_counter("nmid_node_condition_failures_total",
                        "Failed writes of the Node condition NmidReady (see the log)",
                        [r] { return static_cast<double>(r->stats().failures); });
    metrics.add_gauge("nmid_node_condition_ready",
                      "1 when the NmidReady condition last written is True",
                      [r] { return r->stats().written_ready ? 1.0 : 0.0; });
    return {};
}

}  // namespace nmid::app
