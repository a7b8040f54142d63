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
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <list>
#include <optional>
#include <thread>
#include <vector>

#include "nmid/cloud/imds_token_source.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/crd/crd_file_source.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/admin_handler.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/http/server.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
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

}  // namespace

struct Daemon::Impl {
    explicit Impl(config::Config c)
        : config(std::move(c)),
          ioc(config.io_threads),
          imds_client(
              ioc.get_executor(),
              net::HttpClientSettings{.host = config.upstream.metadata_ip,
                                      .port = config.upstream.metadata_port,
                                      .connect_timeout = config.upstream.connect_timeout,
                                      .pool_size = config.upstream.pool_size,
                                      .max_response_body = config.upstream.max_response_body,
                                      .host_header = {}}),
          token_source(imds_client, clock, user_agent()),
          cache(component_executor(ioc, config.io_threads), token_source, clock, config.cache,
                [this](const UpstreamAttempt& a) {
                    metrics.record_upstream("imds", nmi_operation_type(*a.request), a.status,
                                            a.error == Errc::ok, a.background, a.duration);
                }),
          pod_source(config.pods.pods_file),
          pods(component_executor(ioc, config.io_threads), pod_source, clock, config.pods),
          crd_source(clock, config.crds),
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

    std::string user_agent() const {
        std::string ua = config.upstream.user_agent;
        if (!config.custom_user_agent.empty()) {
            ua += " " + config.custom_user_agent;
        }
        return ua;
    }

    bool ready() const { return pods.ready() && crd_store.ready(); }

    std::vector<handlers::ReadinessCheck> readiness() const {
        const auto pod_stats = pods.stats();
        return {
            {"pods", pods.ready(),
             pods.ready() ? std::to_string(pod_stats.pods) + " pods"
                          : "no successful read of " + config.pods.pods_file + " yet"},
            {"crds", crd_store.ready(),
             crd_store.ready() ? std::string{}
                               : "no successful read of " + config.crds.crds_file + " yet"},
            {"listener", listening, listening ? std::string{} : "not accepting"},
        };
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
        metrics.add_gauge("nmid_connections_active", "Open pod-facing connections",
                          [this] { return static_cast<double>(server.stats().active); });
        metrics.add_counter("nmid_connections_refused_total",
                            "Connections refused over --max-connections",
                            [this] { return static_cast<double>(server.stats().refused); });
    }

    /// Spawns a long-running task owned by the daemon: cancelled at shutdown.
    template <class Awaitable>
    void spawn(const char* name, Awaitable task) {
        auto& signal = task_signals.emplace_back();
        asio::co_spawn(ioc, std::move(task),
                       asio::bind_cancellation_slot(signal.slot(), [name](std::exception_ptr e) {
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

    asio::awaitable<void> flush_logs() {
        for (;;) {
            co_await clock.wait_until(clock.steady_now() + 500ms);
            const auto state = co_await asio::this_coro::cancellation_state;
            if (state.cancelled() != asio::cancellation_type::none) {
                co_return;
            }
            logging::flush();
        }
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
    net::HttpClient imds_client;
    cloud::ImdsTokenSource token_source;
    TokenCache cache;
    PodFileSource pod_source;
    PodIndex pods;
    CrdFileSource crd_source;
    CrdStore crd_store;
    handlers::NmiHandler handler;
    http::HttpServer server;
    handlers::AdminHandler admin_handler;
    std::vector<std::unique_ptr<http::HttpServer>> admin_servers;
    asio::signal_set signals;
    std::list<asio::cancellation_signal> task_signals;  // stable addresses
    bool listening = false;
    bool stopping = false;
};

Daemon::Daemon(config::Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Daemon::~Daemon() = default;

std::string Daemon::start() {
    auto& d = *impl_;
    const auto& c = d.config;
    if (c.pods.pods_file.empty()) {
        return "no pod source: give --pods-file (a PodList JSON); the kubelet source is not "
               "part of this build yet";
    }
    if (c.crds.crds_file.empty()) {
        return "no identity source: give --crds-file (YAML or JSON aadpodidentity.k8s.io/v1 "
               "objects); the API-server watch is not part of this build yet";
    }
    if (auto r = d.server.listen(); !r) {
        return "cannot listen on " + c.server.address + ":" + std::to_string(c.server.port) + ": " +
               r.error().message();
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
        s.reuse_port = false;
        auto server = std::make_unique<http::HttpServer>(d.ioc.get_executor(), d.admin_handler, s);
        if (auto r = server->listen(); !r) {
            return "cannot listen on " + s.address + ":" + std::to_string(port) + ": " +
                   r.error().message();
        }
        d.admin_servers.push_back(std::move(server));
    }
    d.register_metrics();
    if (c.iptables.manage) {
        spdlog::info("iptables: rule management is not part of this build; no rules are touched");
    }
    if (c.enable_profile) {
        spdlog::warn("--enableProfile is accepted for compatibility; nmid serves no pprof");
    }
    return {};
}

int Daemon::run() {
    auto& d = *impl_;
    d.spawn("pods", d.pods.run());
    d.spawn("crds",
            d.crd_source.run([&d](CrdSnapshotPtr s) { d.crd_store.publish(std::move(s)); }));
    d.spawn("token-cache", d.cache.run());
    d.spawn("log-flush", d.flush_logs());
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

}  // namespace nmid::app
