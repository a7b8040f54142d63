#include "refresh_policy.hpp"

#include <algorithm>

namespace nmid::token_detail {

using std::chrono::nanoseconds;

namespace {

/// Refresh jitter is at most this share of the refresh margin.
constexpr double kMaxRefreshJitter = 0.1;

}  // namespace

bool is_retryable(const FetchError& error) {
    switch (error.code) {
        case Errc::upstream_throttled:
        case Errc::timeout:
            return true;
        case Errc::upstream_unavailable: {
            const int s = error.upstream_status;
            return s == 0 || s == 404 || s == 408 || s == 410 || (s >= 500 && s <= 599);
        }
        default:
            return false;
    }
}

nanoseconds backoff_ceiling(int attempt, nanoseconds base, nanoseconds cap) {
    nanoseconds ceiling = base;
    for (int i = 1; i < attempt && ceiling < cap; ++i) {
        ceiling *= 2;
    }
    return std::max(nanoseconds::zero(), std::min(ceiling, cap));
}

std::chrono::seconds retry_after_for(const FetchError& error, nanoseconds left) {
    const auto whole = std::chrono::ceil<std::chrono::seconds>(std::max(left, nanoseconds{0}));
    return std::max(error.retry_after, whole);
}

nanoseconds honoured_retry_after(const FetchError& error, const TokenCacheSettings& settings) {
    return std::min<nanoseconds>(error.retry_after, settings.max_retry_after);
}

nanoseconds negative_window(const FetchError& error, const TokenCacheSettings& settings) {
    return std::max<nanoseconds>(settings.negative_ttl, honoured_retry_after(error, settings));
}

WallTime wall_from_unix(std::int64_t seconds) {
    return WallTime{std::chrono::seconds{seconds}};
}

ServingWindow serving_window(WallTime now, WallTime expires, double jitter,
                             const TokenCacheSettings& settings) {
    const auto lifetime = std::chrono::duration_cast<nanoseconds>(expires - now);
    auto margin = std::max<nanoseconds>(
        settings.refresh_margin,
        std::chrono::duration_cast<nanoseconds>(lifetime * settings.refresh_fraction));
    // A short-lived token would otherwise be "due" from the moment it arrives and every hit
    // would refresh it; refreshing at half its life at the earliest bounds that.
    margin = std::min(margin, lifetime / 2);
    const auto shift = std::chrono::duration_cast<nanoseconds>(margin * kMaxRefreshJitter * jitter);
    return ServingWindow{.refresh_at = expires - margin - shift,
                         .valid_until = expires - settings.min_remaining_lifetime};
}

}  // namespace nmid::token_detail
