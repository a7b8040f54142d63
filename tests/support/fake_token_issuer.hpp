#pragma once

// The TokenRequest subresource of the fake API server (reference/workload-identity.md §1):
// `POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token`, checked as kube-apiserver checks
// it against the fake's ServiceAccounts and pods, answered with an RS256 JWT.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_api_server.hpp"
#include "support/jwt_rs256.hpp"

namespace nmid::test {

/// One TokenRequest as the fake saw it.
struct TokenRequestCall {
    std::string namespace_name;
    std::string service_account;
    nlohmann::json body;  ///< as sent (null when it did not parse)
    int status = 0;       ///< the status answered
};

/// Wraps a FakeApiServer's handler (FakeApiServer's ServerFactory constructor): answers the
/// token subresource, passes everything else on. Not thread-safe (the fake's io_context).
class FakeTokenIssuer {
public:
    /// `now`: Unix seconds for iat/nbf/exp.
    explicit FakeTokenIssuer(std::function<std::int64_t()> now,
                             std::string issuer = "https://kubernetes.default.svc.cluster.local");

    /// The handler to give FakeHttpServer: `api_handler` for everything but TokenRequests.
    [[nodiscard]] FakeHttpServer::Handler wrap(FakeHttpServer::Handler api_handler);
    /// The server whose pods and ServiceAccounts requests are checked against (set after the
    /// FakeApiServer is built).
    void attach(const FakeApiServer& api) { api_ = &api; }

    [[nodiscard]] const std::string& issuer() const { return issuer_; }
    /// A token as the kubelet would project it for a pod (what the TokenRequest answer holds):
    /// `sub` system:serviceaccount:<ns>:<sa>, `aud` [audience], iat now, exp now + lifetime.
    [[nodiscard]] std::string mint(const std::string& ns, const std::string& sa,
                                   const std::string& pod_name, const std::string& pod_uid,
                                   const std::string& audience, std::int64_t lifetime);
    [[nodiscard]] std::string public_pem() const { return signer_.public_pem(); }
    [[nodiscard]] const std::vector<TokenRequestCall>& calls() const { return calls_; }
    void clear_calls() { calls_.clear(); }
    /// --service-account-max-token-expiration: longer requests are shortened to it.
    std::int64_t max_expiration = 86'400;

private:
    FakeResponse handle(const FakeRequest& request, const std::string& ns, const std::string& sa);

    std::function<std::int64_t()> now_;
    std::string issuer_;
    JwtSigner signer_;
    const FakeApiServer* api_ = nullptr;
    std::vector<TokenRequestCall> calls_;
    std::uint64_t next_jti_ = 1;
};

/// A FakeApiServer that also serves the TokenRequest subresource, with ServiceAccounts among
/// its resources; on `ioc`, loopback, plain HTTP.
class FakeClusterApi {
public:
    FakeClusterApi(boost::asio::io_context& ioc, std::function<std::int64_t()> now);
    FakeApiServer& api() { return *api_; }
    FakeTokenIssuer& issuer() { return issuer_; }

private:
    FakeTokenIssuer issuer_;
    std::unique_ptr<FakeApiServer> api_;
};

/// FakeApiServerOptions with core v1 ServiceAccounts added to the default resources.
[[nodiscard]] FakeApiServerOptions with_service_accounts(FakeApiServerOptions options = {});

}  // namespace nmid::test
