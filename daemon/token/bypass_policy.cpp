#include "nmid/token/bypass_policy.hpp"

#include <algorithm>

namespace nmid::token_detail {

bool may_force(ForcedFetches& log, std::string_view requester, SteadyTime now,
               std::chrono::nanoseconds interval, std::size_t max_requesters) {
    if (interval <= std::chrono::nanoseconds::zero()) {
        log.clear();
        return true;
    }
    std::erase_if(log, [&](const ForcedFetch& f) { return now - f.at >= interval; });
    const bool forced_recently = std::any_of(
        log.begin(), log.end(), [&](const ForcedFetch& f) { return f.requester == requester; });
    return !forced_recently && log.size() < max_requesters;
}

void record_forced(ForcedFetches& log, std::string_view requester, SteadyTime now) {
    log.push_back(ForcedFetch{.requester = std::string{requester}, .at = now});
}

}  // namespace nmid::token_detail
