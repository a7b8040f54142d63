#include "nmid/kube/token_provider.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/manual_clock.hpp"
#include "support/test_ca.hpp"

namespace nmid::kube {
namespace {

using namespace std::chrono_literals;

TEST(ReadTokenFile, TrimsWhitespaceAndRejectsEmptyOrMissing) {
    test::PemDir dir;
    EXPECT_EQ(*read_token_file(dir.write("t1", "  eyJhbGciOi.x.y\n").string()), "eyJhbGciOi.x.y");
    EXPECT_EQ(read_token_file(dir.write("t2", " \n\t").string()).error(), Errc::io_error);
    EXPECT_EQ(read_token_file((dir.path() / "absent").string()).error(), Errc::io_error);
    // A line break inside would split the Authorization header.
    EXPECT_EQ(read_token_file(dir.write("t3", "a\nb").string()).error(), Errc::io_error);
}

TEST(FileTokenProvider, RotatedTokenIsPickedUpAfterTheInterval) {
    test::PemDir dir;
    test::ManualClock clock;
    const auto path = dir.write("token", "first\n");
    FileTokenProvider provider{path.string(), clock, 60s};
    EXPECT_EQ(*provider.token(), "first");
    EXPECT_EQ(provider.reads(), 1U);

    dir.write("token", "second\n");  // the kubelet rotated the projected token
    clock.advance(59s);
    EXPECT_EQ(*provider.token(), "first");
    EXPECT_EQ(provider.reads(), 1U);

    clock.advance(1s);
    EXPECT_EQ(*provider.token(), "second");
    EXPECT_EQ(provider.reads(), 2U);
    EXPECT_EQ(*provider.token(), "second");
    EXPECT_EQ(provider.reads(), 2U);
}

TEST(FileTokenProvider, InvalidateRereadsAtOnce) {
    test::PemDir dir;
    test::ManualClock clock;
    const auto path = dir.write("token", "old");
    FileTokenProvider provider{path.string(), clock, 60s};
    EXPECT_EQ(*provider.token(), "old");
    dir.write("token", "new");
    provider.invalidate();
    EXPECT_EQ(*provider.token(), "new");
    EXPECT_EQ(provider.reads(), 2U);
}

TEST(FileTokenProvider, FailedRereadKeepsTheLastGoodTokenAndRetriesNextInterval) {
    test::PemDir dir;
    test::ManualClock clock;
    const auto path = dir.write("token", "good");
    FileTokenProvider provider{path.string(), clock, 60s};
    EXPECT_EQ(*provider.token(), "good");
    std::filesystem::remove(path);
    clock.advance(60s);
    EXPECT_EQ(*provider.token(), "good");
    EXPECT_EQ(provider.reads(), 2U);
    dir.write("token", "better");
    EXPECT_EQ(*provider.token(), "good");  // not before the next interval
    clock.advance(60s);
    EXPECT_EQ(*provider.token(), "better");
}

TEST(FileTokenProvider, MissingFileIsIoErrorUntilItAppears) {
    test::PemDir dir;
    test::ManualClock clock;
    FileTokenProvider provider{(dir.path() / "token").string(), clock, 60s};
    EXPECT_EQ(provider.token().error(), Errc::io_error);
    dir.write("token", "now");
    EXPECT_EQ(*provider.token(), "now");  // no token yet: every call tries
}

TEST(StaticTokenProvider, AlwaysTheSameToken) {
    StaticTokenProvider provider{"abc"};
    EXPECT_EQ(*provider.token(), "abc");
    provider.invalidate();
    EXPECT_EQ(*provider.token(), "abc");
}

}  // namespace
}  // namespace nmid::kube
