#include "nmid/cloud/imds_token_source.hpp"

#include <string_view>
#include <utility>

#include "nmid/cloud/token_json.hpp"
#include "nmid/net/http_client.hpp"

namespace nmid::cloud {

namespace {

// Error bodies travel back to pods (NMI answers 403 with them) and sit in the negative
// cache; IMDS's are a few hundred bytes, so a cap only guards against a misbehaving upstream.
constexpr std::size_t kMaxErrorBody = 4096;

// Keys in sorted order, as adal sends them (reference nmi-behaviour 6.1).
constexpr std::string_view kTokenTarget = "/metadata/identity/oauth2/token?api-version=2018-02-01";

FetchError make_error(Errc code, int status = 0, std::string body = {},
                      std::chrono::seconds retry_after = std::chrono::seconds{0}) {
    FetchError e;
    e.code = code;
    e.upstream_status = status;
    if (body.size() > kMaxErrorBody) {
        body.resize(kMaxErrorBody);
    }
    e.upstream_body = std::move(body);
    e.retry_after = retry_after;
    return e;
}

std::string token_target(const TokenRequest& request) {
    std::string target{kTokenTarget};
    if (!request.identity.client_id.empty()) {
        target += "&client_id=";
        target += net::percent_encode(request.identity.client_id);
    }
    target += "&resource=";
    target += net::percent_encode(request.resource);
    return target;
}

}  // namespace

ImdsTokenSource::ImdsTokenSource(net::HttpClient& client, Clock& clock, std::string user_agent)
    : client_{client}, clock_{clock}, user_agent_{std::move(user_agent)} {}

boost::asio::awaitable<FetchResult> ImdsTokenSource::fetch(const TokenRequest& request,
                                                           SteadyTime deadline) {
    // Service principals (types 1 and 2) are fetched from AAD, not IMDS.
    if (request.identity.type != 0) {
        co_return make_error(Errc::identity_unsupported);
    }
    net::ClientRequest req;
    req.target = token_target(request);
    req.headers.emplace_back("Metadata", "true");
    if (!user_agent_.empty()) {
        req.headers.emplace_back("User-Agent", user_agent_);
    }
    auto response = co_await client_.request(req, deadline);
    if (!response) {
        if (response.error() == Errc::timeout) {
            co_return make_error(Errc::timeout);
        }
        if (response.error() == Errc::cancelled) {
            co_return make_error(Errc::cancelled);
        }
        // Connect and transport failures, and an answer that is not HTTP: IMDS is not usable
        // right now, which callers retry.
        co_return make_error(Errc::upstream_unavailable);
    }
    net::ClientResponse& r = *response;
    if (r.status == 200) {
        auto token = parse_token_response(r.body, clock_.unix_seconds());
        if (!token) {
            // The body may hold a token-like secret: it is not kept.
            co_return make_error(Errc::upstream_bad_payload, r.status);
        }
        co_return std::move(*token);
    }
    if (r.status == 429) {
        const auto retry_after = net::parse_retry_after(r.header("Retry-After"), clock_.wall_now())
                                     .value_or(std::chrono::seconds{0});
        co_return make_error(Errc::upstream_throttled, r.status, std::move(r.body), retry_after);
    }
    if (r.status >= 400 && r.status < 500 && r.status != 404 && r.status != 410) {
        co_return make_error(Errc::upstream_refused, r.status, std::move(r.body));
    }
    // 404 and 410 (IMDS updating), 5xx, and statuses IMDS never sends.
    co_return make_error(Errc::upstream_unavailable, r.status, std::move(r.body));
}

}  // namespace nmid::cloud
