#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

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

private:
    std::atomic<CrdSnapshotPtr> snapshot_;
    std::atomic<std::uint64_t> generation_{0};
};

}  // namespace nmid
