#pragma once

#include <functional>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/http/message.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/token/token_cache.hpp"

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

/// What the pod-facing handler works with. References must outlive the handler.
struct NmiDependencies {
    PodIndex& pods;
    CrdStore& crds;
    TokenCache& cache;
    net::HttpClient& imds;  ///< proxy and pass-through for excepted pods
    metrics::Metrics& metrics;
    Clock& clock;
    std::function<bool()> ready;  ///< snapshots loaded (pods and CRDs)
};

/// The pod-facing listener's handler: NMI's routes (reference nmi-behaviour 3) with nmid's
/// improvements (design 4). Records one audit line and the request metrics per request.
class NmiHandler final : public http::RequestHandler {
public:
    NmiHandler(NmiDependencies deps, HandlerSettings handler_settings,
               IdentitySettings identity_settings, UpstreamSettings upstream_settings);
    boost::asio::awaitable<http::HttpResponse> handle(const http::HttpRequest& request) override;

    struct Context;  ///< per-request facts for the audit line (defined in the .cpp)

private:
    struct Resolved;
    boost::asio::awaitable<Resolved> resolve_waiting(const PodInfo& pod,
                                                     const identity::TokenQuery& query);
    boost::asio::awaitable<CacheResult> fetch_token(const AzureIdentity& id, Context& ctx);
    boost::asio::awaitable<http::HttpResponse> token(const http::HttpRequest& request,
                                                     std::string_view query, Context& ctx);
    boost::asio::awaitable<http::HttpResponse> host_token(const http::HttpRequest& request,
                                                          std::string_view query, Context& ctx);
    boost::asio::awaitable<http::HttpResponse> proxy(const http::HttpRequest& request,
                                                     Context& ctx);

    NmiDependencies deps_;
    HandlerSettings settings_;
    IdentitySettings identity_settings_;
    UpstreamSettings upstream_;
};

}  // namespace nmid::handlers
