#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace nmid {

/// Which waiting upstream call is admitted next: the fairness decision of the token cache's
/// upstream budget. Pure: no clock, no I/O, no executor; the budget asks it only when it has
/// a free slot.
///
/// Calls wait in one lane per requester (the calling pod). Lanes take turns, one admission
/// per turn (round robin); a lane that becomes non-empty takes the next turn (it cannot
/// re-enter before it has emptied, so a backlog never earns extra turns). Within a lane,
/// misses (a caller waiting) go before background refreshes, each in arrival order.
/// A requester with `per_requester_cap` calls admitted and not yet finished is skipped until
/// one finishes (0: no cap). The unattributed requester ("") is a lane like any other, but the
/// cap does not apply to it (internal callers, and tests that predate requesters).
class FairQueue {
public:
    using Id = std::uint64_t;
    enum class Priority { miss, background };

    explicit FairQueue(std::size_t per_requester_cap) : cap_(per_requester_cap) {}
    FairQueue(const FairQueue&) = delete;
    FairQueue& operator=(const FairQueue&) = delete;

    /// Adds a waiting call; `id` must not be waiting already.
    void push(std::string_view requester, Id id, Priority priority);
    /// Removes a waiting call (its deadline passed, or stop). False when `id` is not waiting.
    bool erase(Id id);
    /// A waiting background call becomes a miss (to the back of its lane's misses): a caller
    /// joined the refresh. No effect otherwise.
    void promote(Id id);
    /// The next call to admit, counted as running for its requester until finished(); nullopt
    /// when nothing waits or every waiting requester is at its cap.
    std::optional<Id> admit();
    /// A call admitted for `requester` has ended.
    void finished(std::string_view requester);

    [[nodiscard]] std::size_t waiting() const { return where_.size(); }
    [[nodiscard]] std::size_t waiting(std::string_view requester) const;
    [[nodiscard]] std::size_t running(std::string_view requester) const;

private:
    struct Lane {
        std::string requester;
        std::list<Id> misses;
        std::list<Id> background;
        std::size_t running = 0;
        bool in_ring = false;
        std::list<Lane*>::iterator ring_pos;
        [[nodiscard]] bool empty() const { return misses.empty() && background.empty(); }
    };
    struct Where {
        Lane* lane;
        Priority priority;
        std::list<Id>::iterator pos;
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    [[nodiscard]] bool may_run(const Lane& lane) const;
    Lane& lane_of(std::string_view requester);
    const Lane* find(std::string_view requester) const;
    /// Takes the lane out of the ring when it has nothing waiting, and forgets it when it has
    /// nothing running either.
    void settle(Lane& lane);

    std::size_t cap_;
    std::unordered_map<std::string, Lane, StringHash, std::equal_to<>> lanes_;
    std::list<Lane*> ring_;  ///< lanes with calls waiting, in turn order from cursor_
    std::list<Lane*>::iterator cursor_ = ring_.end();  ///< whose turn is next (end: the first)
    std::unordered_map<Id, Where> where_;
};

}  // namespace nmid
