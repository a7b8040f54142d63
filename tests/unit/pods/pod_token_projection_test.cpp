// spec.volumes[].projected.sources[].serviceAccountToken: what workload identity's projected
// token source reads (issue 12), from a pod list and from a watch event, bounded and tolerant
// of shapes it does not use.
#include <gtest/gtest.h>

#include <string>

#include "nmid/pods/pod_list_json.hpp"

namespace nmid {
namespace {

std::string pod_with_volumes(const std::string& volumes) {
    return R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"web-0",)"
           R"("namespace":"shop","uid":"u1"},"spec":{"serviceAccountName":"web","volumes":)" +
           volumes + R"(},"status":{"phase":"Running","podIP":"10.0.0.7"}}]})";
}

// The azure-workload-identity webhook's v1.6.0 volume, next to the usual kube-api-access one.
constexpr std::string_view kWebhookVolumes = R"([
  {"name":"kube-api-access-x2k4p","projected":{"defaultMode":420,"sources":[
     {"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},
     {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}}]}},
  {"name":"azure-workload-identity-reserved-6d7e3c","projected":{"defaultMode":420,"sources":[
     {"serviceAccountToken":{"audience":"api://AzureADTokenExchange","expirationSeconds":3600,
                             "path":"token/azure-identity-token"}}]}},
  {"name":"data","emptyDir":{}}])";

TEST(PodTokenProjection, ReadsEveryServiceAccountTokenSourceInOrder) {
    std::string detail;
    const auto list = parse_pod_list(pod_with_volumes(std::string{kWebhookVolumes}), &detail);
    ASSERT_TRUE(list) << detail;
    ASSERT_EQ(list->pods.size(), 1U);
    const auto& projections = list->pods[0].token_projections;
    ASSERT_EQ(projections.size(), 2U);
    EXPECT_EQ(projections[0], (TokenProjection{.volume = "kube-api-access-x2k4p",
                                               .path = "token",
                                               .audience = "",
                                               .expiration_seconds = 3607}));
    EXPECT_EQ(projections[1], (TokenProjection{.volume = "azure-workload-identity-reserved-6d7e3c",
                                               .path = "token/azure-identity-token",
                                               .audience = "api://AzureADTokenExchange",
                                               .expiration_seconds = 3600}));
}

TEST(PodTokenProjection, AWatchEventCarriesThemToo) {
    const std::string line =
        R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"web-0","namespace":"shop",)"
        R"("uid":"u1","resourceVersion":"7"},"spec":{"volumes":)" +
        std::string{kWebhookVolumes} + R"(},"status":{"podIP":"10.0.0.7"}}})";
    std::string detail;
    const auto event = parse_pod_watch_event(line, &detail);
    ASSERT_TRUE(event) << detail;
    EXPECT_EQ(event->pod.token_projections.size(), 2U);
}

TEST(PodTokenProjection, ShapesItDoesNotUseAreSkippedNotFatal) {
    const struct {
        const char* name;
        std::string volumes;
        std::size_t expected;
    } cases[] = {
        {"volumes not an array", R"({"a":1})", 0},
        {"volume not an object", R"(["x", 1, null])", 0},
        {"projected not an object", R"([{"name":"v","projected":[]}])", 0},
        {"sources not an array", R"([{"name":"v","projected":{"sources":{}}}])", 0},
        {"no volume name", R"([{"projected":{"sources":[{"serviceAccountToken":{"path":"t"}}]}}])",
         0},
        {"no path", R"([{"name":"v","projected":{"sources":[{"serviceAccountToken":{}}]}}])", 0},
        {"audience of another type",
         R"([{"name":"v","projected":{"sources":[{"serviceAccountToken":{"path":"t","audience":7}}]}}])",
         1},
        {"path too long",
         R"([{"name":"v","projected":{"sources":[{"serviceAccountToken":{"path":")" +
             std::string(5000, 'a') + R"("}}]}}])",
         0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        std::string detail;
        const auto list = parse_pod_list(pod_with_volumes(c.volumes), &detail);
        ASSERT_TRUE(list) << detail;
        EXPECT_EQ(list->pods[0].token_projections.size(), c.expected);
    }
}

TEST(PodTokenProjection, AtMostSixteenPerPod) {
    std::string sources;
    for (int i = 0; i < 40; ++i) {
        sources += std::string{i == 0 ? "" : ","} + R"({"serviceAccountToken":{"path":"t)" +
                   std::to_string(i) + R"("}})";
    }
    const auto list = parse_pod_list(
        pod_with_volumes(R"([{"name":"v","projected":{"sources":[)" + sources + "]}}]"));
    ASSERT_TRUE(list);
    EXPECT_EQ(list->pods[0].token_projections.size(), 16U);
}

}  // namespace
}  // namespace nmid
