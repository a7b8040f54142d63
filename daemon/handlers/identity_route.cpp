// Everything under `/metadata/identity` but the token and info routes (`issuecredential`,
// `getplatformmetadata`, any spelling): answered by nmid (404), never forwarded, whatever the
// caller, excepted pods included. `info` is identity_info_route.cpp's.
#include <boost/asio/awaitable.hpp>

#include "nmi_handler_detail.hpp"
#include "nmid/handlers/errors.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

asio::awaitable<HttpResponse> NmiHandler::identity_route(const HttpRequest& request,
                                                         const http::RoutedTarget& /*routed*/,
                                                         Context& ctx) {
    // IMDS's own order: the request's shape first.
    if (auto refused = refused_headers(request, ctx)) {
        co_return std::move(*refused);
    }
    // Never forwarded, whatever the caller (issue 11.1): an excepted pod's pass-through covers
    // the token route only; IMDS's other identity endpoints (info, the MSI v2 credential
    // endpoints) would hand out the node's credentials by other means.
    co_return other_failure(ctx, Errc::path_not_found,
                            "nmid does not serve this identity path; tokens are served on "
                            "/metadata/identity/oauth2/token");
}

}  // namespace nmid::handlers
