// Issue 11 (item 4): a `resource` longer than 2 KiB, decoded, is a 400 with an IMDS-shaped
// body before any pod lookup or cache access.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "handler_upstream_fixture.hpp"

namespace nmid::handlers {
namespace {

using test_support::FieldList;
using test_support::HandlerUpstreamTest;
using test_support::Reply;

class ResourceLimit : public HandlerUpstreamTest {
protected:
    static std::string token_target(const std::string& resource) {
        return "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource;
    }
};

TEST_F(ResourceLimit, LongerThanTwoKibibytesIsA400BeforeAnyLookup) {
    NmiHandler handler = make_handler();
    const int reads = pod_source_.calls();
    // An address no pod has: a lookup would read the pod source again and answer 500.
    const std::string long_plain(2049, 'r');
    std::string long_encoded;  // 2049 bytes once decoded, three times that on the wire
    for (int i = 0; i < 2049; ++i) {
        long_encoded += "%41";
    }
    for (const std::string& resource : {long_plain, long_encoded}) {
        const Reply reply = send(handler, "GET", token_target(resource),
                                 FieldList{{{"Metadata", "true"}}}, "10.9.9.9");
        EXPECT_EQ(reply.status, 400) << reply.body;
        const auto body = nlohmann::json::parse(reply.body, nullptr, false);
        EXPECT_EQ(body.value("error", ""), "invalid_request") << reply.body;
        EXPECT_EQ(body.value("error_description", ""),
                  "parameter resource is longer than 2048 bytes");
    }
    EXPECT_EQ(pod_source_.calls(), reads);
    EXPECT_EQ(token_source_.calls(), 0);
    EXPECT_EQ(cache_.stats().entries, 0U);
}

TEST_F(ResourceLimit, TwoKibibytesExactlyIsServed) {
    NmiHandler handler = make_handler();
    std::string resource(2048, 'r');
    const Reply reply = send(handler, "GET", token_target(resource));
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(nlohmann::json::parse(reply.body).value("resource", ""), resource);
    // Encoded, the same 2048 bytes: the limit is on the decoded value.
    std::string encoded;
    for (int i = 0; i < 2048; ++i) {
        encoded += "%72";
    }
    EXPECT_EQ(send(handler, "GET", token_target(encoded)).status, 200);
    EXPECT_EQ(token_source_.calls(), 1);
}

TEST_F(ResourceLimit, HostTokenHasTheSameLimit) {
    NmiHandler handler = make_handler();
    const FieldList pod{{{"podns", "default"}, {"podname", "app"}}};
    const Reply reply =
        send(handler, "GET", "/host/token/?resource=" + std::string(2049, 'r'), pod, "127.0.0.1");
    EXPECT_EQ(reply.status, 400) << reply.body;
    EXPECT_EQ(token_source_.calls(), 0);
    EXPECT_EQ(
        send(handler, "GET", "/host/token/?resource=" + std::string(2048, 'r'), pod, "127.0.0.1")
            .status,
        200);
}

}  // namespace
}  // namespace nmid::handlers
