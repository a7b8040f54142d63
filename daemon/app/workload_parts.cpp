#include "workload_parts.hpp"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <stdexcept>
#include <utility>

#include "kube_clients.hpp"
#include "nmid/core/cancelled.hpp"
#include "nmid/crd/identity_validation.hpp"
#include "nmid/workload/lenders.hpp"

namespace nmid::app {
namespace {

namespace asio = boost::asio;

std::string authority_of(const config::Config& c) {
    std::string authority = c.workload.authority_host;
    if (!authority.empty() && authority.back() != '/') {
        authority += '/';
    }
    if (const auto refused = check_authority(authority, identity_policy(c.crds))) {
        throw StartupError("--workload-identity-authority-host " + authority + ": " +
                           refused->text);
    }
    return authority;
}

cloud::AadSettings aad_settings(const config::Config& c, const std::string& user_agent) {
    cloud::AadSettings s;
    s.user_agent = user_agent;
    s.connect_timeout = c.upstream.connect_timeout;
    s.ca_file = c.aad_ca_file;
    return s;
}

// Azure AD's own budget (issue 12 item 5), with IMDS's other cache settings.
TokenCacheSettings aad_cache_settings(const config::Config& c) {
    TokenCacheSettings s = c.cache;
    s.max_concurrency = c.workload.max_concurrency;
    s.rate_per_second = c.workload.rate_per_second;
    s.max_upstream_fetches_per_pod =
        std::min(s.max_upstream_fetches_per_pod,
                 std::max<std::size_t>(1, s.max_concurrency > 1 ? s.max_concurrency - 1 : 1));
    return s;
}

std::size_t status_class(int status) {
    if (status >= 200 && status <= 299) {
        return 0;
    }
    if (status == 429) {
        return 2;
    }
    if (status >= 400 && status <= 499) {
        return 1;
    }
    return status >= 500 && status <= 599 ? 3 : 4;
}

constexpr std::array<const char*, 5> kStatusLabels{"2xx", "4xx", "429", "5xx", "error"};

}  // namespace

WorkloadParts::WorkloadParts(const config::Config& c, asio::any_io_executor executor,
                             kube::ApiServerClient& api, Clock& clk, PodIndex& pod_index,
                             metrics::Metrics& metrics, const std::string& user_agent)
    : clock(clk),
      pods(pod_index),
      accounts(executor, api, clk, kube::ReflectorSettings{.name = "serviceaccount list/watch"}),
      requester(c.workload.token_source == "projected"
                    ? nullptr
                    : std::make_unique<workload::ApiTokenRequester>(
                          api, clk,
                          [this](int status) {
                              tokenrequests[status_class(status)].fetch_add(
                                  1, std::memory_order_relaxed);
                          })),
      provider(requester ? std::unique_ptr<workload::ServiceAccountTokenProvider>(
                               std::make_unique<workload::TokenRequestProvider>(executor,
                                                                                *requester, clk))
                         : std::make_unique<workload::ProjectedTokenProvider>(
                               c.workload.kubelet_root_dir, clk)),
      exchange([&]() -> cloud::FederatedExchange {
          try {
              return cloud::FederatedExchange{executor, clk, aad_settings(c, user_agent)};
          } catch (const std::invalid_argument& e) {
              throw StartupError(std::string{"--aad-ca-file: "} + e.what());
          }
      }()),
      source(
          *provider,
          [this, projected = c.workload.token_source == "projected"](std::string_view ns,
                                                                     std::string_view sa) {
              return workload::lenders(pods.pods(), ns, sa, projected);
          },
          [this](const workload::FederatedCall& call,
                 SteadyTime deadline) -> asio::awaitable<FetchResult> {
              co_return co_await exchange.exchange(call.client_id, call.tenant_id, call.authority,
                                                   call.resource, call.assertion, deadline);
          }),
      cache(executor, source, clk, aad_cache_settings(c),
            [&metrics](const UpstreamAttempt& a) {
                metrics.record_upstream("aad-federated", "other", a.status, a.error == Errc::ok,
                                        a.background, a.duration);
            }),
      deps{.find_account =
               [this](std::string_view ns, std::string_view name) {
                   return accounts.snapshot()->find(ns, name);
               },
           .cache = cache,
           .default_tenant = c.workload.tenant_id,
           .authority = authority_of(c),
           .projected = c.workload.token_source == "projected"} {}

asio::awaitable<void> WorkloadParts::forget_departed_pods() {
    co_await asio::this_coro::throw_if_cancelled(false);
    std::shared_ptr<const PodList> seen;
    for (;;) {
        const bool stop = co_await cancelled();
        if (stop) {
            co_return;
        }
        std::shared_ptr<const PodList> now = pods.pods();
        if (now != seen) {
            provider->retain(workload::pod_uids(*now));
            seen = std::move(now);
        }
        co_await clock.wait_until(clock.steady_now() + std::chrono::seconds{1});
    }
}

void WorkloadParts::register_metrics(metrics::Metrics& metrics) {
    metrics.add_labeled_counter(
        "nmid_tokenrequests_total",
        "TokenRequests nmid made for workload identity pods, by the API server's answer", "status",
        [this] {
            std::vector<std::pair<std::string, double>> out;
            for (std::size_t i = 0; i < kStatusLabels.size(); ++i) {
                out.emplace_back(
                    kStatusLabels[i],
                    static_cast<double>(tokenrequests[i].load(std::memory_order_relaxed)));
            }
            return out;
        });
    metrics.add_labeled_gauge("nmid_service_accounts",
                              "ServiceAccounts the workload identity watch holds", "kind", [this] {
                                  const auto s = accounts.stats();
                                  return std::vector<std::pair<std::string, double>>{
                                      {"all", static_cast<double>(s.accounts)},
                                      {"annotated", static_cast<double>(s.annotated)},
                                      {"invalid", static_cast<double>(s.invalid)}};
                              });
    metrics.add_gauge("nmid_workload_identity_token_cache_entries",
                      "Azure AD tokens of workload identities held",
                      [this] { return static_cast<double>(cache.stats().entries); });
}

handlers::ReadinessCheck WorkloadParts::readiness() const {
    const bool synced = accounts.synced();
    return {"serviceaccounts", synced,
            synced ? std::to_string(accounts.stats().accounts) + " ServiceAccounts"
                   : "no successful list of ServiceAccounts yet (workload identity)"};
}

}  // namespace nmid::app
