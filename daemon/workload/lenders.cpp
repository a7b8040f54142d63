#include "nmid/workload/lenders.hpp"

#include "nmid/pods/pod_eligibility.hpp"
#include "nmid/workload/constants.hpp"
#include "nmid/workload/decision.hpp"

namespace nmid::workload {

std::vector<PodInfoPtr> lenders(const std::shared_ptr<const PodList>& list,
                                std::string_view namespace_name, std::string_view service_account,
                                bool projected) {
    std::vector<PodInfoPtr> out;
    if (!list) {
        return out;
    }
    for (const PodInfo& pod : list->pods) {
        if (pod.namespace_name == namespace_name && service_account_of(pod) == service_account &&
            uses_workload_identity(pod) && indexed_by_ip(pod) &&
            (!projected || azure_projection(pod) != nullptr)) {
            out.emplace_back(list, &pod);
        }
    }
    return out;
}

std::vector<std::string> pod_uids(const PodList& list) {
    std::vector<std::string> uids;
    uids.reserve(list.pods.size());
    for (const PodInfo& pod : list.pods) {
        uids.push_back(pod.uid);
    }
    return uids;
}

}  // namespace nmid::workload
