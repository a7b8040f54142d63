#pragma once

#include <chrono>
#include <cstdint>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/token/token_source.hpp"

/// Pure retry, backoff and expiry arithmetic of the token cache: no clock, no I/O.
namespace nmid::token_detail {

/// IMDS guidance (nmi-behaviour 9.3): 404, 410, 429, 5xx, transport errors and timeouts are
/// transient; any other answer is final. 408 is a timeout in HTTP clothing.
[[nodiscard]] bool is_retryable(const FetchError& error);

/// Upper bound of the jittered backoff before attempt `attempt + 1`: base doubled per
/// attempt after the first, capped (never negative).
[[nodiscard]] std::chrono::nanoseconds backoff_ceiling(int attempt, std::chrono::nanoseconds base,
                                                       std::chrono::nanoseconds cap);

/// The upstream Retry-After honoured: at most settings.max_retry_after.
[[nodiscard]] std::chrono::nanoseconds honoured_retry_after(const FetchError& error,
                                                            const TokenCacheSettings& settings);

/// The Retry-After a caller is given while `left` of a failure's negative window remains: the
/// window rounded up to whole seconds, or the upstream's own when larger. A client that waits
/// as told then finds the window over (SDKs retry 429/5xx only a few times: a shorter hint
/// spends their retries inside the window).
[[nodiscard]] std::chrono::seconds retry_after_for(const FetchError& error,
                                                   std::chrono::nanoseconds left);

/// How long a failure is answered from the negative cache: negative_ttl, or the honoured
/// Retry-After when larger.
[[nodiscard]] std::chrono::nanoseconds negative_window(const FetchError& error,
                                                       const TokenCacheSettings& settings);

[[nodiscard]] WallTime wall_from_unix(std::int64_t seconds);

/// When a token fetched at `now` that expires at `expires` is refreshed ahead and until when
/// it is served.
struct ServingWindow {
    WallTime refresh_at{};
    WallTime valid_until{};
};

/// `jitter` in [0, 1) (key_jitter): moves the refresh point earlier by up to 10% of the margin.
[[nodiscard]] ServingWindow serving_window(WallTime now, WallTime expires, double jitter,
                                           const TokenCacheSettings& settings);

}  // namespace nmid::token_detail
