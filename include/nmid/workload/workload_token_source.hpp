#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "nmid/model/pod.hpp"
#include "nmid/model/token.hpp"
#include "nmid/token/token_source.hpp"
#include "nmid/workload/sa_token_provider.hpp"

namespace nmid::workload {

/// TokenIdentity::type of a workload identity cache key (AzureIdentity types are 0..2).
inline constexpr int kWorkloadIdentityType = 1000;

/// The cache identity of a served decision: tokens are shared by every pod of one
/// ServiceAccount asking for the same client ID, tenant and authority (issue 12 item 5).
[[nodiscard]] TokenIdentity workload_identity(std::string_view namespace_name,
                                              std::string_view service_account,
                                              std::string_view client_id,
                                              std::string_view tenant_id,
                                              std::string_view authority);

/// One federated exchange at Azure AD, as WorkloadTokenSource asks for it.
struct FederatedCall {
    std::string_view client_id;
    std::string_view tenant_id;
    std::string_view authority;  ///< https URL ending in '/'
    std::string_view resource;   ///< as the pod asked (the scope is derived from it)
    std::string_view assertion;  ///< the ServiceAccount token
};

/// Exactly one upstream attempt (cloud::FederatedExchange in the daemon).
using Exchange =
    std::function<boost::asio::awaitable<FetchResult>(const FederatedCall&, SteadyTime)>;

/// The pods of this node that may lend their ServiceAccount token for (namespace,
/// ServiceAccount): running, opted in, of that ServiceAccount. Any order; the source tries
/// them in the order given.
using PodsOf = std::function<std::vector<PodInfoPtr>(std::string_view namespace_name,
                                                     std::string_view service_account)>;

/// TokenSource of workload identity: a ServiceAccount token of a pod of the key's
/// ServiceAccount (from `tokens`: TokenRequest or the projected file), exchanged at Azure AD.
/// The token cache calls it on a miss or a refresh with nothing but the key, so the pod is
/// found here: any opted-in pod of that ServiceAccount on this node will do, because Azure
/// AD's federated credential names the ServiceAccount (subject
/// `system:serviceaccount:<ns>:<sa>`), not the pod. Up to `max_pods` pods are tried when
/// getting a token fails (a pod deleted meanwhile); the exchange is attempted once.
class WorkloadTokenSource final : public TokenSource {
public:
    WorkloadTokenSource(ServiceAccountTokenProvider& tokens, PodsOf pods_of, Exchange exchange,
                        std::size_t max_pods = 3);

    boost::asio::awaitable<FetchResult> fetch(const TokenRequest& request,
                                              SteadyTime deadline) override;

private:
    ServiceAccountTokenProvider& tokens_;
    PodsOf pods_of_;
    Exchange exchange_;
    std::size_t max_pods_;
};

}  // namespace nmid::workload
