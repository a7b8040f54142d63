#include "decision_memo.hpp"

#include <utility>

namespace nmid::handlers {

PreparedMemo::PreparedPtr PreparedMemo::find(std::uint64_t owner, std::uint64_t generation,
                                             const PodInfoPtr& pod,
                                             const identity::TokenQuery& query) {
    if (owner != owner_ || generation != generation_) {
        reset(owner, generation);  // drops the old snapshot's entries at once
        return nullptr;
    }
    const Slot& slot = slots_[index(pod)];
    if (slot.address != pod.get() || slot.pod.expired() || slot.client_id != query.client_id ||
        slot.resource_id != query.resource_id || slot.object_id != query.object_id) {
        return nullptr;
    }
    return slot.prepared;
}

void PreparedMemo::store(std::uint64_t owner, std::uint64_t generation, const PodInfoPtr& pod,
                         const identity::TokenQuery& query, PreparedPtr prepared) {
    if (owner == owner_ && generation < generation_) {
        return;  // resolved under a snapshot that was replaced meanwhile
    }
    if (owner != owner_ || generation != generation_) {
        reset(owner, generation);
    }
    Slot& slot = slots_[index(pod)];
    slot.address = pod.get();
    slot.pod = pod;
    slot.client_id.assign(query.client_id);
    slot.resource_id.assign(query.resource_id);
    slot.object_id.assign(query.object_id);
    slot.prepared = std::move(prepared);
}

std::size_t PreparedMemo::index(const PodInfoPtr& pod) {
    // Fibonacci hashing of the address: its top bits pick the slot.
    const auto address = reinterpret_cast<std::uintptr_t>(pod.get());
    return static_cast<std::size_t>((address * 0x9e3779b97f4a7c15ULL) >> 58U) % kSlots;
}

void PreparedMemo::reset(std::uint64_t owner, std::uint64_t generation) {
    for (Slot& slot : slots_) {
        slot.address = nullptr;
        slot.pod.reset();
        slot.prepared.reset();
    }
    owner_ = owner;
    generation_ = generation;
}

PreparedMemo& prepared_memo() {
    // One per I/O thread: find() and store() run on the thread that answers the request, so
    // the memo needs no lock (see the class comment for why its answers stay correct).
    thread_local PreparedMemo memo;
    return memo;
}

}  // namespace nmid::handlers
