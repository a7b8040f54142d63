#include "nmid/identity/explain.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "builders.hpp"

namespace nmid::identity {
namespace {

using test::assigned;
using test::binding;
using test::exception;
using test::identity;
using test::pod;
using test::sorted;

IdentitySettings managed() {
    IdentitySettings s;
    s.mode = OperationMode::managed;
    s.force_namespaced = true;
    return s;
}

IdentitySettings standard() {
    return IdentitySettings{};
}

// One line per consideration: "kind ns/name matched|no: why".
std::vector<std::string> lines(const Explanation& e) {
    std::vector<std::string> out;
    for (const auto& c : e.considered) {
        out.push_back(std::string{to_string(c.kind)} + " " + c.namespace_name + "/" + c.name +
                      (c.matched ? " matched: " : " no: ") + c.why);
    }
    return out;
}

CrdSnapshot managed_crds() {
    CrdSnapshot s;
    s.identities = {identity("web", "kv-reader", "11111111-aaaa-bbbb-cccc-222222222222"),
                    identity("web", "blob-writer", "33333333-aaaa-bbbb-cccc-444444444444"),
                    identity("other", "kv-reader", "55555555-aaaa-bbbb-cccc-666666666666")};
    s.bindings = {binding("web", "kv", "kv-reader", "frontend"),
                  binding("web", "blob", "blob-writer", "frontend"),
                  binding("web", "db", "db-reader", "db"),
                  binding("web", "dangling", "gone", "frontend"),
                  binding("other", "kv", "kv-reader", "frontend")};
    s.exceptions = {exception("web", "probes", {{"app", "prober"}}),
                    exception("other", "all", {{"app", "frontend"}})};
    return sorted(s);
}

TEST(ExplainTest, ManagedBoundPodListsEveryBindingOfItsNamespaceWithTheReason) {
    const CrdSnapshot crds = managed_crds();
    const PodInfo p =
        pod("web", "frontend-1", {{"aadpodidbinding", "frontend"}, {"app", "frontend"}});
    const Explanation e = explain(p, crds, managed());

    ASSERT_EQ(e.decision.kind, DecisionKind::bound);
    EXPECT_EQ(e.decision.identity, resolve(p, crds, TokenQuery{}, managed()).identity);
    EXPECT_EQ(lines(e),
              (std::vector<std::string>{
                  "exception web/probes no: no podLabels entry matches the pod's labels (wants " +
                      std::string{"any of app=prober)"},
                  "binding web/blob matched: selector \"frontend\" matches: the pod may use " +
                      std::string{"AzureIdentity web/blob-writer"},
                  "binding web/dangling no: selector matches, but it names AzureIdentity " +
                      std::string{"\"gone\", which does not exist in namespace \"web\""},
                  "binding web/db no: selector \"db\" is not the pod's aadpodidbinding label " +
                      std::string{"\"frontend\" (compared exactly)"},
                  "binding web/kv matched: selector \"frontend\" matches: the pod may use " +
                      std::string{"AzureIdentity web/kv-reader"},
              }));
    ASSERT_EQ(e.usable.size(), 2U);
    EXPECT_EQ(e.usable[0]->meta.name, "blob-writer");
    EXPECT_EQ(e.usable[1]->meta.name, "kv-reader");
    EXPECT_EQ(e.usable[1]->meta.namespace_name, "web");
}

TEST(ExplainTest, ManagedDenialsCarryTheResolversReason) {
    const CrdSnapshot crds = managed_crds();
    struct Case {
        const char* name;
        PodInfo pod;
        DenyReason reason;
        const char* binding_why;  // the kv binding's reason
    };
    const std::vector<Case> cases{
        {"no label", pod("web", "p"), DenyReason::no_binding_label,
         "the pod has no aadpodidbinding label (the binding selects \"frontend\")"},
        {"empty label", pod("web", "p", {{"aadpodidbinding", ""}}), DenyReason::no_binding_label,
         "the pod has no aadpodidbinding label (the binding selects \"frontend\")"},
        {"other selector", pod("web", "p", {{"aadpodidbinding", "Frontend"}}),
         DenyReason::no_matching_binding,
         "selector \"frontend\" is not the pod's aadpodidbinding label \"Frontend\" (compared "
         "exactly)"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const Explanation e = explain(c.pod, crds, managed());
        EXPECT_EQ(e.decision.kind, DecisionKind::denied);
        EXPECT_EQ(e.decision.reason, c.reason);
        EXPECT_EQ(e.decision.reason, resolve(c.pod, crds, TokenQuery{}, managed()).reason);
        EXPECT_TRUE(e.usable.empty());
        bool seen = false;
        for (const auto& k : e.considered) {
            if (k.name == "kv") {
                seen = true;
                EXPECT_FALSE(k.matched);
                EXPECT_EQ(k.why, c.binding_why);
            }
        }
        EXPECT_TRUE(seen);
    }

    const PodInfo dangling = pod("web", "p", {{"aadpodidbinding", "db"}});
    const Explanation e = explain(dangling, crds, managed());
    EXPECT_EQ(e.decision.reason, DenyReason::no_identity_for_binding);
}

TEST(ExplainTest, AnExceptionWinsAndOnlyTheNamespacesExceptionsAreListed) {
    const CrdSnapshot crds = managed_crds();
    const PodInfo p = pod("web", "prober-1", {{"app", "PROBER"}, {"aadpodidbinding", "frontend"}});
    const Explanation e = explain(p, crds, managed());
    EXPECT_EQ(e.decision.kind, DecisionKind::excepted);
    EXPECT_TRUE(e.usable.empty());
    ASSERT_FALSE(e.considered.empty());
    EXPECT_EQ(lines(e)[0],
              "exception web/probes matched: podLabels app=prober matches the pod's label (value "
              "compared without case): requests go to IMDS as the node");
    for (const auto& c : e.considered) {
        EXPECT_EQ(c.namespace_name, "web");
    }
}

TEST(ExplainTest, StandardModeChecksMicAndEveryAssignmentOfThePod) {
    CrdSnapshot crds;
    const auto id_a = identity("apps", "id-a", "aaaaaaaa-0000-0000-0000-00000000000a");
    const auto id_b = identity("apps", "id-b", "bbbbbbbb-0000-0000-0000-00000000000b");
    const auto foreign = identity("team-x", "id-x", "cccccccc-0000-0000-0000-00000000000c", {}, {},
                                  {{"aadpodidentity.k8s.io/Behavior", "namespaced"}});
    crds.assigned = {assigned("apps", "api", id_a, "Assigned"),
                     assigned("apps", "api", id_b, "Created"),
                     assigned("apps", "api", foreign, "Assigned"),
                     assigned("apps", "other-pod", id_b, "Assigned")};
    crds = sorted(crds);
    const PodInfo p = pod("apps", "api", {{"aadpodidbinding", "api"}});
    const Explanation e = explain(p, crds, standard());

    ASSERT_EQ(e.decision.kind, DecisionKind::bound);
    EXPECT_EQ(e.decision.identity->meta.name, "id-a");
    EXPECT_EQ(lines(e),
              (std::vector<std::string>{
                  "mic /mic no: not MIC (MIC is a pod in namespace \"default\" whose controller " +
                      std::string{"is an apps/v1 ReplicaSet named mic-*)"},
                  "assignment default/api-apps-id-a matched: AzureIdentity apps/id-a in state " +
                      std::string{"Assigned: the pod may use it"},
                  "assignment default/api-apps-id-b no: AzureIdentity apps/id-b in state " +
                      std::string{"Created: MIC has not finished assigning it to the node"},
                  "assignment default/api-apps-id-x no: assigns AzureIdentity team-x/id-x from " +
                      std::string{"another namespace, refused by its namespaced Behavior"},
              }));
    ASSERT_EQ(e.usable.size(), 1U);
    EXPECT_EQ(e.usable[0], e.decision.identity);

    IdentitySettings forced = standard();
    forced.force_namespaced = true;
    EXPECT_NE(lines(explain(p, crds, forced))[3].find("refused by --forceNamespaced"),
              std::string::npos);
}

TEST(ExplainTest, StandardDenialsPendingAndNoAssignment) {
    CrdSnapshot crds;
    crds.assigned = {assigned("apps", "api", identity("apps", "id-b", "b"), "Created"),
                     assigned("apps", "gone", identity("apps", "id-c", "c"), "Unassigned")};
    crds = sorted(crds);
    EXPECT_EQ(explain(pod("apps", "api"), crds, standard()).decision.reason,
              DenyReason::assignment_pending);
    const Explanation none = explain(pod("apps", "new"), crds, standard());
    EXPECT_EQ(none.decision.reason, DenyReason::no_assignment);
    EXPECT_EQ(none.considered.size(), 1U);  // the MIC check only

    const Explanation unassigned = explain(pod("apps", "gone"), crds, standard());
    EXPECT_EQ(unassigned.decision.reason, DenyReason::no_assignment);
    EXPECT_EQ(lines(unassigned)[1],
              "assignment default/gone-apps-id-c no: AzureIdentity apps/id-c in state "
              "Unassigned: not usable");
}

TEST(ExplainTest, MicItselfIsExcepted) {
    PodInfo mic = pod("default", "mic-7d9-abcde", {},
                      {OwnerReference{.api_version = "apps/v1",
                                      .kind = "ReplicaSet",
                                      .name = "mic-7d9",
                                      .controller = true}});
    const Explanation e = explain(mic, CrdSnapshot{}, standard());
    EXPECT_EQ(e.decision.kind, DecisionKind::excepted);
    ASSERT_EQ(e.considered.size(), 1U);
    EXPECT_TRUE(e.considered[0].matched);
    EXPECT_NE(e.considered[0].why.find("the pod is MIC itself"), std::string::npos);
}

TEST(ExplainTest, NoReasonEverHoldsAClientId) {
    const CrdSnapshot crds = managed_crds();
    const PodInfo p = pod("web", "frontend-1", {{"aadpodidbinding", "frontend"}});
    for (const auto& c : explain(p, crds, managed()).considered) {
        for (const auto& id : crds.identities) {
            EXPECT_EQ(c.why.find(id.client_id), std::string::npos) << c.why;
        }
    }
}

}  // namespace
}  // namespace nmid::identity
