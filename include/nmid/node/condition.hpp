#pragma once

// The Node condition `NmidReady` (issue 13 item 4, --node-condition): what nmid writes to its
// Node's status so that the scheduler (through a taint that node-readiness-controller removes
// when the condition is True) keeps pods off a node whose nmid is not ready yet. Pure parts
// here; condition_reporter.hpp does the I/O.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/core/clock.hpp"

namespace nmid::node {

inline constexpr std::string_view kConditionType = "NmidReady";
inline constexpr std::string_view kReasonReady = "NmidReady";
inline constexpr std::string_view kReasonNotReady = "NmidNotReady";
inline constexpr std::string_view kReasonStopping = "NmidStopping";
/// Longest message written (the API server has no small limit; a condition is for people).
inline constexpr std::size_t kMaxMessage = 1024;

/// The condition's content (the times are the reporter's).
struct Condition {
    bool ready = false;
    std::string reason;
    std::string message;
    friend bool operator==(const Condition&, const Condition&) = default;
};

/// One readiness check as /readyz shows it.
struct Check {
    std::string name;
    bool ready = false;
    std::string detail;
};

/// True with "nmid is ready" when every check passes; otherwise False, reason NmidNotReady,
/// and the failing checks as "name: detail; ..." (cut to kMaxMessage).
[[nodiscard]] Condition from_checks(const std::vector<Check>& checks);

/// The strategic merge patch of `status.conditions` (merge key `type`) that sets the condition,
/// with its heartbeat and transition times (RFC 3339).
[[nodiscard]] std::string status_patch(const Condition& condition, WallTime heartbeat,
                                       WallTime transition);

/// `/api/v1/nodes/<node>/status`; nullopt when `node` is not a valid node name (a DNS
/// subdomain), so no other object can ever be addressed.
[[nodiscard]] std::optional<std::string> status_target(std::string_view node);

/// When the reporter writes: what it last wrote successfully, and when.
struct Written {
    std::optional<Condition> condition;  ///< nullopt: nothing written yet
    SteadyTime at{};
};

/// Write when nothing was written yet, the condition changed, or `heartbeat` passed since the
/// last write (so a condition overwritten by someone else is restored, and its heartbeat time
/// shows nmid is alive).
[[nodiscard]] bool should_write(const Written& written, const Condition& now, SteadyTime at,
                                std::chrono::nanoseconds heartbeat);

}  // namespace nmid::node
