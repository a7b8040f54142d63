#pragma once

// Daemon::Impl's workload identity (issue 12): built only with --workload-identity. Private
// to the app module.

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "nmid/cloud/federated_exchange.hpp"
#include "nmid/config/config.hpp"
#include "nmid/handlers/admin_handler.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"
#include "nmid/workload/projected_token.hpp"
#include "nmid/workload/sa_token_provider.hpp"
#include "nmid/workload/service_accounts.hpp"
#include "nmid/workload/workload_token_source.hpp"

namespace nmid::app {

struct WorkloadParts {
    /// Throws StartupError for an authority that is not https or not allowed, or an
    /// unreadable --aad-ca-file.
    WorkloadParts(const config::Config& config, boost::asio::any_io_executor executor,
                  kube::ApiServerClient& api, Clock& clock, PodIndex& pods,
                  metrics::Metrics& metrics, const std::string& user_agent);

    /// The ServiceAccount watch.
    boost::asio::awaitable<void> run_accounts() { return accounts.run(); }
    /// Drops the ServiceAccount tokens of pods that left the index, checking once a second.
    boost::asio::awaitable<void> forget_departed_pods();
    void register_metrics(metrics::Metrics& metrics);
    [[nodiscard]] handlers::ReadinessCheck readiness() const;

    Clock& clock;
    PodIndex& pods;
    workload::ServiceAccountSource accounts;
    std::unique_ptr<workload::ApiTokenRequester> requester;  ///< tokenrequest source only
    std::unique_ptr<workload::ServiceAccountTokenProvider> provider;
    cloud::FederatedExchange exchange;
    workload::WorkloadTokenSource source;
    TokenCache cache;
    handlers::WorkloadDependencies deps;
    /// TokenRequest answers by status class: 2xx, 4xx, 429, 5xx, error (no answer).
    std::array<std::atomic<std::uint64_t>, 5> tokenrequests{};
};

}  // namespace nmid::app
