// Issue 11 finding 1: every spelling of a path under /metadata/identity, from a pod that is
// not excepted, is answered by nmid itself and never reaches IMDS. The recording upstream is
// the oracle: it must receive nothing under /metadata/identity in any spelling.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "handler_upstream_fixture.hpp"
#include "nmid/core/hex.hpp"

namespace nmid::handlers {
namespace {

using test_support::FieldList;
using test_support::HandlerUpstreamTest;
using test_support::kBoundPod;
using test_support::kExceptedPod;
using test_support::Reply;

constexpr std::string_view kQuery = "?api-version=2018-02-01&resource=https://vault.azure.net";

// Spellings whose every reading (decoded once or more, '\' as '/', ';' params, dot segments,
// any case) is under /metadata/identity. None is NMI's own token spelling.
const std::vector<std::string> kHostile = {
    R"(/metadata\identity\oauth2\token)",
    R"(/metadata/identity\oauth2/token)",
    "/metadata%5cidentity%5coauth2%5ctoken",
    "/metadata%5Cidentity%5Coauth2%5Ctoken",
    "/metadata%2fidentity%2foauth2%2ftoken",
    "/metadata%2Fidentity%2Foauth2%2Ftoken",
    "/metadata%255cidentity%255coauth2%255ctoken",
    "/metadata%252Fidentity%252Foauth2%252Ftoken",
    "/metadata/Identity/oauth2/token",
    "/metadata/identity/OAuth2/token",
    "/metadata/identity/oauth2/Token",
    "/METADATA/IDENTITY/OAUTH2/TOKEN",
    "/metadata;/identity/oauth2/token",
    "/metadata/identity;x=1/oauth2/token",
    "/metadata/identity/oauth2/to#ken",
    "/metadata/identity/oauth2/token#",
    "//metadata/identity/oauth2/token",
    "/metadata//identity/oauth2/token",
    "/metadata/./identity/oauth2/token",
    "/x/../metadata/identity/oauth2/token",
    "/x/%2e%2e/metadata/identity/oauth2/token",
    "/metadata/instance/../identity/oauth2/token",
    "/metadata/instance/..%2Fidentity/issuecredential",
    "/metadata/identity/oauth2/token//",
    "/metadata/identity/oauth2/tokenx",
    "/metadata/identity/oauth2/token/extra",
    "/metadata/identity%00/oauth2/token",
    "/metadata/identity%0a/oauth2/token",
    "/metadata/identity/oauth2/token%zz",
    "/metadata/identity",
    "/metadata/identity/",
    "/metadata/identity/info",
    "/metadata/identity/issuecredential",
    "/metadata/identity/getplatformmetadata",
    "/metadata/Identity/IssueCredential",
    "/metadata%2Fidentity%2Fissuecredential",
};

class HostilePaths : public HandlerUpstreamTest {};

TEST_F(HostilePaths, NoSpellingOfAnIdentityPathReachesImdsFromAPodThatIsNotExcepted) {
    NmiHandler handler = make_handler();
    const FieldList metadata{{{"Metadata", "true"}, {"Content-Type", "application/json"}}};
    for (const std::string& path : kHostile) {
        for (const std::string& target :
             {path + std::string{kQuery}, "http://169.254.169.254" + path + std::string{kQuery}}) {
            for (const std::string_view method : {"GET", "POST"}) {
                const Reply reply =
                    send(handler, method, target, metadata, kBoundPod, R"({"a":1})");
                // `/metadata/identity/info` is served since issue 14 from nmid's own request
                // for the VM's tenant (below); this fake IMDS's answer is no tenant: 503.
                const bool info = method == "GET" && path == "/metadata/identity/info";
                EXPECT_TRUE(reply.status == 400 || reply.status == 403 || reply.status == 404 ||
                            reply.status == 405 || (info && reply.status == 503))
                    << method << " " << target << ": " << reply.status << " " << reply.body;
                // nmid's own IMDS-shaped JSON, never the upstream's body.
                const auto body = nlohmann::json::parse(reply.body, nullptr, false);
                EXPECT_TRUE(body.is_object() && body.contains("error") &&
                            body.contains("error_description"))
                    << method << " " << target << ": " << reply.body;
            }
        }
    }
    // Nothing of the pods' requests reached IMDS: only nmid's own fixed tenant request (once
    // per info request here, as no answer was usable), never a pod's body or spelling.
    for (const test::FakeRequest& r : upstream_.received()) {
        EXPECT_EQ(r.method + " " + r.target, "GET /metadata/identity/info?api-version=2018-02-01");
        EXPECT_TRUE(r.body.empty());
    }
    EXPECT_EQ(upstream_.requests(), 2U);  // the info path, in origin and absolute form
    EXPECT_EQ(token_source_.calls(), 0);
}

TEST_F(HostilePaths, TheUsualTokenRequestIsStillServedByNmi) {
    NmiHandler handler = make_handler();
    for (const std::string& path :
         {std::string{"/metadata/identity/oauth2/token"},
          std::string{"/Metadata/identity/oauth2/token/"},
          std::string{"http://169.254.169.254/metadata/identity/oauth2/token"}}) {
        const Reply reply = send(handler, "GET", path + std::string{kQuery});
        EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
    }
    EXPECT_EQ(token_source_.calls(), 1);
    EXPECT_EQ(upstream_.requests(), 0U);
}

TEST_F(HostilePaths, AnExceptedPodGetsTheTokenRouteAsSentWithoutHopByHopFields) {
    NmiHandler handler = make_handler();
    const std::string target =
        "/Metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https%3A%2F%2Fvault"
        "&client_id=c";
    const FieldList headers{{{"Metadata", "true"},
                             {"Connection", "keep-alive, X-Hop"},
                             {"Keep-Alive", "timeout=5"},
                             {"X-Hop", "dropped"},
                             {"TE", "trailers"},
                             {"Upgrade", "h2c"},
                             {"Proxy-Authorization", "Basic eA=="},
                             {"Host", "169.254.169.254"},
                             {"User-Agent", "sdk/1.0"},
                             {"X-Custom", "kept"}}};
    const Reply reply = send(handler, "GET", target, headers, kExceptedPod);
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.body, R"({"upstream":true})");
    ASSERT_EQ(upstream_.requests(), 1U);
    const test::FakeRequest& got = upstream_.received().front();
    EXPECT_EQ(got.method, "GET");
    EXPECT_EQ(got.target, target);  // byte for byte, odd case and trailing slash included
    EXPECT_EQ(got.header("Metadata"), "true");
    EXPECT_EQ(got.header("User-Agent"), "sdk/1.0");
    EXPECT_EQ(got.header("X-Custom"), "kept");
    for (const std::string_view dropped :
         {"Keep-Alive", "X-Hop", "TE", "Upgrade", "Proxy-Authorization", "X-Forwarded-For"}) {
        EXPECT_EQ(got.headers.count(std::string{dropped}), 0U) << dropped;
    }
    EXPECT_EQ(got.header("Host"), "127.0.0.1:" + std::to_string(upstream_.port()));
    EXPECT_EQ(token_source_.calls(), 0);

    // X-Forwarded-For is refused (IMDS would refuse it too), not forwarded.
    const FieldList forwarded{{{"Metadata", "true"}, {"X-Forwarded-For", "10.1.1.1"}}};
    EXPECT_EQ(send(handler, "GET", target, forwarded, kExceptedPod).status, 400);
    EXPECT_EQ(upstream_.requests(), 1U);
}

// Issue 11.1: anything under /metadata/identity but the token route is never forwarded,
// whatever the caller: an excepted pod's pass-through covers the token route only.
TEST_F(HostilePaths, AnExceptedPodNeverReachesOtherIdentityPaths) {
    NmiHandler handler = make_handler();
    const FieldList headers{{{"Metadata", "true"}}};
    for (const std::string target :
         {"/metadata/identity/issuecredential?api-version=1", "/metadata/identity/info",
          "/metadata/identity/getplatformmetadata", "/metadata/identity%2Fissuecredential",
          R"(/metadata\identity\issuecredential)", "/metadata//identity/issuecredential",
          "/metadata;/identity/issuecredential", "/metadata/identity/issuecredential#x"}) {
        // `/metadata/identity/info` takes GET only (issue 14): its POST is a 405.
        const int post_status = target == "/metadata/identity/info" ? 405 : 404;
        EXPECT_EQ(send(handler, "POST", target, headers, kExceptedPod, R"({"csr":"x"})").status,
                  post_status)
            << target;
        EXPECT_EQ(send(handler, "GET", target, headers, kExceptedPod).status, 404) << target;
    }
    EXPECT_EQ(upstream_.requests(), 0U);
    // The odd token spellings are 400 for every caller.
    EXPECT_EQ(send(handler, "GET", R"(/metadata\identity\oauth2\token)" + std::string{kQuery},
                   headers, kExceptedPod)
                  .status,
              400);
    EXPECT_EQ(upstream_.requests(), 0U);
}

TEST_F(HostilePaths, TheProxyForwardsOnlyItsAllowlistWithItsMethodsAndTheCanonicalPath) {
    NmiHandler handler = make_handler();
    struct Case {
        std::string_view method;
        std::string target;
        int status;
        std::string forwarded;  ///< "" when nothing may be sent upstream
        std::string allow;      ///< the 405's Allow field
    };
    const std::vector<Case> cases = {
        {"GET", "/metadata/instance?api-version=2021-02-01", 200,
         "/metadata/instance?api-version=2021-02-01", ""},
        {"GET", "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text", 200,
         "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text", ""},
        {"GET", "/metadata/./instance//compute/?api-version=1", 200,
         "/metadata/instance/compute?api-version=1", ""},
        {"GET", "http://169.254.169.254/metadata/versions", 200, "/metadata/versions", ""},
        {"GET", "/metadata/attested/document?api-version=2020-09-01", 200,
         "/metadata/attested/document?api-version=2020-09-01", ""},
        {"GET", "/metadata/loadbalancer?api-version=2020-10-01", 200,
         "/metadata/loadbalancer?api-version=2020-10-01", ""},
        {"POST", "/metadata/scheduledevents?api-version=2020-07-01", 200,
         "/metadata/scheduledevents?api-version=2020-07-01", ""},
        {"GET", "/metadata/identity/oauth2/token/../../../instance/a%20b", 200,
         "/metadata/instance/a%20b", ""},
        {"POST", "/metadata/instance", 405, "", "GET"},
        {"PUT", "/metadata/versions", 405, "", "GET"},
        {"DELETE", "/metadata/scheduledevents", 405, "", "GET, POST"},
        {"get", "/metadata/instance", 405, "", "GET"},
        {"GET", "/metadata/instances", 403, "", ""},
        {"GET", "/latest/meta-data/iam/", 403, "", ""},
        {"GET", "/computeMetadata/v1/", 403, "", ""},
        {"GET", "/", 403, "", ""},
        {"GET", "/metadata/instance%2", 400, "", ""},
    };
    for (const Case& c : cases) {
        const std::size_t before = upstream_.requests();
        const Reply reply = send(handler, c.method, c.target);
        EXPECT_EQ(reply.status, c.status) << c.method << " " << c.target << ": " << reply.body;
        EXPECT_EQ(reply.header("Allow"), c.allow) << c.target;
        if (c.forwarded.empty()) {
            EXPECT_EQ(upstream_.requests(), before) << c.target;
            EXPECT_TRUE(nlohmann::json::parse(reply.body, nullptr, false).contains("error"))
                << c.target << ": " << reply.body;
            continue;
        }
        ASSERT_EQ(upstream_.requests(), before + 1) << c.target;
        EXPECT_EQ(upstream_.received().back().target, c.forwarded);
        EXPECT_EQ(upstream_.received().back().method, c.method);
    }
}

TEST_F(HostilePaths, BlockedInstanceMetadataIsAnswered403WithoutUpstream) {
    NmiHandler handler = make_handler(HandlerSettings{.block_instance_metadata = true});
    EXPECT_EQ(send(handler, "GET", "/metadata/instance?api-version=1").status, 403);
    EXPECT_EQ(send(handler, "GET", "/METADATA/instance/compute").status, 403);
    EXPECT_EQ(send(handler, "GET", "/metadata/versions").status, 200);
    ASSERT_EQ(upstream_.requests(), 1U);
    EXPECT_EQ(upstream_.received()[0].target, "/metadata/versions");
}

}  // namespace
}  // namespace nmid::handlers
