#include "nmid/cloud/imds_token_source.hpp"

#include <string_view>
#include <utility>

#include "nmid/net/http_client.hpp"
#include "upstream_answer.hpp"

namespace nmid::cloud {

namespace {

// Keys in sorted order, as adal sends them (reference nmi-behaviour 6.1).
constexpr std::string_view kTokenTarget = "/metadata/identity/oauth2/token?api-version=2018-02-01";

// Names the identity by client_id, else by msi_res_id. The caller made sure one is set: a
// request naming neither would get the VM's system-assigned identity.
std::string token_target(const TokenRequest& request) {
    std::string target{kTokenTarget};
    if (!request.identity.client_id.empty()) {
        target += "&client_id=";
        target += net::percent_encode(request.identity.client_id);
    } else {
        target += "&msi_res_id=";
        target += net::percent_encode(request.identity.resource_id);
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
        co_return detail::fetch_error(Errc::identity_unsupported);
    }
    // Never the node's identity for a pod (design.md section 3): IMDS answers a request that
    // names no identity with the VM's system-assigned one.
    if (request.identity.client_id.empty() && request.identity.resource_id.empty()) {
        co_return detail::fetch_error(Errc::identity_unsupported, 0,
                                      "the identity has neither a client ID nor a resource ID");
    }
    net::ClientRequest req;
    req.target = token_target(request);
    req.headers.emplace_back("Metadata", "true");
    if (!user_agent_.empty()) {
        req.headers.emplace_back("User-Agent", user_agent_);
    }
    auto response = co_await client_.request(req, deadline);
    if (!response) {
        // Connect and transport failures, and an answer that is not HTTP: IMDS is not usable
        // right now, which callers retry.
        co_return detail::transport_error(response.error());
    }
    net::ClientResponse& r = *response;
    if (r.status == 200) {
        co_return detail::token_from(r, clock_.unix_seconds());
    }
    if (r.status == 429) {
        co_return detail::throttled(r, clock_.wall_now());
    }
    if (r.status >= 400 && r.status < 500 && r.status != 404 && r.status != 410) {
        co_return detail::fetch_error(Errc::upstream_refused, r.status, std::move(r.body));
    }
    // 404 and 410 (IMDS updating), 5xx, and statuses IMDS never sends.
    co_return detail::fetch_error(Errc::upstream_unavailable, r.status, std::move(r.body));
}

}  // namespace nmid::cloud
