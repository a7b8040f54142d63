#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "nmid/core/clock.hpp"
#include "nmid/kube/client.hpp"
#include "nmid/pods/pod_list_json.hpp"
#include "nmid/pods/pod_source.hpp"

namespace nmid {

/// Counters for metrics and logs. Thread-safe reads (relaxed).
struct KubeletPodSourceStats {
    std::uint64_t reads = 0;      ///< list() calls that returned a list
    std::uint64_t unchanged = 0;  ///< ... of which the pods were unchanged (same pointer)
    std::uint64_t failures = 0;   ///< list() calls that failed (transport, status, parse, deadline)
    int last_status = 0;          ///< HTTP status of the last response (0: none or transport error)
};

/// PodSource over the node's kubelet `GET /pods` (`--kubelet-url`).
///
/// Unchanged pods return the previous pointer, so the index skips its rebuild: a body
/// byte-identical to the previous one without parsing (an exact comparison, which costs less
/// than hashing the body and cannot be made to collide by a crafted pod), and otherwise a
/// parsed list equal to the previous one once sorted by namespace/name/uid (the kubelet
/// lists pods in Go map order, so equal content often comes in another order and another
/// byte sequence). Comparison and parsing run on `parse_executor`, never on the caller's
/// executor (a 250-pod PodList takes ~12 ms to parse); list() resumes on the caller's
/// executor. Pods are returned sorted by namespace, name, uid.
///
/// Lifetime: `client` and `clock` outlive the source; the source outlives every list() call
/// (the pod index guarantees it for its reads).
class KubeletPodSource final : public PodSource {
public:
    /// `parse_executor`: a small thread pool (one thread is enough: reads never overlap).
    KubeletPodSource(kube::KubeletClient& client, boost::asio::any_io_executor parse_executor,
                     Clock& clock);

    /// One `GET /pods`, finished by `deadline` (passed to the client; a response that arrives
    /// after it is not parsed). Not reentrant: the pod index never runs two reads at once.
    /// Executor: any; resumes on the caller's executor. Cancellation: per-operation
    /// cancellation reaches the client (Errc::cancelled); a parse already started finishes.
    /// Errors: the client's (Errc::io_error, timeout, cancelled, parse_error),
    /// Errc::pod_source_failed for a status other than 200 (status and the first bytes of the
    /// body are logged once per distinct failure, the status is in stats()), Errc::timeout when
    /// the response came after `deadline`, Errc::parse_error for a body that is not a PodList.
    boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> list(
        SteadyTime deadline) override;

    [[nodiscard]] KubeletPodSourceStats stats() const;

private:
    struct Decoded {
        Result<std::shared_ptr<const PodList>> list = Errc::parse_error;
        bool unchanged = false;
        std::string detail;
    };

    boost::asio::awaitable<Decoded> decode(std::string body);
    Result<std::shared_ptr<const PodList>> failed(boost::system::error_code code, std::string why);

    kube::KubeletClient& client_;
    boost::asio::any_io_executor parse_executor_;
    Clock& clock_;
    // Used on parse_executor_ only, one read at a time.
    std::string last_body_;                ///< body of the last successful read
    std::shared_ptr<const PodList> last_;  ///< what the last successful read returned
    std::string last_failure_;             ///< last failure logged (no repeats)
    std::atomic<std::uint64_t> reads_{0};
    std::atomic<std::uint64_t> unchanged_{0};
    std::atomic<std::uint64_t> failures_{0};
    std::atomic<int> last_status_{0};
};

}  // namespace nmid
