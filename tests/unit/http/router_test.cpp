#include "nmid/http/router.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "nmid/core/ascii.hpp"

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

// NMI's TestRouterPathPrefix (pkg/nmi/server/server_test.go) where nmid still agrees, then
// nmid's table on the canonical form (issue 11).
constexpr RouteCase kRouteCases[] = {
    {"nmi_token_request", "/metadata/identity/oauth2/token/", Route::token},
    {"nmi_token_without_slash_suffix", "/metadata/identity/oauth2/token", Route::token},
    {"nmi_token_upper_case_metadata", "/Metadata/identity/oauth2/token/", Route::token},
    {"nmi_host_token", "/host/token/", Route::host_token},
    {"nmi_host_token_without_slash_suffix", "/host/token", Route::host_token},
    {"nmi_instance", "/metadata/instance", Route::instance},
    {"nmi_instance_upper_case_metadata", "/Metadata/instance", Route::instance},
    {"nmi_instance_slash_suffix", "/Metadata/instance/", Route::instance},
    {"nmi_backslash_oauth2", R"(/metadata/identity\oauth2/token/)", Route::invalid_token_path},
    {"nmi_backslash_token", R"(/metadata/identity/oauth2\token/)", Route::invalid_token_path},
    {"nmi_backslash_oauth2_token", R"(/metadata/identity\oauth2\token/)",
     Route::invalid_token_path},
    {"nmi_mix_of_slash_and_backslash", R"(/metadata/identity/\oauth2\token/)",
     Route::invalid_token_path},
    {"nmi_multiple_backslashes", R"(/metadata/identity\\\oauth2\\token/)",
     Route::invalid_token_path},
    // NMI proxied these to IMDS; nmid answers them itself.
    {"upper_case_identity_is_odd", "/metadata/Identity/oauth2/token/", Route::invalid_token_path},
    {"upper_case_oauth2_is_odd", "/metadata/identity/OAuth2/token", Route::invalid_token_path},
    {"upper_case_token_is_odd", "/metadata/identity/oauth2/TOKEN", Route::invalid_token_path},
    {"metadata_root_is_forbidden", "/metadata/", Route::forbidden},

    // The token route: NMI's spelling only.
    {"token_with_query", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
     Route::token},
    {"all_caps_metadata", "/METADATA/identity/oauth2/token", Route::token},
    {"query_cannot_make_a_token_path", "/foo?/metadata/identity/oauth2/token", Route::forbidden},
    {"suffix_is_another_identity_path", "/metadata/identity/oauth2/tokenfoo", Route::identity},
    {"token_subpath_is_another_identity_path", "/metadata/identity/oauth2/token/extra",
     Route::identity},
    {"two_trailing_slashes_are_odd", "/metadata/identity/oauth2/token//",
     Route::invalid_token_path},

    // Every other spelling of the token path: 400.
    {"encoded_slashes", "/metadata/identity%2Foauth2%2Ftoken", Route::invalid_token_path},
    {"encoded_slashes_lower", "/metadata%2fidentity%2foauth2%2ftoken", Route::invalid_token_path},
    {"encoded_letters", "/%6detadata/identity/oauth2/token", Route::invalid_token_path},
    {"encoded_backslashes", "/metadata%5Cidentity%5Coauth2%5Ctoken", Route::invalid_token_path},
    {"encoded_backslashes_lower", "/metadata%5cidentity%5coauth2%5ctoken",
     Route::invalid_token_path},
    {"raw_backslashes", R"(/metadata\identity\oauth2\token)", Route::invalid_token_path},
    {"semicolon_after_metadata", "/metadata;/identity/oauth2/token", Route::invalid_token_path},
    {"semicolon_parameters", "/metadata/identity;a=b/oauth2/token;x", Route::invalid_token_path},
    {"fragment_after_token", "/metadata/identity/oauth2/token#x", Route::invalid_token_path},
    {"double_slash_prefix", "//metadata/identity/oauth2/token", Route::invalid_token_path},
    {"double_slash_inside", "/metadata//identity/oauth2//token", Route::invalid_token_path},
    {"dot_segment", "/metadata/./identity/oauth2/token", Route::invalid_token_path},
    {"dot_dot_segment", "/foo/../metadata/identity/oauth2/token", Route::invalid_token_path},
    {"dot_dot_above_root", "/../../metadata/identity/oauth2/token", Route::invalid_token_path},
    {"encoded_dot_dot", "/x/%2e%2e/metadata/identity/oauth2/token", Route::invalid_token_path},
    {"mixed_case_every_segment", R"(/mEtAdAtA\IdEnTiTy/OaUtH2/ToKeN)", Route::invalid_token_path},

    // Malformed: 400, never forwarded.
    {"double_encoded_backslash", "/metadata%255cidentity%255coauth2%255ctoken", Route::malformed},
    {"double_encoded_instance", "/metadata/%2569nstance", Route::malformed},
    {"invalid_escape_after_token", "/metadata/identity/oauth2/token%zz", Route::malformed},
    {"invalid_escape_inside", "/metadata%/identity/oauth2/token", Route::malformed},
    {"truncated_escape", "/metadata/instance%2", Route::malformed},
    {"lone_percent_anywhere", "/latest/100%", Route::malformed},
    {"encoded_newline", "/metadata/identity%0Aoauth2%0Atoken", Route::malformed},
    {"encoded_nul", "/metadata/instance%00", Route::malformed},
    {"invalid_escape_in_query_is_not_the_path", "/metadata/instance?x=%zz", Route::instance},

    // Anything else under /metadata/identity: nmid's own answer, in any spelling.
    {"identity_root", "/metadata/identity", Route::identity},
    {"identity_root_slash", "/metadata/identity/", Route::identity},
    {"identity_info", "/metadata/identity/info", Route::identity_info},
    {"identity_info_trailing_slash", "/metadata/identity/info/", Route::identity_info},
    {"identity_info_suffix_is_not_info", "/metadata/identity/infox", Route::identity},
    {"issue_credential", "/metadata/identity/issuecredential", Route::identity},
    {"platform_metadata", "/metadata/identity/getplatformmetadata", Route::identity},
    {"identity_upper_case", "/METADATA/IDENTITY/INFO", Route::identity_info},
    {"fragment_inside_token", "/metadata/identity/oauth2/to#ken", Route::identity},
    {"encoded_identity_info", "/metadata%2Fidentity%5Cinfo", Route::identity_info},
    {"semicolon_identity_info", "/metadata;x/identity/info", Route::identity_info},
    {"dot_dot_into_identity", "/metadata/instance/../identity/issuecredential", Route::identity},
    {"identity_prefix_is_not_identity", "/metadata/identityx", Route::forbidden},

    // Cleaning can only lead away from /metadata/identity to what the canonical path is.
    {"token_path_escaping_to_instance", "/metadata/identity/oauth2/token/../../../instance",
     Route::instance},
    {"encoded_escape_to_instance", "/metadata/identity/oauth2/token%2F..%2F..%2F..%2Finstance",
     Route::instance},
    {"dot_dot_hiding_identity", "/metadata/identity/../oauth2/token", Route::forbidden},
    {"odd_path_not_at_start", "/foo/metadata/identity/x/oauth2/y/token", Route::forbidden},
    {"identity_without_metadata", "/identity/oauth2/token", Route::forbidden},
    {"double_slash_host_token", "//host/token", Route::host_token},
    {"dot_dot_instance", "/a/../Metadata/instance?api-version=2021-02-01", Route::instance},

    // /host/token.
    {"host_token_prefix_is_plain", "/host/tokenx", Route::host_token},
    {"host_token_any_case", "/HOST/token", Route::host_token},

    // The proxy's allowlist.
    {"instance_compute", "/metadata/instance/compute?api-version=2021-02-01", Route::instance},
    {"instance_prefix_is_not_instance", "/metadata/instances", Route::forbidden},
    {"versions", "/metadata/versions", Route::proxy},
    {"attested_document", "/metadata/attested/document?api-version=2020-09-01", Route::proxy},
    {"scheduled_events", "/metadata/scheduledevents?api-version=2020-07-01", Route::proxy},
    {"scheduled_events_any_case", "/metadata/scheduledEvents", Route::proxy},
    {"load_balancer", "/metadata/loadbalancer?api-version=2020-10-01", Route::proxy},
    {"versions_subpath_is_forbidden", "/metadata/versions/x", Route::forbidden},
    {"aws_probe", "/latest/meta-data/iam/", Route::forbidden},
    {"gcp_probe", "/computeMetadata/v1/", Route::forbidden},
    {"root", "/", Route::forbidden},
    {"empty", "", Route::forbidden},
    {"asterisk", "*", Route::forbidden},

    // Absolute-form targets are routed by their path.
    {"absolute_form_token", "http://169.254.169.254/metadata/identity/oauth2/token?resource=x",
     Route::token},
    {"absolute_form_odd", R"(http://h/metadata/identity\oauth2\token)", Route::invalid_token_path},
    {"absolute_form_identity", "http://h/metadata/identity/issuecredential", Route::identity},
    {"absolute_form_instance", "http://h/metadata/instance", Route::instance},
    {"absolute_form_without_path", "http://169.254.169.254", Route::forbidden},
};

class RouteTable : public testing::TestWithParam<RouteCase> {};

TEST_P(RouteTable, RoutesOnTheCanonicalForm) {
    const RouteCase& c = GetParam();
    EXPECT_EQ(to_string(route(c.target).route), to_string(c.expected)) << c.target;
}

INSTANTIATE_TEST_SUITE_P(Router, RouteTable, testing::ValuesIn(kRouteCases),
                         [](const auto& info) { return std::string{info.param.name}; });

TEST(Router, NothingUnderMetadataIdentityIsEverAProxyRoute) {
    for (const RouteCase& c : kRouteCases) {
        const RoutedTarget r = route(c.target);
        if (r.canonical.malformed()) {
            continue;
        }
        std::string folded{r.canonical.path()};
        for (char& ch : folded) {
            ch = ascii_lower(ch);
        }
        if (folded == "/metadata/identity" || folded.starts_with("/metadata/identity/")) {
            EXPECT_NE(r.route, Route::proxy) << c.target;
            EXPECT_NE(r.route, Route::instance) << c.target;
            EXPECT_EQ(r.imds, ImdsPath::none) << c.target;
        }
    }
}

TEST(Router, SplitsRawPathAndQuery) {
    const RoutedTarget r =
        route("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=a%20b");
    EXPECT_EQ(r.route, Route::token);
    EXPECT_EQ(r.path, "/metadata/identity/oauth2/token");
    EXPECT_EQ(r.query, "api-version=2018-02-01&resource=a%20b");
    const RoutedTarget odd = route("/metadata/identity%2Foauth2/token?a=b");
    EXPECT_EQ(odd.path, "/metadata/identity%2Foauth2/token");
    EXPECT_EQ(odd.canonical.path(), "/metadata/identity/oauth2/token");
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
    EXPECT_EQ(r.imds, ImdsPath::instance);
    EXPECT_EQ(r.path, "/metadata/instance");
    EXPECT_EQ(r.query, "api-version=1");
}

TEST(Router, LongPathsAreRoutedToo) {
    std::string target = "/metadata/identity/oauth2/token/";
    target.append(4096, 'a');
    EXPECT_EQ(route(target).route, Route::identity);
    std::string odd = "/" + std::string(4096, 'b') + R"(/..\metadata\identity\oauth2\token)";
    EXPECT_EQ(route(odd).route, Route::invalid_token_path);
}

TEST(Router, AllowlistedPathsAndTheirMethods) {
    EXPECT_EQ(route("/metadata/instance/compute").imds, ImdsPath::instance);
    EXPECT_EQ(route("/metadata/versions").imds, ImdsPath::versions);
    EXPECT_EQ(route("/metadata/attested/document").imds, ImdsPath::attested);
    EXPECT_EQ(route("/metadata/scheduledevents").imds, ImdsPath::scheduled_events);
    EXPECT_EQ(route("/metadata/loadbalancer").imds, ImdsPath::load_balancer);
    EXPECT_EQ(route("/metadata/identity/info").imds, ImdsPath::none);
    EXPECT_EQ(route("/latest/meta-data").imds, ImdsPath::none);
    for (const ImdsPath p : {ImdsPath::instance, ImdsPath::versions, ImdsPath::attested,
                             ImdsPath::scheduled_events, ImdsPath::load_balancer}) {
        EXPECT_TRUE(method_allowed(p, "GET"));
        EXPECT_FALSE(method_allowed(p, "get"));
        EXPECT_FALSE(method_allowed(p, "HEAD"));
        EXPECT_FALSE(method_allowed(p, "PUT"));
        EXPECT_FALSE(method_allowed(p, "DELETE"));
        EXPECT_EQ(method_allowed(p, "POST"), p == ImdsPath::scheduled_events);
        EXPECT_EQ(allowed_methods(p), p == ImdsPath::scheduled_events ? "GET, POST" : "GET");
    }
    EXPECT_FALSE(method_allowed(ImdsPath::none, "GET"));
}

TEST(Router, RouteNamesAreStable) {
    EXPECT_EQ(to_string(Route::malformed), "malformed");
    EXPECT_EQ(to_string(Route::token), "token");
    EXPECT_EQ(to_string(Route::invalid_token_path), "invalid_token_path");
    EXPECT_EQ(to_string(Route::identity), "identity");
    EXPECT_EQ(to_string(Route::host_token), "host_token");
    EXPECT_EQ(to_string(Route::instance), "instance");
    EXPECT_EQ(to_string(Route::proxy), "proxy");
    EXPECT_EQ(to_string(Route::forbidden), "forbidden");
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
