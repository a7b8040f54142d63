#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "nmid/net/http_client.hpp"

namespace nmid::net {
namespace {

using namespace std::chrono_literals;

TEST(PercentEncode, KeepsUnreservedAndEncodesEverythingElse) {
    struct Case {
        std::string in;
        std::string out;
    };
    const Case cases[] = {
        {"", ""},
        {"AZaz09-._~", "AZaz09-._~"},
        {"https://vault.azure.net", "https%3A%2F%2Fvault.azure.net"},
        {"https://management.azure.com/", "https%3A%2F%2Fmanagement.azure.com%2F"},
        {"a b+c&d=e?f#g", "a%20b%2Bc%26d%3De%3Ff%23g"},
        {"%41", "%2541"},
        {"\xC3\xA9", "%C3%A9"},
        {std::string("\0\x7f", 2), "%00%7F"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(percent_encode(c.in), c.out) << c.in;
    }
}

TEST(ParseRetryAfter, DeltaSecondsAndHttpDates) {
    // 2015-10-21T07:27:00Z
    const WallTime now{std::chrono::seconds{1445412420}};
    struct Case {
        std::string in;
        std::optional<std::chrono::seconds> out;
    };
    const Case cases[] = {
        {"120", 120s},
        {"0", 0s},
        {" 5\t", 5s},
        {"99999999999999999999999", std::chrono::seconds{2147483647}},
        {"", std::nullopt},
        {"   ", std::nullopt},
        {"-1", std::nullopt},
        {"1.5", std::nullopt},
        {"5s", std::nullopt},
        {"soon", std::nullopt},
        {"Wed, 21 Oct 2015 07:28:00 GMT", 60s},
        {"Wed, 21 Oct 2015 07:27:00 GMT", 0s},
        {"Tue, 20 Oct 2015 07:28:00 GMT", 0s},  // in the past
        {"Thu, 22 Oct 2015 07:27:00 GMT", 86400s},
        {"Wed, 32 Oct 2015 07:28:00 GMT", std::nullopt},
        {"Wed, 21 Foo 2015 07:28:00 GMT", std::nullopt},
        {"Wed, 21 Oct 2015 07:28:00 UTC", std::nullopt},
        {"Wednesday, 21-Oct-15 07:28:00 GMT", std::nullopt},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(parse_retry_after(c.in, now), c.out) << c.in;
    }
}

}  // namespace
}  // namespace nmid::net
