#include "nmid/cloud/composite_token_source.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

#include "support/fake_token_source.hpp"
#include "support/manual_clock.hpp"

namespace nmid::cloud {
namespace {

namespace asio = boost::asio;

class CompositeTokenSourceTest : public ::testing::Test {
protected:
    FetchResult fetch(int type) {
        TokenRequest r;
        r.identity.type = type;
        r.identity.client_id = "c";
        r.resource = "https://management.azure.com/";
        std::optional<FetchResult> out;
        asio::co_spawn(
            ioc_,
            [this, r]() -> asio::awaitable<FetchResult> {
                co_return co_await composite_.fetch(r, clock_.steady_now());
            },
            [&out](const std::exception_ptr& e, FetchResult result) {
                if (e) {
                    std::rethrow_exception(e);
                }
                out.emplace(std::move(result));
            });
        ioc_.run();
        ioc_.restart();
        EXPECT_TRUE(out.has_value());
        return out ? std::move(*out) : FetchResult{FetchError{}};
    }

    asio::io_context ioc_;
    test::ManualClock clock_;
    test::FakeTokenSource imds_{clock_};
    test::FakeTokenSource aad_{clock_};
    CompositeTokenSource composite_{imds_, aad_};
};

TEST_F(CompositeTokenSourceTest, RoutesByIdentityType) {
    struct Case {
        int type;
        int imds_calls;
        int aad_calls;
    };
    const Case cases[] = {{0, 1, 0}, {1, 1, 1}, {2, 1, 2}, {0, 2, 2}};
    for (const auto& c : cases) {
        const auto r = fetch(c.type);
        EXPECT_TRUE(r.has_value()) << c.type;
        EXPECT_EQ(imds_.calls(), c.imds_calls) << c.type;
        EXPECT_EQ(aad_.calls(), c.aad_calls) << c.type;
    }
    EXPECT_EQ(aad_.last_request().identity.type, 2);
}

TEST_F(CompositeTokenSourceTest, PassesErrorsThrough) {
    aad_.push_error(Errc::upstream_throttled, 429, std::chrono::seconds{3});
    const auto r = fetch(1);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::upstream_throttled);
    EXPECT_EQ(r.error().retry_after, std::chrono::seconds{3});
}

TEST_F(CompositeTokenSourceTest, OtherTypesAreUnsupportedWithoutAnyCall) {
    for (const int type : {3, -1, 42}) {
        const auto r = fetch(type);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, Errc::identity_unsupported);
        EXPECT_NE(r.error().upstream_body.find(std::to_string(type)), std::string::npos);
    }
    EXPECT_EQ(imds_.calls(), 0);
    EXPECT_EQ(aad_.calls(), 0);
}

}  // namespace
}  // namespace nmid::cloud
