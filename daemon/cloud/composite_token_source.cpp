#include "nmid/cloud/composite_token_source.hpp"

#include <string>

namespace nmid::cloud {

CompositeTokenSource::CompositeTokenSource(TokenSource& imds, TokenSource& aad)
    : imds_{imds}, aad_{aad} {}

boost::asio::awaitable<FetchResult> CompositeTokenSource::fetch(const TokenRequest& request,
                                                                SteadyTime deadline) {
    switch (request.identity.type) {
        case 0:
            co_return co_await imds_.fetch(request, deadline);
        case 1:
        case 2:
            co_return co_await aad_.fetch(request, deadline);
        default:
            break;
    }
    FetchError e;
    e.code = Errc::identity_unsupported;
    e.upstream_body = "unsupported identity type " + std::to_string(request.identity.type);
    co_return e;
}

}  // namespace nmid::cloud
