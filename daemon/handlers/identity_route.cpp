// Everything under `/metadata/identity` but the token route (`info`, `issuecredential`,
// `getplatformmetadata`, any spelling): answered by nmid, never forwarded for a pod that is
// not excepted. An excepted pod is passed through when its spelling is the canonical one.
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <utility>

#include "nmi_handler_detail.hpp"
#include "nmid/crd/crd_store.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/pods/pod_index.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpRequest;
using http::HttpResponse;

asio::awaitable<HttpResponse> NmiHandler::identity_route(const HttpRequest& request,
                                                         const http::RoutedTarget& routed,
                                                         Context& ctx) {
    auto fail = [&](Errc code, std::string_view text) {
        ctx.error = code;
        return error_response(code, text, settings_, Endpoint::other);
    };
    // IMDS's own order: the request's shape first.
    if (settings_.metadata_header_required && request.headers->get("Metadata") != "true") {
        co_return fail(Errc::metadata_header_missing, "Required metadata header not specified");
    }
    if (request.headers->contains("X-Forwarded-For")) {
        co_return fail(Errc::forwarded_for_present,
                       "Request must not contain an X-Forwarded-For header");
    }
    constexpr std::string_view kNotFound =
        "nmid does not serve this identity path; tokens are served on "
        "/metadata/identity/oauth2/token";
    if (!routed.canonical.exact()) {
        co_return fail(Errc::path_not_found, kNotFound);  // no caller is passed through
    }
    if (!deps_.ready()) {
        co_return token_failure(ctx, Errc::not_ready,
                                "nmid is starting: pod and identity data not loaded yet");
    }
    std::optional<Result<PodInfoPtr>> found = deps_.pods.try_find_fresh(request.peer);
    if (!found) {
        found = co_await deps_.pods.find_fresh(request.peer);
    }
    if (auto refused = take_pod(*found, request, ctx)) {
        co_return std::move(*refused);
    }
    // Exceptions are decided first by resolve() whatever the query: only the kind is used.
    const CrdSnapshotPtr crds = deps_.crds.snapshot();
    const identity::Decision decision =
        identity::resolve(*ctx.pod, *crds, identity::TokenQuery{}, identity_settings_);
    if (decision.kind != identity::DecisionKind::excepted) {
        co_return fail(Errc::path_not_found, kNotFound);
    }
    ctx.identity = "excepted";
    co_return co_await proxy(request, upstream_target(routed), ctx);
}

}  // namespace nmid::handlers
