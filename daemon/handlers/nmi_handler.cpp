#include "nmid/handlers/nmi_handler.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nmid/core/ascii.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/handlers/imds_json.hpp"
#include "nmid/http/router.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/logging/logging.hpp"
#include "nmid/metrics/metrics.hpp"
#include "nmid/net/http_client.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

/// The token query's parameters decoded in one pass: `values` view the query (or `decoded`).
struct TokenParams {
    std::string_view resource;
    std::string_view client_id;
    std::string_view resource_id;  ///< msi_res_id, else mi_res_id
    std::string_view object_id;
};

/// Facts gathered while answering, written once into the audit line and the metrics. The
/// views point into the request or into what the context holds.
struct NmiHandler::Context {
    std::string_view route;
    std::string_view cache;
    std::string_view pod_namespace;
    std::string_view pod_name;
    std::string_view identity;  ///< redacted client id, or "excepted"
    std::string_view resource;
    TokenParams params;  ///< the token route's query parameters
    Errc error = Errc::ok;
    PodInfoPtr pod;
    std::shared_ptr<const Prepared> prepared;
    std::string decoded;  ///< query values that had to be decoded
};

/// A (pod, query) resolved under one CRD snapshot, with what answering it from the cache
/// needs: built once and reused by every request of that pod until the snapshot changes.
struct NmiHandler::Prepared {
    CrdSnapshotPtr crds;  ///< keeps decision.identity alive
    identity::Decision decision;
    PreparedIdentity key;  ///< bound: the cache key's identity half, hashed
    std::string redacted;  ///< bound: the client id as the audit line shows it
};

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

constexpr std::string_view kJson = "application/json; charset=utf-8";

// Hop-by-hop fields (RFC 9110 7.6.1) and fields nmid must not forward to IMDS.
bool is_dropped_header(std::string_view name) {
    static constexpr std::array<std::string_view, 12> kDropped = {
        "connection",     "keep-alive",     "proxy-connection",    "transfer-encoding",  "te",
        "trailer",        "upgrade",        "proxy-authorization", "proxy-authenticate", "host",
        "content-length", "x-forwarded-for"};
    return std::any_of(kDropped.begin(), kDropped.end(),
                       [&](std::string_view d) { return iequals(d, name); });
}

TokenParams parse_token_params(std::string_view query, std::string& decoded) {
    static constexpr std::array<std::string_view, 5> kNames = {
        "resource", "client_id", "msi_res_id", "mi_res_id", "object_id"};
    std::array<std::string_view, 5> values{};
    http::query_param_views(query, kNames, values, decoded);
    return TokenParams{.resource = values[0],
                       .client_id = values[1],
                       .resource_id = values[2].empty() ? values[3] : values[2],
                       .object_id = values[4]};
}

Errc errc_for(identity::DenyReason reason) {
    return reason == identity::DenyReason::requested_identity_not_bound ? Errc::identity_not_found
                                                                        : Errc::no_binding;
}

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

/// Per I/O thread: recent (pod, query) decisions of one handler under one CRD snapshot
/// generation, so a repeated request skips resolve(), the copies and hashing of the cache key
/// and the redaction. A slot matches a pod by address while the pod list it came from is
/// alive (a weak reference: the memo never keeps a replaced pod list in memory, and an address
/// in a live list is that pod's alone); every slot is dropped when the generation (or the
/// handler) changes. Only final decisions are kept (bound, excepted): a denial may wait
/// (standard mode) and is rare.
class PreparedMemo {
public:
    using PreparedPtr = std::shared_ptr<const NmiHandler::Prepared>;

    PreparedPtr find(std::uint64_t owner, std::uint64_t generation, const PodInfoPtr& pod,
                     const identity::TokenQuery& query) {
        if (owner != owner_ || generation != generation_) {
            reset(owner, generation);  // drops the old snapshot's entries at once
            return nullptr;
        }
        const Slot& slot = slots_[index(pod)];
        if (slot.address != pod.get() || slot.pod.expired() || slot.client_id != query.client_id ||
            slot.resource_id != query.resource_id || slot.object_id != query.object_id) {
            return nullptr;
        }
        return slot.prepared;
    }

    void store(std::uint64_t owner, std::uint64_t generation, const PodInfoPtr& pod,
               const identity::TokenQuery& query, PreparedPtr prepared) {
        if (owner == owner_ && generation < generation_) {
            return;  // resolved under a snapshot that was replaced meanwhile
        }
        if (owner != owner_ || generation != generation_) {
            reset(owner, generation);
        }
        Slot& slot = slots_[index(pod)];
        slot.address = pod.get();
        slot.pod = pod;
        slot.client_id.assign(query.client_id);
        slot.resource_id.assign(query.resource_id);
        slot.object_id.assign(query.object_id);
        slot.prepared = std::move(prepared);
    }

private:
    static constexpr std::size_t kSlots = 64;
    struct Slot {
        const PodInfo* address = nullptr;
        std::weak_ptr<const PodInfo> pod;
        std::string client_id;
        std::string resource_id;
        std::string object_id;
        PreparedPtr prepared;
    };

    static std::size_t index(const PodInfoPtr& pod) {
        // Fibonacci hashing of the address: its top bits pick the slot.
        const auto address = reinterpret_cast<std::uintptr_t>(pod.get());
        return static_cast<std::size_t>((address * 0x9e3779b97f4a7c15ULL) >> 58U) % kSlots;
    }

    void reset(std::uint64_t owner, std::uint64_t generation) {
        for (Slot& slot : slots_) {
            slot.address = nullptr;
            slot.pod.reset();
            slot.prepared.reset();
        }
        owner_ = owner;
        generation_ = generation;
    }

    std::uint64_t owner_ = 0;
    std::uint64_t generation_ = 0;
    std::array<Slot, kSlots> slots_;
};

PreparedMemo& prepared_memo() {
    thread_local PreparedMemo memo;
    return memo;
}

std::atomic<std::uint64_t> g_next_handler_id{1};

/// adal's multi-tenant service principal takes one to three auxiliary tenants.
constexpr std::size_t kMaxAuxiliaryTenants = 3;

HttpResponse json_ok(std::string body) {
    HttpResponse response;
    response.content_type = kJson;
    response.body = std::move(body);
    return response;
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

// NMI accepted exactly 127.0.0.1. The rest of 127/8 is not trusted: standalone mode and the
// tests give those addresses to pods.
bool is_host_caller(const asio::ip::address& a) {
    return a == asio::ip::address_v4::loopback() || a == asio::ip::address_v6::loopback();
}

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
            p = std::to_chars(p, buf.data() + buf.size(), bytes[i]).ptr;
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
      upstream_(std::move(upstream_settings)) {}

// The answer's coroutine for the route; synchronous answers come as a finished one. Not a
// coroutine itself, so handle() awaits once (a smaller frame, kept by asio's frame cache).
asio::awaitable<HttpResponse> NmiHandler::respond(const HttpRequest& request,
                                                  const http::RoutedTarget& routed, Context& ctx) {
    switch (routed.route) {
        case http::Route::token:
            return token(request, routed.query, ctx);
        case http::Route::invalid_token_path: {
            ctx.error = Errc::invalid_token_path;
            HttpResponse response =
                error_response(Errc::invalid_token_path, "Invalid request", settings_);
            return ready(std::move(response));
        }
        case http::Route::host_token:
            return host_token(request, routed.query, ctx);
        case http::Route::instance:
            if (settings_.block_instance_metadata) {
                ctx.error = Errc::instance_blocked;
                HttpResponse response = error_response(Errc::instance_blocked,
                                                       "Request blocked by AAD Pod Identity NMI",
                                                       settings_, Endpoint::other);
                return ready(std::move(response));
            }
            return proxy(request, ctx);
        case http::Route::proxy:
            break;
    }
    return proxy(request, ctx);
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
                    .cache = ctx.cache,
                    .error = ctx.error == Errc::ok ? std::string_view{} : to_string(ctx.error)});
}

std::optional<HttpResponse> NmiHandler::handle_now(const HttpRequest& request) {
    const http::RoutedTarget routed = http::route(request.target);
    if (routed.route != http::Route::token) {
        return std::nullopt;
    }
    Context ctx;
    ctx.route = http::to_string(routed.route);
    std::optional<HttpResponse> response = token_now(request, routed.query, ctx);
    if (response) {
        record(request, routed.path, *response, ctx);
    }
    return response;
}

asio::awaitable<HttpResponse> NmiHandler::handle(const HttpRequest& request) {
    Context ctx;
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
    CacheResult result = co_await deps_.cache.get(request);
    ctx.cache = to_string(result.outcome);
    co_return result;
}

HttpResponse NmiHandler::token_failure(Context& ctx, Errc code, std::string_view text,
                                       std::chrono::seconds retry_after) const {
    ctx.error = code;
    return error_response(code, text, settings_, Endpoint::token, retry_after);
}

std::optional<HttpResponse> NmiHandler::token_checks(const HttpRequest& request,
                                                     std::string_view query, Context& ctx) const {
    // SDK probes come without Metadata and expect a fast 400: answered before any lookup.
    if (settings_.metadata_header_required && request.headers->get("Metadata") != "true") {
        return token_failure(ctx, Errc::metadata_header_missing,
                             "Required metadata header not specified");
    }
    if (request.headers->contains("X-Forwarded-For")) {
        return token_failure(ctx, Errc::forwarded_for_present,
                             "Request must not contain an X-Forwarded-For header");
    }
    if (!deps_.ready()) {
        return token_failure(ctx, Errc::not_ready,
                             "nmid is starting: pod and identity data not loaded yet");
    }
    ctx.params = parse_token_params(query, ctx.decoded);
    ctx.resource = ctx.params.resource;
    if (ctx.resource.empty()) {
        return token_failure(ctx, Errc::resource_missing, "parameter resource cannot be empty");
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

namespace {

identity::TokenQuery token_query(const TokenParams& params) {
    return {params.client_id, params.resource_id, params.object_id};
}

bool multi_tenant(const AzureIdentity& id) {
    return id.type == static_cast<int>(IdentityType::service_principal) &&
           !id.auxiliary_tenant_ids.empty();
}

}  // namespace

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
    const std::optional<Result<PodInfoPtr>> found = deps_.pods.try_find_fresh(request.peer);
    if (!found) {
        return std::nullopt;
    }
    if (auto refused = take_pod(*found, request, ctx)) {
        return refused;
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
    // The decision and its cache key are remembered per snapshot: a repeated request resolves
    // nothing. `prepared->crds` keeps decision.identity alive.
    ctx.prepared = find_prepared(ctx.pod, token_query(ctx.params));
    if (!ctx.prepared) {
        ctx.prepared = co_await prepare(ctx.pod, token_query(ctx.params));
    }
    const Prepared& prepared = *ctx.prepared;
    if (prepared.decision.kind == identity::DecisionKind::excepted) {
        ctx.identity = "excepted";
        co_return co_await proxy(request, ctx);
    }
    if (auto refused = refusal(ctx)) {
        co_return std::move(*refused);
    }
    // A hit is answered without suspending; only the cache's full path is a coroutine.
    std::optional<CacheResult> result = cached_token(prepared, ctx);
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
        std::optional<CacheResult> aux_result = deps_.cache.try_get(aux);
        if (!aux_result) {
            aux_result = co_await deps_.cache.get(aux);
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
    const TokenParams params = parse_token_params(query, ctx.decoded);
    ctx.resource = params.resource;
    if (ctx.resource.empty()) {
        co_return fail(Errc::resource_missing, "parameter resource cannot be empty");
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
        co_return fail(errc_for(reason),
                       identity::describe(reason, pod, query_ids, identity_settings_));
    }
    std::optional<CacheResult> result = cached_token(prepared, ctx);
    if (!result) {
        result = co_await fetch_token(prepared, ctx);
    }
    if (!result->token) {
        co_return fail(result->error.code, fetch_failure_text(result->error),
                       result->error.retry_after);
    }
    std::string body = "{\"token\":";
    append_token_json(body, result->token, ctx.resource, deps_.clock.unix_seconds());
    body += ",\"clientid\":\"";
    append_json_escaped(body, decision.identity->client_id);
    body += "\"}";
    co_return json_ok(std::move(body));
}

asio::awaitable<HttpResponse> NmiHandler::proxy(const HttpRequest& request, Context& ctx) {
    auto fail = [&](Errc code, std::string_view text) {
        ctx.error = code;
        return error_response(code, text, settings_, Endpoint::other);
    };
    if (settings_.metadata_header_required && request.headers->get("Metadata") != "true") {
        co_return fail(Errc::metadata_header_missing, "Required metadata header not specified");
    }
    if (request.headers->contains("X-Forwarded-For")) {
        co_return fail(Errc::forwarded_for_present,
                       "Request must not contain an X-Forwarded-For header");
    }
    net::ClientRequest upstream;
    upstream.method = request.method;
    upstream.target = request.target;
    upstream.body = request.body;
    request.headers->for_each(
        [](void* out, std::string_view name, std::string_view value) {
            if (!is_dropped_header(name)) {
                static_cast<net::ClientRequest*>(out)->headers.emplace_back(name, value);
            }
        },
        &upstream);
    const auto deadline = std::chrono::steady_clock::now() + upstream_.proxy_timeout;
    auto answer = co_await deps_.imds.request(upstream, deadline);
    if (!answer) {
        const Errc code =
            answer.error() == Errc::timeout ? Errc::timeout : Errc::upstream_unavailable;
        co_return fail(
            code, "failed to reach the instance metadata service: " + answer.error().message());
    }
    HttpResponse response;
    response.status = answer->status;
    response.body = std::move(answer->body);
    for (auto& [name, value] : answer->headers) {
        if (is_dropped_header(name)) {
            continue;
        }
        if (iequals(name, "content-type")) {
            response.content_type = std::move(value);
            continue;
        }
        response.headers.emplace_back(std::move(name), std::move(value));
    }
    co_return response;
}

}  // namespace nmid::handlers
