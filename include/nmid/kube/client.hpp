#pragma once

// Contracts between the Kubernetes consumers (`pods`, `crd`, `cloud` secrets) and the `kube`
// transport. Consumers depend on these interfaces only, so they are unit-tested with fakes and
// never see TLS, tokens or kubeconfig files.

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"

namespace nmid::kube {

/// One complete (non-streaming) response from the API server or the kubelet.
struct Response {
    int status = 0;             ///< HTTP status; any status is a value, not an error
    std::string body{};         ///< de-chunked
    std::string retry_after{};  ///< raw `Retry-After` header, "" when absent
};

/// What ended a watch stream that had started (status 200 was received).
enum class StreamEnd {
    closed,    ///< the server ended the response (timeoutSeconds elapsed, normal)
    deadline,  ///< the caller's deadline passed while the stream was open
};

/// Result of opening a watch. When `status` is not 200, `body` holds the error body (e.g. a
/// 410 Status object) and no line was delivered.
struct WatchResult {
    int status = 0;
    std::string body{};
    StreamEnd end = StreamEnd::closed;
};

/// Calls newline-delimited lines of a watch stream, one complete line at a time (without the
/// `\n`). Returning false stops the stream (the watch returns `StreamEnd::closed`).
using LineHandler = std::function<bool(std::string_view line)>;

/// The API server, authenticated (bearer token or client certificate) and verified (CA).
/// `target` is origin-form with the query already percent-encoded, e.g.
/// `/apis/aadpodidentity.k8s.io/v1/azureidentities?resourceVersion=0`.
class ApiServerClient {
public:
    virtual ~ApiServerClient() = default;

    /// GET `target`, finished by `deadline`.
    /// Executor: any. Cancellation: per-operation cancellation aborts with Errc::cancelled.
    /// Errors: Errc::io_error (connect, TLS handshake or verification, transport),
    /// Errc::timeout, Errc::cancelled, Errc::parse_error (malformed or oversized response).
    virtual boost::asio::awaitable<Result<Response>> get(std::string target,
                                                         SteadyTime deadline) = 0;

    /// POST `body` (`application/json`) to `target`, finished by `deadline` (TokenRequest:
    /// `/api/v1/namespaces/<ns>/serviceaccounts/<name>/token`). Never retried here. Errors as
    /// get().
    virtual boost::asio::awaitable<Result<Response>> post(std::string target, std::string body,
                                                          SteadyTime deadline) = 0;

    /// PATCH `body` with `content_type` (`application/strategic-merge-patch+json`, ...) to
    /// `target`, finished by `deadline` (the node condition: `/api/v1/nodes/<node>/status`).
    /// Never retried here. Errors as get().
    virtual boost::asio::awaitable<Result<Response>> patch(std::string target, std::string body,
                                                           std::string content_type,
                                                           SteadyTime deadline) = 0;

    /// GET `target` as a watch (`watch=1` in the query): calls `on_line` for each line of the
    /// chunked body as it arrives, until the server ends the stream, `on_line` returns false,
    /// or `deadline` passes (then `StreamEnd::deadline`, not an error). A stream cut by the
    /// peer before its terminating chunk is Errc::io_error (the caller resumes from the last
    /// resourceVersion it saw). A line longer than the client's limit is Errc::parse_error.
    /// Executor: any; `on_line` runs on the awaiting coroutine's executor.
    /// Cancellation: per-operation cancellation closes the stream with Errc::cancelled.
    virtual boost::asio::awaitable<Result<WatchResult>> watch(std::string target,
                                                              SteadyTime deadline,
                                                              LineHandler on_line) = 0;
};

/// The node's kubelet (`--kubelet-url`): only `GET /pods` is needed.
class KubeletClient {
public:
    virtual ~KubeletClient() = default;
    /// GET `<kubelet-url>/pods`, finished by `deadline`. Errors as ApiServerClient::get.
    virtual boost::asio::awaitable<Result<Response>> get_pods(SteadyTime deadline) = 0;
};

}  // namespace nmid::kube
