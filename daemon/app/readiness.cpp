#include "nmid/app/readiness.hpp"

#include <optional>
#include <string>

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

std::string rejections_detail(const std::vector<RejectedIdentity>& rejected) {
    // A tenant's refused object never makes the node unready; it is shown, a few by name.
    constexpr std::size_t kNamed = 5;
    if (rejected.empty()) {
        return {};
    }
    std::string out = std::to_string(rejected.size()) + " identity object(s) refused:";
    for (std::size_t i = 0; i < rejected.size() && i < kNamed; ++i) {
        const auto& r = rejected[i];
        out += (i == 0 ? " " : ", ") + std::string{r.kind} + " " + r.namespace_name + "/" + r.name +
               " (" + std::string{to_string(r.rejection.reason)} + ")";
    }
    if (rejected.size() > kNamed) {
        out += ", ...";
    }
    return out;
}

std::string Daemon::Impl::crd_detail() const {
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(crd_source->snapshot_age());
    std::string out = "snapshot confirmed " + std::to_string(age.count()) + "s ago";
    if (!tokens_allowed(crd_source->snapshot_age(), config.crds.max_staleness)) {
        out += " (over --crd-max-staleness: tokens denied)";
    }
    const std::string rejected = rejections_detail(*crd_store.rejections());
    return rejected.empty() ? out : out + "; " + rejected;
}

std::vector<handlers::ReadinessCheck> Daemon::Impl::readiness() const {
    const auto pod_stats = pods.stats();
    std::vector<handlers::ReadinessCheck> checks{
        {"pods", pods.ready(),
         pods.ready() ? std::to_string(pod_stats.pods) + " pods"
                      : "no successful read of " + pod_source_name() + " yet"},
        {"crds", crd_store.ready(),
         crd_store.ready() ? crd_detail() : "no successful read of " + crd_source_name() + " yet"},
        {"listener", listening, listening ? std::string{} : "not accepting"},
        iptables_readiness(),
    };
    if (workload) {
        checks.push_back(workload->readiness());
    }
    return checks;
}

handlers::ReadinessCheck iptables_readiness(const std::optional<iptables::ReconcilerStats>& stats,
                                            bool conntrack_deletion) {
    if (!stats) {
        return {"iptables", true, "not managed (--manage-iptables=false)"};
    }
    const auto& st = *stats;
    std::string detail;
    const auto add = [&detail](const std::string& text) {
        detail += detail.empty() ? "" : "; ";
        detail += text;
    };
    if (!st.in_sync) {
        add(st.last_error.empty() ? "rules not synced yet" : st.last_error);
    }
    if (!st.route_localnet_warning.empty()) {
        add(st.route_localnet_warning);
    }
    const bool conntrack_pending = conntrack_deletion && st.ever_in_sync && !st.conntrack_done;
    if (conntrack_pending) {
        add("connections to IMDS opened before the rules are not deleted yet "
            "(--enable-conntrack-deletion): " +
            (st.last_error.empty() ? std::string{"not tried yet"} : st.last_error));
    }
    // Rules that were verified once are still in place unless removed by hand (the loop
    // restores them); a failing check is shown, but only a node that never got its rules,
    // whose loopback DNAT is dropped, or whose old connections to IMDS may still be open,
    // is not ready.
    const bool ok = st.ever_in_sync && st.route_localnet_warning.empty() && !conntrack_pending;
    return {"iptables", ok, detail};
}

handlers::ReadinessCheck Daemon::Impl::iptables_readiness() const {
    if (!reconciler) {
        return app::iptables_readiness(std::nullopt, false);
    }
    return app::iptables_readiness(reconciler->stats(), config.iptables.enable_conntrack_deletion);
}

}  // namespace nmid::app
