// `/metadata/identity/info` (issue 14): the tenant of the identity the calling pod is bound to,
// as IMDS 2023-07-01 answers it (`{"tenantId": ...}`); 404 for a pod with no bound identity.
// Where the tenant comes from is tenant_info.hpp's pure decision; this file is the I/O.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "nmi_handler_detail.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/handlers/tenant_info.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/workload/decision.hpp"
#include "nmid/workload/service_accounts.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

namespace {

constexpr std::string_view kInfoTarget = "/metadata/identity/info?api-version=2018-02-01";

}  // namespace

std::shared_ptr<NmiHandler::KnownTenant> NmiHandler::new_known_tenant() {
    return std::make_shared<KnownTenant>();
}

/// The VM's tenant, or why it could not be had.
struct NmiHandler::TenantAnswer {
    std::string tenant;  ///< "" on failure
    Errc code = Errc::ok;
    std::string text;
};

namespace {
NmiHandler::TenantAnswer failed(Errc code, std::string text) {
    return {.tenant = {}, .code = code, .text = std::move(text)};
}
}  // namespace

/// The VM's tenant as IMDS reported it, once known. A VM's tenant does not change while the VM
/// runs, so the first valid answer is kept for the daemon's life; the mutex makes it safe on
/// any I/O thread (read and written only here).
struct NmiHandler::KnownTenant {
    std::mutex mutex;
    std::string tenant;  ///< "" until IMDS answered
};

asio::awaitable<NmiHandler::TenantAnswer> NmiHandler::imds_tenant(Context& ctx) {
    {
        std::lock_guard lock{known_tenant_->mutex};
        if (!known_tenant_->tenant.empty()) {
            co_return TenantAnswer{.tenant = known_tenant_->tenant, .code = Errc::ok, .text = {}};
        }
    }
    const std::string requester = detail::requester_of(ctx);
    auto permit = co_await deps_.cache.acquire_upstream(
        requester, deps_.clock.steady_now() + upstream_.proxy_timeout);
    if (!permit) {
        co_return failed(permit.error() == Errc::pod_over_limit ? Errc::pod_over_limit
                                                                : Errc::upstream_throttled,
                         "the instance metadata service budget is exhausted; retry");
    }
    net::ClientRequest upstream;
    upstream.target = kInfoTarget;
    upstream.headers.emplace_back("Metadata", "true");
    const auto deadline = std::chrono::steady_clock::now() + upstream_.proxy_timeout;
    auto answer = co_await deps_.imds.request(upstream, deadline);
    permit->reset();
    if (!answer) {
        co_return failed(
            answer.error() == Errc::timeout ? Errc::timeout : Errc::upstream_unavailable,
            "failed to reach the instance metadata service: " + answer.error().message());
    }
    if (answer->status != 200) {
        co_return failed(Errc::upstream_unavailable, "the instance metadata service answered " +
                                                         std::to_string(answer->status) +
                                                         " for its tenant");
    }
    std::optional<std::string> tenant = detail::parse_tenant_info(answer->body);
    if (!tenant) {
        co_return failed(Errc::upstream_bad_payload,
                         "the instance metadata service's tenant answer is not usable");
    }
    std::lock_guard lock{known_tenant_->mutex};
    known_tenant_->tenant = *tenant;
    co_return TenantAnswer{.tenant = std::move(*tenant), .code = Errc::ok, .text = {}};
}

asio::awaitable<HttpResponse> NmiHandler::identity_info(const HttpRequest& request, Context& ctx) {
    if (auto refused = refused_headers(request, ctx)) {
        co_return std::move(*refused);
    }
    if (request.method != "GET") {
        HttpResponse response =
            other_failure(ctx, Errc::method_not_allowed,
                          "method " + std::string{request.method} + " is not allowed on this path");
        response.headers.emplace_back("Allow", "GET");
        co_return response;
    }
    if (!deps_.ready()) {
        co_return other_failure(ctx, Errc::not_ready,
                                "nmid is starting: pod and identity data not loaded yet");
    }
    std::optional<Result<PodInfoPtr>> found = deps_.pods.try_find_fresh(request.peer);
    if (!found) {
        found = co_await deps_.pods.find_fresh(request.peer);
    }
    if (auto refused = take_pod(*found, request, ctx)) {
        co_return std::move(*refused);
    }
    const auto no_identity = [&] {
        return other_failure(ctx, Errc::path_not_found,
                             "no identity is bound to pod " + std::string{ctx.pod->namespace_name} +
                                 "/" + ctx.pod->name);
    };
    if (workload_pod(ctx)) {
        ctx.source = "workload-identity";
        const auto verdict = deps_.workload->decide(*ctx.pod, identity::TokenQuery{});
        if (verdict.decision.verdict != workload::Verdict::serve ||
            !workload::valid_tenant_id(verdict.decision.tenant_id)) {
            co_return no_identity();
        }
        co_return detail::json_ok(detail::tenant_info_json(verdict.decision.tenant_id));
    }
    const identity::TokenQuery query{};
    ctx.prepared = find_prepared(ctx.pod, query);
    if (!ctx.prepared) {
        ctx.prepared = co_await prepare(ctx.pod, query);
    }
    const identity::Decision& decision = ctx.prepared->decision;
    if (decision.kind != identity::DecisionKind::bound) {
        co_return no_identity();  // excepted pods included
    }
    ctx.identity = ctx.prepared->redacted;
    const detail::IdentityTenant source = detail::tenant_of(*decision.identity);
    if (source.tenant) {
        co_return detail::json_ok(detail::tenant_info_json(*source.tenant));
    }
    if (!source.ask_imds) {
        co_return other_failure(ctx, Errc::path_not_found,
                                "the identity bound to pod " +
                                    std::string{ctx.pod->namespace_name} + "/" + ctx.pod->name +
                                    " names no valid tenant");
    }
    const TenantAnswer answer = co_await imds_tenant(ctx);
    if (answer.code != Errc::ok) {
        co_return other_failure(ctx, answer.code, answer.text);
    }
    co_return detail::json_ok(detail::tenant_info_json(answer.tenant));
}

}  // namespace nmid::handlers
