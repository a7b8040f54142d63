#include "daemon_impl.hpp"

namespace nmid::app {

std::string Daemon::Impl::pod_source_name() const {
    if (!config.pods.pods_file.empty()) {
        return config.pods.pods_file;
    }
    if (api_pod_source != nullptr) {
        return "the API server's pod list";
    }
    return config.pods.kubelet_url + "/pods";
}

std::string Daemon::Impl::crd_source_name() const {
    return config.crds.crds_file.empty() ? "the API server's identity lists"
                                         : config.crds.crds_file;
}

std::vector<handlers::ReadinessCheck> Daemon::Impl::readiness() const {
    const auto pod_stats = pods.stats();
    return {
        {"pods", pods.ready(),
         pods.ready() ? std::to_string(pod_stats.pods) + " pods"
                      : "no successful read of " + pod_source_name() + " yet"},
        {"crds", crd_store.ready(),
         crd_store.ready() ? std::string{} : "no successful read of " + crd_source_name() + " yet"},
        {"listener", listening, listening ? std::string{} : "not accepting"},
        iptables_readiness(),
    };
}

handlers::ReadinessCheck Daemon::Impl::iptables_readiness() const {
    if (!reconciler) {
        return {"iptables", true, "not managed (--manage-iptables=false)"};
    }
    const auto st = reconciler->stats();
    std::string detail;
    if (!st.in_sync) {
        detail = st.last_error.empty() ? "rules not synced yet" : st.last_error;
    }
    if (!st.route_localnet_warning.empty()) {
        detail += detail.empty() ? "" : "; ";
        detail += st.route_localnet_warning;
    }
    // Rules that were verified once are still in place unless removed by hand (the loop
    // restores them); a failing check is shown, but only a node that never got its rules,
    // or whose loopback DNAT is dropped, is not ready.
    const bool ok = st.ever_in_sync && st.route_localnet_warning.empty();
    return {"iptables", ok, detail};
}

}  // namespace nmid::app
