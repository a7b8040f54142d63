#pragma once

// Where workload identity's ServiceAccount tokens come from (issue 12 item 3): a TokenRequest
// bound to the pod (TokenRequestProvider) or the token the kubelet projects into the pod
// (ProjectedTokenProvider, projected_token.hpp).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/workload/service_account_token.hpp"

namespace nmid::workload {

/// The ServiceAccount token to exchange for `pod`, cached as the implementation sees fit.
class ServiceAccountTokenProvider {
public:
    virtual ~ServiceAccountTokenProvider() = default;
    /// Executor: any; completes on the caller's. `pod` is held by the call (by value: a
    /// coroutine must not keep a reference to its caller's pointer).
    virtual boost::asio::awaitable<SaTokenResult> token(PodInfoPtr pod, SteadyTime deadline) = 0;
    /// Drops what is held for pods whose uid is not in `live_uids` (the pod left the index).
    /// Thread-safe.
    virtual void retain(const std::vector<std::string>& live_uids) = 0;
};

struct TokenRequestProviderStats {
    std::uint64_t requests = 0;      ///< TokenRequests made
    std::uint64_t hits = 0;          ///< answered from a held token
    std::uint64_t joined = 0;        ///< waited for a TokenRequest already in flight for the pod
    std::uint64_t failures = 0;      ///< TokenRequests that failed
    std::uint64_t stale_served = 0;  ///< a renewal failed and the held token was served
    std::size_t entries = 0;         ///< pods with a token held
};

/// Tokens from the TokenRequest API, one per pod uid: a held token is served until 80% of its
/// life has passed (as the kubelet renews projected tokens), then the next call requests a new
/// one; if that fails while the held token still has a minute left, the held one is served.
/// Concurrent calls for one pod share one TokenRequest (single flight); a failure is not
/// remembered beyond the calls that waited for it. At most `max_entries` pods are held (the
/// least recently used is dropped). retain() drops the pods that left the index, and a
/// TokenRequest that ends after its pod left is not kept.
/// Threading: state lives on `executor` (a strand or a single-threaded io_context).
/// Lifetime: `requester` and `clock` outlive the provider and its requests in flight.
class TokenRequestProvider final : public ServiceAccountTokenProvider {
public:
    TokenRequestProvider(boost::asio::any_io_executor executor, TokenRequester& requester,
                         Clock& clock, std::size_t max_entries = 4096);
    ~TokenRequestProvider() override;
    TokenRequestProvider(const TokenRequestProvider&) = delete;
    TokenRequestProvider& operator=(const TokenRequestProvider&) = delete;

    /// Errors: the TokenRequest's (FetchError), or Errc::timeout when `deadline` passes while
    /// waiting (the TokenRequest goes on and its token is kept).
    boost::asio::awaitable<SaTokenResult> token(PodInfoPtr pod, SteadyTime deadline) override;
    void retain(const std::vector<std::string>& live_uids) override;
    [[nodiscard]] TokenRequestProviderStats stats() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// When a token fetched at `issued_at` that expires at `expires_on` is due for renewal: at 80%
/// of its life. Pure.
[[nodiscard]] std::int64_t renew_at(const ServiceAccountToken& token) noexcept;

}  // namespace nmid::workload
