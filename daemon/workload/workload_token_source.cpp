#include "nmid/workload/workload_token_source.hpp"

#include <string>
#include <utility>

namespace nmid::workload {

TokenIdentity workload_identity(std::string_view namespace_name, std::string_view service_account,
                                std::string_view client_id, std::string_view tenant_id,
                                std::string_view authority) {
    TokenIdentity identity;
    identity.identity_namespace = namespace_name;
    identity.identity_name = service_account;
    identity.type = kWorkloadIdentityType;
    identity.client_id = client_id;
    identity.tenant_id = tenant_id;
    identity.ad_endpoint = authority;
    return identity;
}

WorkloadTokenSource::WorkloadTokenSource(ServiceAccountTokenProvider& tokens, PodsOf pods_of,
                                         Exchange exchange, std::size_t max_pods)
    : tokens_(tokens),
      pods_of_(std::move(pods_of)),
      exchange_(std::move(exchange)),
      max_pods_(max_pods == 0 ? 1 : max_pods) {}

boost::asio::awaitable<FetchResult> WorkloadTokenSource::fetch(const TokenRequest& request,
                                                               SteadyTime deadline) {
    const TokenIdentity& id = request.identity;
    const std::string account = id.identity_namespace + "/" + id.identity_name;
    if (id.type != kWorkloadIdentityType) {
        co_return fetch_error(Errc::identity_unsupported, 0, "not a workload identity key");
    }
    const std::vector<PodInfoPtr> pods = pods_of_(id.identity_namespace, id.identity_name);
    if (pods.empty()) {
        co_return fetch_error(
            Errc::upstream_refused, 0,
            "no running pod of ServiceAccount " + account +
                " labelled azure.workload.identity/use=true is on this node to get "
                "a ServiceAccount token for");
    }
    FetchError last;
    std::size_t tried = 0;
    for (const PodInfoPtr& pod : pods) {
        if (tried++ == max_pods_) {
            break;
        }
        SaTokenResult token = co_await tokens_.token(pod, deadline);
        if (!token) {
            last = token.error();
            if (last.code == Errc::cancelled || last.code == Errc::timeout) {
                break;  // no time left for another pod
            }
            continue;
        }
        const FederatedCall call{id.client_id, id.tenant_id, id.ad_endpoint, request.resource,
                                 token->token};
        co_return co_await exchange_(call, deadline);
    }
    if (!last.upstream_body.empty()) {
        last.upstream_body = "no ServiceAccount token for " + account + ": " + last.upstream_body;
    }
    co_return last;
}

}  // namespace nmid::workload
