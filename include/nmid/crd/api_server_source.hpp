#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/crd/crd_source.hpp"
#include "nmid/crd/watch_event.hpp"
#include "nmid/kube/client.hpp"

namespace nmid {

/// The aadpodidentity.k8s.io/v1 resources the API-server source lists and watches.
enum class CrdResource : std::size_t { identities = 0, bindings, exceptions, assigned };
inline constexpr std::size_t kCrdResourceCount = 4;

/// Plural resource name (`azureidentities`, ...), also the `kind` label of metrics.
[[nodiscard]] std::string_view plural_name(CrdResource resource) noexcept;

/// Settings of ApiServerCrdSource (module `crd`). Filled by `app` from NMI's flags:
/// `node_name` from `--node` / NODE_NAME, `mode` from `--operation-mode`.
struct ApiServerCrdSettings {
    std::string node_name{};                       ///< selects this node's assigned identities
    OperationMode mode = OperationMode::standard;  ///< managed: no AzureAssignedIdentity watch
    /// Each watch asks for `timeoutSeconds` drawn uniformly from [watch_timeout,
    /// 2 * watch_timeout), as client-go does, so that 5,000 nodes do not reconnect at once.
    Seconds watch_timeout{300};
    Millis request_deadline{30'000};  ///< a LIST; also the slack after a watch's timeoutSeconds
    Millis backoff_base{800};         ///< first retry delay after a failure
    Millis backoff_cap{30'000};       ///< retry delays double up to this
    /// Seeds the jitter of retry delays and timeoutSeconds; 0 draws a seed from
    /// std::random_device. Tests set it for deterministic delays.
    std::uint64_t random_seed = 0;
};

/// Counters of one watched resource (for /metrics and tests).
struct CrdWatchStats {
    std::uint64_t lists = 0;           ///< successful LISTs (the first one and relists)
    std::uint64_t relists = 0;         ///< successful LISTs after the first one
    std::uint64_t gone = 0;            ///< 410 Gone answers (HTTP status or ERROR event)
    std::uint64_t watch_restarts = 0;  ///< watches opened after the first one
    std::uint64_t events = 0;          ///< ADDED, MODIFIED and DELETED events applied
    std::uint64_t bookmarks = 0;       ///< BOOKMARK events
    /// Failed requests (transport, non-2xx other than 410, bad body), dropped streams,
    /// malformed lines, ERROR events other than 410 and objects that did not parse.
    std::uint64_t errors = 0;
    std::size_t objects = 0;         ///< objects currently held
    bool synced = false;             ///< the first LIST succeeded
    std::string resource_version{};  ///< where the next watch starts
    /// When the API server last confirmed this resource's objects: a successful LIST, an
    /// applied event or BOOKMARK, or a watch it ended normally. Before the first LIST, when
    /// the source was created.
    SteadyTime confirmed_at{};
};

/// Counters of an ApiServerCrdSource.
struct ApiServerCrdStats {
    std::array<CrdWatchStats, kCrdResourceCount> resources{};  ///< indexed by CrdResource
    std::uint64_t publishes = 0;                               ///< snapshots published
    bool ready = false;  ///< every watched resource listed once (first publish done)

    [[nodiscard]] const CrdWatchStats& of(CrdResource r) const {
        return resources[static_cast<std::size_t>(r)];
    }
};

/// In a cluster: the CRD snapshot comes from list+watch of AzureIdentity,
/// AzureIdentityBinding and AzurePodIdentityException in all namespaces, plus (standard mode)
/// AzureAssignedIdentity with `labelSelector=nodename=<node>`, each resource independently
/// and concurrently (client-go Reflector semantics: LIST, then WATCH from the list's
/// resourceVersion with bookmarks; 410 Gone relists and replaces that resource's objects when
/// the new list arrives, so nothing disappears in between; a stream that ends re-watches from
/// the last resourceVersion; failures retry with exponential backoff and jitter).
class ApiServerCrdSource final : public CrdSource {
public:
    /// `client` and `clock` must outlive the source.
    ApiServerCrdSource(kube::ApiServerClient& client, Clock& clock, ApiServerCrdSettings settings);

    /// Publishes the merged snapshot (sorted, see normalize_crds) once every resource's first
    /// LIST succeeded (readiness), then after every change; events that arrive together are
    /// published once. Runs on a strand of the caller's executor (safe with several I/O
    /// threads). Cancellation: stops every request and returns. Never throws for remote
    /// failures: they are logged, counted and retried.
    boost::asio::awaitable<void> run(Publish publish) override;

    /// Thread-safe.
    [[nodiscard]] ApiServerCrdStats stats() const;

    /// Now minus the oldest `confirmed_at` of the watched resources (see CrdSource).
    [[nodiscard]] Millis snapshot_age() const override;

private:
    struct Shared;
    class Watcher;
    friend class Watcher;

    boost::asio::awaitable<void> run_on_strand(Publish publish);

    kube::ApiServerClient& client_;
    Clock& clock_;
    ApiServerCrdSettings settings_;
    std::mt19937_64 rng_;  ///< used on the run() strand only
    // Guards stats_: written on the run() strand, read by stats() from any thread.
    mutable std::mutex stats_mutex_;
    ApiServerCrdStats stats_;
};

}  // namespace nmid
