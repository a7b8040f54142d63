#include "nmid/handlers/nmi_handler.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "decision_memo.hpp"
#include "nmi_handler_detail.hpp"
#include "nmid/core/ascii.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/handlers/imds_json.hpp"
#include "nmid/http/router.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

namespace detail {

HttpResponse json_ok(std::string body) {
    HttpResponse response;
    response.content_type = kJson;
    response.body = std::move(body);
    return response;
}

TokenParams parse_token_params(std::string_view query, std::string& decoded) {
    static constexpr std::array<std::string_view, 6> kNames = {
        "resource", "client_id", "msi_res_id", "mi_res_id", "object_id", "bypass_cache"};
    std::array<std::string_view, 6> values{};
    http::query_param_views(query, kNames, values, decoded);
    return TokenParams{.resource = values[0],
                       .client_id = values[1],
                       .resource_id = values[2].empty() ? values[3] : values[2],
                       .object_id = values[4],
                       .bypass_cache = iequals(values[5], "true")};
}

Errc errc_for(identity::DenyReason reason) {
    return reason == identity::DenyReason::requested_identity_not_bound ? Errc::identity_not_found
                                                                        : Errc::no_binding;
}

// NMI's message for a failed fetch, with the upstream's own answer when it sent one.
std::string fetch_failure_text(const FetchError& e) {
    std::string text = "failed to get service principal token, error: ";
    text += to_string(e.code);
    if (e.upstream_status != 0) {
        text += ", upstream status ";
        text += std::to_string(e.upstream_status);
    }
    if (!e.upstream_body.empty()) {
        text += ", upstream body: ";
        text += e.upstream_body.substr(0, 512);
    }
    return text;
}

}  // namespace detail

namespace {

TokenIdentity token_identity(const AzureIdentity& id) {
    TokenIdentity identity;
    identity.identity_namespace = id.meta.namespace_name;
    identity.identity_name = id.meta.name;
    identity.type = id.type;
    identity.client_id = id.client_id;
    identity.resource_id = id.resource_id;
    identity.tenant_id = id.tenant_id;
    identity.ad_endpoint = id.ad_endpoint;
    identity.secret = id.client_password;
    return identity;
}

std::atomic<std::uint64_t> g_next_handler_id{1};

/// `a` as text in `buf`. IPv4 by hand: glibc's inet_ntop formats it with sprintf, which was a
/// visible share of a cached answer's cost.
std::string_view format_ip(const asio::ip::address& a, std::array<char, 64>& buf) {
    if (a.is_v4()) {
        const auto bytes = a.to_v4().to_bytes();
        char* p = buf.data();
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            if (i != 0) {
                *p++ = '.';
            }
            const auto written = std::to_chars(p, buf.data() + buf.size(), bytes[i]);
            if (written.ec != std::errc{}) {
                return {};  // cannot happen (15 characters at most); tells g++ 12 p stays inside
            }
            p = written.ptr;
        }
        return {buf.data(), static_cast<std::size_t>(p - buf.data())};
    }
    const std::string text = a.to_string();
    const std::size_t n = std::min(text.size(), buf.size());
    std::copy_n(text.data(), n, buf.data());
    return {buf.data(), n};
}

}  // namespace

NmiHandler::NmiHandler(NmiDependencies deps, HandlerSettings handler_settings,
                       IdentitySettings identity_settings, UpstreamSettings upstream_settings)
    : deps_(std::move(deps)),
      id_(g_next_handler_id.fetch_add(1, std::memory_order_relaxed)),
      settings_(handler_settings),
      identity_settings_(std::move(identity_settings)),
      upstream_(std::move(upstream_settings)),
      known_tenant_(new_known_tenant()) {}

// The answer's coroutine for the route; synchronous answers come as a finished one. Not a
// coroutine itself, so handle() awaits once (a smaller frame, kept by asio's frame cache).
asio::awaitable<HttpResponse> NmiHandler::respond(const HttpRequest& request,
                                                  const http::RoutedTarget& routed, Context& ctx) {
    switch (routed.route) {
        case http::Route::token:
            return token(request, routed.query, ctx);
        case http::Route::malformed: {
            ctx.error = Errc::bad_request;
            HttpResponse response = error_response(Errc::bad_request, "Invalid request target",
                                                   settings_, Endpoint::other);
            return ready(std::move(response));
        }
        case http::Route::invalid_token_path: {
            ctx.error = Errc::invalid_token_path;
            HttpResponse response =
                error_response(Errc::invalid_token_path, "Invalid request", settings_);
            return ready(std::move(response));
        }
        case http::Route::identity_info:
            return identity_info(request, ctx);
        case http::Route::identity:
            return identity_route(request, routed, ctx);
        case http::Route::host_token:
            return host_token(request, routed.query, ctx);
        case http::Route::instance:
        case http::Route::proxy:
            return imds_route(request, routed, ctx);
        case http::Route::forbidden:
            break;
    }
    return ready(path_not_allowed(ctx));
}

asio::awaitable<HttpResponse> NmiHandler::ready(HttpResponse response) {
    co_return response;
}

void NmiHandler::record(const HttpRequest& request, std::string_view path,
                        const HttpResponse& response, const Context& ctx) {
    const auto took = std::chrono::steady_clock::now() - request.received_at;
    deps_.metrics.record_request(ctx.route, response.status, ctx.cache, ctx.pod_namespace,
                                 ctx.resource, took);
    std::array<char, 64> peer_text{};
    const std::string_view peer = format_ip(request.peer, peer_text);
    logging::audit({.method = request.method,
                    .path = path,
                    .remote = peer,
                    .status = response.status,
                    .took = took,
                    .route = ctx.route,
                    .pod_namespace = ctx.pod_namespace,
                    .pod_name = ctx.pod_name,
                    .identity = ctx.identity,
                    .source = ctx.source,
                    .cache = ctx.cache,
                    .error = ctx.error == Errc::ok ? std::string_view{} : to_string(ctx.error)});
}

std::optional<HttpResponse> NmiHandler::handle_now(const HttpRequest& request) {
    const http::RoutedTarget routed = http::route(request.target);
    if (routed.route != http::Route::token) {
        return std::nullopt;
    }
    Context ctx;
    ctx.peer = &request.peer;
    ctx.route = http::to_string(routed.route);
    std::optional<HttpResponse> response = token_now(request, routed.query, ctx);
    if (response) {
        record(request, routed.path, *response, ctx);
    }
    return response;
}

asio::awaitable<HttpResponse> NmiHandler::handle(const HttpRequest& request) {
    Context ctx;
    ctx.peer = &request.peer;
    const http::RoutedTarget routed = http::route(request.target);
    ctx.route = http::to_string(routed.route);
    HttpResponse response = co_await respond(request, routed, ctx);
    record(request, routed.path, response, ctx);
    co_return response;
}

/// A decision, the snapshot it points into and that snapshot's generation (or an older one).
struct NmiHandler::Resolved {
    CrdSnapshotPtr crds;
    identity::Decision decision;
    std::uint64_t generation = 0;
};

// Standard mode waits for MIC's assignment on snapshot publishes (watch events) instead of
// NMI's 5 s polls: the answer comes the moment the assignment does. The budget is NMI's:
// created x interval for an assignment to appear, (created + assigned) x interval once one is
// `Created`. A pod no binding selects gets no assignment from MIC and is answered at once.
asio::awaitable<NmiHandler::Resolved> NmiHandler::resolve_waiting(
    const PodInfo& pod, const identity::TokenQuery& query) {
    const IdentitySettings& s = identity_settings_;
    const SteadyTime started = deps_.clock.steady_now();
    const SteadyTime created_by =
        started + s.retry_attempts_for_created * s.find_identity_retry_interval;
    const SteadyTime assigned_by =
        created_by + s.retry_attempts_for_assigned * s.find_identity_retry_interval;
    for (;;) {
        const std::uint64_t generation = deps_.crds.generation();
        Resolved r{deps_.crds.snapshot(), {}, generation};
        r.decision = identity::resolve(pod, *r.crds, query, s);
        if (s.mode != OperationMode::standard ||
            r.decision.kind != identity::DecisionKind::denied) {
            co_return r;
        }
        SteadyTime deadline = started;
        if (r.decision.reason == identity::DenyReason::assignment_pending) {
            deadline = assigned_by;
        } else if (r.decision.reason == identity::DenyReason::no_assignment &&
                   identity::assignment_expected(pod, *r.crds, s)) {
            deadline = created_by;
        }
        if (deps_.clock.steady_now() >= deadline) {
            co_return r;
        }
        const std::uint64_t seen =
            co_await deps_.crds.wait_newer(generation, deps_.clock, deadline);
        if (seen == generation) {
            co_return r;  // the deadline passed (or the wait was cancelled): the denial stands
        }
    }
}

std::shared_ptr<const NmiHandler::Prepared> NmiHandler::find_prepared(
    const PodInfoPtr& pod, const identity::TokenQuery& query) const {
    return prepared_memo().find(id_, deps_.crds.generation(), pod, query);
}

asio::awaitable<std::shared_ptr<const NmiHandler::Prepared>> NmiHandler::prepare(
    const PodInfoPtr& pod, const identity::TokenQuery& query) {
    Resolved resolved = co_await resolve_waiting(*pod, query);
    auto prepared = std::make_shared<Prepared>();
    prepared->decision = resolved.decision;
    if (const AzureIdentity* id = resolved.decision.identity; id != nullptr) {
        prepared->key = prepare_identity(token_identity(*id));
        prepared->redacted = identity::redact(id->client_id);
    }
    prepared->crds = std::move(resolved.crds);
    if (prepared->decision.kind != identity::DecisionKind::denied) {
        prepared_memo().store(id_, resolved.generation, pod, query, prepared);
    }
    co_return prepared;
}

std::optional<CacheResult> NmiHandler::cached_token(const Prepared& prepared, Context& ctx) {
    ctx.identity = prepared.redacted;
    std::optional<CacheResult> result = deps_.cache.try_get(TokenKey{prepared.key, ctx.resource});
    if (result) {
        ctx.cache = to_string(result->outcome);
    }
    return result;
}

// The full path of the cache (miss, join, negative hit). Records the cache outcome.
asio::awaitable<CacheResult> NmiHandler::fetch_token(const Prepared& prepared, Context& ctx) {
    const TokenRequest request{.identity = prepared.key.identity,
                               .resource = std::string{ctx.resource}};
    const std::string requester = detail::requester_of(ctx);
    ctx.identity = prepared.redacted;
    CacheResult result = co_await deps_.cache.get(
        request, requester, GetOptions{.force_refresh = ctx.params.bypass_cache});
    ctx.cache = to_string(result.outcome);
    co_return result;
}

}  // namespace nmid::handlers
