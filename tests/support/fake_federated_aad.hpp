#pragma once

// Azure AD's v2 token endpoint for a federated client assertion (reference/workload-identity.md
// §4): `POST <base><tenant>/oauth2/v2.0/token`, the assertion verified against the issuer's
// key, audience, validity and the client's federated credentials, as Azure AD does.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "support/fake_http_server.hpp"

namespace nmid::test {

/// One exchange as the fake saw it.
struct FederatedCall {
    std::string tenant;
    std::map<std::string, std::string> form;
    std::string issuer;   ///< the assertion's `iss` ("" when unreadable)
    std::string subject;  ///< its `sub`
    int status = 0;
    std::string error_code;  ///< "AADSTS70021", ... ("" on success)
};

class FakeFederatedAad {
public:
    /// `now`: Unix seconds. HTTPS with `tls`; base_url() names `host`.
    FakeFederatedAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now,
                     const FakeTlsOptions& tls, std::string host = "127.0.0.1");
    /// Plain HTTP (unit tests of the fake itself).
    FakeFederatedAad(boost::asio::io_context& ioc, std::function<std::int64_t()> now);

    /// `https://<host>:<port>/` (the authority nmid is given).
    [[nodiscard]] std::string base_url() const;
    /// Trust assertions of `issuer` signed by `public_pem` (its JWKS, in effect).
    void trust_issuer(std::string issuer, std::string public_pem);
    /// A federated identity credential of `client_id`.
    void add_federated_credential(std::string client_id, std::string issuer, std::string subject,
                                  std::string audience = "api://AzureADTokenExchange");

    [[nodiscard]] const std::vector<FederatedCall>& calls() const { return calls_; }
    void clear_calls() { calls_.clear(); }
    std::int64_t token_lifetime = 3599;

private:
    struct Credential {
        std::string client_id, issuer, subject, audience;
    };
    FakeResponse handle(const FakeRequest& request);
    FakeResponse refuse(FederatedCall& call, int status, const std::string& error,
                        const std::string& code, const std::string& description);

    std::function<std::int64_t()> now_;
    std::string host_;
    bool https_;
    std::map<std::string, std::string> issuers_;  ///< issuer -> public key PEM
    std::vector<Credential> credentials_;
    std::vector<FederatedCall> calls_;
    std::unique_ptr<FakeHttpServer> server_;  ///< last: its handler uses the members above
};

}  // namespace nmid::test
