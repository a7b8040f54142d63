// The token route (`/metadata/identity/oauth2/token`): NMI's checks in NMI's order, the pod
// lookup, the decision and the cache; token_now() is the part that never waits.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "nmi_handler_detail.hpp"
#include "nmid/crd/crd_source.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/handlers/imds_json.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using detail::errc_for;
using detail::fetch_failure_text;
using detail::json_ok;
using detail::parse_token_params;
using http::HttpRequest;
using http::HttpResponse;

namespace {

// NMI says "pod list is empty" for an unknown IP; SDKs and runbooks match on it, so it stays.
// The other failures say what happened.
std::string pod_lookup_failure_text(Errc code, const asio::ip::address& peer) {
    switch (code) {
        case Errc::pod_ip_ambiguous:
            return "failed to match pod IP " + peer.to_string() + ": more than one pod claims it";
        case Errc::pod_source_failed:
            return "pod list is stale: the pod source could not be read to confirm the owner of " +
                   peer.to_string() + "; retry";
        case Errc::timeout:
            return "pod list is stale: no pod source read completed in time to confirm the owner "
                   "of " +
                   peer.to_string() + "; retry";
        default:
            return "pod list is empty";
    }
}

/// adal's multi-tenant service principal takes one to three auxiliary tenants.
constexpr std::size_t kMaxAuxiliaryTenants = 3;

identity::TokenQuery token_query(const TokenParams& params) {
    return {params.client_id, params.resource_id, params.object_id};
}

bool multi_tenant(const AzureIdentity& id) {
    return id.type == static_cast<int>(IdentityType::service_principal) &&
           !id.auxiliary_tenant_ids.empty();
}

}  // namespace

HttpResponse NmiHandler::token_failure(Context& ctx, Errc code, std::string_view text,
                                       std::chrono::seconds retry_after) const {
    ctx.error = code;
    return error_response(code, text, settings_, Endpoint::token, retry_after);
}

HttpResponse NmiHandler::other_failure(Context& ctx, Errc code, std::string_view text) const {
    ctx.error = code;
    return error_response(code, text, settings_, Endpoint::other);
}

std::optional<HttpResponse> NmiHandler::refused_headers(const HttpRequest& request,
                                                        Context& ctx) const {
    if (const auto refused = detail::header_refusal(request, settings_)) {
        return other_failure(ctx, refused->code, refused->text);
    }
    return std::nullopt;
}

std::optional<HttpResponse> NmiHandler::token_checks(const HttpRequest& request,
                                                     std::string_view query, Context& ctx) const {
    // SDK probes come without Metadata and expect a fast 400: answered before any lookup.
    if (const auto refused = detail::header_refusal(request, settings_)) {
        return token_failure(ctx, refused->code, refused->text);
    }
    if (!deps_.ready()) {
        return token_failure(ctx, Errc::not_ready,
                             "nmid is starting: pod and identity data not loaded yet");
    }
    if (deps_.crd_max_staleness > Millis{0} && deps_.crd_age &&
        !tokens_allowed(deps_.crd_age(), deps_.crd_max_staleness)) {
        return token_failure(ctx, Errc::not_ready,
                             "identity data is stale: the identity watch has not confirmed it "
                             "for longer than --crd-max-staleness; retry");
    }
    ctx.params = parse_token_params(query, ctx.decoded);
    ctx.resource = ctx.params.resource;
    if (ctx.resource.empty()) {
        return token_failure(ctx, Errc::resource_missing, "parameter resource cannot be empty");
    }
    if (ctx.resource.size() > detail::kMaxResourceBytes) {
        ctx.resource = {};  // not a metrics label: it is not a resource nmid serves
        return token_failure(ctx, Errc::bad_request, detail::kResourceTooLong);
    }
    return std::nullopt;
}

std::optional<HttpResponse> NmiHandler::take_pod(const Result<PodInfoPtr>& found,
                                                 const HttpRequest& request, Context& ctx) const {
    if (!found) {
        const Errc code = static_cast<Errc>(found.error().value());
        return token_failure(ctx, code, pod_lookup_failure_text(code, request.peer));
    }
    ctx.pod = *found;  // the audit line's views outlive `found`
    ctx.pod_namespace = ctx.pod->namespace_name;
    ctx.pod_name = ctx.pod->name;
    return std::nullopt;
}

std::optional<HttpResponse> NmiHandler::refusal(Context& ctx) const {
    const identity::Decision& decision = ctx.prepared->decision;
    if (decision.kind == identity::DecisionKind::denied) {
        return token_failure(ctx, errc_for(decision.reason),
                             identity::describe(decision.reason, *ctx.pod, token_query(ctx.params),
                                                identity_settings_));
    }
    if (decision.kind == identity::DecisionKind::bound && multi_tenant(*decision.identity) &&
        decision.identity->auxiliary_tenant_ids.size() > kMaxAuxiliaryTenants) {
        return token_failure(ctx, Errc::identity_unsupported,
                             "failed to get service principal token for pod: " +
                                 std::string{ctx.pod->namespace_name} + "/" + ctx.pod->name +
                                 ", error: must specify one to three auxiliary tenants");
    }
    return std::nullopt;
}

HttpResponse NmiHandler::token_answer(const CacheResult& result, Context& ctx) const {
    if (!result.token) {
        return token_failure(ctx, result.error.code, fetch_failure_text(result.error),
                             result.error.retry_after);
    }
    return json_ok(token_json(result.token, ctx.resource, deps_.clock.unix_seconds()));
}

// token() without its suspensions: gives up (no effect) where token() would await.
std::optional<HttpResponse> NmiHandler::token_now(const HttpRequest& request,
                                                  std::string_view query, Context& ctx) {
    if (auto refused = token_checks(request, query, ctx)) {
        return refused;
    }
    if (ctx.params.bypass_cache) {
        return std::nullopt;  // a forced fetch is the cache's full path
    }
    const std::optional<Result<PodInfoPtr>> found = deps_.pods.try_find_fresh(request.peer);
    if (!found) {
        return std::nullopt;
    }
    if (auto refused = take_pod(*found, request, ctx)) {
        return refused;
    }
    if (workload_pod(ctx)) {
        return workload_now(ctx);
    }
    ctx.prepared = find_prepared(ctx.pod, token_query(ctx.params));
    if (!ctx.prepared || ctx.prepared->decision.kind == identity::DecisionKind::excepted) {
        return std::nullopt;
    }
    if (auto refused = refusal(ctx)) {
        return refused;
    }
    if (multi_tenant(*ctx.prepared->decision.identity)) {
        return std::nullopt;
    }
    const std::optional<CacheResult> result = cached_token(*ctx.prepared, ctx);
    if (!result) {
        return std::nullopt;
    }
    return token_answer(*result, ctx);
}

asio::awaitable<HttpResponse> NmiHandler::token(const HttpRequest& request, std::string_view query,
                                                Context& ctx) {
    if (auto refused = token_checks(request, query, ctx)) {
        co_return std::move(*refused);
    }
    // Most requests are answered from a fresh snapshot without a coroutine frame; the rest
    // wait for a read that started within the freshness bound (never a stale mapping).
    std::optional<Result<PodInfoPtr>> found = deps_.pods.try_find_fresh(request.peer);
    if (!found) {
        found = co_await deps_.pods.find_fresh(request.peer);
    }
    if (auto refused = take_pod(*found, request, ctx)) {
        co_return std::move(*refused);
    }
    if (workload_pod(ctx)) {
        co_return co_await workload_token(ctx);
    }
    // The decision and its cache key are remembered per snapshot: a repeated request resolves
    // nothing. `prepared->crds` keeps decision.identity alive.
    ctx.prepared = find_prepared(ctx.pod, token_query(ctx.params));
    if (!ctx.prepared) {
        ctx.prepared = co_await prepare(ctx.pod, token_query(ctx.params));
    }
    const Prepared& prepared = *ctx.prepared;
    if (prepared.decision.kind == identity::DecisionKind::excepted) {
        // True pass-through: the request as the pod sent it (hop-by-hop fields dropped).
        ctx.identity = "excepted";
        co_return co_await proxy(request, std::string{request.target}, ctx);
    }
    if (auto refused = refusal(ctx)) {
        co_return std::move(*refused);
    }
    // A hit is answered without suspending; only the cache's full path is a coroutine (and
    // bypass_cache=true, which the cache may answer with a forced fetch).
    std::optional<CacheResult> result;
    if (!ctx.params.bypass_cache) {
        result = cached_token(prepared, ctx);
    }
    if (!result) {
        result = co_await fetch_token(prepared, ctx);
    }
    const AzureIdentity& identity = *prepared.decision.identity;
    if (!result->token || !multi_tenant(identity)) {
        co_return token_answer(*result, ctx);
    }
    // As NMI (adal's multi-tenant token): an array, the primary tenant's token first, then one
    // per auxiliary tenant in the identity's order, each cached like any other.
    std::string body = "[";
    append_token_json(body, result->token, ctx.resource, deps_.clock.unix_seconds());
    for (const std::string& tenant : identity.auxiliary_tenant_ids) {
        TokenRequest aux{.identity = prepared.key.identity, .resource = std::string{ctx.resource}};
        aux.identity.tenant_id = tenant;
        std::optional<CacheResult> aux_result;
        if (!ctx.params.bypass_cache) {
            aux_result = deps_.cache.try_get(aux);
        }
        if (!aux_result) {
            const std::string requester = detail::requester_of(ctx);
            aux_result = co_await deps_.cache.get(
                aux, requester, GetOptions{.force_refresh = ctx.params.bypass_cache});
        }
        if (!aux_result->token) {
            co_return token_failure(ctx, aux_result->error.code,
                                    fetch_failure_text(aux_result->error),
                                    aux_result->error.retry_after);
        }
        body += ',';
        append_token_json(body, aux_result->token, ctx.resource, deps_.clock.unix_seconds());
    }
    body += ']';
    co_return json_ok(std::move(body));
}

}  // namespace nmid::handlers
