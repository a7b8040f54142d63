// Issue 11.4: proxied and passed-through requests are inside the IMDS budget, shared fairly
// by source address with the pod's token fetches: a pod with its whole share waiting on IMDS
// gets 429 for a proxied request too, and another pod is not affected.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <string>

#include "handler_upstream_fixture.hpp"

namespace nmid::handlers {
namespace {

using test_support::FieldList;
using test_support::HandlerUpstreamTest;
using test_support::kBoundPod;
using test_support::kExceptedPod;
using test_support::Reply;
namespace asio = boost::asio;

class ProxyBudget : public HandlerUpstreamTest {};

TEST_F(ProxyBudget, APodWhoseShareIsWaitingOnImdsGets429ForProxiedRequestsOthersDoNot) {
    TokenCache cache{ioc_.get_executor(), token_source_, clock_,
                     TokenCacheSettings{.max_pending_fetches_per_pod = 1}};
    NmiHandler handler{NmiDependencies{.pods = pods_,
                                       .crds = crds_,
                                       .cache = cache,
                                       .imds = imds_,
                                       .metrics = metrics_,
                                       .clock = clock_,
                                       .ready = [] { return true; }},
                       HandlerSettings{}, IdentitySettings{.mode = OperationMode::managed},
                       UpstreamSettings{}};
    // The bound pod's first token: its fetch is held at the fake IMDS, so the pod's one
    // pending upstream call is in use.
    token_source_.hold();
    const FieldList headers{{{"Metadata", "true"}}};
    http::HttpRequest token;
    token.method = "GET";
    token.target = "/metadata/identity/oauth2/token?resource=https%3A%2F%2Fvault.azure.net";
    token.peer = asio::ip::make_address(kBoundPod);
    token.headers = &headers;
    bool answered = false;
    asio::co_spawn(ioc_, handler.handle(token),
                   [&](const std::exception_ptr&, const http::HttpResponse&) { answered = true; });
    ioc_.restart();
    ASSERT_TRUE(test::run_until(ioc_, [&] { return token_source_.in_flight() == 1; }));

    const Reply limited = send(handler, "GET", "/metadata/instance?api-version=2021-02-01",
                               std::string_view{kBoundPod});
    EXPECT_EQ(limited.status, 429) << limited.body;
    EXPECT_FALSE(limited.header("Retry-After").empty());
    EXPECT_EQ(upstream_.requests(), 0U);

    const Reply other = send(handler, "GET", "/metadata/instance?api-version=2021-02-01",
                             std::string_view{kExceptedPod});
    EXPECT_EQ(other.status, 200) << other.body;
    EXPECT_EQ(upstream_.requests(), 1U);

    token_source_.release();
    ioc_.restart();
    ASSERT_TRUE(test::run_until(ioc_, [&] { return answered; }));
    // The share is free again.
    EXPECT_EQ(send(handler, "GET", "/metadata/instance?api-version=2021-02-01",
                   std::string_view{kBoundPod})
                  .status,
              200);
    EXPECT_EQ(upstream_.requests(), 2U);
}

}  // namespace
}  // namespace nmid::handlers
