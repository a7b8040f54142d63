#pragma once

// Private to the handlers module: the per-thread memo of token decisions.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/model/pod.hpp"

namespace nmid::handlers {

/// Per I/O thread: recent (pod, query) decisions of one handler under one CRD snapshot
/// generation, so a repeated request skips resolve(), the copies and hashing of the cache key
/// and the redaction. A slot matches a pod by address while the pod list it came from is
/// alive (a weak reference: the memo never keeps a replaced pod list in memory, and an address
/// in a live list is that pod's alone); every slot is dropped when the generation (or the
/// handler) changes. Only final decisions are kept (bound, excepted): a denial may wait
/// (standard mode) and is rare. Safe because resolve() is pure: the same pod, query and
/// snapshot always decide the same. No reference into it lives across a co_await.
class PreparedMemo {
public:
    using PreparedPtr = std::shared_ptr<const NmiHandler::Prepared>;

    /// The decision stored for (pod, query) by handler `owner` under `generation`, else
    /// nullptr. A new owner or generation drops every slot first.
    PreparedPtr find(std::uint64_t owner, std::uint64_t generation, const PodInfoPtr& pod,
                     const identity::TokenQuery& query);

    /// Remembers `prepared` for (pod, query), unless it was resolved under a generation older
    /// than the memo's.
    void store(std::uint64_t owner, std::uint64_t generation, const PodInfoPtr& pod,
               const identity::TokenQuery& query, PreparedPtr prepared);

private:
    static constexpr std::size_t kSlots = 64;
    struct Slot {
        const PodInfo* address = nullptr;
        std::weak_ptr<const PodInfo> pod;
        std::string client_id;
        std::string resource_id;
        std::string object_id;
        PreparedPtr prepared;
    };

    static std::size_t index(const PodInfoPtr& pod);
    void reset(std::uint64_t owner, std::uint64_t generation);

    std::uint64_t owner_ = 0;
    std::uint64_t generation_ = 0;
    std::array<Slot, kSlots> slots_;
};

/// This thread's memo.
PreparedMemo& prepared_memo();

}  // namespace nmid::handlers
