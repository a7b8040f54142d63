#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nmid/crd/identity_validation.hpp"
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

/// The /readyz detail of the identity check: how many identity objects the latest snapshot
/// refused, the first five by kind, namespace/name and reason ("" when none). Never a secret
/// or a client ID. A refused object never makes nmid unready. Pure.
[[nodiscard]] std::string rejections_detail(const std::vector<RejectedIdentity>& rejected);

}  // namespace nmid::app
