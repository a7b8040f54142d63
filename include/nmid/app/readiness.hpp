#pragma once

#include <optional>

#include "nmid/handlers/admin_handler.hpp"
#include "nmid/iptables/reconciler.hpp"

namespace nmid::app {

/// The `iptables` line of /readyz, from the reconciler's stats (std::nullopt: rules not
/// managed, --manage-iptables=false, always ready). Pure: no I/O, no clock, no logging.
///
/// Fail closed: not ready until the rules were verified once (a failed first sync keeps the
/// node not ready; the reconcile loop retries it at once, then with backoff), while DNAT to
/// the loopback target is dropped (route_localnet off), and, with `conntrack_deletion`
/// (--enable-conntrack-deletion, on by default), until the one-time deletion of connections
/// to IMDS opened before the rules has succeeded: until then those connections still reach
/// IMDS as the node. Rules verified once and failing a later check stay ready (the loop
/// restores them; the error is shown in the detail).
[[nodiscard]] handlers::ReadinessCheck iptables_readiness(
    const std::optional<iptables::ReconcilerStats>& stats, bool conntrack_deletion);

}  // namespace nmid::app
