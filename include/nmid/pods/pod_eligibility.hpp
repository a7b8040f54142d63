#pragma once

#include "nmid/model/pod.hpp"

namespace nmid {

/// Which pods of a list nmid answers for. Pure: no I/O, no clock, no logging.
///
/// A pod is answered for while it may still own its IP: phase absent (counts as Pending),
/// Pending or Running, and not a terminating pod that runs nothing. Not answered for:
/// - phase Succeeded, Failed, Unknown or anything else: the sandbox is gone or its state is
///   unknown;
/// - `metadata.deletionTimestamp` set and every entry of `status.containerStatuses` (at
///   least one) has `state.terminated`: the pod is being deleted and none of its containers
///   runs. Its IP may already have been handed to a new pod that the source does
///   not list yet (the kubelet's list and the API server's watch both lag), and that new pod
///   must never be served as the old one. A terminating pod with a container still running
///   (its grace period), or with no container status (the source does not say), is
///   answered for.
[[nodiscard]] bool answered_for(const PodInfo& pod) noexcept;

/// answered_for() and not hostNetwork (a hostNetwork pod shares the node's IP): the pods
/// PodIndex maps by IP.
[[nodiscard]] bool indexed_by_ip(const PodInfo& pod) noexcept;

}  // namespace nmid
