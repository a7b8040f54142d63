// The property tests' own oracle, checked by tables: a wrong oracle would hide violations.
#include "oracle.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "targets.hpp"

namespace nmid::security_test {
namespace {

TEST(SecurityOracle, CanonicalPathSeesThroughEverySpelling) {
    const std::vector<std::string> identity = {
        "/metadata/identity/oauth2/token",
        "/metadata\\identity\\oauth2\\token",
        "/metadata%5cidentity%5Coauth2%5ctoken",
        "/metadata%2fidentity/oauth2/token",
        "/metadata%255cidentity/oauth2/token",
        "/metadata/Identity/OAUTH2/Token",
        "/metadata;/identity/oauth2/token",
        "/metadata/identity/oauth2/to#ken",
        "/x/../metadata/./identity//oauth2/token",
        "http://169.254.169.254/metadata/identity/oauth2/token?resource=x",
        "/metadata/identity/info",
        "/%6detadata/identity",
    };
    for (const std::string& t : identity) {
        EXPECT_TRUE(under_identity(canonical_segments(t))) << t;
    }
    EXPECT_TRUE(is_token_route(canonical_segments("/metadata\\identity\\oauth2\\token?x=1")));
    EXPECT_FALSE(is_token_route(canonical_segments("/metadata/identity/info")));
    for (const char* t : {"/metadata/instance", "/metadata/identityx/oauth2/token",
                          "/metadata?/identity", "/host/token/", "/"}) {
        EXPECT_FALSE(under_identity(canonical_segments(t))) << t;
    }
}

TEST(SecurityOracle, AdEndpointVerdicts) {
    struct Row {
        const char* url;
        Tri usable;
    };
    const std::vector<Row> rows = {
        {"", Tri::yes},
        {"https://login.microsoftonline.com/", Tri::yes},
        {"https://login.microsoftonline.us/", Tri::yes},
        {"https://login.chinacloudapi.cn/", Tri::yes},
        {"https://LOGIN.microsoftonline.com/", Tri::either},
        {"https://login.microsoftonline.com:443/", Tri::either},
        {"http://login.microsoftonline.com/", Tri::no},
        {"https://evil.example/", Tri::no},
        {"https://login.microsoftonline.com.evil.example/", Tri::no},
        {"https://login.microsoftonline.com@evil.example/", Tri::no},
        {"https://evil.example/login.microsoftonline.com/", Tri::no},
        {"login.microsoftonline.com", Tri::no},
        {"ftp://login.microsoftonline.com/", Tri::no},
    };
    for (const Row& r : rows) {
        EXPECT_EQ(judge_ad_endpoint(r.url).usable, r.usable) << r.url;
    }
}

TEST(SecurityOracle, MicExceptionNeedsStandardModeAndTheControllerReplicaSet) {
    Cluster c;
    c.mic_namespace = "default";
    GenPod pod{"default", "mic-1", "10.0.0.1", {}, {{"apps/v1", "ReplicaSet", "mic-7d", true}}};
    EXPECT_EQ(is_mic(pod, c), Tri::yes);
    c.mode = OperationMode::managed;
    EXPECT_EQ(is_mic(pod, c), Tri::no);
    c.mode = OperationMode::standard;
    pod.owners[0].controller = false;
    EXPECT_EQ(is_mic(pod, c), Tri::no);
    pod.owners[0].controller = true;
    pod.owners[0].api_version = "apps/v1beta2";
    EXPECT_EQ(is_mic(pod, c), Tri::no);
    pod.owners[0].api_version = "apps/v1";
    pod.owners[0].name = "microservice-1";
    EXPECT_EQ(is_mic(pod, c), Tri::no);
    pod.owners[0].name = "mic-7d";
    pod.namespace_name = "team-a";
    EXPECT_EQ(is_mic(pod, c), Tri::no);
}

TEST(SecurityOracle, IdentityVerdicts) {
    AzureIdentity id;
    id.meta.namespace_name = "a";
    EXPECT_EQ(judge_identity(id).why, "empty_client_and_resource_id");
    id.resource_id = "/subscriptions/s/x";
    EXPECT_EQ(judge_identity(id).usable, Tri::yes);
    id.type = 1;
    id.client_id = "c";
    id.tenant_id = "t";
    id.client_password = {"a", "s"};
    EXPECT_EQ(judge_identity(id).usable, Tri::yes);
    id.client_password.namespace_name = "b";
    EXPECT_EQ(judge_identity(id).why, "cross_namespace_secret");
    id.client_password.namespace_name = "a";
    id.ad_endpoint = "http://login.microsoftonline.com/";
    EXPECT_EQ(judge_identity(id).why, "ad_endpoint_http");
}

}  // namespace
}  // namespace nmid::security_test
