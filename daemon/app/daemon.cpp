#include "nmid/app/daemon.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <list>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "nmid/cloud/aad_token_source.hpp"
#include "nmid/cloud/composite_token_source.hpp"
#include "nmid/cloud/imds_token_source.hpp"
#include "nmid/cloud/secret_store.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/crd/api_server_source.hpp"
#include "nmid/crd/crd_file_source.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/admin_handler.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/http/server.hpp"
#include "nmid/iptables/command_runner.hpp"
#include "nmid/iptables/reconciler.hpp"
#include "nmid/iptables/route_localnet.hpp"
#include "nmid/iptables/settings.hpp"
#include "nmid/kube/config.hpp"
#include "nmid/kube/transport.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/pods/api_server_pod_source.hpp"
#include "nmid/pods/kubelet_pod_source.hpp"
#include "nmid/pods/pod_file_source.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// NMI's operation_type values for aadpodidentity_imds_operations_*.
std::string_view nmi_operation_type(const TokenRequest& r) {
    if (r.identity.type != 0) {
        return "adal_token";
    }
    return r.identity.client_id.empty() ? "adal_token_msi" : "adal_token_msi_userassignedid";
}

asio::any_io_executor component_executor(asio::io_context& ioc, int threads) {
    // One thread: the io_context itself, so hops are inline. Several: a strand per component.
    if (threads <= 1) {
        return ioc.get_executor();
    }
    return asio::make_strand(ioc);
}

HttpServerSettings server_settings(const config::Config& config) {
    HttpServerSettings s = config.server;
    s.strand_per_connection = config.io_threads > 1;
    return s;
}

/// A configuration that cannot run (unreadable kubeconfig, bad kubelet URL, ...): start()
/// turns it into its one-line reason.
struct StartupError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

bool pods_from_api_server(const config::Config& c) {
    return c.pods.pods_file.empty() && c.pods.source == "apiserver";
}
bool pods_from_kubelet(const config::Config& c) {
    return c.pods.pods_file.empty() && c.pods.source != "apiserver";
}
bool crds_from_api_server(const config::Config& c) {
    return c.crds.crds_file.empty();
}

/// The connection to the API server and the kubelet, built once at start-up. Every part is
/// optional: standalone mode (both files) needs none of them, and then an API server is
/// only used for Secrets (service-principal identities) when one is configured.
struct KubeClients {
    std::optional<kube::KubeConfig> config;
    std::shared_ptr<kube::TokenProvider> token;
    std::unique_ptr<kube::ApiServerClient> api;
    std::unique_ptr<kube::KubeletClient> kubelet;
};

bool api_server_configured(const config::Config& c) {
    return !c.kubeconfig.empty() || std::getenv("KUBECONFIG") != nullptr ||
           std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
}

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

/// NMI's kubenet refusal (CVE-2021-1677: on kubenet a pod with NET_RAW can spoof another
/// pod's IP). Only in a cluster (pods not from a file), unless --allow-network-plugin-kubenet.
/// A missing file is not fatal (only AKS writes it); an unreadable one is, as in NMI.
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

}  // namespace

struct Daemon::Impl {
    explicit Impl(config::Config c)
        : config(std::move(c)),
          ioc(config.io_threads),
          kube(make_kube_clients(config, ioc, clock, user_agent())),
          imds_client(
              ioc.get_executor(),
              net::HttpClientSettings{.host = config.upstream.metadata_ip,
                                      .port = config.upstream.metadata_port,
                                      .connect_timeout = config.upstream.connect_timeout,
                                      .pool_size = config.upstream.pool_size,
                                      .max_response_body = config.upstream.max_response_body,
                                      .host_header = {}}),
          imds_source(imds_client, clock, user_agent()),
          upstream(make_upstream()),
          cache(component_executor(ioc, config.io_threads), upstream, clock, config.cache,
                [this](const UpstreamAttempt& a) {
                    metrics.record_upstream(a.request->identity.type != 0 ? "aad" : "imds",
                                            nmi_operation_type(*a.request), a.status,
                                            a.error == Errc::ok, a.background, a.duration);
                }),
          pod_source(make_pod_source()),
          pods(component_executor(ioc, config.io_threads), *pod_source, clock,
               pod_settings(config)),
          crd_source(make_crd_source()),
          handler(handlers::NmiDependencies{.pods = pods,
                                            .crds = crd_store,
                                            .cache = cache,
                                            .imds = imds_client,
                                            .metrics = metrics,
                                            .clock = clock,
                                            .ready = [this] { return ready(); }},
                  config.handlers, config.identity, config.upstream),
          server(ioc.get_executor(), handler, server_settings(config)),
          admin_handler(metrics, [this] { return readiness(); }),
          signals(ioc, SIGINT, SIGTERM) {}

    ~Impl() { parse_pool.join(); }

    std::string user_agent() const {
        std::string ua = config.upstream.user_agent;
        if (!config.custom_user_agent.empty()) {
            ua += " " + config.custom_user_agent;
        }
        return ua;
    }

    /// IMDS for managed identities; AAD (with Secrets from the API server) for service
    /// principals when an API server is configured.
    TokenSource& make_upstream() {
        if (!kube.api) {
            return imds_source;
        }
        secret_store = std::make_unique<cloud::ApiServerSecretStore>(
            component_executor(ioc, config.io_threads), *kube.api, clock);
        cloud::AadSettings aad;
        aad.user_agent = user_agent();
        aad.connect_timeout = config.upstream.connect_timeout;
        aad.ca_file = config.aad_ca_file;
        try {
            aad_source = std::make_unique<cloud::AadTokenSource>(
                component_executor(ioc, config.io_threads), *secret_store, clock, aad);
        } catch (const std::invalid_argument& e) {
            throw StartupError(std::string{"--aad-ca-file: "} + e.what());
        }
        composite_source = std::make_unique<cloud::CompositeTokenSource>(imds_source, *aad_source);
        return *composite_source;
    }

    std::unique_ptr<PodSource> make_pod_source() {
        if (!config.pods.pods_file.empty()) {
            return std::make_unique<PodFileSource>(config.pods.pods_file);
        }
        if (pods_from_api_server(config)) {
            if (config.node_name.empty()) {
                throw StartupError(
                    "--pod-source=apiserver needs the node name: give --node or "
                    "set NODE_NAME");
            }
            ApiServerPodSourceSettings s;
            s.node_name = config.node_name;
            auto source = std::make_unique<ApiServerPodSource>(
                component_executor(ioc, config.io_threads), *kube.api, clock,
                parse_pool.get_executor(), s);
            api_pod_source = source.get();
            return source;
        }
        auto source =
            std::make_unique<KubeletPodSource>(*kube.kubelet, parse_pool.get_executor(), clock);
        kubelet_pod_source = source.get();
        return source;
    }

    std::unique_ptr<CrdSource> make_crd_source() {
        if (!config.crds.crds_file.empty()) {
            return std::make_unique<CrdFileSource>(clock, config.crds);
        }
        if (config.identity.mode == OperationMode::standard && config.node_name.empty()) {
            throw StartupError(
                "standard mode reads this node's AzureAssignedIdentities: give "
                "--node or set NODE_NAME");
        }
        ApiServerCrdSettings s;
        s.node_name = config.node_name;
        s.mode = config.identity.mode;
        auto source = std::make_unique<ApiServerCrdSource>(*kube.api, clock, s);
        api_crd_source = source.get();
        return source;
    }

    bool ready() const { return pods.ready() && crd_store.ready(); }

    std::string pod_source_name() const {
        if (!config.pods.pods_file.empty()) {
            return config.pods.pods_file;
        }
        if (api_pod_source != nullptr) {
            return "the API server's pod list";
        }
        return config.pods.kubelet_url + "/pods";
    }

    std::string crd_source_name() const {
        return config.crds.crds_file.empty() ? "the API server's identity lists"
                                             : config.crds.crds_file;
    }

    std::vector<handlers::ReadinessCheck> readiness() const {
        const auto pod_stats = pods.stats();
        return {
            {"pods", pods.ready(),
             pods.ready() ? std::to_string(pod_stats.pods) + " pods"
                          : "no successful read of " + pod_source_name() + " yet"},
            {"crds", crd_store.ready(),
             crd_store.ready() ? std::string{}
                               : "no successful read of " + crd_source_name() + " yet"},
            {"listener", listening, listening ? std::string{} : "not accepting"},
            iptables_readiness(),
        };
    }

    handlers::ReadinessCheck iptables_readiness() const {
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

    void register_metrics() {
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
        metrics.add_gauge("nmid_connections_active", "Open pod-facing connections",
                          [this] { return static_cast<double>(server.stats().active); });
        metrics.add_labeled_counter(
            "nmid_connections_refused_total",
            "Pod-facing connections refused: over --max-connections-per-pod (pod_limit, 429) or "
            "--max-connections (global_limit, 503) with no idle connection to close",
            "reason",
            {{"pod_limit", [this] { return static_cast<double>(server.stats().refused_per_pod); }},
             {"global_limit", [this] { return static_cast<double>(server.stats().refused); }}});
        metrics.add_counter(
            "nmid_connections_trimmed_total",
            "Idle keep-alive pod-facing connections closed to admit a new one over a cap",
            [this] { return static_cast<double>(server.stats().trimmed); });
    }

    void register_source_metrics() {
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
            metrics.add_counter(
                "nmid_pod_watch_failures_total", "Failed pod LISTs and watches", [a] {
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
            metrics.add_gauge(
                "nmid_route_localnet_blocked",
                "1 when DNAT to the loopback target is dropped (route_localnet off)",
                [r] { return r->stats().route_localnet_warning.empty() ? 0.0 : 1.0; });
        }
    }

    /// Spawns a long-running task owned by the daemon: cancelled at shutdown.
    template <class Awaitable>
    void spawn(const char* name, Awaitable task) {
        auto& signal = task_signals.emplace_back();
        asio::co_spawn(
            ioc, std::move(task),
            asio::bind_cancellation_slot(signal.slot(), [name](const std::exception_ptr& e) {
                if (!e) {
                    return;
                }
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("task {} failed: {}", name, ex.what());
                }
            }));
    }

    /// The reconcile loop until shutdown; then, with --cleanup-rules-on-exit, the rules are
    /// removed (after the loop, never concurrently with a sync).
    asio::awaitable<void> manage_rules() {
        co_await reconciler->run();
        if (!config.iptables.cleanup_on_exit) {
            spdlog::info(
                "iptables: rules left in place (fail-closed); `nmid cleanup` removes them");
            co_return;
        }
        co_await asio::this_coro::reset_cancellation_state();
        const Result<void> removed = co_await reconciler->cleanup();
        if (removed) {
            spdlog::info("iptables: rules removed (--cleanup-rules-on-exit)");
        } else {
            spdlog::error("iptables: removing the rules failed: {}",
                          reconciler->stats().last_error);
        }
        logging::flush();
    }

    asio::awaitable<void> shutdown(std::string reason) {
        if (stopping) {
            co_return;
        }
        stopping = true;
        spdlog::info("{}, shutting down (grace {} ms)", reason, config.shutdown_grace.count());
        listening = false;
        server.stop();
        co_await server.drain(clock.steady_now() + config.shutdown_grace);
        cache.stop();
        for (auto& s : task_signals) {
            s.emit(asio::cancellation_type::terminal);
        }
        for (auto& admin : admin_servers) {
            admin->stop();
        }
        for (auto& admin : admin_servers) {
            co_await admin->drain(clock.steady_now() + 1s);
        }
        imds_client.close_idle();
        signals.cancel();
        spdlog::info("exiting with 0");
        logging::flush();
    }

    config::Config config;
    asio::io_context ioc;
    SystemClock clock;
    metrics::Metrics metrics;
    // Parses large PodLists off the I/O thread; joined last (the destructor) so that no
    // parse outlives the sources.
    asio::thread_pool parse_pool{1};
    KubeClients kube;
    net::HttpClient imds_client;
    cloud::ImdsTokenSource imds_source;
    std::unique_ptr<cloud::ApiServerSecretStore> secret_store;
    std::unique_ptr<cloud::AadTokenSource> aad_source;
    std::unique_ptr<cloud::CompositeTokenSource> composite_source;
    TokenSource& upstream;
    TokenCache cache;
    KubeletPodSource* kubelet_pod_source = nullptr;
    ApiServerPodSource* api_pod_source = nullptr;
    std::unique_ptr<PodSource> pod_source;
    PodIndex pods;
    ApiServerCrdSource* api_crd_source = nullptr;
    std::unique_ptr<CrdSource> crd_source;
    CrdStore crd_store;
    iptables::ProcessCommandRunner command_runner;
    std::optional<iptables::Reconciler> reconciler;
    handlers::NmiHandler handler;
    http::HttpServer server;
    handlers::AdminHandler admin_handler;
    std::vector<std::unique_ptr<http::HttpServer>> admin_servers;
    asio::signal_set signals;
    std::list<asio::cancellation_signal> task_signals;  // stable addresses
    bool listening = false;
    bool stopping = false;
};

Daemon::Daemon(config::Config config) : config_(std::move(config)) {}
Daemon::~Daemon() = default;

std::string Daemon::start() {
    if (auto refusal = kubenet_refusal(config_); !refusal.empty()) {
        return refusal;
    }
    try {
        impl_ = std::make_unique<Impl>(std::move(config_));
    } catch (const StartupError& e) {
        return e.what();
    }
    auto& d = *impl_;
    const auto& c = d.config;
    if (auto r = d.server.listen(); !r) {
        return "cannot listen on " + c.server.address + ":" + std::to_string(c.server.port) + ": " +
               r.error().message();
    }
    if (c.iptables.manage) {
        auto settings = iptables_settings(c);
        settings.target_port = d.server.port();
        if (auto why = iptables::validation_error(settings); !why.empty()) {
            return why;
        }
        const std::string target_ip = iptables::effective_target_ip(settings);
        d.reconciler.emplace(std::move(settings), d.command_runner, d.clock);
        // Fail-closed start: the rules go in before any pod or identity is read (the listener
        // already accepts and answers 503 until both are). A failure here is not fatal: the
        // reconcile loop retries with backoff and /readyz shows the error.
        std::optional<bool> synced;
        asio::io_context first_sync;
        asio::co_spawn(
            first_sync, d.reconciler->sync_once(),
            [&synced](const std::exception_ptr& e, const Result<iptables::SyncReport>& r) {
                synced = !e && r.has_value();
            });
        first_sync.run();
        if (synced.value_or(false)) {
            spdlog::info("iptables: rules in place (DNAT {}:{} -> {}:{})", c.upstream.metadata_ip,
                         c.upstream.metadata_port, target_ip, d.server.port());
        } else {
            spdlog::error("iptables: first sync failed ({}); retrying in the background",
                          d.reconciler->stats().last_error);
        }
    }
    // /healthz and /readyz on the probe port, /metrics on the Prometheus port; all three on
    // both when the ports are the same.
    std::vector<std::uint16_t> admin_ports{c.admin.probe_port};
    if (c.admin.prometheus_port != c.admin.probe_port || c.admin.probe_port == 0) {
        admin_ports.push_back(c.admin.prometheus_port);
    }
    for (auto port : admin_ports) {
        HttpServerSettings s;
        s.address = c.admin.address;
        s.port = port;
        s.max_connections = 64;
        s.max_connections_per_pod = 0;  // probes and scrapes come from few IPs
        // SO_REUSEPORT here too: a new nmid (a DaemonSet rollout with maxSurge) starts while
        // the old one still holds the probe and metrics ports; either may answer a probe or a
        // scrape during the overlap.
        s.reuse_port = true;
        auto server = std::make_unique<http::HttpServer>(d.ioc.get_executor(), d.admin_handler, s);
        if (auto r = server->listen(); !r) {
            return "cannot listen on " + s.address + ":" + std::to_string(port) + ": " +
                   r.error().message();
        }
        d.admin_servers.push_back(std::move(server));
    }
    d.register_metrics();
    if (c.enable_profile) {
        spdlog::warn("--enableProfile is accepted for compatibility; nmid serves no pprof");
    }
    return {};
}

int Daemon::run() {
    auto& d = *impl_;
    if (d.reconciler) {
        d.spawn("iptables", d.manage_rules());
    }
    if (d.api_pod_source != nullptr) {
        d.spawn("pod-watch", d.api_pod_source->run());
    }
    d.spawn("pods", d.pods.run());
    d.spawn("crds",
            d.crd_source->run([&d](CrdSnapshotPtr s) { d.crd_store.publish(std::move(s)); }));
    d.spawn("token-cache", d.cache.run());
    d.spawn("listener", d.server.run());
    for (auto& admin : d.admin_servers) {
        d.spawn("admin", admin->run());
    }
    d.listening = true;
    spdlog::info("listening on {}:{} (probe port {}, metrics port {}), mode {}",
                 d.config.server.address, d.server.port(), probe_port(), metrics_port(),
                 d.config.identity.mode == OperationMode::managed ? "managed" : "standard");
    d.signals.async_wait([&d](const boost::system::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        asio::co_spawn(d.ioc, d.shutdown(signo == SIGTERM ? "received SIGTERM" : "received SIGINT"),
                       asio::detached);
    });
    std::vector<std::thread> threads;
    for (int i = 1; i < d.config.io_threads; ++i) {
        threads.emplace_back([&d] { d.ioc.run(); });
    }
    d.ioc.run();
    for (auto& t : threads) {
        t.join();
    }
    logging::flush();
    return 0;
}

void Daemon::stop() {
    if (!impl_) {
        return;
    }
    auto& d = *impl_;
    asio::post(d.ioc,
               [&d] { asio::co_spawn(d.ioc, d.shutdown("stop requested"), asio::detached); });
}

std::uint16_t Daemon::port() const {
    return impl_->server.port();
}
std::uint16_t Daemon::probe_port() const {
    return impl_->admin_servers.front()->port();
}
std::uint16_t Daemon::metrics_port() const {
    return impl_->admin_servers.back()->port();
}

int Daemon::cleanup(const config::Config& config) {
    auto settings = iptables_settings(config);
    if (auto why = iptables::validation_error(settings); !why.empty()) {
        spdlog::error("cleanup: {}", why);
        return 1;
    }
    SystemClock clock;
    iptables::ProcessCommandRunner runner;
    iptables::Reconciler reconciler(std::move(settings), runner, clock);
    std::optional<bool> removed;
    asio::io_context ioc;
    asio::co_spawn(ioc, reconciler.cleanup(),
                   [&removed](const std::exception_ptr& e, const Result<void>& r) {
                       removed = !e && r.has_value();
                   });
    ioc.run();
    if (!removed.value_or(false)) {
        spdlog::error("cleanup: {}", reconciler.stats().last_error);
        return 1;
    }
    spdlog::info("cleanup: the aad-metadata chain and its jump are gone ({} backend)",
                 config.iptables.backend);
    return 0;
}

}  // namespace nmid::app
