#include "nmid/workload/constants.hpp"

namespace nmid::workload {

bool uses_workload_identity(const PodInfo& pod) noexcept {
    const auto it = pod.labels.find(std::string{kUseLabel});
    return it != pod.labels.end() && it->second == "true";
}

bool dns_label(std::string_view s) noexcept {
    if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') {
        return false;
    }
    for (const char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

std::string_view service_account_of(const PodInfo& pod) noexcept {
    return pod.service_account.empty() ? std::string_view{"default"}
                                       : std::string_view{pod.service_account};
}

}  // namespace nmid::workload
