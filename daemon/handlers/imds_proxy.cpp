// The generic proxy to IMDS, and the pass-through of excepted pods.
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

}  // namespace

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
