#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/model/crd.hpp"

namespace nmid::kube {
class ApiServerClient;
}  // namespace nmid::kube

namespace nmid::cloud {

/// A Kubernetes Secret's `data`, base64-decoded (values may be binary). Immutable once shared.
/// Never logged.
struct Secret {
    std::map<std::string, std::string, std::less<>> data;
};

using SecretPtr = std::shared_ptr<const Secret>;

/// Why a Secret could not be read.
enum class SecretErrc {
    invalid_reference,  ///< empty namespace or name
    not_found,          ///< API server 404
    forbidden,          ///< API server 403 (RBAC: `get` on `secrets` missing)
    unavailable,        ///< transport error, 401, 429, 5xx or another unexpected status
    bad_payload,        ///< 200 with a body that is not a Secret (or `data` not base64)
    timeout,            ///< the caller's deadline passed
    cancelled,          ///< the caller was cancelled
};

/// "not_found", "forbidden", ... (logs, error bodies).
[[nodiscard]] std::string_view to_string(SecretErrc code) noexcept;

struct SecretError {
    SecretErrc code = SecretErrc::unavailable;
    int status = 0;         ///< API server HTTP status (0: none)
    std::string message{};  ///< one line for an operator: which Secret and what happened
};

/// boost::system::result needs this to turn a SecretError into an exception on `.value()`.
[[noreturn]] void throw_exception_from_error(const SecretError& e,
                                             const boost::source_location& loc);

using SecretResult = boost::system::result<SecretPtr, SecretError>;

/// Reads Kubernetes Secrets (service principal credentials of AzureIdentity types 1 and 2).
class SecretStore {
public:
    virtual ~SecretStore() = default;

    /// The Secret `ref`, finished by `deadline`.
    /// Executor: any (completes on the caller's). Cancellation: per-operation cancellation of
    /// the awaiting coroutine gives SecretErrc::cancelled. Errors: SecretError.
    virtual boost::asio::awaitable<SecretResult> get(const SecretRef& ref, SteadyTime deadline) = 0;

    /// Forgets what is known about `ref` (a value or a failure), so the next get() reads it
    /// again: called when AAD rejects the credential, which may have been rotated.
    /// Thread-safety: any thread.
    virtual void invalidate(const SecretRef& ref) = 0;
};

/// Secret cache policy (module `cloud`).
struct SecretStoreSettings {
    Millis ttl{60'000};              ///< a Secret read is reused this long (NMI: never reused)
    Millis failure_ttl{5'000};       ///< a failed read is remembered this long
    Millis stale_if_error{300'000};  ///< serve the last value this long past `ttl` while the
                                     ///< API server is unreachable (not after 403/404)
    std::size_t max_entries = 1024;  ///< Secrets kept (least recently read dropped first)
};

/// SecretStore over the API server: `GET /api/v1/namespaces/<ns>/secrets/<name>`, cached per
/// (namespace, name) for `ttl`, failures for `failure_ttl`; concurrent get()s of one Secret
/// share one GET. A caller that joins a GET in flight waits for it; the GET ends by the
/// deadline of the caller that started it (cancel a caller to let it leave earlier).
/// Threading: state lives on `executor` (an io_context executor with one I/O thread, or a
/// strand); get() may be awaited from any executor.
/// Lifetime: GETs in flight keep the store's state alive, so the store may be destroyed while
/// they run; `client` and `clock` must outlive the io_context's work.
class ApiServerSecretStore final : public SecretStore {
public:
    ApiServerSecretStore(boost::asio::any_io_executor executor, kube::ApiServerClient& client,
                         Clock& clock, SecretStoreSettings settings = {});
    ~ApiServerSecretStore() override;
    ApiServerSecretStore(const ApiServerSecretStore&) = delete;
    ApiServerSecretStore& operator=(const ApiServerSecretStore&) = delete;

    boost::asio::awaitable<SecretResult> get(const SecretRef& ref, SteadyTime deadline) override;
    void invalidate(const SecretRef& ref) override;

    /// GETs sent to the API server since construction (tests, metrics).
    [[nodiscard]] std::size_t api_reads() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// Parses a Secret object (`{"data":{"k":"<base64>"}}`), decoding every value; a missing
/// `data` is an empty Secret. Errors: SecretErrc::bad_payload (message names the bad key, never
/// a value). Pure, never throws.
[[nodiscard]] SecretResult parse_secret(std::string_view body);

}  // namespace nmid::cloud
