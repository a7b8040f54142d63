#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/kube/client.hpp"
#include "nmid/kube/reflector.hpp"
#include "nmid/pods/pod_source.hpp"

namespace nmid {

/// ApiServerPodSource's knobs (filled by `app`): the list+watch loop's, and the node.
struct ApiServerPodSourceSettings : kube::ReflectorSettings {
    std::string node_name;  ///< pods with this spec.nodeName (downward API NODE_NAME)
};

/// Counters for metrics (the list+watch loop's, and the pods held). Thread-safe reads.
struct ApiServerPodSourceStats : kube::ReflectorStats {
    std::size_t pods = 0;  ///< pods held
};

/// PodSource over the API server: `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`, then
/// a watch from the list's resourceVersion, as client-go's Reflector does:
/// - ADDED/MODIFIED replace the pod (keyed by namespace/name), DELETED removes it, BOOKMARK
///   only moves the resourceVersion; every event moves it (opaque strings, never compared).
/// - 410 Gone, as the watch's HTTP status or as an ERROR event: relist at the last
///   resourceVersion (`resourceVersionMatch=NotOlderThan`), and if that is 410 too, relist
///   without one (a quorum read). The relist replaces the pods wholesale.
/// - A stream cut by an error (transport, other ERROR event, a very short watch, 429): resume
///   the watch from the last resourceVersion after a backoff (`backoff_base` doubling to
///   `backoff_cap`, stretched by jitter, waited on the injected Clock). A failed LIST or
///   another non-200 watch: back off, then relist. A clean end: watch again at once.
/// The first LIST uses `resourceVersion=0` (served from the API server's watch cache). LIST
/// bodies are parsed on `parse_executor`; watch events (small) on the source's executor.
///
/// run() drives all of this and must be running for list() to answer. The state lives on
/// `executor` (a strand or a single-threaded io_context).
///
/// Lifetime: `client` and `clock` outlive the source and run(); list() calls in flight keep
/// the source's state alive.
class ApiServerPodSource final : public PodSource {
public:
    ApiServerPodSource(boost::asio::any_io_executor executor, kube::ApiServerClient& client,
                       Clock& clock, boost::asio::any_io_executor parse_executor,
                       const ApiServerPodSourceSettings& settings);
    ~ApiServerPodSource() override;
    ApiServerPodSource(const ApiServerPodSource&) = delete;
    ApiServerPodSource& operator=(const ApiServerPodSource&) = delete;

    /// The list+watch loop, until cancelled. `app` spawns it in its task group, before (or
    /// together with) the pod index's run(); shutdown cancels it like the other tasks.
    /// Failures are logged (once per episode and cause) and retried; it never returns an
    /// error. Executor: any; the loop runs on the source's executor. Cancellation:
    /// per-operation cancellation of the awaiting coroutine (closes the watch); returns
    /// normally. Call it once.
    boost::asio::awaitable<void> run();

    /// The pods as the list+watch currently knows them; the same pointer while nothing that
    /// nmid reads has changed. Waits (until `deadline`) for the first LIST, and while the
    /// source is known to be behind: relisting, or backing off after a failure (the pod index
    /// must not believe a snapshot fresh while the watch is down).
    /// Executor: any; resumes on the caller's executor. Cancellation: abandons the wait
    /// (Errc::cancelled). Errors: Errc::pod_source_failed (`deadline` passed while the source
    /// is failing), Errc::timeout (`deadline` passed before the first LIST or a relist
    /// completed), Errc::cancelled.
    boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> list(
        SteadyTime deadline) override;

    /// True once the first LIST succeeded. Thread-safe.
    [[nodiscard]] bool synced() const noexcept;
    [[nodiscard]] ApiServerPodSourceStats stats() const;

private:
    struct Core;
    std::shared_ptr<Core> core_;
};

}  // namespace nmid
