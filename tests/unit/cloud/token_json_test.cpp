#include "nmid/cloud/token_json.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace nmid::cloud {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;

struct TokenCase {
    const char* name;
    std::string body;
    bool ok;
    std::int64_t expires_on = 0;
    std::int64_t expires_in = 0;
    std::int64_t not_before = 0;
};

struct Imds2023Case {
    const char* name;
    std::string body;
    std::string client_id;
    std::int64_t ext_expires_on;
};

TEST(ParseTokenResponse, Imds2023ClientIdAndExtendedLifetime) {
    const std::string head = R"({"access_token":"tok","expires_on":"1714730400")";
    const std::string long_id(129, 'c');
    const Imds2023Case cases[] = {
        {"both_strings", head + R"(,"client_id":"c-1","ext_expires_in":"86399"})", "c-1",
         kNow + 86399},
        {"ext_number", head + R"(,"ext_expires_in":3599})", "", kNow + 3599},
        {"neither", head + "}", "", 0},
        {"ext_junk_ignored", head + R"(,"ext_expires_in":"later"})", "", 0},
        {"ext_negative_ignored", head + R"(,"ext_expires_in":-1})", "", 0},
        {"client_id_not_a_string", head + R"(,"client_id":7})", "", 0},
        {"client_id_over_128_bytes_dropped", head + R"(,"client_id":")" + long_id + "\"}", "", 0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto token = parse_token_response(c.body, kNow);
        ASSERT_TRUE(token);
        EXPECT_EQ(token->client_id, c.client_id);
        EXPECT_EQ(token->ext_expires_on, c.ext_expires_on);
    }
}

TEST(ParseTokenResponse, ExpiryFormsAndFailures) {
    const TokenCase cases[] = {
        {"imds_all_strings",
         R"({"access_token":"tok","client_id":"c","expires_in":"86399","expires_on":"1714730400",)"
         R"("ext_expires_in":"86399","not_before":"1714643700","resource":"r","token_type":"Bearer"})",
         true, 1714730400, 86399, 1714643700},
        {"numbers",
         R"({"access_token":"tok","expires_in":3599,"expires_on":1714730400,"not_before":1714726800})",
         true, 1714730400, 3599, 1714726800},
        {"fractional_string", R"({"access_token":"tok","expires_on":"1714730400.0"})", true,
         1714730400, 1714730400 - kNow, 0},
        {"fractional_number", R"({"access_token":"tok","expires_on":1714730400.75})", true,
         1714730400, 1714730400 - kNow, 0},
        {"app_service_date",
         R"({"access_token":"tok","expires_on":"11/23/2026 10:00:00 +00:00","expires_in":"60"})",
         true, 1795428000, 60, 0},
        {"app_service_date_pm",
         R"({"access_token":"tok","expires_on":"6/12/2023 5:39:16 PM +00:00"})", true, 1686591556,
         0, 0},
        {"app_service_date_12am",
         R"({"access_token":"tok","expires_on":"6/12/2023 12:05:00 AM +00:00"})", true, 1686528300,
         0, 0},
        {"app_service_date_offset",
         R"({"access_token":"tok","expires_on":"11/23/2026 10:00:00 -05:00"})", true, 1795446000, 0,
         0},
        {"rfc3339_z", R"({"access_token":"tok","expires_on":"2026-11-23T10:00:00Z"})", true,
         1795428000, 0, 0},
        {"rfc3339_fraction_offset",
         R"({"access_token":"tok","expires_on":"2026-11-23T11:00:00.123+01:00"})", true, 1795428000,
         0, 0},
        {"expires_in_string_only", R"({"access_token":"tok","expires_in":"3600"})", true,
         kNow + 3600, 3600, 0},
        {"expires_in_number_only", R"({"access_token":"tok","expires_in":3600})", true, kNow + 3600,
         3600, 0},
        {"junk_expires_on_falls_back",
         R"({"access_token":"tok","expires_on":"soon","expires_in":"60"})", true, kNow + 60, 60, 0},
        {"impossible_date_falls_back",
         R"({"access_token":"tok","expires_on":"2/30/2026 10:00:00 +00:00","expires_in":60})", true,
         kNow + 60, 60, 0},
        {"junk_not_before_ignored",
         R"({"access_token":"tok","expires_on":"1714730400","expires_in":"1","not_before":"x"})",
         true, 1714730400, 1, 0},
        {"no_expiry", R"({"access_token":"tok"})", false},
        {"junk_expiry_only", R"({"access_token":"tok","expires_on":"soon","expires_in":"later"})",
         false},
        {"negative_expires_in", R"({"access_token":"tok","expires_in":-5})", false},
        {"zero_expires_on", R"({"access_token":"tok","expires_on":"0"})", false},
        {"missing_access_token", R"({"expires_on":"1714730400"})", false},
        {"empty_access_token", R"({"access_token":"","expires_on":"1714730400"})", false},
        {"numeric_access_token", R"({"access_token":5,"expires_on":"1714730400"})", false},
        {"not_json", "<html>bad gateway</html>", false},
        {"empty", "", false},
        {"array", R"([{"access_token":"tok","expires_on":"1714730400"}])", false},
        {"truncated", R"({"access_token":"tok","expires_on":"17147)", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto token = parse_token_response(c.body, kNow);
        ASSERT_EQ(token.has_value(), c.ok);
        if (!c.ok) {
            EXPECT_EQ(token.error(), Errc::parse_error);
            continue;
        }
        EXPECT_EQ(token->access_token, "tok");
        EXPECT_EQ(token->expires_on, c.expires_on);
        if (c.expires_in != 0) {
            EXPECT_EQ(token->expires_in, c.expires_in);
        }
        EXPECT_EQ(token->not_before, c.not_before);
    }
}

TEST(ParseTokenResponse, KeepsStringFieldsAndDefaultsTokenType) {
    auto token = parse_token_response(
        R"({"access_token":"eyJ0","refresh_token":"","expires_in":"3599","expires_on":"1714730400",)"
        R"("resource":"https://vault.azure.net","token_type":"PoP"})",
        kNow);
    ASSERT_TRUE(token.has_value());
    EXPECT_EQ(token->access_token, "eyJ0");
    EXPECT_EQ(token->refresh_token, "");
    EXPECT_EQ(token->resource, "https://vault.azure.net");
    EXPECT_EQ(token->token_type, "PoP");

    token = parse_token_response(R"({"access_token":"a","expires_in":"1"})", kNow);
    ASSERT_TRUE(token.has_value());
    EXPECT_EQ(token->token_type, "Bearer");
    EXPECT_EQ(token->resource, "");
}

TEST(ParseOAuthError, FlatNestedAndJunk) {
    struct Case {
        std::string body;
        std::string error;
        std::string description;
    };
    const Case cases[] = {
        {R"({"error":"invalid_request","error_description":"Identity not found"})",
         "invalid_request", "Identity not found"},
        {R"({"error":"invalid_client","error_description":"AADSTS7000215: x","error_codes":[7000215]})",
         "invalid_client", "AADSTS7000215: x"},
        {R"({"error":{"code":"BadRequest","message":"nested"}})", "BadRequest", "nested"},
        {R"({"error":"unknown"})", "unknown", ""},
        {R"({"error":5,"error_description":["x"]})", "", ""},
        {"Forbidden (user=system:anonymous)", "", ""},
        {"", "", ""},
        {"[]", "", ""},
    };
    for (const auto& c : cases) {
        const auto e = parse_oauth_error(c.body);
        EXPECT_EQ(e.error, c.error) << c.body;
        EXPECT_EQ(e.description, c.description) << c.body;
    }
}

}  // namespace
}  // namespace nmid::cloud
