#include "nmid/http/router.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

namespace nmid::http {
namespace {

struct RouteCase {
    std::string_view name;
    std::string_view target;
    Route expected;
};

std::ostream& operator<<(std::ostream& os, const RouteCase& c) {
    return os << c.name;
}

// NMI's TestRouterPathPrefix (pkg/nmi/server/server_test.go), then nmid's additions.
constexpr RouteCase kRouteCases[] = {
    {"nmi_token_request", "/metadata/identity/oauth2/token/", Route::token},
    {"nmi_token_without_slash_suffix", "/metadata/identity/oauth2/token", Route::token},
    {"nmi_token_upper_case_metadata", "/Metadata/identity/oauth2/token/", Route::token},
    {"nmi_token_upper_case_identity_is_proxied", "/metadata/Identity/oauth2/token/", Route::proxy},
    {"nmi_host_token", "/host/token/", Route::host_token},
    {"nmi_host_token_without_slash_suffix", "/host/token", Route::host_token},
    {"nmi_instance", "/metadata/instance", Route::instance},
    {"nmi_instance_upper_case_metadata", "/Metadata/instance", Route::instance},
    {"nmi_instance_slash_suffix", "/Metadata/instance/", Route::instance},
    {"nmi_default_metadata", "/metadata/", Route::proxy},
    {"nmi_backslash_oauth2", R"(/metadata/identity\oauth2/token/)", Route::invalid_token_path},
    {"nmi_backslash_token", R"(/metadata/identity/oauth2\token/)", Route::invalid_token_path},
    {"nmi_backslash_oauth2_token", R"(/metadata/identity\oauth2\token/)",
     Route::invalid_token_path},
    {"nmi_mix_of_slash_and_backslash", R"(/metadata/identity/\oauth2\token/)",
     Route::invalid_token_path},
    {"nmi_multiple_backslashes", R"(/metadata/identity\\\oauth2\\token/)",
     Route::invalid_token_path},

    // Query strings do not take part in matching.
    {"token_with_query", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
     Route::token},
    {"query_cannot_make_a_token_path", "/foo?/metadata/identity/oauth2/token", Route::proxy},
    {"all_caps_metadata", "/METADATA/identity/oauth2/token", Route::token},
    {"anything_may_follow_the_token_prefix", "/metadata/identity/oauth2/tokenfoo", Route::token},
    {"token_subpath", "/metadata/identity/oauth2/token/extra", Route::token},
    {"token_segment_upper_case", "/metadata/identity/oauth2/TOKEN", Route::proxy},

    // Percent-encoding: matching uses the decoded path, as Go's mux does.
    {"encoded_slashes_reach_token", "/metadata/identity%2Foauth2%2Ftoken", Route::token},
    {"encoded_letters_reach_token", "/%6detadata/identity/oauth2/token", Route::token},
    {"encoded_backslashes_are_odd", "/metadata/identity%5Coauth2%5Ctoken",
     Route::invalid_token_path},
    // Go's server rejects a path with an invalid escape (400) before routing; so does nmid.
    {"invalid_escape_after_token", "/metadata/identity/oauth2/token%zz", Route::invalid_token_path},
    {"invalid_escape_inside", "/metadata%/identity/oauth2/token", Route::invalid_token_path},
    {"truncated_escape", "/metadata/instance%2", Route::invalid_token_path},
    {"lone_percent_anywhere", "/latest/100%", Route::invalid_token_path},
    {"invalid_escape_in_query_is_not_the_path", "/metadata/instance?x=%zz", Route::instance},
    {"plus_stays_plus_in_path", "/metadata+/identity/oauth2/token", Route::proxy},

    // Cleaning: dot-segments and double slashes never route a token path around nmid.
    {"double_slash_prefix", "//metadata/identity/oauth2/token", Route::token},
    {"double_slash_inside", "/metadata//identity/oauth2//token", Route::token},
    {"dot_segment", "/metadata/./identity/oauth2/token", Route::token},
    {"dot_dot_segment", "/foo/../metadata/identity/oauth2/token", Route::token},
    {"dot_dot_above_root", "/../../metadata/identity/oauth2/token", Route::token},
    {"encoded_dot_dot", "/x/%2e%2e/metadata/identity/oauth2/token", Route::token},
    {"token_path_escaping_to_instance_is_odd", "/metadata/identity/oauth2/token/../../../instance",
     Route::invalid_token_path},
    {"encoded_token_path_escaping_is_odd",
     "/metadata/identity/oauth2/token%2F..%2F..%2F..%2Finstance", Route::invalid_token_path},
    {"dot_dot_hiding_identity_is_odd", "/metadata/identity/../oauth2/token",
     Route::invalid_token_path},
    {"cleaning_exposes_backslash_path", R"(/metadata/x/../identity\oauth2\token)",
     Route::invalid_token_path},
    {"double_slash_host_token", "//host/token", Route::host_token},
    {"dot_dot_instance", "/a/../Metadata/instance?api-version=2021-02-01", Route::instance},

    // Unanchored odd-path rule: anywhere in the path, any bytes in between.
    {"odd_path_not_at_start", "/foo/metadata/identity/x/oauth2/y/token", Route::invalid_token_path},
    {"odd_path_with_newline", "/metadata/identity%0Aoauth2%0Atoken", Route::invalid_token_path},
    {"odd_path_needs_oauth2_before_token", "/metadata/identity/token/oauth2", Route::proxy},
    {"identity_without_metadata", "/identity/oauth2/token", Route::proxy},
    {"metadata_identity_only", "/metadata/identity", Route::proxy},

    // Other prefixes.
    {"host_token_prefix_is_plain", "/host/tokenx", Route::host_token},
    {"host_upper_case_is_proxied", "/HOST/token", Route::proxy},
    {"instance_prefix_is_plain", "/metadata/instances", Route::instance},
    {"instance_compute", "/metadata/instance/compute?api-version=2021-02-01", Route::instance},
    {"scheduled_events", "/metadata/scheduledevents?api-version=2020-07-01", Route::proxy},
    {"aws_probe", "/latest/meta-data/iam/", Route::proxy},
    {"root", "/", Route::proxy},
    {"empty", "", Route::proxy},
    {"asterisk", "*", Route::proxy},

    // Absolute-form targets are routed by their path, as Go's server does.
    {"absolute_form_token", "http://169.254.169.254/metadata/identity/oauth2/token?resource=x",
     Route::token},
    {"absolute_form_odd", R"(http://h/metadata/identity\oauth2\token)", Route::invalid_token_path},
    {"absolute_form_without_path", "http://169.254.169.254", Route::proxy},
};

class RouteTable : public testing::TestWithParam<RouteCase> {};

TEST_P(RouteTable, RoutesLikeNmi) {
    const RouteCase& c = GetParam();
    EXPECT_EQ(to_string(route(c.target).route), to_string(c.expected)) << c.target;
}

INSTANTIATE_TEST_SUITE_P(Router, RouteTable, testing::ValuesIn(kRouteCases),
                         [](const auto& info) { return std::string{info.param.name}; });

TEST(Router, SplitsRawPathAndQuery) {
    const RoutedTarget r =
        route("/metadata/identity%2Foauth2/token?api-version=2018-02-01&resource=a%20b");
    EXPECT_EQ(r.route, Route::token);
    EXPECT_EQ(r.path, "/metadata/identity%2Foauth2/token");
    EXPECT_EQ(r.query, "api-version=2018-02-01&resource=a%20b");
}

TEST(Router, QueryIsEmptyWithoutQuestionMark) {
    const RoutedTarget r = route("/metadata/instance");
    EXPECT_EQ(r.path, "/metadata/instance");
    EXPECT_TRUE(r.query.empty());
    EXPECT_EQ(route("/x?").query, "");
    EXPECT_EQ(route("/x??a=b").query, "?a=b");
}

TEST(Router, AbsoluteFormPathIsTheOriginPart) {
    const RoutedTarget r = route("http://169.254.169.254/metadata/instance?api-version=1");
    EXPECT_EQ(r.route, Route::instance);
    EXPECT_EQ(r.path, "/metadata/instance");
    EXPECT_EQ(r.query, "api-version=1");
}

TEST(Router, LongPathsAreRoutedToo) {
    std::string target = "/metadata/identity/oauth2/token/";
    target.append(4096, 'a');
    EXPECT_EQ(route(target).route, Route::token);
    std::string odd = "/" + std::string(4096, 'b') + R"(/metadata/identity\oauth2\token)";
    EXPECT_EQ(route(odd).route, Route::invalid_token_path);
}

TEST(Router, RouteNamesAreStable) {
    EXPECT_EQ(to_string(Route::token), "token");
    EXPECT_EQ(to_string(Route::invalid_token_path), "invalid_token_path");
    EXPECT_EQ(to_string(Route::host_token), "host_token");
    EXPECT_EQ(to_string(Route::instance), "instance");
    EXPECT_EQ(to_string(Route::proxy), "proxy");
}

struct QueryCase {
    std::string_view name;
    std::string_view query;
    std::string_view key;
    std::string_view expected;
};

std::ostream& operator<<(std::ostream& os, const QueryCase& c) {
    return os << c.name;
}

// Expectations follow Go's url.ParseQuery + Values.Get (what NMI's parseTokenRequest uses).
constexpr QueryCase kQueryCases[] = {
    {"simple", "resource=https://vault.azure.net", "resource", "https://vault.azure.net"},
    {"among_others", "api-version=2018-02-01&resource=r&client_id=c", "client_id", "c"},
    {"percent_decoded", "resource=https%3A%2F%2Fmanagement.azure.com%2F", "resource",
     "https://management.azure.com/"},
    {"plus_is_space", "resource=a+b", "resource", "a b"},
    {"encoded_plus_is_plus", "resource=a%2Bb", "resource", "a+b"},
    {"first_occurrence_wins", "resource=first&resource=second", "resource", "first"},
    {"absent", "api-version=1", "resource", ""},
    {"empty_query", "", "resource", ""},
    {"empty_value", "resource=", "resource", ""},
    {"key_without_equals", "resource", "resource", ""},
    {"prefix_key_is_not_the_key", "resources=x&resource=y", "resource", "y"},
    {"key_is_case_sensitive", "Resource=x", "resource", ""},
    {"encoded_key", "resour%63e=x", "resource", "x"},
    {"plus_in_key", "client+id=x", "client id", "x"},
    {"invalid_value_escape_skips_pair", "resource=%zz&resource=ok", "resource", "ok"},
    {"truncated_value_escape_skips_pair", "resource=a%2", "resource", ""},
    {"invalid_key_escape_skips_pair", "resource%=x&resource=y", "resource", "y"},
    {"semicolon_pair_is_skipped", "resource=a;b&resource=c", "resource", "c"},
    {"semicolon_separator_is_not_a_separator", "x=1;resource=a", "resource", ""},
    {"empty_pairs_ignored", "&&resource=v&&", "resource", "v"},
    {"equals_in_value", "resource=a=b", "resource", "a=b"},
    {"mi_res_id_path", "mi_res_id=%2Fsubscriptions%2Fs%2FresourceGroups%2Fg", "mi_res_id",
     "/subscriptions/s/resourceGroups/g"},
};

class QueryTable : public testing::TestWithParam<QueryCase> {};

TEST_P(QueryTable, ParsesLikeGo) {
    const QueryCase& c = GetParam();
    EXPECT_EQ(query_param(c.query, c.key), c.expected) << c.query;
}

INSTANTIATE_TEST_SUITE_P(Router, QueryTable, testing::ValuesIn(kQueryCases),
                         [](const auto& info) { return std::string{info.param.name}; });

}  // namespace
}  // namespace nmid::http

namespace nmid::http {
namespace {

TEST(QueryParams, OnePassFillsEachNameWithItsFirstDecodedOccurrence) {
    const std::array<std::string_view, 4> names = {"resource", "client_id", "mi_res_id", "absent"};
    std::array<std::string, 4> values;
    query_params(
        "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=a+b"
        "&resource=second&mi_res_id=%2Fsubscriptions%2Fx",
        names, values);
    EXPECT_EQ(values[0], "https://vault.azure.net");
    EXPECT_EQ(values[1], "a b");
    EXPECT_EQ(values[2], "/subscriptions/x");
    EXPECT_EQ(values[3], "");
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(values[i],
                  query_param("api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
                              "&client_id=a+b&resource=second&mi_res_id=%2Fsubscriptions%2Fx",
                              names[i]))
            << names[i];
    }
}

TEST(QueryParams, ViewsPointIntoTheQueryUnlessDecodingChangedTheValue) {
    const std::string query =
        "api-version=2018-02-01&resource=https://vault.azure.net&client_id=a+b&object_id=%zz"
        "&mi_res_id=%2Fsubscriptions%2Fx&object_id=ok";
    const std::array<std::string_view, 5> names = {"resource", "client_id", "mi_res_id",
                                                   "object_id", "absent"};
    std::array<std::string_view, 5> values;
    std::string decoded;
    query_param_views(query, names, values, decoded);
    EXPECT_EQ(values[0], "https://vault.azure.net");
    EXPECT_TRUE(values[0].data() >= query.data() &&
                values[0].data() + values[0].size() <= query.data() + query.size());
    EXPECT_EQ(values[1], "a b");
    EXPECT_EQ(values[2], "/subscriptions/x");
    EXPECT_EQ(decoded, "a b/subscriptions/x");  // both decoded values, viewed in place
    EXPECT_EQ(values[1].data(), decoded.data());
    EXPECT_EQ(values[2].data(), decoded.data() + 3);
    EXPECT_EQ(values[3], "ok");  // the pair with an invalid escape is skipped, as Go does
    EXPECT_EQ(values[4], "");
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(values[i], query_param(query, names[i])) << names[i];
    }
    for (const QueryCase& c : kQueryCases) {
        std::string_view value;
        std::string storage = "left over";
        query_param_views(c.query, std::span<const std::string_view>{&c.key, 1},
                          std::span<std::string_view>{&value, 1}, storage);
        EXPECT_EQ(value, c.expected) << c.name;
    }
}

}  // namespace
}  // namespace nmid::http
