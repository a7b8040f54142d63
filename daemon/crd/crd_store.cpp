#include "nmid/crd/crd_store.hpp"

#include <utility>

namespace nmid {

CrdStore::CrdStore() : snapshot_(std::make_shared<const CrdSnapshot>()) {}

CrdSnapshotPtr CrdStore::snapshot() const noexcept {
    return snapshot_.load(std::memory_order_acquire);
}

void CrdStore::publish(CrdSnapshotPtr snapshot) {
    if (snapshot == nullptr) {
        snapshot = std::make_shared<const CrdSnapshot>();
    }
    snapshot_.store(std::move(snapshot), std::memory_order_release);
    // After the store: whoever sees the new generation also sees the new snapshot.
    generation_.fetch_add(1, std::memory_order_acq_rel);
}

bool CrdStore::ready() const noexcept {
    return generation() > 0;
}

std::uint64_t CrdStore::generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
}

}  // namespace nmid
