#pragma once

// Daemon::Impl, shared by daemon.cpp (wiring, start, run, shutdown), readiness.cpp,
// daemon_metrics.cpp and preflight.cpp. Private to the app module.

#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kube_clients.hpp"
#include "nmid/app/daemon.hpp"
#include "nmid/cloud/aad_token_source.hpp"
#include "nmid/cloud/composite_token_source.hpp"
#include "nmid/cloud/imds_token_source.hpp"
#include "nmid/cloud/secret_store.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/crd/api_server_source.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/explain/debug_handler.hpp"
#include "nmid/handlers/admin_handler.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/http/server.hpp"
#include "nmid/iptables/command_runner.hpp"
#include "nmid/iptables/reconciler.hpp"
#include "nmid/iptables/settings.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/node/condition_reporter.hpp"
#include "nmid/pods/api_server_pod_source.hpp"
#include "nmid/pods/kubelet_pod_source.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"
#include "workload_parts.hpp"

namespace nmid::app {

// preflight.cpp: checks and settings derived from the Config before anything is built.

/// NMI's kubenet refusal (CVE-2021-1677: on kubenet a pod with NET_RAW can spoof another
/// pod's IP). Only in a cluster (pods not from a file), unless --allow-network-plugin-kubenet.
/// A missing file is not fatal (only AKS writes it); an unreadable one is, as in NMI.
std::string kubenet_refusal(const config::Config& c);
HttpServerSettings server_settings(const config::Config& config);
PodSettings pod_settings(const config::Config& c);
iptables::Settings iptables_settings(const config::Config& c);

struct Daemon::Impl {
    explicit Impl(config::Config c);
    ~Impl() { parse_pool.join(); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    [[nodiscard]] std::string user_agent() const;
    /// IMDS for managed identities; AAD (with Secrets from the API server) for service
    /// principals when an API server is configured.
    TokenSource& make_upstream();
    std::unique_ptr<PodSource> make_pod_source();
    /// --workload-identity: its parts (they need the API server); null when off.
    std::unique_ptr<WorkloadParts> make_workload();
    std::unique_ptr<CrdSource> make_crd_source();

    bool ready() const {
        return pods.ready() && crd_store.ready() && (!workload || workload->accounts.synced());
    }

    // listeners.cpp: "" or why a listener could not be opened.
    [[nodiscard]] std::string open_admin_listeners();
    [[nodiscard]] std::string open_debug_listener();

    // node_condition.cpp: --node-condition's reporter and its metrics; "" or why not.
    [[nodiscard]] std::string make_node_condition();

    // readiness.cpp
    [[nodiscard]] std::string pod_source_name() const;
    [[nodiscard]] std::string crd_source_name() const;
    [[nodiscard]] std::vector<handlers::ReadinessCheck> readiness() const;
    [[nodiscard]] handlers::ReadinessCheck iptables_readiness() const;

    // daemon_metrics.cpp
    void register_metrics();
    std::string crd_detail() const;
    void register_security_metrics();
    void register_source_metrics();

    /// Spawns a long-running task owned by the daemon: cancelled at shutdown.
    template <class Awaitable>
    void spawn(const char* name, Awaitable task) {
        auto& signal = task_signals.emplace_back();
        boost::asio::co_spawn(
            ioc, std::move(task),
            boost::asio::bind_cancellation_slot(signal.slot(), [name](const std::exception_ptr& e) {
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
    boost::asio::awaitable<void> manage_rules();
    boost::asio::awaitable<void> shutdown(std::string reason);

    config::Config config;
    boost::asio::io_context ioc;
    SystemClock clock;
    metrics::Metrics metrics;
    // Parses large PodLists off the I/O thread; joined last (the destructor) so that no
    // parse outlives the sources.
    boost::asio::thread_pool parse_pool{1};
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
    std::unique_ptr<WorkloadParts> workload;
    ApiServerCrdSource* api_crd_source = nullptr;
    std::unique_ptr<CrdSource> crd_source;
    CrdStore crd_store{identity_policy(config.crds)};
    iptables::ProcessCommandRunner command_runner;
    std::optional<iptables::Reconciler> reconciler;
    handlers::NmiHandler handler;
    http::HttpServer server;
    handlers::AdminHandler admin_handler;
    std::vector<std::unique_ptr<http::HttpServer>> admin_servers;
    std::unique_ptr<explain::DebugHandler> debug_handler;  ///< --debug-address; null when off
    std::unique_ptr<http::HttpServer> debug_server;
    std::unique_ptr<node::ConditionReporter> node_condition;  ///< --node-condition; else null
    boost::asio::signal_set signals;
    std::list<boost::asio::cancellation_signal> task_signals;  // stable addresses
    bool listening = false;
    bool stopping = false;
};

}  // namespace nmid::app
