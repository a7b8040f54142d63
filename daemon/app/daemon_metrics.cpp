#include "daemon_impl.hpp"

namespace nmid::app {

void Daemon::Impl::register_metrics() {
    if (workload) {
        workload->register_metrics(metrics);
    }
    metrics.add_gauge("nmid_ready", "1 when pods and CRDs are loaded and the listener accepts",
                      [this] { return ready() && listening ? 1.0 : 0.0; });
    metrics.add_gauge("nmid_assignment_waiters",
                      "Standard mode: token requests waiting for MIC's AzureAssignedIdentity",
                      [this] { return static_cast<double>(crd_store.waiters()); });
    metrics.add_gauge("nmid_token_cache_entries", "Tokens held in the cache",
                      [this] { return static_cast<double>(cache.stats().entries); });
    metrics.add_gauge("nmid_token_cache_inflight", "Upstream token fetches in flight",
                      [this] { return static_cast<double>(cache.stats().inflight); });
    metrics.add_counter("nmid_token_cache_coalesced_waiters_total",
                        "Requests that joined an in-flight fetch instead of starting one",
                        [this] { return static_cast<double>(cache.stats().joined); });
    metrics.add_counter("nmid_token_cache_refresh_ahead_total",
                        "Background refreshes started before expiry",
                        [this] { return static_cast<double>(cache.stats().refresh_ahead); });
    metrics.add_counter("nmid_token_cache_negative_hits_total",
                        "Requests answered from a remembered upstream failure",
                        [this] { return static_cast<double>(cache.stats().negative_hits); });
    metrics.add_gauge("nmid_pod_index_pods", "Pods indexed by IP",
                      [this] { return static_cast<double>(pods.stats().pods); });
    metrics.add_gauge(
        "nmid_pod_index_age_seconds", "Seconds since the last successful pod read", [this] {
            const auto s = pods.stats();
            if (s.last_refresh == SteadyTime{}) {
                return -1.0;
            }
            return std::chrono::duration<double>(clock.steady_now() - s.last_refresh).count();
        });
    metrics.add_counter("nmid_pod_refreshes_total", "Successful pod source reads",
                        [this] { return static_cast<double>(pods.stats().refreshes); });
    metrics.add_counter("nmid_pod_refresh_failures_total", "Failed pod source reads",
                        [this] { return static_cast<double>(pods.stats().refresh_failures); });
    metrics.add_counter("nmid_pod_coalesced_waiters_total",
                        "Lookups that waited on a shared pod refresh",
                        [this] { return static_cast<double>(pods.stats().coalesced_waiters); });
    register_source_metrics();
    register_security_metrics();
    metrics.add_gauge("nmid_connections_active", "Open pod-facing connections",
                      [this] { return static_cast<double>(server.stats().active); });
    metrics.add_labeled_counter(
        "nmid_connections_refused_total",
        "Pod-facing connections refused: over --max-connections-per-pod (pod_limit, 429) or "
        "--max-connections (global_limit, 503) with no idle connection to close",
        "reason", [this] {
            const auto st = server.stats();
            return std::vector<std::pair<std::string, double>>{
                {"pod_limit", static_cast<double>(st.refused_per_pod)},
                {"global_limit", static_cast<double>(st.refused)}};
        });
    metrics.add_counter(
        "nmid_connections_trimmed_total",
        "Idle keep-alive pod-facing connections closed to admit a new one over a cap",
        [this] { return static_cast<double>(server.stats().trimmed); });
}

// Issue 11: what nmid refused to serve, so that an operator sees a tenant's broken or hostile
// identity object, or a pod over its share, without reading logs.
void Daemon::Impl::register_security_metrics() {
    metrics.add_gauge("nmid_token_cache_bytes",
                      "Bytes the cached tokens take (keys, tokens and a fixed overhead per entry)",
                      [this] { return static_cast<double>(cache.stats().bytes); });
    metrics.add_gauge(
        "nmid_token_cache_queued",
        "Upstream calls (token fetches, proxied requests) waiting for the IMDS budget",
        [this] { return static_cast<double>(cache.stats().queued); });
    metrics.add_labeled_counter(
        "nmid_pod_limited_total", "Requests refused with 429 because the pod was over its share",
        "reason", [this] {
            const auto st = cache.stats();
            return std::vector<std::pair<std::string, double>>{
                {"pending_fetches", static_cast<double>(st.refused_pending)},
                {"tokens", static_cast<double>(st.refused_tokens)},
            };
        });
    metrics.add_gauge(
        "nmid_crd_snapshot_age_seconds",
        "Seconds since the identity source last confirmed its snapshot (the "
        "least recently confirmed kind; --crd-max-staleness denies tokens past it)",
        [this] { return std::chrono::duration<double>(crd_source->snapshot_age()).count(); });
    metrics.add_labeled_gauge(
        "nmid_identities_rejected",
        "AzureIdentity objects (and assignments) left out of the snapshot, by reason", "reason",
        [this] {
            const auto counts = crd_store.rejection_counts();
            std::vector<std::pair<std::string, double>> out;
            out.reserve(counts.size());
            for (std::size_t i = 0; i < counts.size(); ++i) {
                out.emplace_back(std::string{to_string(static_cast<RejectReason>(i))},
                                 static_cast<double>(counts[i]));
            }
            return out;
        });
}

void Daemon::Impl::register_source_metrics() {
    if (kubelet_pod_source != nullptr) {
        auto* k = kubelet_pod_source;
        metrics.add_counter("nmid_kubelet_pod_reads_total", "Successful kubelet /pods reads",
                            [k] { return static_cast<double>(k->stats().reads); });
        metrics.add_counter("nmid_kubelet_pod_read_failures_total",
                            "Failed kubelet /pods reads (transport, status, parse, deadline)",
                            [k] { return static_cast<double>(k->stats().failures); });
        metrics.add_gauge("nmid_kubelet_last_status",
                          "HTTP status of the last kubelet answer (0: none)",
                          [k] { return static_cast<double>(k->stats().last_status); });
    }
    if (api_pod_source != nullptr) {
        auto* a = api_pod_source;
        metrics.add_counter("nmid_pod_watch_lists_total", "Successful pod LISTs",
                            [a] { return static_cast<double>(a->stats().lists); });
        metrics.add_counter("nmid_pod_watch_failures_total", "Failed pod LISTs and watches", [a] {
            const auto st = a->stats();
            return static_cast<double>(st.list_failures + st.watch_failures);
        });
        metrics.add_counter("nmid_pod_watch_expired_total", "Pod relists after 410 Gone",
                            [a] { return static_cast<double>(a->stats().expired); });
        metrics.add_counter("nmid_pod_watch_events_total", "Pod watch events applied",
                            [a] { return static_cast<double>(a->stats().events); });
    }
    if (api_crd_source != nullptr) {
        auto* c = api_crd_source;
        const auto sum = [c](auto field) {
            return [c, field] {
                const auto st = c->stats();
                double total = 0;
                for (const auto& r : st.resources) {
                    total += static_cast<double>(field(r));
                }
                return total;
            };
        };
        metrics.add_counter("nmid_crd_watch_events_total",
                            "ADDED, MODIFIED and DELETED events applied, all kinds",
                            sum([](const CrdWatchStats& r) { return r.events; }));
        metrics.add_counter("nmid_crd_relists_total", "LISTs after the first one, all kinds",
                            sum([](const CrdWatchStats& r) { return r.relists; }));
        metrics.add_counter("nmid_crd_gone_total", "410 Gone answers, all kinds",
                            sum([](const CrdWatchStats& r) { return r.gone; }));
        metrics.add_counter("nmid_crd_watch_errors_total",
                            "Failed requests, dropped streams and bad objects, all kinds",
                            sum([](const CrdWatchStats& r) { return r.errors; }));
        metrics.add_gauge("nmid_crd_objects", "Identity objects held, all kinds",
                          sum([](const CrdWatchStats& r) { return r.objects; }));
    }
    if (secret_store) {
        auto* s = secret_store.get();
        metrics.add_counter("nmid_secret_reads_total", "Secrets read from the API server",
                            [s] { return static_cast<double>(s->api_reads()); });
    }
    if (reconciler) {
        auto* r = &*reconciler;
        metrics.add_gauge("nmid_iptables_in_sync", "1 when the last rule check succeeded",
                          [r] { return r->stats().in_sync ? 1.0 : 0.0; });
        metrics.add_counter("nmid_iptables_syncs_total", "Rule checks",
                            [r] { return static_cast<double>(r->stats().syncs); });
        metrics.add_counter("nmid_iptables_applies_total",
                            "Rule restores (rules were missing or different)",
                            [r] { return static_cast<double>(r->stats().applies); });
        metrics.add_counter("nmid_iptables_errors_total",
                            "Failed rule checks, restores, cleanups and conntrack deletions",
                            [r] { return static_cast<double>(r->stats().errors); });
        metrics.add_gauge("nmid_route_localnet_blocked",
                          "1 when DNAT to the loopback target is dropped (route_localnet off)",
                          [r] { return r->stats().route_localnet_warning.empty() ? 0.0 : 1.0; });
    }
}

}  // namespace nmid::app
