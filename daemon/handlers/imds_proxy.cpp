// The generic proxy to IMDS (an allowlist of credential-free paths), and the pass-through of
// excepted pods.
#include <algorithm>
#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <utility>

#include "nmi_handler_detail.hpp"
#include "nmid/core/ascii.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

namespace {

// Hop-by-hop fields (RFC 9110 7.6.1) and fields nmid must not forward to IMDS.
bool is_dropped_header(std::string_view name) {
    static constexpr std::array<std::string_view, 12> kDropped = {
        "connection",     "keep-alive",     "proxy-connection",    "transfer-encoding",  "te",
        "trailer",        "upgrade",        "proxy-authorization", "proxy-authenticate", "host",
        "content-length", "x-forwarded-for"};
    return std::any_of(kDropped.begin(), kDropped.end(),
                       [&](std::string_view d) { return iequals(d, name); });
}

/// Whether `name` is one of the comma-separated options of a `Connection` field: those are
/// hop-by-hop too (RFC 9110 7.6.1).
bool is_connection_option(std::string_view connection, std::string_view name) {
    while (!connection.empty()) {
        const std::size_t comma = connection.find(',');
        std::string_view option = connection.substr(0, comma);
        connection =
            comma == std::string_view::npos ? std::string_view{} : connection.substr(comma + 1);
        while (!option.empty() && (option.front() == ' ' || option.front() == '\t')) {
            option.remove_prefix(1);
        }
        while (!option.empty() && (option.back() == ' ' || option.back() == '\t')) {
            option.remove_suffix(1);
        }
        if (!option.empty() && iequals(option, name)) {
            return true;
        }
    }
    return false;
}

struct ForwardedHeaders {
    std::string_view connection;  ///< the request's Connection field
    net::ClientRequest* upstream;
};

}  // namespace

std::string NmiHandler::upstream_target(const http::RoutedTarget& routed) {
    std::string target;
    target.reserve(routed.canonical.path().size() + routed.query.size() + 1);
    http::append_encoded_path(target, routed.canonical.path());
    if (!routed.query.empty()) {
        target += '?';
        target += routed.query;
    }
    return target;
}

asio::awaitable<HttpResponse> NmiHandler::imds_route(const HttpRequest& request,
                                                     const http::RoutedTarget& routed,
                                                     Context& ctx) {
    if (routed.route == http::Route::instance && settings_.block_instance_metadata) {
        ctx.error = Errc::instance_blocked;
        co_return error_response(Errc::instance_blocked, "Request blocked by AAD Pod Identity NMI",
                                 settings_, Endpoint::other);
    }
    if (!http::method_allowed(routed.imds, request.method)) {
        ctx.error = Errc::method_not_allowed;
        HttpResponse response =
            error_response(Errc::method_not_allowed,
                           "method " + std::string{request.method} + " is not allowed on this path",
                           settings_, Endpoint::other);
        response.headers.emplace_back("Allow", std::string{http::allowed_methods(routed.imds)});
        co_return response;
    }
    co_return co_await proxy(request, upstream_target(routed), ctx);
}

HttpResponse NmiHandler::path_not_allowed(Context& ctx) const {
    ctx.error = Errc::path_not_allowed;
    return error_response(Errc::path_not_allowed,
                          "nmid forwards only these instance metadata paths: /metadata/instance, "
                          "/metadata/versions, /metadata/attested, /metadata/scheduledevents, "
                          "/metadata/loadbalancer",
                          settings_, Endpoint::other);
}

asio::awaitable<HttpResponse> NmiHandler::proxy(const HttpRequest& request, std::string target,
                                                Context& ctx) {
    if (auto refused = refused_headers(request, ctx)) {
        co_return std::move(*refused);
    }
    net::ClientRequest upstream;
    upstream.method = request.method;
    upstream.target = std::move(target);
    upstream.body = request.body;
    ForwardedHeaders forwarded{.connection = request.headers->get("Connection"),
                               .upstream = &upstream};
    request.headers->for_each(
        [](void* out, std::string_view name, std::string_view value) {
            auto* f = static_cast<ForwardedHeaders*>(out);
            if (!is_dropped_header(name) && !is_connection_option(f->connection, name)) {
                f->upstream->headers.emplace_back(name, value);
            }
        },
        &forwarded);
    // IMDS's limits are per VM: a proxied or passed-through request takes a unit of the same
    // budget as nmid's own token fetches, admitted fairly across pods (issue 11.4).
    const std::string requester = request.peer.to_string();  // as detail::requester_of
    auto permit = co_await deps_.cache.acquire_upstream(
        requester, deps_.clock.steady_now() + upstream_.proxy_timeout);
    if (!permit) {
        const Errc code = permit.error() == Errc::pod_over_limit ? Errc::pod_over_limit
                                                                 : Errc::upstream_throttled;
        co_return other_failure(
            ctx, code,
            code == Errc::pod_over_limit
                ? "too many requests from this pod are waiting for the instance "
                  "metadata service; retry"
                : "the instance metadata service budget is exhausted; retry");
    }
    const auto deadline = std::chrono::steady_clock::now() + upstream_.proxy_timeout;
    auto answer = co_await deps_.imds.request(upstream, deadline);
    permit->reset();
    if (!answer) {
        const Errc code =
            answer.error() == Errc::timeout ? Errc::timeout : Errc::upstream_unavailable;
        co_return other_failure(
            ctx, code,
            "failed to reach the instance metadata service: " + answer.error().message());
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
