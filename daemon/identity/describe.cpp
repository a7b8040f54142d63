// NMI's texts for denials and its client-ID redaction. Kept apart from resolver.cpp because
// these allocate and run only on the (rare) error path.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/identity/resolver.hpp"

namespace nmid::identity {
namespace {

constexpr std::string_view kRedactedMarker = "##### REDACTED #####";
constexpr std::size_t kRedactKeep = 4;

std::string pod_ref(const PodInfo& pod) {
    return pod.namespace_name + "/" + pod.name;
}

std::string binding_label(const PodInfo& pod) {
    const auto it = pod.labels.find("aadpodidbinding");
    return it == pod.labels.end() ? std::string{} : it->second;
}

// Managed-mode lookups that find nothing. NMI itself answered all three with
// `no azure identity found for request clientID <cid>`, which names neither the pod nor the
// cause; nmid keeps NMI's `failed to get AzureIdentities for pod <ns>/<name>, error: ...`
// shape and says which link of label -> binding -> identity is missing.
std::string managed_failure(const PodInfo& pod, std::string_view cause) {
    std::string text = "failed to get AzureIdentities for pod ";
    text += pod_ref(pod);
    text += ", error: ";
    text += cause;
    return text;
}

std::string not_found(const TokenQuery& query) {
    if (query.client_id.empty() && !query.resource_id.empty()) {
        return "no azure identity found for request resourceID " + std::string{query.resource_id};
    }
    if (query.client_id.empty() && !query.object_id.empty()) {
        return "no azure identity found for request objectID " + redact(query.object_id);
    }
    return "no azure identity found for request clientID " + redact(query.client_id);
}

// NMI's standard-mode wait ended with one of two texts; nmid does not wait (the CRD snapshot
// is pushed, not polled), but keeps the texts and the numbers an operator's runbook greps for.
std::string assignment_failure(const PodInfo& pod, const TokenQuery& query, std::string_view state,
                               int attempts, const IdentitySettings& settings) {
    std::string text;
    if (!query.client_id.empty()) {
        text = "clientID in request: " + redact(query.client_id) + ", ";
    }
    text += "getting assigned identities for pod ";
    text += pod_ref(pod);
    text += " in ";
    text += state;
    text += " state failed after ";
    text += std::to_string(attempts);
    text += " attempts, retry duration [";
    text += std::to_string(settings.find_identity_retry_interval.count());
    text += "]s, error: <nil>. Check MIC pod logs for identity assignment errors";
    return text;
}

bool is_regex_space(unsigned char c) {
    // Go RE2's \s: [\t\n\f\r ].
    return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

// Length of the UTF-8 sequence at s[i] the way Go decodes runes: a valid sequence is one
// rune, any invalid byte is a rune of its own (U+FFFD). Go's regexp counts runes, not bytes.
std::size_t rune_length(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k, unsigned char lo, unsigned char hi) {
        if (i + k >= s.size()) {
            return false;
        }
        const auto b = static_cast<unsigned char>(s[i + k]);
        return b >= lo && b <= hi;
    };
    if (c < 0x80U) {
        return 1;
    }
    if (c >= 0xC2U && c <= 0xDFU) {
        return cont(1, 0x80, 0xBF) ? 2 : 1;
    }
    if (c >= 0xE0U && c <= 0xEFU) {
        const unsigned char lo = c == 0xE0U ? 0xA0 : 0x80;
        const unsigned char hi = c == 0xEDU ? 0x9F : 0xBF;
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 1;
    }
    if (c >= 0xF0U && c <= 0xF4U) {
        const unsigned char lo = c == 0xF0U ? 0x90 : 0x80;
        const unsigned char hi = c == 0xF4U ? 0x8F : 0xBF;
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 1;
    }
    return 1;
}

}  // namespace

std::string describe(DenyReason reason, const PodInfo& pod, const TokenQuery& query,
                     const IdentitySettings& settings) {
    switch (reason) {
        case DenyReason::no_binding_label:
            return managed_failure(pod, "pod has no aadpodidbinding label");
        case DenyReason::no_matching_binding:
            return managed_failure(pod, "no AzureIdentityBinding in namespace " +
                                            pod.namespace_name + " has selector " +
                                            binding_label(pod));
        case DenyReason::no_identity_for_binding:
            return managed_failure(pod,
                                   "the AzureIdentityBindings with selector " + binding_label(pod) +
                                       " name no AzureIdentity in namespace " + pod.namespace_name);
        case DenyReason::requested_identity_not_bound:
            return not_found(query);
        case DenyReason::no_assignment:
            return assignment_failure(pod, query, "CREATED", settings.retry_attempts_for_created,
                                      settings);
        case DenyReason::assignment_pending:
            return assignment_failure(
                pod, query, "ASSIGNED",
                settings.retry_attempts_for_created + settings.retry_attempts_for_assigned,
                settings);
    }
    return "unknown identity lookup failure";
}

std::string redact(std::string_view client_id) {
    // NMI: regexp `^(\S{4})(\S|\s)*(\S{4})$` replaced by `$1##### REDACTED #####$3`, so a
    // value is redacted only when it has at least 8 runes and its first and last 4 runes are
    // not white space; anything else is returned unchanged (the regexp does not match).
    // Client IDs are ASCII GUIDs: one rune per byte, no index of rune starts needed.
    if (std::all_of(client_id.begin(), client_id.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
        const std::size_t n = client_id.size();
        if (n < 2 * kRedactKeep) {
            return std::string{client_id};
        }
        for (std::size_t i = 0; i < kRedactKeep; ++i) {
            if (is_regex_space(static_cast<unsigned char>(client_id[i])) ||
                is_regex_space(static_cast<unsigned char>(client_id[n - 1 - i]))) {
                return std::string{client_id};
            }
        }
        std::string out;
        out.reserve(2 * kRedactKeep + kRedactedMarker.size());
        out.append(client_id.substr(0, kRedactKeep));
        out.append(kRedactedMarker);
        out.append(client_id.substr(n - kRedactKeep));
        return out;
    }
    std::vector<std::size_t> starts;
    starts.reserve(client_id.size());
    for (std::size_t i = 0; i < client_id.size(); i += rune_length(client_id, i)) {
        starts.push_back(i);
    }
    const std::size_t runes = starts.size();
    if (runes < 2 * kRedactKeep) {
        return std::string{client_id};
    }
    for (std::size_t r = 0; r < runes; ++r) {
        const bool kept = r < kRedactKeep || r >= runes - kRedactKeep;
        if (kept && is_regex_space(static_cast<unsigned char>(client_id[starts[r]]))) {
            return std::string{client_id};
        }
    }
    const std::size_t head = starts[kRedactKeep];
    const std::size_t tail = starts[runes - kRedactKeep];
    std::string out;
    out.reserve(head + kRedactedMarker.size() + (client_id.size() - tail));
    out.append(client_id.substr(0, head));
    out.append(kRedactedMarker);
    out.append(client_id.substr(tail));
    return out;
}

}  // namespace nmid::identity
