#include "nmid/crd/crd_parse.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nmid {
namespace {

std::string read_fixture(const std::string& name) {
    std::ifstream in{std::string{NMID_FIXTURES_DIR} + "/" + name, std::ios::binary};
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

CrdSnapshot parse_ok(std::string_view text, std::size_t* skipped = nullptr) {
    std::string detail;
    auto result = parse_crds(text, &detail, skipped);
    EXPECT_TRUE(result.has_value()) << detail;
    return result.has_value() ? std::move(*result) : CrdSnapshot{};
}

std::string parse_error_detail(std::string_view text) {
    std::string detail;
    const auto result = parse_crds(text, &detail);
    EXPECT_FALSE(result.has_value()) << "parsed: " << text;
    if (result.has_value()) {
        return "<parsed>";
    }
    EXPECT_EQ(result.error(), Errc::parse_error);
    return detail;
}

TEST(CrdParse, ExampleFixtureMultiDocumentYaml) {
    const CrdSnapshot s = parse_ok(read_fixture("crds_example.yaml"));
    ASSERT_EQ(s.identities.size(), 1U);
    const AzureIdentity& id = s.identities[0];
    EXPECT_EQ(id.meta.namespace_name, "default");
    EXPECT_EQ(id.meta.name, "kv-reader");
    EXPECT_EQ(id.type, 0);
    EXPECT_EQ(id.client_id, "00000000-0000-0000-0000-0000000000a1");
    EXPECT_EQ(id.resource_id,
              "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/"
              "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader");
    ASSERT_EQ(s.bindings.size(), 1U);
    EXPECT_EQ(s.bindings[0].meta.name, "kv-reader-binding");
    EXPECT_EQ(s.bindings[0].azure_identity, "kv-reader");
    EXPECT_EQ(s.bindings[0].selector, "kv-reader");
    ASSERT_EQ(s.exceptions.size(), 1U);
    EXPECT_EQ(s.exceptions[0].meta.namespace_name, "kube-system");
    EXPECT_EQ(s.exceptions[0].pod_labels,
              (std::map<std::string, std::string>{{"kubernetes.azure.com/managedby", "aks"}}));
    EXPECT_TRUE(s.assigned.empty());
}

TEST(CrdParse, KubectlJsonListWithEveryKind) {
    std::size_t skipped = 0;
    const CrdSnapshot s = parse_ok(read_fixture("crds_kubectl_list.json"), &skipped);
    EXPECT_EQ(skipped, 1U);  // the ConfigMap
    ASSERT_EQ(s.identities.size(), 2U);
    // Sorted by (namespace, name): graph-app before storage-writer.
    const AzureIdentity& sp = s.identities[0];
    EXPECT_EQ(sp.meta.name, "graph-app");
    EXPECT_EQ(sp.type, 1);
    EXPECT_EQ(sp.tenant_id, "11111111-0000-0000-0000-000000000000");
    EXPECT_EQ(sp.auxiliary_tenant_ids,
              std::vector<std::string>{"22222222-0000-0000-0000-000000000000"});
    EXPECT_EQ(sp.ad_endpoint, "https://login.microsoftonline.com/");
    EXPECT_EQ(sp.client_password, (SecretRef{"payments", "graph-app-secret"}));
    EXPECT_EQ(sp.meta.uid, "0d1c9a55-87a4-4b7e-9e55-1f8c2b7d3e21");
    EXPECT_EQ(sp.meta.resource_version, "48214");
    const AzureIdentity& msi = s.identities[1];
    EXPECT_EQ(msi.meta.name, "storage-writer");
    EXPECT_EQ(msi.object_id, "00000000-0000-0000-0000-0000000000c3");
    EXPECT_EQ(msi.meta.annotations.at("aadpodidentity.k8s.io/Behavior"), "namespaced");
    ASSERT_EQ(s.bindings.size(), 1U);
    EXPECT_EQ(s.bindings[0].selector, "storage-writer");
    ASSERT_EQ(s.assigned.size(), 1U);
    const AzureAssignedIdentity& a = s.assigned[0];
    EXPECT_EQ(a.pod, "api-5f7d8c9b6-x2x9k");
    EXPECT_EQ(a.pod_namespace, "payments");
    EXPECT_EQ(a.node_name, "aks-nodepool1-12345678-vmss000000");
    EXPECT_EQ(a.status, "Assigned");
    EXPECT_EQ(a.identity_ref.meta.name, "storage-writer");
    EXPECT_EQ(a.identity_ref.client_id, "00000000-0000-0000-0000-0000000000b2");
    EXPECT_EQ(a.identity_ref.meta.annotations.at("aadpodidentity.k8s.io/Behavior"), "namespaced");
    EXPECT_EQ(a.binding_ref.selector, "storage-writer");
    EXPECT_EQ(a.meta.labels.at("nodename"), "aks-nodepool1-12345678-vmss000000");
}

TEST(CrdParse, TypedListItemsWithoutApiVersionAndKind) {
    // What the API server returns for `GET .../azureidentities`: items carry neither.
    const CrdSnapshot s = parse_ok(R"({
        "apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityList",
        "metadata": {"resourceVersion": "900"},
        "items": [
            {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"clientID": "cb"}},
            {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"clientID": "ca"}}
        ]})");
    ASSERT_EQ(s.identities.size(), 2U);
    EXPECT_EQ(s.identities[0].meta.name, "a");
    EXPECT_EQ(s.identities[1].client_id, "cb");

    const CrdSnapshot b = parse_ok(R"({"kind": "AzureIdentityBindingList", "items": [
        {"metadata": {"name": "x"}, "spec": {"azureIdentity": "a", "selector": "s"}}]})");
    ASSERT_EQ(b.bindings.size(), 1U);
    EXPECT_EQ(b.bindings[0].meta.namespace_name, "default");
}

TEST(CrdParse, SingleObjectArrayAndYamlList) {
    const CrdSnapshot one = parse_ok(
        R"({"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": "b", "namespace": "n"},
            "spec": {"azureIdentity": "i", "selector": "s", "weight": 3}})");
    ASSERT_EQ(one.bindings.size(), 1U);
    EXPECT_EQ(one.bindings[0].weight, 3);

    const CrdSnapshot array = parse_ok(R"([
        {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzurePodIdentityException",
         "metadata": {"name": "e"}, "spec": {"podLabels": {"app": "mic"}}},
        {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity",
         "metadata": {"name": "i"}}
    ])");
    EXPECT_EQ(array.exceptions.size(), 1U);
    EXPECT_EQ(array.identities.size(), 1U);

    const CrdSnapshot list = parse_ok(R"(
apiVersion: v1
kind: List
items:
- apiVersion: aadpodidentity.k8s.io/v1
  kind: AzureIdentity
  metadata: {name: id1, namespace: team}
  spec: {type: 2, clientID: "c1", tenantID: t1, clientPassword: {name: s, namespace: team}}
- apiVersion: aadpodidentity.k8s.io/v1
  kind: AzureIdentityBinding
  metadata: {name: b1, namespace: team}
  spec: {azureIdentity: id1, selector: sel}
)");
    ASSERT_EQ(list.identities.size(), 1U);
    EXPECT_EQ(list.identities[0].type, 2);
    EXPECT_EQ(list.identities[0].client_password, (SecretRef{"team", "s"}));
    EXPECT_EQ(list.bindings.size(), 1U);
}

TEST(CrdParse, YamlDocumentsEmptyOnesAndOtherKinds) {
    std::size_t skipped = 0;
    const CrdSnapshot s = parse_ok(R"(---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
---
# comment only
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata:
  name: quoted
spec:
  clientID: "1234"
  type: 0
...
)",
                                   &skipped);
    EXPECT_EQ(skipped, 1U);
    ASSERT_EQ(s.identities.size(), 1U);
    EXPECT_EQ(s.identities[0].client_id, "1234");
}

TEST(CrdParse, LegacyCapitalisedFieldNames) {
    const CrdSnapshot s = parse_ok(R"(
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata: {name: old, namespace: legacy}
spec:
  Type: 1
  ClientID: c-old
  ResourceID: /subscriptions/s/old
  TenantID: t-old
  ADEndpoint: https://login.example/
  ClientPassword: {name: sec, namespace: legacy}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentityBinding
metadata: {name: old-binding, namespace: legacy}
spec: {AzureIdentity: old, Selector: old-sel, Weight: 1}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzurePodIdentityException
metadata: {name: old-exception, namespace: legacy}
spec: {PodLabels: {app: tool}}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureAssignedIdentity
metadata: {name: p-legacy-old}
spec:
  AzureIdentityRef: {metadata: {name: old, namespace: legacy}, spec: {ClientID: c-old}}
  Pod: p
  PodNamespace: legacy
  NodeName: n1
status: {Status: Assigned}
)");
    ASSERT_EQ(s.identities.size(), 1U);
    const AzureIdentity& id = s.identities[0];
    EXPECT_EQ(id.type, 1);
    EXPECT_EQ(id.client_id, "c-old");
    EXPECT_EQ(id.resource_id, "/subscriptions/s/old");
    EXPECT_EQ(id.tenant_id, "t-old");
    EXPECT_EQ(id.ad_endpoint, "https://login.example/");
    EXPECT_EQ(id.client_password.name, "sec");
    ASSERT_EQ(s.bindings.size(), 1U);
    EXPECT_EQ(s.bindings[0].azure_identity, "old");
    EXPECT_EQ(s.bindings[0].selector, "old-sel");
    EXPECT_EQ(s.bindings[0].weight, 1);
    ASSERT_EQ(s.exceptions.size(), 1U);
    EXPECT_EQ(s.exceptions[0].pod_labels.at("app"), "tool");
    ASSERT_EQ(s.assigned.size(), 1U);
    EXPECT_EQ(s.assigned[0].identity_ref.client_id, "c-old");
    EXPECT_EQ(s.assigned[0].pod, "p");
    EXPECT_EQ(s.assigned[0].pod_namespace, "legacy");
    EXPECT_EQ(s.assigned[0].node_name, "n1");
    EXPECT_EQ(s.assigned[0].status, "Assigned");
}

TEST(CrdParse, CurrentNameWinsOverLegacyName) {
    const CrdSnapshot s = parse_ok(R"({"apiVersion": "aadpodidentity.k8s.io/v1",
        "kind": "AzureIdentity", "metadata": {"name": "x"},
        "spec": {"clientID": "new", "ClientID": "old", "resourceID": null, "ResourceID": "r"}})");
    ASSERT_EQ(s.identities.size(), 1U);
    EXPECT_EQ(s.identities[0].client_id, "new");
    // null counts as absent, so the legacy value is used.
    EXPECT_EQ(s.identities[0].resource_id, "r");
}

TEST(CrdParse, DefaultsForMissingFields) {
    const CrdSnapshot s = parse_ok(R"(
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata: {name: bare}
---
apiVersion: aadpodidentity.k8s.io/v1
kind: AzureIdentity
metadata: {name: nulls, namespace: ""}
spec: {auxiliaryTenantIDs: null, clientPassword: null, type: null}
)");
    ASSERT_EQ(s.identities.size(), 2U);
    for (const auto& id : s.identities) {
        EXPECT_EQ(id.meta.namespace_name, "default");
        EXPECT_EQ(id.type, 0);
        EXPECT_TRUE(id.client_id.empty());  // accepted: the token fetch fails later, clearly
        EXPECT_TRUE(id.auxiliary_tenant_ids.empty());
        EXPECT_EQ(id.client_password, SecretRef{});
    }
}

TEST(CrdParse, SortedByNamespaceThenNameAndLastDuplicateWins) {
    const CrdSnapshot s = parse_ok(R"(
apiVersion: v1
kind: List
items:
- {apiVersion: aadpodidentity.k8s.io/v1, kind: AzureIdentity, metadata: {name: b, namespace: z}, spec: {clientID: first}}
- {apiVersion: aadpodidentity.k8s.io/v1, kind: AzureIdentity, metadata: {name: c, namespace: a}}
- {apiVersion: aadpodidentity.k8s.io/v1, kind: AzureIdentity, metadata: {name: a, namespace: z}}
- {apiVersion: aadpodidentity.k8s.io/v1, kind: AzureIdentity, metadata: {name: b, namespace: z}, spec: {clientID: second}}
- {apiVersion: aadpodidentity.k8s.io/v1, kind: AzureIdentityBinding, metadata: {name: b, namespace: z}}
)");
    std::vector<std::string> keys;
    for (const auto& id : s.identities) {
        keys.push_back(id.meta.namespace_name + "/" + id.meta.name);
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"a/c", "z/a", "z/b"}));
    EXPECT_EQ(s.identities[2].client_id, "second");
    // The same name in another kind is not a duplicate.
    EXPECT_EQ(s.bindings.size(), 1U);
}

TEST(CrdParse, FlowStyleYamlAndByteOrderMark) {
    const CrdSnapshot flow =
        parse_ok("{kind: AzureIdentityList, items: [{metadata: {name: f}, spec: {clientID: cf}}]}");
    ASSERT_EQ(flow.identities.size(), 1U);
    EXPECT_EQ(flow.identities[0].client_id, "cf");

    const CrdSnapshot bom = parse_ok(
        "\xEF\xBB\xBF{\"kind\":\"AzureIdentityList\",\"items\":[{\"metadata\":{\"name\":\"m\"}}]}");
    EXPECT_EQ(bom.identities.size(), 1U);
}

TEST(CrdParse, EmptyInputIsAnEmptySnapshot) {
    for (const char* text : {"", "\n", "# nothing yet\n", "---\n"}) {
        SCOPED_TRACE(text);
        const CrdSnapshot s = parse_ok(text);
        EXPECT_TRUE(s.identities.empty() && s.bindings.empty() && s.exceptions.empty() &&
                    s.assigned.empty());
    }
}

TEST(CrdParse, OverloadWithoutDetail) {
    EXPECT_TRUE(parse_crds("[]").has_value());
    const auto bad = parse_crds("{\"kind\": 1}");
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error(), Errc::parse_error);
}

struct ErrorCase {
    const char* name;
    std::string text;
    const char* detail;
};

std::string identity_yaml(const std::string& spec) {
    return "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: x}\n"
           "spec: " +
           spec + "\n";
}

TEST(CrdParse, ErrorsTable) {
    std::string alias_bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'h'; ++c) {
        const char prev = static_cast<char>(c - 1);
        alias_bomb += std::string{c} + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev +
                      ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
                      ", *" + prev + ", *" + prev + "]\n";
    }
    std::string deep = "x: " + std::string(100, '[') + std::string(100, ']') + "\n";
    const std::vector<ErrorCase> cases = {
        {"broken JSON", R"({"kind": "List", "items": [)", "JSON parse error"},
        {"broken YAML", "kind: List\nitems: [a, b\n", "YAML "},
        {"type not an integer", identity_yaml("{type: zero}"),
         "document 1: AzureIdentity default/x: spec.type must be an integer"},
        {"type quoted", identity_yaml("{type: \"0\"}"),
         "document 1: AzureIdentity default/x: spec.type must be an integer"},
        {"type too large", identity_yaml("{type: 99999999999}"),
         "document 1: AzureIdentity default/x: spec.type must be a 32-bit integer"},
        {"clientID a YAML number", identity_yaml("{clientID: 12345}"),
         "document 1: AzureIdentity default/x: spec.clientID must be a string"},
        {"legacy name has the same type rules", identity_yaml("{ClientID: [a]}"),
         "document 1: AzureIdentity default/x: spec.clientID must be a string"},
        {"auxiliary tenants not strings", identity_yaml("{auxiliaryTenantIDs: [1]}"),
         "document 1: AzureIdentity default/x: spec.auxiliaryTenantIDs must be a list of "
         "strings"},
        {"clientPassword not an object", identity_yaml("{clientPassword: s}"),
         "document 1: AzureIdentity default/x: spec.clientPassword must be an object"},
        {"spec not an object", identity_yaml("[]"),
         "document 1: AzureIdentity default/x: spec must be an object"},
        {"error in the second document",
         "---\n" + identity_yaml("{}") + "---\n" + identity_yaml("{type: []}"),
         "document 2: AzureIdentity default/x: spec.type must be an integer"},
        {"error in a list item",
         R"({"kind": "List", "items": [
             {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentity", "metadata": {"name": "ok"}},
             {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
              "metadata": {"name": "b", "namespace": "n"}, "spec": {"selector": 7}}]})",
         "document 1: items[1]: AzureIdentityBinding n/b: spec.selector must be a string"},
        {"exception label value not a string",
         "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzurePodIdentityException\n"
         "metadata: {name: e}\nspec: {podLabels: {app: 1}}\n",
         "document 1: AzurePodIdentityException default/e: spec.podLabels.app must be a string"},
        {"metadata label not a string",
         "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\n"
         "metadata: {name: x, labels: {a: {b: c}}}\n",
         "document 1: AzureIdentity default/x: metadata.labels.a must be a string"},
        {"embedded identity", R"({"apiVersion": "aadpodidentity.k8s.io/v1",
            "kind": "AzureAssignedIdentity", "metadata": {"name": "as", "namespace": "default"},
            "spec": {"azureIdentityRef": {"metadata": {"name": "i"}, "spec": {"type": "x"}}}})",
         "document 1: AzureAssignedIdentity default/as: spec.azureIdentityRef.spec.type must be "
         "an integer"},
        {"assigned status not a string", R"({"apiVersion": "aadpodidentity.k8s.io/v1",
            "kind": "AzureAssignedIdentity", "metadata": {"name": "as"}, "status": {"status": 1}})",
         "document 1: AzureAssignedIdentity default/as: status.status must be a string"},
        {"other apiVersion",
         "apiVersion: aadpodidentity.k8s.io/v2\nkind: AzureIdentity\n"
         "metadata: {name: x}\n",
         "document 1: AzureIdentity: apiVersion must be aadpodidentity.k8s.io/v1, not "
         "\"aadpodidentity.k8s.io/v2\""},
        {"apiVersion missing", "kind: AzureIdentity\nmetadata: {name: x}\n",
         "document 1: AzureIdentity: apiVersion is required"},
        {"apiVersion missing in a generic List",
         R"({"kind": "List", "items": [{"kind": "AzureIdentity", "metadata": {"name": "x"}}]})",
         "document 1: items[0]: AzureIdentity: apiVersion is required"},
        {"kind missing", "apiVersion: aadpodidentity.k8s.io/v1\nmetadata: {name: x}\n",
         "document 1: kind is required"},
        {"kind not a string", R"({"kind": 1})", "document 1: kind must be a string"},
        {"name missing", "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\n",
         "document 1: AzureIdentity: metadata.name is required"},
        {"name not a string",
         "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: [x]}\n",
         "document 1: AzureIdentity: metadata.name must be a string"},
        {"scalar document", "hello", "document 1: an object, a list of objects or a List expected"},
        {"array item not an object", "[1]", "document 1: [0]: an object expected"},
        {"items not a list", R"({"kind": "List", "items": {}})",
         "document 1: items must be a list"},
        {"alias expansion", alias_bomb, "document 1: too many YAML nodes (alias expansion?)"},
        {"deep nesting", deep, "document 1: YAML nested too deeply"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string detail = parse_error_detail(c.text);
        EXPECT_EQ(detail.rfind(c.detail, 0), 0U) << detail;
        EXPECT_EQ(detail.find('\n'), std::string::npos) << detail;
    }
}

TEST(CrdParse, ManyCompactObjectsFitTheYamlNodeBudget) {
    // The alias-expansion budget is per input byte: dense real files must stay under it.
    std::string text;
    for (int i = 0; i < 1000; ++i) {
        text +=
            "---\n{apiVersion: aadpodidentity.k8s.io/v1, kind: AzurePodIdentityException, "
            "metadata: {name: e" +
            std::to_string(i) + "}, spec: {podLabels: {a: b, c: d, e: f}}}\n";
    }
    text += "---\n[" + std::string(100, '[') + std::string(100, ']') + "]\n";
    std::string detail;
    const auto result = parse_crds(text, &detail);
    // The last document nests too deeply, but only after all others were converted.
    EXPECT_EQ(detail, "document 1001: YAML nested too deeply");

    text.resize(text.rfind("---"));
    const CrdSnapshot s = parse_ok(text);
    EXPECT_EQ(s.exceptions.size(), 1000U);
    EXPECT_EQ(s.exceptions.front().pod_labels.size(), 3U);
}

TEST(CrdParse, JunkNeverThrows) {
    const std::vector<std::string> junk = {
        std::string("\0\0\0", 3),
        "\xFF\xFE\xFD",
        "{\"a\":\"\\uD800\"}",
        ": : :",
        "- - -\n  -",
        "!!binary AAAA",
        "&a [*a]",
        "{{{{",
        "]]]",
        "\t\tkey: value",
        "%YAML 9.9\n---\nx: 1",
        "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: !!str 3\n",
        "? [complex, key]\n: value\n"};
    for (const auto& text : junk) {
        std::string detail;
        EXPECT_NO_THROW({ (void)parse_crds(text, &detail); }) << text;
    }
}

TEST(CrdParse, NormalizeSortsAndKeepsLastDuplicate) {
    CrdSnapshot s;
    AzureIdentityBinding b1;
    b1.meta.namespace_name = "ns";
    b1.meta.name = "b";
    b1.selector = "old";
    AzureIdentityBinding b2 = b1;
    b2.selector = "new";
    AzureIdentityBinding a;
    a.meta.namespace_name = "ns";
    a.meta.name = "a";
    s.bindings = {b1, a, b2};
    normalize_crds(s);
    ASSERT_EQ(s.bindings.size(), 2U);
    EXPECT_EQ(s.bindings[0].meta.name, "a");
    EXPECT_EQ(s.bindings[1].selector, "new");
}

}  // namespace
}  // namespace nmid
