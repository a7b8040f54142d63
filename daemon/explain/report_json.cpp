// The JSON form of /debug/explain (keys in README "Explain"), for scripts.

#include <nlohmann/json.hpp>
#include <string>

#include "nmid/explain/report.hpp"
#include "nmid/identity/resolver.hpp"
#include "report_parts.hpp"

namespace nmid::explain {
namespace {

using nlohmann::json;

json age_json(const std::optional<std::chrono::milliseconds>& age) {
    return age ? json(static_cast<double>(age->count()) / 1000.0) : json(nullptr);
}

json identity_json(const AzureIdentity& id) {
    return json{{"namespace", id.meta.namespace_name},
                {"name", id.meta.name},
                {"type", id.type},
                {"clientID", identity::redact(id.client_id)},
                {"resourceID", id.resource_id}};
}

json pod_json(const PodInfo& p) {
    return json{{"namespace", p.namespace_name},
                {"name", p.name},
                {"uid", p.uid},
                {"phase", p.phase},
                {"ips", p.ips},
                {"serviceAccount", p.service_account}};
}

json answer_json(const Report& r) {
    if (r.workload) {
        const WorkloadPart& w = *r.workload;
        json a{{"kind", w.served ? "workload_identity" : "denied"},
               {"serviceAccount", w.service_account}};
        if (w.served) {
            a["clientID"] = w.client_id;
            a["tenantID"] = w.tenant_id;
        } else {
            a["reason"] = w.denial;
            a["message"] = w.denial_text;
        }
        return a;
    }
    const auto& d = r.explanation.decision;
    switch (d.kind) {
        case identity::DecisionKind::excepted:
            return json{{"kind", "excepted"}};
        case identity::DecisionKind::denied:
            return json{{"kind", "denied"},
                        {"reason", deny_reason_name(d.reason)},
                        {"message", r.denial_text}};
        case identity::DecisionKind::bound: {
            json usable = json::array();
            for (const auto* id : r.explanation.usable) {
                usable.push_back(identity_json(*id));
            }
            return json{{"kind", "bound"},
                        {"identity", identity_json(*d.identity)},
                        {"usable", std::move(usable)}};
        }
    }
    return json{};
}

json cache_json(const Report& r) {
    json entries = json::array();
    for (const auto& e : r.cache) {
        entries.push_back(
            json{{"identity", e.identity.identity_namespace + "/" + e.identity.identity_name},
                 {"resource", e.resource},
                 {"hasToken", e.has_token},
                 {"expiresAt", e.has_token ? detail::rfc3339(e.expires_at) : "never"},
                 {"fetchedAt", e.has_token ? detail::rfc3339(e.fetched_at) : "never"},
                 {"nextRefresh", detail::rfc3339(e.next_refresh)},
                 {"fetching", e.fetching},
                 {"lastError", detail::error_text(e)}});
    }
    return entries;
}

}  // namespace

std::string render_json(const Report& report) {
    json out{{"now", detail::rfc3339(report.now)},
             {"podSource",
              {{"name", report.pod_source}, {"ageSeconds", age_json(report.pod_source_age)}}}};
    if (!report.pod) {
        out["pod"] = nullptr;
        out["error"] = report.pod_error;
        return out.dump(2) + "\n";
    }
    out["pod"] = pod_json(*report.pod);
    out["mode"] = detail::mode_text(report.identity);
    out["identitySnapshotAgeSeconds"] = age_json(report.identity_age);
    json considered = json::array();
    for (const auto& c : report.explanation.considered) {
        considered.push_back(json{{"kind", identity::to_string(c.kind)},
                                  {"namespace", c.namespace_name},
                                  {"name", c.name},
                                  {"matched", c.matched},
                                  {"why", c.why}});
    }
    out["considered"] = std::move(considered);
    out["answer"] = answer_json(report);
    out["cache"] = cache_json(report);
    return out.dump(2) + "\n";
}

}  // namespace nmid::explain
