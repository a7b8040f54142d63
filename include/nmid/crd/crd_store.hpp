#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/crd/identity_validation.hpp"
#include "nmid/model/crd.hpp"

namespace nmid {

/// The current CRD snapshot, shared between the source that publishes it (one writer) and
/// the handlers that read it on every request (any thread, wait-free for practical
/// purposes: one atomic shared_ptr load). Readers keep the snapshot they loaded alive for as
/// long as they hold the pointer, so a publish never invalidates a decision in flight.
///
/// Every snapshot passes identity validation on its way in (whatever its source): identities
/// that `validate` refuses, and assignments embedding one, are left out, so no binding or
/// assignment can reach them; they are listed by rejections() and logged once per (object,
/// resourceVersion, reason).
class CrdStore {
public:
    /// `policy`: what --allow-cross-namespace-secrets and --aad-authority-allowlist allow on
    /// top of the built-in rules (the default allows nothing more).
    explicit CrdStore(IdentityPolicy policy = {});

    /// The latest published snapshot; before the first publish an empty one. Never null.
    /// Thread-safe.
    [[nodiscard]] CrdSnapshotPtr snapshot() const noexcept;

    /// Replaces the snapshot (a null pointer publishes an empty snapshot) with the objects
    /// identity validation keeps, and bumps the generation. Thread-safe; meant for one writer
    /// (the CrdSource's `Publish` callback).
    void publish(CrdSnapshotPtr snapshot);

    using Rejections = std::shared_ptr<const std::vector<RejectedIdentity>>;

    /// What the latest publish left out, in snapshot order (never null). Thread-safe.
    [[nodiscard]] Rejections rejections() const noexcept;

    /// rejections() counted by RejectReason (index: the enumerator's value), for
    /// `nmid_identities_rejected{reason}`. Thread-safe.
    [[nodiscard]] std::array<std::size_t, kRejectReasonCount> rejection_counts() const;

    /// True once anything was published (readiness: CRDs synced). Thread-safe.
    [[nodiscard]] bool ready() const noexcept;

    /// Number of publishes so far (0: not ready). Thread-safe.
    [[nodiscard]] std::uint64_t generation() const noexcept;

    /// Suspends until a snapshot newer than generation `seen` is published (at once when
    /// one already is) or `clock` reaches `deadline`, whichever comes first; returns the
    /// generation then current. Standard mode waits here for MIC's assignment instead of
    /// polling. Executor: the caller's (a publish from another thread wakes it through a
    /// post). Cancellation: per-operation cancellation returns early. Never throws.
    boost::asio::awaitable<std::uint64_t> wait_newer(std::uint64_t seen, Clock& clock,
                                                     SteadyTime deadline);

    /// Coroutines suspended in wait_newer now. Thread-safe.
    [[nodiscard]] std::size_t waiters() const;

private:
    struct Waiter;
    /// (kind, namespace, name, resourceVersion, reason) of a rejection already logged.
    using LoggedKey =
        std::tuple<std::string_view, std::string, std::string, std::string, RejectReason>;

    const IdentityPolicy policy_;
    std::atomic<CrdSnapshotPtr> snapshot_;
    std::atomic<Rejections> rejections_;
    // Serialises publishers (meant to be one) around logged_: the rejections of the previous
    // publish, so each is logged when it first appears, not on every publish.
    std::mutex publish_mutex_;
    std::set<LoggedKey> logged_;
    std::atomic<std::uint64_t> generation_{0};
    mutable std::mutex waiters_mutex_;
    std::vector<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace nmid
