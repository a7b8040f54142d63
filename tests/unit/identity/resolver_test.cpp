#include "nmid/identity/resolver.hpp"

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

constexpr const char* kResA =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/RG/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-a";
constexpr const char* kResB =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/RG/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-b";
constexpr const char* kResBOtherCase =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
    "microsoft.managedidentity/userassignedidentities/ID-B";

std::string reason_name(DenyReason r) {
    switch (r) {
        case DenyReason::no_binding_label:
            return "no_binding_label";
        case DenyReason::no_matching_binding:
            return "no_matching_binding";
        case DenyReason::no_identity_for_binding:
            return "no_identity_for_binding";
        case DenyReason::requested_identity_not_bound:
            return "requested_identity_not_bound";
        case DenyReason::no_assignment:
            return "no_assignment";
        case DenyReason::assignment_pending:
            return "assignment_pending";
    }
    return "?";
}

// One string per outcome keeps the tables readable: "bound apps/id-a", "denied <reason>".
std::string outcome(const Decision& d) {
    switch (d.kind) {
        case DecisionKind::excepted:
            return d.identity == nullptr ? "excepted" : "excepted WITH IDENTITY";
        case DecisionKind::bound:
            return d.identity == nullptr
                       ? "bound NULL"
                       : "bound " + d.identity->meta.namespace_name + "/" + d.identity->meta.name;
        case DecisionKind::denied:
            return (d.identity == nullptr ? "denied " : "denied WITH IDENTITY ") +
                   reason_name(d.reason);
    }
    return "?";
}

struct Case {
    const char* name;
    PodInfo pod;
    TokenQuery query;
    const char* expected;
};

IdentitySettings managed() {
    return {.mode = OperationMode::managed};
}
IdentitySettings standard() {
    return {.mode = OperationMode::standard};
}

CrdSnapshot managed_snapshot() {
    CrdSnapshot s;
    s.identities = {
        identity("apps", "id-a", "cid-a", kResA, "oid-a"),
        identity("apps", "id-b", "cid-b", kResB, "oid-b"),
        identity("apps", "id-c", "cid-c"),
        identity("other", "id-x", "cid-x"),
        identity("other", "id-a", "cid-a-other"),
    };
    s.bindings = {
        // Binding names sort opposite to their identities: the choice must follow identities.
        binding("apps", "bind-1", "id-b", "web"),
        binding("apps", "bind-2", "id-a", "web"),
        binding("apps", "bind-batch", "id-c", "batch"),
        binding("apps", "bind-orphan", "ghost", "orphan"),
        binding("apps", "bind-cross", "id-x", "cross"),  // id-x exists only in "other"
        binding("other", "bind-web", "id-x", "web"),
    };
    return test::sorted(std::move(s));
}

TEST(Resolver, ManagedModeTable) {
    const CrdSnapshot crds = managed_snapshot();
    const std::vector<Case> cases = {
        {"no label", pod("apps", "p"), {}, "denied no_binding_label"},
        {"empty label", pod("apps", "p", {{"aadpodidbinding", ""}}), {}, "denied no_binding_label"},
        {"other label only", pod("apps", "p", {{"app", "web"}}), {}, "denied no_binding_label"},
        {"selector is case-sensitive",
         pod("apps", "p", {{"aadpodidbinding", "WEB"}}),
         {},
         "denied no_matching_binding"},
        {"two bound, none named: first by name",
         pod("apps", "p", {{"aadpodidbinding", "web"}}),
         {},
         "bound apps/id-a"},
        {"client_id picks", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_client_id("cid-b"), "bound apps/id-b"},
        {"client_id is exact", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_client_id("CID-B"), "denied requested_identity_not_bound"},
        {"client_id of an unbound identity in the namespace",
         pod("apps", "p", {{"aadpodidbinding", "web"}}), test::by_client_id("cid-c"),
         "denied requested_identity_not_bound"},
        {"client_id bound only in another namespace",
         pod("apps", "p", {{"aadpodidbinding", "web"}}), test::by_client_id("cid-x"),
         "denied requested_identity_not_bound"},
        {"resource id picks", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_resource_id(kResB), "bound apps/id-b"},
        {"resource id is case-insensitive", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_resource_id(kResBOtherCase), "bound apps/id-b"},
        {"resource id not bound", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_resource_id("/subscriptions/x/resourceGroups/rg/providers/"
                              "Microsoft.ManagedIdentity/userAssignedIdentities/zzz"),
         "denied requested_identity_not_bound"},
        {"object id picks", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_object_id("oid-b"), "bound apps/id-b"},
        {"object id is exact", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         test::by_object_id("OID-B"), "denied requested_identity_not_bound"},
        {"client_id wins over resource id", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         TokenQuery{"cid-a", kResB, {}}, "bound apps/id-a"},
        {"resource id wins over object id", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         TokenQuery{{}, kResA, "oid-b"}, "bound apps/id-a"},
        {"one binding", pod("apps", "p", {{"aadpodidbinding", "batch"}}), {}, "bound apps/id-c"},
        {"binding names a missing identity",
         pod("apps", "p", {{"aadpodidbinding", "orphan"}}),
         {},
         "denied no_identity_for_binding"},
        {"identity in another namespace is ignored",
         pod("apps", "p", {{"aadpodidbinding", "cross"}}),
         {},
         "denied no_identity_for_binding"},
        {"the pod's own namespace is used",
         pod("other", "p", {{"aadpodidbinding", "web"}}),
         {},
         "bound other/id-x"},
        {"binding in another namespace is ignored",
         pod("third", "p", {{"aadpodidbinding", "web"}}),
         {},
         "denied no_matching_binding"},
        {"namespace is exact",
         pod("Apps", "p", {{"aadpodidbinding", "web"}}),
         {},
         "denied no_matching_binding"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(outcome(resolve(c.pod, crds, c.query, managed())), c.expected);
    }
}

TEST(Resolver, ManagedChoiceDoesNotDependOnBindingOrder) {
    CrdSnapshot s;
    s.identities = {identity("ns", "alpha", "c1"), identity("ns", "zeta", "c2")};
    s.bindings = {binding("ns", "a-binding", "zeta", "sel"),
                  binding("ns", "b-binding", "alpha", "sel")};
    const PodInfo p = pod("ns", "p", {{"aadpodidbinding", "sel"}});
    EXPECT_EQ(outcome(resolve(p, test::sorted(s), {}, managed())), "bound ns/alpha");
    std::swap(s.bindings[0].azure_identity, s.bindings[1].azure_identity);
    EXPECT_EQ(outcome(resolve(p, test::sorted(s), {}, managed())), "bound ns/alpha");
}

TEST(Resolver, ManagedDuplicateClientIdPicksFirstByName) {
    CrdSnapshot s;
    s.identities = {identity("ns", "b", "same"), identity("ns", "a", "same")};
    s.bindings = {binding("ns", "x", "b", "sel"), binding("ns", "y", "a", "sel")};
    const PodInfo p = pod("ns", "p", {{"aadpodidbinding", "sel"}});
    const CrdSnapshot crds = test::sorted(s);  // outlives the Decision that points into it
    const Decision d = resolve(p, crds, test::by_client_id("same"), managed());
    ASSERT_EQ(d.kind, DecisionKind::bound);
    EXPECT_EQ(d.identity->meta.name, "a");
}

TEST(Resolver, BoundIdentityPointsIntoTheSnapshot) {
    const CrdSnapshot crds = managed_snapshot();
    const Decision d = resolve(pod("apps", "p", {{"aadpodidbinding", "web"}}), crds, {}, managed());
    ASSERT_EQ(d.kind, DecisionKind::bound);
    EXPECT_GE(d.identity, crds.identities.data());
    EXPECT_LT(d.identity, crds.identities.data() + crds.identities.size());
    EXPECT_EQ(d.identity->client_id, "cid-a");
}

CrdSnapshot standard_snapshot() {
    const auto id_a = identity("apps", "id-a", "cid-a", kResA);
    const auto id_b = identity("apps", "id-b", "cid-b", kResB);
    const auto id_x = identity("other", "id-x", "cid-x");
    const auto id_y = identity("other", "id-y", "cid-y", "", "",
                               {{"aadpodidentity.k8s.io/Behavior", "namespaced"}});
    CrdSnapshot s;
    s.assigned = {
        assigned("apps", "web-1", id_b, ""),  // legacy: written by MIC before 1.6
        assigned("apps", "web-1", id_a, "Assigned"),
        assigned("apps", "pending-1", id_a, "Created"),
        assigned("apps", "mixed", id_a, "Created"),
        assigned("apps", "mixed", id_b, "Assigned"),
        assigned("apps", "gone", id_a, "Unassigned"),
        assigned("apps", "crossns", id_x, "Assigned"),
        assigned("apps", "crossns-annotated", id_y, "Assigned"),
        assigned("other", "web-1", id_x, "Assigned"),
    };
    // Bindings are not read in standard mode: this one would bind "bound-by-label" otherwise.
    s.identities = {id_a};
    s.bindings = {binding("apps", "b", "id-a", "web")};
    return test::sorted(std::move(s));
}

TEST(Resolver, StandardModeTable) {
    const CrdSnapshot crds = standard_snapshot();
    const std::vector<Case> cases = {
        {"Assigned and legacy usable, first by name", pod("apps", "web-1"), {}, "bound apps/id-a"},
        {"legacy state usable", pod("apps", "web-1"), test::by_client_id("cid-b"),
         "bound apps/id-b"},
        {"resource id, case-insensitive", pod("apps", "web-1"),
         test::by_resource_id(kResBOtherCase), "bound apps/id-b"},
        {"requested identity not assigned", pod("apps", "web-1"), test::by_client_id("cid-z"),
         "denied requested_identity_not_bound"},
        {"client id exact in standard mode too", pod("apps", "web-1"), test::by_client_id("CID-A"),
         "denied requested_identity_not_bound"},
        {"only Created", pod("apps", "pending-1"), {}, "denied assignment_pending"},
        {"Created, but another identity requested", pod("apps", "pending-1"),
         test::by_client_id("cid-b"), "denied no_assignment"},
        {"Assigned wins over Created", pod("apps", "mixed"), {}, "bound apps/id-b"},
        {"requested one still Created", pod("apps", "mixed"), test::by_client_id("cid-a"),
         "denied assignment_pending"},
        {"Unassigned is not usable", pod("apps", "gone"), {}, "denied no_assignment"},
        {"no assignment at all", pod("apps", "nobody"), {}, "denied no_assignment"},
        {"bindings are not read",
         pod("apps", "bound-by-label", {{"aadpodidbinding", "web"}}),
         {},
         "denied no_assignment"},
        {"identity from another namespace allowed", pod("apps", "crossns"), {}, "bound other/id-x"},
        {"namespaced identity from another namespace dropped",
         pod("apps", "crossns-annotated"),
         {},
         "denied no_assignment"},
        {"pod namespace must match", pod("other", "web-1"), {}, "bound other/id-x"},
        {"pod name must match", pod("apps", "web-2"), {}, "denied no_assignment"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(outcome(resolve(c.pod, crds, c.query, standard())), c.expected);
    }
}

TEST(Resolver, AssignmentExpectedOnlyWhenABindingSelectsThePod) {
    CrdSnapshot crds;
    crds.bindings = {binding("apps", "b", "id-a", "web"), binding("other", "c", "id-x", "jobs")};
    IdentitySettings namespaced = standard();
    namespaced.force_namespaced = true;
    struct Row {
        const char* name;
        PodInfo pod;
        bool any_namespace;
        bool namespaced_only;
    };
    const std::vector<Row> rows = {
        {"label matches a binding in its namespace", pod("apps", "p", {{"aadpodidbinding", "web"}}),
         true, true},
        {"label matches a binding elsewhere", pod("apps", "p", {{"aadpodidbinding", "jobs"}}), true,
         false},
        {"label matches nothing", pod("apps", "p", {{"aadpodidbinding", "nope"}}), false, false},
        {"selector is exact", pod("apps", "p", {{"aadpodidbinding", "WEB"}}), false, false},
        {"no label", pod("apps", "p"), false, false},
        {"empty label", pod("apps", "p", {{"aadpodidbinding", ""}}), false, false},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(r.name);
        EXPECT_EQ(assignment_expected(r.pod, crds, standard()), r.any_namespace);
        EXPECT_EQ(assignment_expected(r.pod, crds, namespaced), r.namespaced_only);
    }
}

TEST(Resolver, StandardForceNamespacedDropsIdentitiesOfOtherNamespaces) {
    const CrdSnapshot crds = standard_snapshot();
    IdentitySettings settings = standard();
    settings.force_namespaced = true;
    EXPECT_EQ(outcome(resolve(pod("apps", "crossns"), crds, {}, settings)), "denied no_assignment");
    EXPECT_EQ(outcome(resolve(pod("apps", "web-1"), crds, {}, settings)), "bound apps/id-a");
    EXPECT_EQ(outcome(resolve(pod("other", "web-1"), crds, {}, settings)), "bound other/id-x");
}

TEST(Resolver, StandardNamespacedAnnotationValueMustBeNamespaced) {
    CrdSnapshot s;
    s.assigned = {assigned(
        "apps", "p",
        identity("other", "id", "cid", "", "", {{"aadpodidentity.k8s.io/Behavior", "Namespaced"}}),
        "Assigned")};
    // NMI compares the annotation value exactly; "Namespaced" is not "namespaced".
    EXPECT_EQ(outcome(resolve(pod("apps", "p"), s, {}, standard())), "bound other/id");
}

CrdSnapshot exceptions_snapshot() {
    CrdSnapshot s = managed_snapshot();
    s.exceptions = {
        exception("apps", "legacy", {{"app", "Legacy-Tool"}, {"tier", "none-such"}}),
        exception("kube-system", "aks-addon-exception",
                  {{"kubernetes.azure.com/managedby", "aks"}}),
    };
    return test::sorted(std::move(s));
}

TEST(Resolver, ExceptionsTable) {
    const CrdSnapshot crds = exceptions_snapshot();
    const std::vector<Case> cases = {
        {"value compared case-insensitively",
         pod("apps", "p", {{"app", "legacy-tool"}}),
         {},
         "excepted"},
        {"any one label is enough",
         pod("apps", "p", {{"tier", "NONE-SUCH"}, {"app", "x"}}),
         {},
         "excepted"},
        {"key is case-sensitive",
         pod("apps", "p", {{"App", "legacy-tool"}}),
         {},
         "denied no_binding_label"},
        {"different value",
         pod("apps", "p", {{"app", "legacy-tool-2"}}),
         {},
         "denied no_binding_label"},
        {"only the pod's namespace counts",
         pod("other", "p", {{"app", "legacy-tool"}}),
         {},
         "denied no_binding_label"},
        {"exception checked before bindings",
         pod("apps", "p", {{"aadpodidbinding", "web"}, {"app", "LEGACY-TOOL"}}),
         test::by_client_id("cid-a"), "excepted"},
        {"AKS add-on exception",
         pod("kube-system", "p", {{"kubernetes.azure.com/managedby", "aks"}}),
         {},
         "excepted"},
        {"AKS label outside kube-system",
         pod("apps", "p", {{"kubernetes.azure.com/managedby", "aks"}}),
         {},
         "denied no_binding_label"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(outcome(resolve(c.pod, crds, c.query, managed())), c.expected);
        EXPECT_EQ(is_excepted(c.pod, crds.exceptions), std::string{c.expected} == "excepted");
    }
}

TEST(Resolver, ExceptionsApplyInStandardModeToo) {
    const CrdSnapshot crds = exceptions_snapshot();
    EXPECT_EQ(outcome(resolve(pod("apps", "p", {{"app", "legacy-tool"}}), crds, {}, standard())),
              "excepted");
}

OwnerReference owner(std::string api_version, std::string kind, std::string name, bool controller) {
    return {std::move(api_version), std::move(kind), std::move(name), controller};
}

// Issue 11, finding 4: the MIC exception (a pass-through to IMDS as the node) only for MIC
// itself: standard mode, the MIC namespace, and the controller owner reference exactly an
// apps/v1 ReplicaSet named mic-... Every forged variant is an ordinary pod (denied here).
TEST(Resolver, MicExceptionTable) {
    const CrdSnapshot crds = managed_snapshot();
    const OwnerReference mic = owner("apps/v1", "ReplicaSet", "mic-5d8c9b7f9", true);
    struct MicCase {
        const char* name;
        std::vector<OwnerReference> owners;
        const char* ns;
        const char* mic_namespace;
        OperationMode mode;
        bool excepted;
    };
    const auto standard_mode = OperationMode::standard;
    const std::vector<MicCase> cases = {
        {"MIC in the MIC namespace", {mic}, "default", "default", standard_mode, true},
        {"namespace compared case-insensitively", {mic}, "default", "DEFAULT", standard_mode, true},
        {"custom MIC namespace", {mic}, "kube-system", "kube-system", standard_mode, true},
        {"controller among other owners",
         {owner("v1", "ConfigMap", "cm", false), mic},
         "default",
         "default",
         standard_mode,
         true},
        {"managed mode has no MIC", {mic}, "default", "default", OperationMode::managed, false},
        {"other namespace", {mic}, "apps", "default", standard_mode, false},
        {"kind in lower case",
         {owner("apps/v1", "replicaset", "mic-5d8c9b7f9", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"kind in upper case",
         {owner("apps/v1", "REPLICASET", "mic-5d8c9b7f9", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"no controller flag",
         {owner("apps/v1", "ReplicaSet", "mic-5d8c9b7f9", false)},
         "default",
         "default",
         standard_mode,
         false},
        {"controller false beside another controller",
         {owner("apps/v1", "ReplicaSet", "mic-5d8c9b7f9", false),
          owner("apps/v1", "ReplicaSet", "web-1", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"no apiVersion",
         {owner("", "ReplicaSet", "mic-5d8c9b7f9", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"wrong apiVersion",
         {owner("extensions/v1beta1", "ReplicaSet", "mic-5d8c9b7f9", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"made-up API group",
         {owner("evil.example.com/v1", "ReplicaSet", "mic-5d8c9b7f9", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"two controllers (the API server allows one)",
         {mic, owner("apps/v1", "ReplicaSet", "mic-other", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"NMI's ^mic-* also matched microservice; nmid does not",
         {owner("apps/v1", "ReplicaSet", "microservice-6f7d9", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"bare mic",
         {owner("apps/v1", "ReplicaSet", "mic", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"name prefix is case-sensitive",
         {owner("apps/v1", "ReplicaSet", "MIC-abc", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"another controller kind",
         {owner("apps/v1", "StatefulSet", "mic-0", true)},
         "default",
         "default",
         standard_mode,
         false},
        {"no owner", {}, "default", "default", standard_mode, false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        IdentitySettings settings = c.mode == OperationMode::managed ? managed() : standard();
        settings.mic_namespace = c.mic_namespace;
        const PodInfo p = pod(c.ns, "mic-pod", {}, c.owners);
        const Decision d = resolve(p, crds, {}, settings);
        EXPECT_EQ(d.kind, c.excepted ? DecisionKind::excepted : DecisionKind::denied) << outcome(d);
    }
}

// AzurePodIdentityException matching is unchanged by the MIC rule: a forged MIC owner does not
// stop an exception from matching, in either mode.
TEST(Resolver, ExceptionsStillMatchPodsWithForgedMicOwners) {
    const CrdSnapshot crds = exceptions_snapshot();
    const PodInfo p = pod("apps", "p", {{"app", "legacy-tool"}},
                          {owner("v1", "replicaset", "mic-forged", false)});
    EXPECT_EQ(outcome(resolve(p, crds, {}, managed())), "excepted");
    EXPECT_EQ(outcome(resolve(p, crds, {}, standard())), "excepted");
}

TEST(Resolver, EmptySnapshotDeniesEveryone) {
    const CrdSnapshot empty;
    EXPECT_EQ(
        outcome(resolve(pod("apps", "p", {{"aadpodidbinding", "web"}}), empty, {}, managed())),
        "denied no_matching_binding");
    EXPECT_EQ(outcome(resolve(pod("apps", "p"), empty, test::by_client_id("cid"), standard())),
              "denied no_assignment");
}

}  // namespace
}  // namespace nmid::identity
