#include "support/manual_clock.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "nmid/core/errc.hpp"

namespace nmid {
namespace {

using namespace std::chrono_literals;

TEST(ManualClock, WaitResumesOnlyWhenTimeReachesDeadline) {
    boost::asio::io_context ioc;
    test::ManualClock clock;
    bool done = false;
    const auto deadline = clock.steady_now() + 5s;
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> {
            co_await clock.wait_until(deadline);
            done = true;
        },
        boost::asio::detached);
    ioc.poll();
    EXPECT_EQ(clock.waiters(), 1U);
    clock.advance(4s);
    ioc.poll();
    EXPECT_FALSE(done);
    clock.advance(1s);
    ioc.poll();
    EXPECT_TRUE(done);
    EXPECT_EQ(clock.waiters(), 0U);
}

TEST(Errc, ConvertsToErrorCodeWithStableName) {
    boost::system::error_code ec = Errc::pod_not_found;
    EXPECT_EQ(ec.message(), "pod_not_found");
    EXPECT_EQ(&ec.category(), &errc_category());
    Result<int> r = Errc::timeout;
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error(), Errc::timeout);
}

}  // namespace
}  // namespace nmid
