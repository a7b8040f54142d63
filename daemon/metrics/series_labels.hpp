#pragma once

// Private to the metrics module: the fixed label values of the request and upstream series
// and how a status is classified into them. Pure; metrics.cpp records with them.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "label_set.hpp"

namespace nmid::metrics::detail {

// Status codes are labels as NMI writes them ("200"); the key is the code itself, 0 for
// anything that is not an HTTP status.
inline std::uint32_t status_key(int status) {
    return status >= 100 && status <= 599 ? static_cast<std::uint32_t>(status) : 0U;
}

inline std::string status_label(std::uint32_t key) {
    return key == 0 ? std::string{kOtherLabel} : std::to_string(key);
}

enum class UpstreamStatus : std::uint8_t { ok, throttled, client_error, server_error, error };
constexpr std::array<std::string_view, 5> kUpstreamStatusLabels{"200", "429", "4xx", "5xx",
                                                                "error"};

inline UpstreamStatus classify_upstream(int status, bool ok) {
    if (ok) {
        return UpstreamStatus::ok;
    }
    if (status == 429) {
        return UpstreamStatus::throttled;
    }
    if (status >= 400 && status <= 499) {
        return UpstreamStatus::client_error;
    }
    if (status >= 500 && status <= 599) {
        return UpstreamStatus::server_error;
    }
    return UpstreamStatus::error;
}

/// "aad-federated": workload identity's exchange at Azure AD (issue 12).
constexpr std::array<std::string_view, 4> kSourceLabels{"imds", "aad", "aad-federated",
                                                        kOtherLabel};
constexpr std::array<std::string_view, 4> kNmiOperationLabels{
    "adal_token_msi", "adal_token_msi_userassignedid", "adal_token", kOtherLabel};
constexpr std::array<std::string_view, 2> kTriggerLabels{"request", "refresh"};

template <std::size_t N>
inline std::size_t index_in(const std::array<std::string_view, N>& labels, std::string_view value) {
    for (std::size_t i = 0; i + 1 < N; ++i) {
        if (labels[i] == value) {
            return i;
        }
    }
    return N - 1;
}

}  // namespace nmid::metrics::detail
