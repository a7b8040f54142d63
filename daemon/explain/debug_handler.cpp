#include "nmid/explain/debug_handler.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <functional>
#include <utility>
#include <variant>

#include "nmid/crd/crd_store.hpp"
#include "nmid/explain/report.hpp"
#include "nmid/handlers/nmi_handler.hpp"
#include "nmid/http/router.hpp"
#include "nmid/pods/pod_index.hpp"
#include "nmid/token/token_cache.hpp"
#include "nmid/workload/constants.hpp"
#include "nmid/workload/decision.hpp"
#include "nmid/workload/workload_token_source.hpp"
#include "report_parts.hpp"

namespace nmid::explain {
namespace {

namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

http::HttpResponse text_response(int status, std::string body) {
    http::HttpResponse r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(body);
    return r;
}

Result<PodInfoPtr> find_pod(const PodIndex& pods, const Query& q) {
    if (q.ip.empty()) {
        return pods.find_by_name(q.namespace_name, q.pod);
    }
    return pods.find(asio::ip::make_address(q.ip));  // parse_query validated it
}

// Workload identity's part when the feature is on and the pod opted in.
std::optional<WorkloadPart> workload_part(const handlers::WorkloadDependencies& w,
                                          const PodInfo& pod) {
    if (!workload::uses_workload_identity(pod)) {
        return std::nullopt;
    }
    const auto [account, d] = w.decide(pod, identity::TokenQuery{});
    WorkloadPart part;
    part.service_account =
        pod.namespace_name + "/" + std::string{workload::service_account_of(pod)};
    part.served = d.verdict == workload::Verdict::serve;
    if (part.served) {
        part.client_id = identity::redact(d.client_id);
        part.tenant_id = std::string{d.tenant_id};
    } else {
        part.denial = detail::denial_name(d.denial);
        part.denial_text = workload::describe(d.denial, pod, account.get(), identity::TokenQuery{});
    }
    return part;
}

}  // namespace

DebugHandler::DebugHandler(DebugDependencies deps) : deps_(std::move(deps)) {}

asio::awaitable<http::HttpResponse> DebugHandler::handle(const http::HttpRequest& request) {
    const auto target = http::route(request.target);
    if (target.path != "/debug/explain") {
        co_return text_response(404, "not found (the debug listener serves /debug/explain)\n");
    }
    if (request.method != "GET") {
        auto r = text_response(405, "method not allowed: use GET\n");
        r.headers.emplace_back("Allow", "GET");
        co_return r;
    }
    auto parsed = parse_query(target.query);
    if (auto* error = std::get_if<std::string>(&parsed)) {
        co_return text_response(400, "bad query: " + *error + "\n");
    }
    Report report;
    report.query = std::get<Query>(std::move(parsed));
    report.now = deps_.clock.wall_now();
    report.pod_source = deps_.pod_source;
    const auto pod_stats = deps_.pods.stats();
    if (pod_stats.last_refresh != SteadyTime{}) {
        report.pod_source_age =
            duration_cast<milliseconds>(deps_.clock.steady_now() - pod_stats.last_refresh);
    }
    report.identity = deps_.identity;
    if (deps_.crds.ready()) {
        report.identity_age = deps_.crd_age();
    }
    auto found = find_pod(deps_.pods, report.query);
    if (!found) {
        report.pod_error = std::string{to_string(static_cast<Errc>(found.error().value()))};
    } else {
        report.pod = std::move(*found);
        report.crds = deps_.crds.snapshot();
        const CrdSnapshot empty;
        const CrdSnapshot& crds = report.crds ? *report.crds : empty;
        report.explanation = identity::explain(*report.pod, crds, deps_.identity);
        const auto& decision = report.explanation.decision;
        if (decision.kind == identity::DecisionKind::denied) {
            report.denial_text = identity::describe(decision.reason, *report.pod,
                                                    identity::TokenQuery{}, deps_.identity);
        }
        if (deps_.workload != nullptr) {
            report.workload = workload_part(*deps_.workload, *report.pod);
        }
        if (report.workload) {
            const std::string ns = report.pod->namespace_name;
            const std::string account{workload::service_account_of(*report.pod)};
            // Each filter is named before co_await: g++ 12 destroys the temporaries of a
            // co_await expression twice.
            std::function<bool(const TokenIdentity&)> select = [ns,
                                                                account](const TokenIdentity& id) {
                return id.type == workload::kWorkloadIdentityType && id.identity_namespace == ns &&
                       id.identity_name == account;
            };
            report.cache = co_await deps_.workload->cache.inspect(std::move(select));
        } else {
            std::vector<std::pair<std::string, std::string>> names;
            for (const auto* id : report.explanation.usable) {
                names.emplace_back(id->meta.namespace_name, id->meta.name);
            }
            std::function<bool(const TokenIdentity&)> select = [names = std::move(names)](
                                                                   const TokenIdentity& id) {
                return id.type != workload::kWorkloadIdentityType &&
                       std::find(names.begin(), names.end(),
                                 std::pair{id.identity_namespace, id.identity_name}) != names.end();
            };
            report.cache = co_await deps_.cache.inspect(std::move(select));
        }
    }
    http::HttpResponse response;
    if (report.query.json) {
        response.content_type = "application/json";
        response.body = render_json(report);
    } else {
        response.content_type = "text/plain; charset=utf-8";
        response.body = render_text(report);
    }
    co_return response;
}

}  // namespace nmid::explain
