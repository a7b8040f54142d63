#include "nmid/pods/pod_list_json.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nmid {
namespace {

std::string read_fixture(const std::string& name) {
    std::ifstream in{std::string{NMID_FIXTURES_DIR} + "/" + name, std::ios::binary};
    EXPECT_TRUE(in.good()) << name;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

PodList parse_ok(std::string_view json) {
    std::string detail;
    auto r = parse_pod_list(json, &detail);
    EXPECT_TRUE(r.has_value()) << detail;
    return r ? *r : PodList{};
}

using Labels = std::map<std::string, std::string>;
using Ips = std::vector<std::string>;
using Owners = std::vector<OwnerReference>;

// "kind/name" of every owner reference, in order, "*" after the controller's.
std::string owner_text(const PodInfo& pod) {
    std::string out;
    for (const OwnerReference& o : pod.owners) {
        out += out.empty() ? "" : ",";
        out += o.kind + "/" + o.name + (o.controller ? "*" : "");
    }
    return out;
}

TEST(PodListJson, KubeletEmptyNodeHasNullItems) {
    const auto list = parse_ok(read_fixture("pods_kubelet_empty.json"));
    EXPECT_TRUE(list.pods.empty());
}

TEST(PodListJson, KubeletPodListReadsTheFieldsNmidUses) {
    const auto list = parse_ok(read_fixture("pods_kubelet.json"));
    ASSERT_EQ(list.pods.size(), 6U);

    const PodInfo& web = list.pods[0];
    EXPECT_EQ(web.namespace_name, "default");
    EXPECT_EQ(web.name, "web-7d9f6c5b8-x2k4p");
    EXPECT_EQ(web.uid, "5f1c2b8e-8d0b-4c1f-9a44-2d6f0e3b7c11");
    EXPECT_EQ(web.service_account, "web-sa");
    EXPECT_EQ(web.phase, "Running");
    EXPECT_EQ(web.owners, (Owners{{"apps/v1", "ReplicaSet", "web-7d9f6c5b8", true}}));
    EXPECT_EQ(web.container_statuses, 1U);  // running
    EXPECT_EQ(web.containers_terminated, 0U);
    EXPECT_EQ(web.labels, (Labels{{"aadpodidbinding", "kv-reader"},
                                  {"app", "web"},
                                  {"pod-template-hash", "7d9f6c5b8"}}));
    EXPECT_EQ(web.ips, (Ips{"10.244.1.17", "fd00:10:244:1::11"}));  // dual stack, deduplicated
    EXPECT_FALSE(web.host_network);
    EXPECT_FALSE(web.terminating);

    const PodInfo& proxy = list.pods[1];
    EXPECT_TRUE(proxy.host_network);
    EXPECT_EQ(proxy.owners, (Owners{{"apps/v1", "DaemonSet", "kube-proxy", true}}));
    EXPECT_EQ(proxy.ips, (Ips{"10.240.0.4"}));

    EXPECT_EQ(list.pods[2].phase, "Succeeded");

    const PodInfo& pending = list.pods[3];
    EXPECT_EQ(pending.phase, "Pending");
    EXPECT_TRUE(pending.ips.empty());                 // no podIP yet
    EXPECT_TRUE(pending.labels.empty());              // labels absent
    EXPECT_EQ(pending.service_account, "legacy-sa");  // spec.serviceAccount fallback
    // Kept as written: no controller flag, lower-case kind, core apiVersion.
    EXPECT_EQ(pending.owners, (Owners{{"v1", "replicaset", "api-5b8c7d9f4", false}}));

    const PodInfo& worker = list.pods[4];
    EXPECT_TRUE(worker.terminating);
    EXPECT_EQ(worker.phase, "Running");

    const PodInfo& fresh = list.pods[5];
    EXPECT_EQ(fresh.phase, "");  // status without phase right after creation
    EXPECT_TRUE(fresh.ips.empty());
    EXPECT_EQ(fresh.service_account, "");
}

TEST(PodListJson, KubectlListWithPodKinds) {
    const auto list = parse_ok(read_fixture("pods_kubectl_list.json"));
    ASSERT_EQ(list.pods.size(), 2U);
    EXPECT_EQ(list.pods[0].namespace_name, "team-a");
    EXPECT_EQ(list.pods[0].name, "demo-6f7c9d8b5-abcde");
    EXPECT_EQ(list.pods[0].labels.at("aadpodidbinding"), "reader");
    EXPECT_EQ(list.pods[0].owners, (Owners{{"apps/v1", "ReplicaSet", "demo-6f7c9d8b5", true}}));
    EXPECT_EQ(list.pods[0].ips, (Ips{"10.244.0.12"}));
    EXPECT_EQ(list.pods[1].phase, "Failed");
    EXPECT_EQ(list.pods[1].ips, (Ips{"10.244.0.13"}));
}

TEST(PodListJson, ReadmeExampleFixture) {
    const auto list = parse_ok(read_fixture("pods_example.json"));
    ASSERT_EQ(list.pods.size(), 3U);
    const PodInfo& demo = list.pods[0];
    EXPECT_EQ(demo.namespace_name + "/" + demo.name, "default/demo");
    EXPECT_EQ(demo.labels.at("aadpodidbinding"), "kv-reader");
    EXPECT_EQ(demo.phase, "Running");
    EXPECT_EQ(demo.ips, (Ips{"127.0.0.2"}));
    EXPECT_FALSE(demo.uid.empty());
    EXPECT_EQ(demo.service_account, "default");
    EXPECT_EQ(list.pods[1].namespace_name + "/" + list.pods[1].name, "default/unbound");
    EXPECT_EQ(list.pods[1].labels.count("aadpodidbinding"), 0U);
    EXPECT_EQ(list.pods[1].ips, (Ips{"127.0.0.3"}));
    EXPECT_EQ(list.pods[2].namespace_name + "/" + list.pods[2].name, "kube-system/aks-agent");
    EXPECT_EQ(list.pods[2].labels.at("kubernetes.azure.com/managedby"), "aks");
    EXPECT_EQ(list.pods[2].ips, (Ips{"127.0.0.4"}));
}

// One pod list item wrapped in a kubelet PodList.
std::string kubelet_with(const std::string& item) {
    return R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)" + item + "]}";
}

struct AcceptCase {
    const char* name;
    std::string json;
    std::size_t pods;
    std::string ns;  // of the first pod
    Ips ips;         // of the first pod
    std::string owner;
    bool host_network;
};

class PodListJsonAccepts : public ::testing::TestWithParam<AcceptCase> {};

TEST_P(PodListJsonAccepts, Parses) {
    const AcceptCase& c = GetParam();
    const auto list = parse_ok(c.json);
    ASSERT_EQ(list.pods.size(), c.pods);
    if (c.pods == 0) {
        return;
    }
    EXPECT_EQ(list.pods[0].namespace_name, c.ns);
    EXPECT_EQ(list.pods[0].ips, c.ips);
    EXPECT_EQ(owner_text(list.pods[0]), c.owner);
    EXPECT_EQ(list.pods[0].host_network, c.host_network);
}

INSTANTIATE_TEST_SUITE_P(
    Table, PodListJsonAccepts,
    ::testing::Values(
        AcceptCase{"PodIpsAsPlainStrings",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n"},
                     "status":{"podIP":"10.0.0.1","podIPs":["10.0.0.1","fd00::1"]}})"),
                   1,
                   "n",
                   {"10.0.0.1", "fd00::1"},
                   "",
                   false},
        AcceptCase{"PodIpsWithoutPodIp",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n"},
                     "status":{"podIPs":[{"ip":"fd00::2"},{"ip":"10.0.0.2"}]}})"),
                   1,
                   "n",
                   {"fd00::2", "10.0.0.2"},
                   "",
                   false},
        AcceptCase{"IpsCanonicalisedAndMappedIpv4Unwrapped",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n"},
                     "status":{"podIP":"::ffff:10.0.0.9","podIPs":[{"ip":"10.0.0.9"},
                     {"ip":"FD00:0:0::0001"}]}})"),
                   1,
                   "n",
                   {"10.0.0.9", "fd00::1"},
                   "",
                   false},
        AcceptCase{"NullsCountAsAbsent",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n","labels":null,
                     "deletionTimestamp":null,"ownerReferences":null},"spec":null,
                     "status":{"podIP":null,"podIPs":null,"phase":null}})"),
                   1,
                   "n",
                   {},
                   "",
                   false},
        AcceptCase{"ExplicitHostNetworkTrue",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n"},
                     "spec":{"hostNetwork":true},"status":{"podIP":"10.240.0.4"}})"),
                   1,
                   "n",
                   {"10.240.0.4"},
                   "",
                   true},
        AcceptCase{"KindAbsentAndNamespaceDefaulted",
                   R"({"items":[{"metadata":{"name":"a"},"status":{"podIP":"10.0.0.3"}}]})",
                   1,
                   "default",
                   {"10.0.0.3"},
                   "",
                   false},
        AcceptCase{"EmptyKubectlList",
                   R"({"apiVersion":"v1","items":[],"kind":"List",
                     "metadata":{"resourceVersion":""}})",
                   0,
                   "",
                   {},
                   "",
                   false},
        AcceptCase{"ListSkipsItemsOfOtherKinds",
                   R"({"kind":"List","items":[{"kind":"Service","metadata":{"name":"svc"},
                     "spec":{"clusterIP":"10.0.0.10"}},{"kind":"Pod","metadata":{"name":"p",
                     "namespace":"n"},"status":{"podIP":"10.0.0.4"}}]})",
                   1,
                   "n",
                   {"10.0.0.4"},
                   "",
                   false},
        AcceptCase{"EveryOwnerKeptInOrderAsWritten",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n","ownerReferences":[
                     {"kind":"StatefulSet","name":"ss"},{"kind":"REPLICASET","name":"rs1",
                     "controller":false},{"apiVersion":"apps/v1","kind":"ReplicaSet",
                     "name":"rs2","controller":true,"uid":"u","blockOwnerDeletion":true},
                     {"kind":"ReplicaSet","name":"rs3","controller":null}]}})"),
                   1,
                   "n",
                   {},
                   "StatefulSet/ss,REPLICASET/rs1,ReplicaSet/rs2*,ReplicaSet/rs3",
                   false},
        AcceptCase{"UnknownFieldsOfAnyTypeIgnored",
                   kubelet_with(R"({"weird":[1,{"x":null}],"metadata":{"name":"a",
                     "namespace":"n","annotations":7,"managedFields":"x"},"spec":{
                     "containers":"not-a-list","priority":"high","nodeName":1},
                     "status":{"conditions":{},"hostIP":false,"podIP":"10.0.0.5"}})"),
                   1,
                   "n",
                   {"10.0.0.5"},
                   "",
                   false},
        AcceptCase{"DeepNestingInSkippedFieldsCostsNoStack",
                   kubelet_with(R"({"metadata":{"name":"a","namespace":"n"},"spec":{"x":)" +
                                std::string(100'000, '[') + std::string(100'000, ']') +
                                R"(},"status":{"podIP":"10.0.0.6"}})"),
                   1,
                   "n",
                   {"10.0.0.6"},
                   "",
                   false}),
    [](const ::testing::TestParamInfo<AcceptCase>& info) { return info.param.name; });

struct RejectCase {
    const char* name;
    std::string json;
    std::string detail_contains;
};

class PodListJsonRejects : public ::testing::TestWithParam<RejectCase> {};

TEST_P(PodListJsonRejects, WithOneLineDetail) {
    const RejectCase& c = GetParam();
    std::string detail;
    auto r = parse_pod_list(c.json, &detail);
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::parse_error);
    EXPECT_NE(detail.find(c.detail_contains), std::string::npos) << detail;
    EXPECT_EQ(detail.find('\n'), std::string::npos) << detail;
    EXPECT_FALSE(parse_pod_list(c.json).has_value());  // no detail pointer: same answer
}

std::string item_with(const std::string& metadata_extra, const std::string& spec,
                      const std::string& status) {
    return kubelet_with(R"({"metadata":{"name":"a","namespace":"n")" + metadata_extra +
                        R"(},"spec":)" + spec + R"(,"status":)" + status + "}");
}

INSTANTIATE_TEST_SUITE_P(
    Table, PodListJsonRejects,
    ::testing::Values(
        RejectCase{"Empty", "", "parse error"}, RejectCase{"NotJson", "not json", "parse error"},
        RejectCase{"MultiLineJunkReportedOnOneLine", "{\n\"items\": nul\n}", "parse error"},
        RejectCase{"TrailingGarbage", R"({"items":null} x)", "parse error"},
        RejectCase{"Truncated", R"({"kind":"PodList","items":[{"metadata":)", "parse error"},
        RejectCase{"NotAnObject", "[]", "expected a PodList object, got array"},
        RejectCase{"StatusObject",
                   R"({"kind":"Status","apiVersion":"v1","status":"Failure",
                     "message":"pods is forbidden","reason":"Forbidden","code":403})",
                   "Status object: pods is forbidden"},
        RejectCase{"WrongKind", R"({"kind":"Pod","items":[]})", "kind: expected PodList or List"},
        RejectCase{"KindNotString", R"({"kind":1,"items":[]})", "kind: expected string"},
        RejectCase{"ItemsMissing", R"({"kind":"PodList","metadata":{}})", "items: missing"},
        RejectCase{"ItemsObject", R"({"kind":"PodList","items":{}})",
                   "items: expected array, got object"},
        RejectCase{"ItemNotObject", R"({"items":[{"metadata":{"name":"a"}},1]})",
                   "items[1]: expected object, got number"},
        RejectCase{"MetadataMissing", kubelet_with(R"({"spec":{}})"),
                   "items[0]: metadata: missing"},
        RejectCase{"NameMissing", kubelet_with(R"({"metadata":{"namespace":"n"}})"),
                   "metadata.name: missing"},
        RejectCase{"NameNotString", kubelet_with(R"({"metadata":{"name":5}})"),
                   "metadata.name: expected string, got number"},
        RejectCase{"LabelsArray", item_with(R"(,"labels":["a"])", "{}", "{}"),
                   "items[0] (n/a): metadata.labels: expected object, got array"},
        RejectCase{"LabelValueNumber", item_with(R"(,"labels":{"app":1})", "{}", "{}"),
                   "metadata.labels.app: expected string, got number"},
        RejectCase{"DeletionTimestampNumber", item_with(R"(,"deletionTimestamp":1)", "{}", "{}"),
                   "metadata.deletionTimestamp: expected string"},
        RejectCase{"OwnerReferencesObject", item_with(R"(,"ownerReferences":{})", "{}", "{}"),
                   "metadata.ownerReferences: expected array"},
        RejectCase{"OwnerReferenceKindNumber",
                   item_with(R"(,"ownerReferences":[{"kind":1,"name":"x"}])", "{}", "{}"),
                   "metadata.ownerReferences[0].kind: expected string"},
        RejectCase{"OwnerReferenceControllerString",
                   item_with(R"(,"ownerReferences":[{"kind":"ReplicaSet","name":"mic-1",
                     "controller":"true"}])",
                             "{}", "{}"),
                   "metadata.ownerReferences[0].controller: expected boolean, got string"},
        RejectCase{"OwnerReferenceApiVersionNumber",
                   item_with(R"(,"ownerReferences":[{"apiVersion":1}])", "{}", "{}"),
                   "metadata.ownerReferences[0].apiVersion: expected string"},
        RejectCase{"ContainerStatusesObject",
                   item_with("", "{}", R"({"containerStatuses":{"state":{}}})"),
                   "status.containerStatuses: expected array, got object"},
        RejectCase{"ContainerStatusNotObject",
                   item_with("", "{}", R"({"containerStatuses":["running"]})"),
                   "status.containerStatuses[0]: expected object, got string"},
        RejectCase{"ContainerStateString",
                   item_with("", "{}", R"({"containerStatuses":[{"state":"running"}]})"),
                   "status.containerStatuses[0].state: expected object, got string"},
        RejectCase{
            "ContainerTerminatedBoolean",
            item_with("", "{}", R"({"containerStatuses":[{},{"state":{"terminated":true}}]})"),
            "status.containerStatuses[1].state.terminated: expected object, got boolean"},
        RejectCase{"SpecString", item_with("", R"("x")", "{}"), "spec: expected object"},
        RejectCase{"ServiceAccountNumber", item_with("", R"({"serviceAccountName":1})", "{}"),
                   "spec.serviceAccountName: expected string"},
        RejectCase{"HostNetworkString", item_with("", R"({"hostNetwork":"true"})", "{}"),
                   "(n/a): spec.hostNetwork: expected boolean, got string"},
        RejectCase{"StatusArray", item_with("", "{}", "[]"), "status: expected object"},
        RejectCase{"PhaseNumber", item_with("", "{}", R"({"phase":1})"),
                   "status.phase: expected string"},
        RejectCase{"PodIpInvalid", item_with("", "{}", R"({"podIP":"10.0.0.300"})"),
                   "status.podIP: invalid IP address '10.0.0.300'"},
        RejectCase{"PodIpNumber", item_with("", "{}", R"({"podIP":10})"),
                   "status.podIP: expected string"},
        RejectCase{"PodIpsObject", item_with("", "{}", R"({"podIPs":{"ip":"10.0.0.1"}})"),
                   "status.podIPs: expected array, got object"},
        RejectCase{"PodIpsNestedArray", item_with("", "{}", R"({"podIPs":[["10.0.0.1"]]})"),
                   "status.podIPs[0]: expected object or string, got array"},
        RejectCase{"PodIpsIpNumber", item_with("", "{}", R"({"podIPs":[{"ip":5}]})"),
                   "status.podIPs[0].ip: expected string"},
        RejectCase{"PodIpsIpInvalid", item_with("", "{}", R"({"podIPs":[{"ip":"fd00::zz"}]})"),
                   "status.podIPs[0].ip: invalid IP address"}),
    [](const ::testing::TestParamInfo<RejectCase>& info) { return info.param.name; });

TEST(PodListJson, EveryTruncationIsAValueNeverAnException) {
    std::string full = read_fixture("pods_kubelet.json");
    while (!full.empty() && std::isspace(static_cast<unsigned char>(full.back())) != 0) {
        full.pop_back();
    }
    std::size_t errors = 0;
    for (std::size_t n = 0; n < full.size(); n += 7) {
        std::string detail;
        Result<PodList> r = PodList{};
        EXPECT_NO_THROW(r = parse_pod_list(std::string_view{full}.substr(0, n), &detail));
        if (r.has_error()) {
            ++errors;
            EXPECT_EQ(r.error(), Errc::parse_error);
            EXPECT_FALSE(detail.empty());
        }
    }
    EXPECT_EQ(errors, (full.size() + 6) / 7);  // no proper prefix of a document is a document
}

TEST(PodListDecoder, IdenticalBodyReturnsTheSamePointerWithoutParsing) {
    PodListDecoder decoder;
    const std::string body = read_fixture("pods_kubectl_list.json");
    auto first = decoder.decode(body);
    auto second = decoder.decode(std::string{body});  // equal bytes, another buffer
    ASSERT_TRUE(first.has_value());
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(first->get(), second->get());

    auto changed = decoder.decode(read_fixture("pods_example.json"));
    ASSERT_TRUE(changed.has_value());
    EXPECT_NE(changed->get(), first->get());
    EXPECT_EQ((*changed)->pods.size(), 3U);

    std::string detail;
    auto bad = decoder.decode("{", &detail);
    ASSERT_TRUE(bad.has_error());
    EXPECT_EQ(bad.error(), Errc::parse_error);
    EXPECT_FALSE(detail.empty());
    auto again = decoder.decode(read_fixture("pods_example.json"));  // a failure is not remembered
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->get(), changed->get());
}

}  // namespace
}  // namespace nmid
