#include "report_parts.hpp"

#include <array>
#include <cstdio>

#include "nmid/core/time_format.hpp"
#include "nmid/identity/resolver.hpp"

namespace nmid::explain::detail {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

// "1.2s", "3m05s", "2h07m".
std::string span_text(milliseconds d) {
    constexpr long kMinute = 60;
    constexpr long kHour = 3600;
    const long s = static_cast<long>(duration_cast<seconds>(d).count());
    std::array<char, 32> buf{};
    if (s < kMinute) {
        std::snprintf(buf.data(), buf.size(), "%.1fs", static_cast<double>(d.count()) / 1000.0);
    } else if (s < kHour) {
        std::snprintf(buf.data(), buf.size(), "%ldm%02lds", s / kMinute, s % kMinute);
    } else {
        std::snprintf(buf.data(), buf.size(), "%ldh%02ldm", s / kHour, (s % kHour) / kMinute);
    }
    return buf.data();
}

}  // namespace

std::string age_text(const std::optional<milliseconds>& age) {
    return age ? "read " + span_text(*age) + " ago" : std::string{"not read yet"};
}

std::string mode_text(const IdentitySettings& settings) {
    if (settings.mode == OperationMode::managed) {
        return "managed mode, namespaced";
    }
    return std::string{"standard mode"} + (settings.force_namespaced ? ", namespaced" : "") +
           ", MIC namespace \"" + settings.mic_namespace + "\"";
}

std::string identity_text(const AzureIdentity& id) {
    std::string out = "AzureIdentity " + id.meta.namespace_name + "/" + id.meta.name + " (type " +
                      std::to_string(id.type);
    if (!id.client_id.empty()) {
        out += ", client " + identity::redact(id.client_id);
    } else if (!id.resource_id.empty()) {
        out += ", resource " + id.resource_id;
    }
    return out + ")";
}

std::string rfc3339(WallTime t) {
    return t == WallTime{} ? std::string{"never"} : format_rfc3339(t);
}

std::string time_text(WallTime t, WallTime now) {
    if (t == WallTime{}) {
        return "never";
    }
    const auto d = duration_cast<milliseconds>(t - now);
    return rfc3339(t) +
           (d.count() >= 0 ? " (in " + span_text(d) + ")" : " (" + span_text(-d) + " ago)");
}

std::string error_text(const CacheEntryInfo& e) {
    if (e.last_error == Errc::ok) {
        return "none";
    }
    std::string out{to_string(e.last_error)};
    if (e.last_error_status != 0) {
        out += ", status " + std::to_string(e.last_error_status);
    }
    return out;
}

std::string denial_name(workload::Denial denial) {
    switch (denial) {
        case workload::Denial::account_unknown:
            return "account_unknown";
        case workload::Denial::no_client_id:
            return "no_client_id";
        case workload::Denial::invalid_annotation:
            return "invalid_annotation";
        case workload::Denial::no_tenant:
            return "no_tenant";
        case workload::Denial::selector_unsupported:
            return "selector_unsupported";
        case workload::Denial::client_id_mismatch:
            return "client_id_mismatch";
        case workload::Denial::no_projected_token:
            return "no_projected_token";
    }
    return "unknown";
}

}  // namespace nmid::explain::detail
