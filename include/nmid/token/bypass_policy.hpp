#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/core/clock.hpp"

/// Pure decision of `bypass_cache=true` (issue 14): may this requester force an upstream fetch
/// of this key now? No clock, no I/O: the cache passes the time and keeps the log per key.
namespace nmid::token_detail {

/// One forced fetch of a key: who asked for it and when.
struct ForcedFetch {
    std::string requester;
    SteadyTime at{};
};

/// The forced fetches of one key inside the last interval (a handful: one per pod at most).
using ForcedFetches = std::vector<ForcedFetch>;

/// At most this many requesters may each have forced one key inside one interval; beyond it
/// nobody else may (the log of a key stays small; the pods forcing one key share an identity).
inline constexpr std::size_t kMaxForcingRequesters = 64;

/// Drops the records older than `interval`, then answers whether `requester` may force a fetch
/// at `now`: it has not forced this key within `interval`, and fewer than `max_requesters` did.
/// An interval of zero or less allows every forced fetch (and keeps no record).
[[nodiscard]] bool may_force(ForcedFetches& log, std::string_view requester, SteadyTime now,
                             std::chrono::nanoseconds interval,
                             std::size_t max_requesters = kMaxForcingRequesters);

/// Records a forced fetch by `requester` at `now` (after may_force said yes).
void record_forced(ForcedFetches& log, std::string_view requester, SteadyTime now);

}  // namespace nmid::token_detail
