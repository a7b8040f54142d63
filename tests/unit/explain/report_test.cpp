// The rendered /debug/explain report: the answer line for every denial a pod can get, the
// cache lines, and that no form ever shows a client ID in clear.

#include "nmid/explain/report.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nmid::explain {
namespace {

using namespace std::chrono_literals;

constexpr const char* kClient = "0123abcd-0000-0000-0000-00000000beef";

PodInfoPtr make_pod(std::string ns, std::string name, std::map<std::string, std::string> labels) {
    auto p = std::make_shared<PodInfo>();
    p->namespace_name = std::move(ns);
    p->name = std::move(name);
    p->uid = "uid-1";
    p->phase = "Running";
    p->ips = {"10.0.0.5"};
    p->labels = std::move(labels);
    return p;
}

std::shared_ptr<CrdSnapshot> crds() {
    auto s = std::make_shared<CrdSnapshot>();
    AzureIdentity id;
    id.meta.namespace_name = "web";
    id.meta.name = "kv-reader";
    id.client_id = kClient;
    s->identities.push_back(id);
    AzureIdentityBinding b;
    b.meta.namespace_name = "web";
    b.meta.name = "kv";
    b.azure_identity = "kv-reader";
    b.selector = "frontend";
    s->bindings.push_back(b);
    b.meta.name = "old";
    b.azure_identity = "deleted";
    b.selector = "legacy";
    s->bindings.push_back(b);
    AzureAssignedIdentity pending;
    pending.meta.namespace_name = "default";
    pending.meta.name = "api-web-kv-reader";
    pending.identity_ref = id;
    pending.pod = "api";
    pending.pod_namespace = "web";
    pending.status = "Created";
    s->assigned.push_back(pending);
    return s;
}

Report report_for(PodInfoPtr pod, const IdentitySettings& settings) {
    Report r;
    r.query.ip = "10.0.0.5";
    r.now = WallTime{} + 1'800'000'000s;
    r.pod_source = "kubelet";
    r.pod_source_age = 1200ms;
    r.identity = settings;
    r.identity_age = 300ms;
    r.crds = crds();
    r.pod = std::move(pod);
    r.explanation = identity::explain(*r.pod, *r.crds, settings);
    if (r.explanation.decision.kind == identity::DecisionKind::denied) {
        r.denial_text = identity::describe(r.explanation.decision.reason, *r.pod,
                                           identity::TokenQuery{}, settings);
    }
    return r;
}

IdentitySettings managed() {
    return IdentitySettings{.mode = OperationMode::managed, .force_namespaced = true};
}

TEST(ExplainReportTest, EveryDenialAPodCanGetIsNamedWithTheTextThePodReceives) {
    struct Row {
        const char* name;
        PodInfoPtr pod;
        IdentitySettings settings;
        std::string answer;
    };
    const std::vector<Row> rows{
        {"no_binding_label", make_pod("web", "p", {}), managed(),
         "answer: denied (no_binding_label): failed to get AzureIdentities for pod web/p, error: "
         "pod has no aadpodidbinding label\n"},
        {"no_matching_binding", make_pod("web", "p", {{"aadpodidbinding", "backend"}}), managed(),
         "answer: denied (no_matching_binding): failed to get AzureIdentities for pod web/p, "
         "error: no AzureIdentityBinding in namespace web has selector backend\n"},
        {"no_identity_for_binding", make_pod("web", "p", {{"aadpodidbinding", "legacy"}}),
         managed(),
         "answer: denied (no_identity_for_binding): failed to get AzureIdentities for pod web/p, "
         "error: the AzureIdentityBindings with selector legacy name no AzureIdentity in "
         "namespace web\n"},
        {"no_assignment", make_pod("web", "new", {}), IdentitySettings{},
         "answer: denied (no_assignment): getting assigned identities for pod web/new in CREATED "
         "state failed after 16 attempts, retry duration [5]s, error: <nil>. Check MIC pod logs "
         "for identity assignment errors\n"},
        {"assignment_pending", make_pod("web", "api", {}), IdentitySettings{},
         "answer: denied (assignment_pending): getting assigned identities for pod web/api in "
         "ASSIGNED state failed after 20 attempts, retry duration [5]s, error: <nil>. Check MIC "
         "pod logs for identity assignment errors\n"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.name);
        const std::string text = render_text(report_for(row.pod, row.settings));
        EXPECT_NE(text.find(row.answer), std::string::npos) << text;
        const auto json = nlohmann::json::parse(render_json(report_for(row.pod, row.settings)));
        EXPECT_EQ(json["answer"]["kind"], "denied");
        EXPECT_EQ(json["answer"]["reason"], row.name);
    }
}

TEST(ExplainReportTest, ABoundPodShowsItsIdentityAndCacheEntriesRedacted) {
    Report r = report_for(make_pod("web", "p", {{"aadpodidbinding", "frontend"}}), managed());
    CacheEntryInfo e;
    e.identity.identity_namespace = "web";
    e.identity.identity_name = "kv-reader";
    e.identity.client_id = kClient;
    e.resource = "https://vault.azure.net";
    e.has_token = true;
    e.fetched_at = r.now - 2s;
    e.expires_at = r.now + 3598s;
    e.next_refresh = r.now + 2400s;
    r.cache.push_back(e);
    e.resource = "https://storage.azure.com/";
    e.has_token = false;
    e.next_refresh = r.now + 30s;
    e.last_error = Errc::upstream_refused;
    e.last_error_status = 403;
    r.cache.push_back(e);

    const std::string text = render_text(r);
    EXPECT_EQ(text,
              "pod: web/p\n"
              "  uid uid-1, phase Running, IPs 10.0.0.5, ServiceAccount default\n"
              "  found in the pod source \"kubelet\" (read 1.2s ago)\n"
              "identities: managed mode, namespaced; snapshot read 0.3s ago\n"
              "considered:\n"
              "  yes binding web/kv: selector \"frontend\" matches: the pod may use AzureIdentity "
              "web/kv-reader\n"
              "  no  binding web/old: selector \"legacy\" is not the pod's aadpodidbinding label "
              "\"frontend\" (compared exactly)\n"
              "answer: token for AzureIdentity web/kv-reader (type 0, client "
              "0123##### REDACTED #####beef)\n"
              "cache:\n"
              "  web/kv-reader https://vault.azure.net: expires 2027-01-15T08:59:58Z (in 59m58s), "
              "fetched 2027-01-15T07:59:58Z (2.0s ago), next refresh 2027-01-15T08:40:00Z (in "
              "40m00s), last error none\n"
              "  web/kv-reader https://storage.azure.com/: no token, next refresh "
              "2027-01-15T08:00:30Z (in 30.0s), last error upstream_refused, status 403\n");
    const std::string json = render_json(r);
    EXPECT_EQ(json.find(kClient), std::string::npos);
    const auto parsed = nlohmann::json::parse(json);
    EXPECT_EQ(parsed["answer"]["identity"]["clientID"], "0123##### REDACTED #####beef");
    EXPECT_EQ(parsed["cache"].size(), 2U);
    EXPECT_EQ(parsed["cache"][1]["lastError"], "upstream_refused, status 403");
    EXPECT_EQ(parsed["podSource"]["ageSeconds"], 1.2);
}

TEST(ExplainReportTest, ExceptedNotFoundAndWorkloadIdentityAnswers) {
    auto excepted_crds = crds();
    AzurePodIdentityException ex;
    ex.meta.namespace_name = "web";
    ex.meta.name = "probes";
    ex.pod_labels = {{"app", "prober"}};
    excepted_crds->exceptions.push_back(ex);
    Report r = report_for(make_pod("web", "probe", {{"app", "prober"}}), managed());
    r.crds = excepted_crds;
    r.explanation = identity::explain(*r.pod, *r.crds, managed());
    EXPECT_NE(render_text(r).find("answer: excepted: requests are passed to IMDS and answered as "
                                  "the node\n"),
              std::string::npos);

    Report missing;
    missing.query.ip = "10.9.9.9";
    missing.pod_source = "apiserver";
    missing.pod_error = "pod_not_found";
    EXPECT_EQ(render_text(missing),
              "pod: not found (pod_not_found): no pod with IP 10.9.9.9 in the pod source "
              "\"apiserver\" (not read yet)\n");
    EXPECT_EQ(nlohmann::json::parse(render_json(missing))["error"], "pod_not_found");

    Report wi = report_for(make_pod("web", "p", {{"aadpodidbinding", "frontend"}}), managed());
    wi.workload = WorkloadPart{.service_account = "web/default",
                               .served = false,
                               .client_id = {},
                               .tenant_id = {},
                               .denial = "no_client_id",
                               .denial_text = "the text"};
    const std::string text = render_text(wi);
    EXPECT_NE(text.find("answer: denied (workload identity, no_client_id): the text\n"),
              std::string::npos);
    EXPECT_EQ(text.find("answer: token for"), std::string::npos);
    wi.workload->served = true;
    wi.workload->client_id = "0123##### REDACTED #####beef";
    wi.workload->tenant_id = "tenant-a";
    EXPECT_NE(render_text(wi).find("answer: token from Azure AD for client 0123##### REDACTED "
                                   "#####beef in tenant tenant-a"),
              std::string::npos);
}

}  // namespace
}  // namespace nmid::explain
