#pragma once

#include <boost/asio/awaitable.hpp>

#include "nmid/token/token_source.hpp"

namespace nmid::cloud {

/// Routes a fetch by AzureIdentity type: 0 (user-assigned MSI) to `imds`, 1 and 2 (service
/// principal with a secret or a certificate) to `aad`; any other type fails with
/// Errc::identity_unsupported without an upstream call (NMI: `unsupported identity type`).
/// Both sources outlive this one. Stateless: any executor, any thread.
class CompositeTokenSource final : public TokenSource {
public:
    CompositeTokenSource(TokenSource& imds, TokenSource& aad);

    /// As the chosen source's fetch (executor, cancellation, errors).
    boost::asio::awaitable<FetchResult> fetch(const TokenRequest& request,
                                              SteadyTime deadline) override;

private:
    TokenSource& imds_;
    TokenSource& aad_;
};

}  // namespace nmid::cloud
