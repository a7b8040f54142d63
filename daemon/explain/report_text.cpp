// The text form of /debug/explain, for a person at a terminal.

#include <ctime>
#include <string>

#include "nmid/explain/report.hpp"
#include "report_parts.hpp"

namespace nmid::explain {

std::string_view deny_reason_name(identity::DenyReason reason) noexcept {
    switch (reason) {
        case identity::DenyReason::no_binding_label:
            return "no_binding_label";
        case identity::DenyReason::no_matching_binding:
            return "no_matching_binding";
        case identity::DenyReason::no_identity_for_binding:
            return "no_identity_for_binding";
        case identity::DenyReason::requested_identity_not_bound:
            return "requested_identity_not_bound";
        case identity::DenyReason::no_assignment:
            return "no_assignment";
        case identity::DenyReason::assignment_pending:
            return "assignment_pending";
    }
    return "unknown";
}

namespace {

void pod_section(const Report& r, std::string& out) {
    const std::string source =
        "the pod source \"" + r.pod_source + "\" (" + detail::age_text(r.pod_source_age) + ")";
    if (!r.pod) {
        out += "pod: not found (" + r.pod_error + "): no pod ";
        out += r.query.ip.empty() ? r.query.namespace_name + "/" + r.query.pod
                                  : "with IP " + r.query.ip;
        out += " in " + source + "\n";
        return;
    }
    const PodInfo& p = *r.pod;
    out += "pod: " + p.namespace_name + "/" + p.name + "\n";
    out += "  uid " + p.uid + ", phase " + (p.phase.empty() ? "(none)" : p.phase) + ", IPs";
    for (const auto& ip : p.ips) {
        out += " " + ip;
    }
    out += ", ServiceAccount " + (p.service_account.empty() ? "default" : p.service_account) + "\n";
    out += "  found in " + source + "\n";
}

void considered_section(const Report& r, std::string& out) {
    out += "identities: " + detail::mode_text(r.identity) + "; snapshot " +
           detail::age_text(r.identity_age) + "\n";
    if (r.explanation.considered.empty()) {
        out += "considered: nothing (no exception, binding or assignment applies to the pod)\n";
        return;
    }
    out += "considered:\n";
    for (const auto& c : r.explanation.considered) {
        out += c.matched ? "  yes " : "  no  ";
        out += std::string{identity::to_string(c.kind)} + " ";
        out += c.namespace_name.empty() ? c.name : c.namespace_name + "/" + c.name;
        out += ": " + c.why + "\n";
    }
}

void answer_section(const Report& r, std::string& out) {
    if (r.workload) {
        const WorkloadPart& w = *r.workload;
        out +=
            "workload identity: the pod opted in (azure.workload.identity/use=true), "
            "ServiceAccount " +
            w.service_account + "\n";
        if (w.served) {
            out += "answer: token from Azure AD for client " + w.client_id + " in tenant " +
                   w.tenant_id + " (federated with the pod's ServiceAccount token)\n";
        } else {
            out += "answer: denied (workload identity, " + w.denial + "): " + w.denial_text + "\n";
        }
        return;
    }
    const auto& d = r.explanation.decision;
    switch (d.kind) {
        case identity::DecisionKind::excepted:
            out += "answer: excepted: requests are passed to IMDS and answered as the node\n";
            return;
        case identity::DecisionKind::denied:
            out += "answer: denied (" + std::string{deny_reason_name(d.reason)} +
                   "): " + r.denial_text + "\n";
            return;
        case identity::DecisionKind::bound:
            out += "answer: token for " + detail::identity_text(*d.identity) + "\n";
            for (const auto* other : r.explanation.usable) {
                if (other != d.identity) {
                    out += "  a request may also name " + detail::identity_text(*other) + "\n";
                }
            }
            return;
    }
}

void cache_section(const Report& r, std::string& out) {
    if (r.cache.empty()) {
        out += "cache: no entries for these identities\n";
        return;
    }
    out += "cache:\n";
    for (const auto& e : r.cache) {
        out += "  " + e.identity.identity_namespace + "/" + e.identity.identity_name + " " +
               e.resource + ": ";
        if (e.has_token) {
            out += "expires " + detail::time_text(e.expires_at, r.now) + ", fetched " +
                   detail::time_text(e.fetched_at, r.now);
        } else {
            out += "no token";
        }
        out += ", next refresh " + detail::time_text(e.next_refresh, r.now);
        if (e.fetching) {
            out += ", fetching now";
        }
        out += ", last error " + detail::error_text(e) + "\n";
    }
}

}  // namespace

std::string render_text(const Report& report) {
    std::string out;
    pod_section(report, out);
    if (!report.pod) {
        return out;
    }
    considered_section(report, out);
    answer_section(report, out);
    cache_section(report, out);
    return out;
}

}  // namespace nmid::explain
