#include "nmid/pods/pod_eligibility.hpp"

namespace nmid {

bool answered_for(const PodInfo& pod) noexcept {
    const bool live_phase = pod.phase.empty() || pod.phase == "Pending" || pod.phase == "Running";
    if (!live_phase) {
        return false;
    }
    // Without any container status the source does not say what runs (a hand-written pods
    // file, a pod the kubelet has not reported on yet): the grace period is assumed.
    const bool runs_nothing =
        pod.container_statuses > 0 && pod.containers_terminated >= pod.container_statuses;
    return !(pod.terminating && runs_nothing);
}

bool indexed_by_ip(const PodInfo& pod) noexcept {
    return !pod.host_network && answered_for(pod);
}

}  // namespace nmid
