#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/model/crd.hpp"

namespace nmid {

/// The current CRD snapshot, shared between the source that publishes it (one writer) and
/// the handlers that read it on every request (any thread, wait-free for practical
/// purposes: one atomic shared_ptr load). Readers keep the snapshot they loaded alive for as
/// long as they hold the pointer, so a publish never invalidates a decision in flight.
class CrdStore {
public:
    CrdStore();

    /// The latest published snapshot; before the first publish an empty one. Never null.
    /// Thread-safe.
    [[nodiscard]] CrdSnapshotPtr snapshot() const noexcept;

    /// Replaces the snapshot (a null pointer publishes an empty snapshot) and bumps the
    /// generation. Thread-safe; meant for one writer (the CrdSource's `Publish` callback).
    void publish(CrdSnapshotPtr snapshot);

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
    std::atomic<CrdSnapshotPtr> snapshot_;
    std::atomic<std::uint64_t> generation_{0};
    mutable std::mutex waiters_mutex_;
    std::vector<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace nmid
