#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/http/message.hpp"
#include "nmid/http/router.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/token/token_cache.hpp"
#include "nmid/workload/decision.hpp"
#include "nmid/workload/service_accounts.hpp"

namespace nmid {
class Clock;
class PodIndex;
class CrdStore;
class TokenCache;
namespace net {
class HttpClient;
}
namespace metrics {
class Metrics;
}
}  // namespace nmid

namespace nmid::handlers {

/// Workload identity (issue 12): what the token route needs for pods labelled
/// azure.workload.identity/use=true. References must outlive the handler.
struct WorkloadDependencies {
    /// The ServiceAccount (namespace, name) in the current snapshot (the pointer shares the
    /// snapshot's ownership), or nullptr. Thread-safe.
    std::function<std::shared_ptr<const workload::ServiceAccountInfo>(std::string_view,
                                                                      std::string_view)>
        find_account;
    TokenCache& cache;           ///< Azure AD's own cache and budget (WorkloadTokenSource)
    std::string default_tenant;  ///< --workload-identity-tenant-id
    std::string authority;       ///< --workload-identity-authority-host, ending in '/'
    bool projected = false;      ///< --workload-identity-token-source=projected

    /// The pod's ServiceAccount (find_account) and workload::decide() for `query` with these
    /// settings: what the token route answers and /debug/explain shows. `decision`'s views
    /// point into `account` (or these settings).
    struct Verdict {
        std::shared_ptr<const workload::ServiceAccountInfo> account;
        workload::Decision decision;
    };
    [[nodiscard]] Verdict decide(const PodInfo& pod, const identity::TokenQuery& query) const;
};

/// What the pod-facing handler works with. References must outlive the handler.
struct NmiDependencies {
    PodIndex& pods;
    CrdStore& crds;
    TokenCache& cache;
    net::HttpClient& imds;  ///< proxy and pass-through for excepted pods
    metrics::Metrics& metrics;
    Clock& clock;
    std::function<bool()> ready;  ///< snapshots loaded (pods and CRDs)
    /// --crd-max-staleness (0: off, the default): tokens are denied (503, retryable) while
    /// `crd_age()` (the identity snapshot's age, CrdSource::snapshot_age) is larger. Neither
    /// is read per request when off.
    Millis crd_max_staleness{0};
    std::function<Millis()> crd_age{};
    /// --workload-identity: nullptr when off (labelled pods then get pod identity as before).
    WorkloadDependencies* workload = nullptr;
};

/// The pod-facing listener's handler: NMI's routes (reference nmi-behaviour 3) with nmid's
/// improvements (design 4). Records one audit line and the request metrics per request.
class NmiHandler final : public http::RequestHandler {
public:
    NmiHandler(NmiDependencies deps, HandlerSettings handler_settings,
               IdentitySettings identity_settings, UpstreamSettings upstream_settings);
    boost::asio::awaitable<http::HttpResponse> handle(const http::HttpRequest& request) override;
    /// The token route's answer when nothing needs waiting for: a fresh pod, a remembered
    /// decision and a cached token (or a refusal decided from them).
    std::optional<http::HttpResponse> handle_now(const http::HttpRequest& request) override;

    struct Context;       ///< per-request facts for the audit line (nmi_handler_detail.hpp)
    struct Prepared;      ///< a resolved (pod, query, CRD snapshot) and its cache key
    struct WorkloadKey;   ///< a workload identity's cache key (workload_route.cpp)
    struct TenantAnswer;  ///< the VM's tenant from IMDS, or a failure (identity_info_route.cpp)

private:
    struct Resolved;
    boost::asio::awaitable<http::HttpResponse> respond(const http::HttpRequest& request,
                                                       const http::RoutedTarget& routed,
                                                       Context& ctx);
    static boost::asio::awaitable<http::HttpResponse> ready(http::HttpResponse response);
    /// The request's metrics and audit line.
    void record(const http::HttpRequest& request, std::string_view path,
                const http::HttpResponse& response, const Context& ctx);
    boost::asio::awaitable<Resolved> resolve_waiting(const PodInfo& pod,
                                                     const identity::TokenQuery& query);
    /// The decision for (pod, query) under the current CRD snapshot, from this thread's memo
    /// when it has one for the current snapshot generation; else nullptr.
    [[nodiscard]] std::shared_ptr<const Prepared> find_prepared(
        const PodInfoPtr& pod, const identity::TokenQuery& query) const;
    /// resolve_waiting() and the cache key of its decision, remembered when final.
    boost::asio::awaitable<std::shared_ptr<const Prepared>> prepare(
        const PodInfoPtr& pod, const identity::TokenQuery& query);
    /// The bound identity's token when cached (no suspension); records the redacted identity
    /// and the cache outcome for the audit line.
    std::optional<CacheResult> cached_token(const Prepared& prepared, Context& ctx);
    boost::asio::awaitable<CacheResult> fetch_token(const Prepared& prepared, Context& ctx);
    // The token route's steps; token_now() takes those that need no waiting, token() all.
    http::HttpResponse token_failure(Context& ctx, Errc code, std::string_view text,
                                     std::chrono::seconds retry_after = {}) const;
    /// A failure on a route other than the token route (Endpoint::other), recorded in ctx.
    http::HttpResponse other_failure(Context& ctx, Errc code, std::string_view text) const;
    /// IMDS's header checks (detail::header_refusal) as other_failure(), else std::nullopt.
    std::optional<http::HttpResponse> refused_headers(const http::HttpRequest& request,
                                                      Context& ctx) const;
    /// Headers, readiness and the query: a refusal, or std::nullopt with ctx.params set.
    std::optional<http::HttpResponse> token_checks(const http::HttpRequest& request,
                                                   std::string_view query, Context& ctx) const;
    /// The pod lookup's failure, or std::nullopt with the pod in ctx.
    std::optional<http::HttpResponse> take_pod(const Result<PodInfoPtr>& found,
                                               const http::HttpRequest& request,
                                               Context& ctx) const;
    /// ctx.prepared's denial (or an identity nmid cannot serve), else std::nullopt.
    std::optional<http::HttpResponse> refusal(Context& ctx) const;
    http::HttpResponse token_answer(const CacheResult& result, Context& ctx) const;
    // workload_route.cpp: pods labelled azure.workload.identity/use=true (issue 12).
    [[nodiscard]] bool workload_pod(const Context& ctx) const;
    /// The answer without waiting (a denial or a cached token), else nullopt with
    /// ctx.workload_key set for workload_token().
    std::optional<http::HttpResponse> workload_now(Context& ctx);
    boost::asio::awaitable<http::HttpResponse> workload_token(Context& ctx);
    http::HttpResponse workload_answer(const CacheResult& result, Context& ctx) const;
    std::optional<http::HttpResponse> token_now(const http::HttpRequest& request,
                                                std::string_view query, Context& ctx);
    boost::asio::awaitable<http::HttpResponse> token(const http::HttpRequest& request,
                                                     std::string_view query, Context& ctx);
    boost::asio::awaitable<http::HttpResponse> host_token(const http::HttpRequest& request,
                                                          std::string_view query, Context& ctx);
    /// Anything else under /metadata/identity: nmid's own 404, for every caller.
    boost::asio::awaitable<http::HttpResponse> identity_route(const http::HttpRequest& request,
                                                              const http::RoutedTarget& routed,
                                                              Context& ctx);
    /// `/metadata/identity/info` (identity_info_route.cpp): the bound identity's tenant.
    boost::asio::awaitable<http::HttpResponse> identity_info(const http::HttpRequest& request,
                                                             Context& ctx);
    /// The VM's tenant: IMDS's own `/metadata/identity/info`, asked once (known_tenant_).
    boost::asio::awaitable<TenantAnswer> imds_tenant(Context& ctx);
    /// An allowlisted IMDS path: blocked (instance metadata with the flag), 405 for a method
    /// the path does not take, else proxied.
    boost::asio::awaitable<http::HttpResponse> imds_route(const http::HttpRequest& request,
                                                          const http::RoutedTarget& routed,
                                                          Context& ctx);
    /// 403 for a path nmid does not forward.
    http::HttpResponse path_not_allowed(Context& ctx) const;
    /// The canonical path, spelled for the wire, and the raw query: what nmid forwards.
    static std::string upstream_target(const http::RoutedTarget& routed);
    /// Forwards the request to IMDS with `target` (hop-by-hop fields dropped).
    boost::asio::awaitable<http::HttpResponse> proxy(const http::HttpRequest& request,
                                                     std::string target, Context& ctx);

    NmiDependencies deps_;
    std::uint64_t id_;  ///< tells this handler's memo entries from another's
    HandlerSettings settings_;
    IdentitySettings identity_settings_;
    UpstreamSettings upstream_;
    struct KnownTenant;
    static std::shared_ptr<KnownTenant> new_known_tenant();
    std::shared_ptr<KnownTenant> known_tenant_;  ///< identity_info_route.cpp
};

}  // namespace nmid::handlers
