#include "nmid/app/daemon.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "daemon_impl.hpp"
#include "nmid/crd/crd_file_source.hpp"
#include "nmid/iptables/route_localnet.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/pods/pod_file_source.hpp"

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

}  // namespace

Daemon::Impl::Impl(config::Config c)
    : config(std::move(c)),
      ioc(config.io_threads),
      kube(make_kube_clients(config, ioc, clock, user_agent())),
      imds_client(ioc.get_executor(),
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
      pods(component_executor(ioc, config.io_threads), *pod_source, clock, pod_settings(config)),
      workload(make_workload()),
      crd_source(make_crd_source()),
      handler(handlers::NmiDependencies{.pods = pods,
                                        .crds = crd_store,
                                        .cache = cache,
                                        .imds = imds_client,
                                        .metrics = metrics,
                                        .clock = clock,
                                        .ready = [this] { return ready(); },
                                        .crd_max_staleness = config.crds.max_staleness,
                                        .crd_age = [this] { return crd_source->snapshot_age(); },
                                        .workload = workload ? &workload->deps : nullptr},
              config.handlers, config.identity, config.upstream),
      server(ioc.get_executor(), handler, server_settings(config)),
      admin_handler(metrics, [this] { return readiness(); }),
      signals(ioc, SIGINT, SIGTERM) {}

std::string Daemon::Impl::user_agent() const {
    std::string ua = config.upstream.user_agent;
    if (!config.custom_user_agent.empty()) {
        ua += " " + config.custom_user_agent;
    }
    return ua;
}

TokenSource& Daemon::Impl::make_upstream() {
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

std::unique_ptr<WorkloadParts> Daemon::Impl::make_workload() {
    if (!config.workload.enabled) {
        return nullptr;
    }
    if (!kube.api) {
        throw StartupError(
            "--workload-identity needs the API server (ServiceAccounts, TokenRequest): give "
            "--kubeconfig or run in a cluster");
    }
    return std::make_unique<WorkloadParts>(config, component_executor(ioc, config.io_threads),
                                           *kube.api, clock, pods, metrics, user_agent());
}

std::unique_ptr<PodSource> Daemon::Impl::make_pod_source() {
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
        auto source =
            std::make_unique<ApiServerPodSource>(component_executor(ioc, config.io_threads),
                                                 *kube.api, clock, parse_pool.get_executor(), s);
        api_pod_source = source.get();
        return source;
    }
    auto source =
        std::make_unique<KubeletPodSource>(*kube.kubelet, parse_pool.get_executor(), clock);
    kubelet_pod_source = source.get();
    return source;
}

std::unique_ptr<CrdSource> Daemon::Impl::make_crd_source() {
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

asio::awaitable<void> Daemon::Impl::manage_rules() {
    co_await reconciler->run();
    if (!config.iptables.cleanup_on_exit) {
        spdlog::info("iptables: rules left in place (fail-closed); `nmid cleanup` removes them");
        co_return;
    }
    co_await asio::this_coro::reset_cancellation_state();
    const Result<void> removed = co_await reconciler->cleanup();
    if (removed) {
        spdlog::info("iptables: rules removed (--cleanup-rules-on-exit)");
    } else {
        spdlog::error("iptables: removing the rules failed: {}", reconciler->stats().last_error);
    }
    logging::flush();
}

asio::awaitable<void> Daemon::Impl::shutdown(std::string reason) {
    if (stopping) {
        co_return;
    }
    stopping = true;
    spdlog::info("{}, shutting down (grace {} ms)", reason, config.shutdown_grace.count());
    listening = false;
    server.stop();
    co_await server.drain(clock.steady_now() + config.shutdown_grace);
    if (node_condition) {
        // Before the tasks stop: the node is tainted again while no nmid serves it.
        co_await node_condition->write_stopping();
    }
    cache.stop();
    if (workload) {
        workload->cache.stop();
    }
    for (auto& s : task_signals) {
        s.emit(asio::cancellation_type::terminal);
    }
    for (auto& admin : admin_servers) {
        admin->stop();
    }
    if (debug_server) {
        debug_server->stop();
    }
    for (auto& admin : admin_servers) {
        co_await admin->drain(clock.steady_now() + 1s);
    }
    if (debug_server) {
        co_await debug_server->drain(clock.steady_now() + 1s);
    }
    imds_client.close_idle();
    signals.cancel();
    spdlog::info("exiting with 0");
    logging::flush();
}

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
    if (auto error = d.open_admin_listeners(); !error.empty()) {
        return error;
    }
    if (auto error = d.open_debug_listener(); !error.empty()) {
        return error;
    }
    if (auto error = d.make_node_condition(); !error.empty()) {
        return error;
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
    if (d.workload) {
        d.spawn("serviceaccount-watch", d.workload->run_accounts());
        d.spawn("workload-identity-pods", d.workload->forget_departed_pods());
        d.spawn("workload-identity-cache", d.workload->cache.run());
    }
    d.spawn("listener", d.server.run());
    for (auto& admin : d.admin_servers) {
        d.spawn("admin", admin->run());
    }
    if (d.debug_server) {
        d.spawn("debug", d.debug_server->run());
    }
    if (d.node_condition) {
        d.spawn("node-condition", d.node_condition->run());
    }
    d.listening = true;
    spdlog::info("listening on {}:{} (probe port {}, metrics port {}{}), mode {}",
                 d.config.server.address, d.server.port(), probe_port(), metrics_port(),
                 d.debug_server ? ", debug port " + std::to_string(debug_port()) : "",
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
std::uint16_t Daemon::debug_port() const {
    return impl_->debug_server ? impl_->debug_server->port() : 0;
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
