#include "nmid/handlers/imds_json.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nmid::handlers {
namespace {

std::string escaped(std::string_view s) {
    std::string out;
    append_json_escaped(out, s);
    return out;
}

// The escaped text, quoted, must parse back to the original and hold no raw control byte.
::testing::AssertionResult round_trips(const std::string& s) {
    const std::string out = escaped(s);
    for (unsigned char c : out) {
        if (c < 0x20) {
            return ::testing::AssertionFailure() << "raw control byte in " << out;
        }
    }
    const auto parsed = nlohmann::json::parse("\"" + out + "\"", nullptr, false);
    if (parsed.is_discarded() || parsed.get<std::string>() != s) {
        return ::testing::AssertionFailure() << "does not round-trip: " << out;
    }
    return ::testing::AssertionSuccess();
}

TEST(AppendJsonEscaped, EscapesEverySpecialCharacterAtEveryPosition) {
    const std::vector<char> specials = {'"', '\\', '\n', '\r', '\t', '\x01', '\x1f', '\b'};
    for (char special : specials) {
        for (std::size_t length : {1U, 7U, 8U, 9U, 16U, 33U}) {
            for (std::size_t at = 0; at < length; ++at) {
                std::string s(length, 'a');
                s[at] = special;
                EXPECT_TRUE(round_trips(s))
                    << "special " << int(special) << " at " << at << " of " << length;
            }
        }
    }
}

TEST(AppendJsonEscaped, LeavesCleanAndUtf8TextUnchanged) {
    const std::string jwt =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.sig-_";
    EXPECT_EQ(escaped(jwt), jwt);
    EXPECT_EQ(escaped(""), "");
    const std::string utf8 = "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac";  // bytes >= 0x80 need no escape
    EXPECT_EQ(escaped(utf8), utf8);
    const std::string mixed = "https://vault.azure.net/\"x\"\\y\x7f";
    EXPECT_TRUE(round_trips(mixed));
    EXPECT_EQ(escaped("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
}

TEST(TokenJson, NmiFieldOrderAllStringsAndTimeLeftAtServing) {
    Token t;
    t.access_token = "abc";
    t.expires_on = 1'700'003'600;
    t.not_before = 1'700'000'000;
    t.expires_in = 3600;
    t.resource = "https://upstream.example";  // the request's resource is echoed, not this
    const std::string body = token_json(t, "https://vault.azure.net", 1'700'001'000);
    EXPECT_EQ(body, R"({"access_token":"abc","refresh_token":"","expires_in":"2600",)"
                    R"("expires_on":"1700003600","not_before":"1700000000",)"
                    R"("resource":"https://vault.azure.net","token_type":"Bearer"})");
    EXPECT_NE(token_json(t, "r", 1'800'000'000).find(R"("expires_in":"0")"), std::string::npos);
    EXPECT_FALSE(nlohmann::json::parse(token_json(t, "a\"b", 0), nullptr, false).is_discarded());
}

TEST(TokenJson, Imds2023FieldsFollowNmiFieldsAndExtExpiresInCountsDown) {
    Token t;
    t.access_token = "abc";
    t.expires_on = 1'700'003'600;
    t.not_before = 1'700'000'000;
    t.client_id = "7d2c1f0e-0000-4000-8000-000000000001";
    t.ext_expires_on = 1'700'007'200;
    const std::string body = token_json(t, "https://vault.azure.net", 1'700'001'000);
    EXPECT_EQ(body, R"({"access_token":"abc","refresh_token":"","expires_in":"2600",)"
                    R"("expires_on":"1700003600","not_before":"1700000000",)"
                    R"("resource":"https://vault.azure.net","token_type":"Bearer",)"
                    R"("client_id":"7d2c1f0e-0000-4000-8000-000000000001",)"
                    R"("ext_expires_in":"6200"})");
    EXPECT_NE(token_json(t, "r", 1'800'000'000).find(R"("ext_expires_in":"0"})"),
              std::string::npos);
    // Only what is known is sent: no ext_expires_in without the upstream's, no empty client_id.
    t.ext_expires_on = 0;
    EXPECT_TRUE(
        token_json(t, "r", 0).ends_with(R"("client_id":"7d2c1f0e-0000-4000-8000-000000000001"})"));
    t.client_id.clear();
    EXPECT_TRUE(token_json(t, "r", 0).ends_with(R"("token_type":"Bearer"})"));
    t.client_id = "a\"b";  // escaped like every other value
    EXPECT_EQ(nlohmann::json::parse(token_json(t, "r", 0))["client_id"], "a\"b");
}

TEST(TokenJson, MemoisedRenderingMatchesFreshRenderingAsTimeAndResourceChange) {
    auto make = [](std::string access, std::int64_t expires_on) {
        auto t = std::make_shared<Token>();
        t->access_token = std::move(access);
        t->expires_on = expires_on;
        t->not_before = expires_on - 3600;
        return TokenPtr{std::move(t)};
    };
    const TokenPtr a = make("tok\"en-a", 1'700'003'600);
    const TokenPtr b = [&] {
        auto t = std::make_shared<Token>(*make("token-b", 1'700'007'200));
        t->client_id = "client-b";
        t->ext_expires_on = 1'700'010'800;
        return TokenPtr{std::move(t)};
    }();
    for (std::int64_t now : {1'700'000'000, 1'700'000'001, 1'700'003'599, 1'700'009'000}) {
        for (const TokenPtr& t : {a, b, a}) {
            for (std::string_view resource : {"https://vault.azure.net", "r\"2", ""}) {
                EXPECT_EQ(token_json(t, resource, now), token_json(*t, resource, now))
                    << t->access_token << " " << resource << " " << now;
            }
        }
    }
    std::string host_body = "{\"token\":";
    append_token_json(host_body, a, "x", 1'700'003'000);
    EXPECT_EQ(host_body, "{\"token\":" + token_json(*a, "x", 1'700'003'000));
}

TEST(ErrorJson, FlatOAuthShape) {
    EXPECT_EQ(
        error_json("invalid_request", "Required metadata header not specified"),
        R"({"error":"invalid_request","error_description":"Required metadata header not specified"})");
    auto j = nlohmann::json::parse(error_json("x", "line\nbreak \"quoted\""));
    EXPECT_EQ(j["error_description"], "line\nbreak \"quoted\"");
}

}  // namespace
}  // namespace nmid::handlers
