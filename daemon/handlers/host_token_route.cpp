// `/host/token`: a pod's token for host processes that name the pod (loopback callers only).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "nmi_handler_detail.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/handlers/imds_json.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/pods/pod_index.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

namespace {

// NMI accepted exactly 127.0.0.1. The rest of 127/8 is not trusted: standalone mode and the
// tests give those addresses to pods.
bool is_host_caller(const asio::ip::address& a) {
    return a == asio::ip::address_v4::loopback() || a == asio::ip::address_v6::loopback();
}

}  // namespace

asio::awaitable<HttpResponse> NmiHandler::host_token(const HttpRequest& request,
                                                     std::string_view query, Context& ctx) {
    auto fail = [&](Errc code, std::string_view text, std::chrono::seconds retry_after = {}) {
        ctx.error = code;
        return error_response(code, text, settings_, Endpoint::host_token, retry_after);
    };
    const std::string_view pod_ns = request.headers->get("podns");
    const std::string_view pod_name = request.headers->get("podname");
    if (pod_ns.empty() || pod_name.empty()) {
        co_return fail(Errc::host_headers_missing,
                       "missing 'podname' and 'podns' from request header");
    }
    // Any local process could impersonate any pod here; only loopback callers may.
    if (!is_host_caller(request.peer)) {
        co_return fail(Errc::not_loopback, "request remote address is not from a host");
    }
    if (!deps_.ready()) {
        co_return fail(Errc::not_ready, "nmid is starting: pod and identity data not loaded yet");
    }
    const TokenParams params = detail::parse_token_params(query, ctx.decoded);
    ctx.resource = params.resource;
    if (ctx.resource.empty()) {
        co_return fail(Errc::resource_missing, "parameter resource cannot be empty");
    }
    if (ctx.resource.size() > detail::kMaxResourceBytes) {
        ctx.resource = {};
        co_return fail(Errc::bad_request, detail::kResourceTooLong);
    }
    ctx.pod_namespace = pod_ns;
    ctx.pod_name = pod_name;
    auto found = deps_.pods.find_by_name(pod_ns, pod_name);
    if (!found) {
        const std::string pod_ref = std::string{pod_ns} + "/" + std::string{pod_name};
        co_return fail(Errc::no_binding, "failed to get pod " + pod_ref + ", error: pod " +
                                             pod_ref + " doesn't exist");
    }
    ctx.pod = *found;
    const PodInfo& pod = *ctx.pod;
    const identity::TokenQuery query_ids{params.client_id, params.resource_id, {}};
    ctx.prepared = find_prepared(ctx.pod, query_ids);
    if (!ctx.prepared) {
        ctx.prepared = co_await prepare(ctx.pod, query_ids);
    }
    const Prepared& prepared = *ctx.prepared;
    const identity::Decision& decision = prepared.decision;
    // NMI's host endpoint never serves exceptions: an excepted pod has no identity here.
    if (decision.kind != identity::DecisionKind::bound) {
        const auto reason = decision.kind == identity::DecisionKind::denied
                                ? decision.reason
                                : identity::DenyReason::no_matching_binding;
        co_return fail(detail::errc_for(reason),
                       identity::describe(reason, pod, query_ids, identity_settings_));
    }
    std::optional<CacheResult> result = cached_token(prepared, ctx);
    if (!result) {
        result = co_await fetch_token(prepared, ctx);
    }
    if (!result->token) {
        co_return fail(result->error.code, detail::fetch_failure_text(result->error),
                       result->error.retry_after);
    }
    std::string body = "{\"token\":";
    append_token_json(body, result->token, ctx.resource, deps_.clock.unix_seconds());
    body += ",\"clientid\":\"";
    append_json_escaped(body, decision.identity->client_id);
    body += "\"}";
    co_return detail::json_ok(std::move(body));
}

}  // namespace nmid::handlers
