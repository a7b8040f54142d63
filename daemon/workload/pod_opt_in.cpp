#include "nmid/workload/constants.hpp"

namespace nmid::workload {

bool uses_workload_identity(const PodInfo& pod) noexcept {
    const auto it = pod.labels.find(std::string{kUseLabel});
    return it != pod.labels.end() && it->second == "true";
}

std::string_view service_account_of(const PodInfo& pod) noexcept {
    return pod.service_account.empty() ? std::string_view{"default"}
                                       : std::string_view{pod.service_account};
}

}  // namespace nmid::workload
