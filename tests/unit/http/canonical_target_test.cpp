#include "nmid/http/canonical_target.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>

namespace nmid::http {
namespace {

constexpr std::string_view kToken = "/metadata/identity/oauth2/token";

struct CanonCase {
    std::string_view name;
    std::string_view target;
    std::string_view path;  ///< expected canonical path; "" when malformed
    bool exact;             ///< expected exact()
};

std::ostream& operator<<(std::ostream& os, const CanonCase& c) {
    return os << c.name;
}

constexpr std::string_view kMalformed{};

// Every spelling of issue 11 finding 1, and more.
constexpr CanonCase kCases[] = {
    // Already canonical.
    {"token", "/metadata/identity/oauth2/token", kToken, true},
    {"token_with_query", "/metadata/identity/oauth2/token?api-version=1&resource=x", kToken, true},
    {"root", "/", "/", true},
    {"instance_compute", "/metadata/instance/compute/vmId", "/metadata/instance/compute/vmId",
     true},
    {"case_is_kept", "/Metadata/IDENTITY/OAuth2/Token", "/Metadata/IDENTITY/OAuth2/Token", true},
    {"dot_inside_a_segment", "/a/.b/c.d/..e", "/a/.b/c.d/..e", true},
    {"plus_stays", "/metadata+/identity", "/metadata+/identity", true},
    {"utf8_bytes_stay", "/caf\xc3\xa9", "/caf\xc3\xa9", true},

    // Backslashes, raw and encoded (CVE-2022-23551).
    {"backslashes", R"(/metadata\identity\oauth2\token)", kToken, false},
    {"mixed_slashes", R"(/metadata/identity/\oauth2\\token/)", kToken, false},
    {"encoded_backslash_lower", "/metadata%5cidentity%5coauth2%5ctoken", kToken, false},
    {"encoded_backslash_upper", "/metadata%5Cidentity%5Coauth2%5Ctoken", kToken, false},
    {"encoded_slash_lower", "/metadata%2fidentity%2foauth2%2ftoken", kToken, false},
    {"encoded_slash_upper", "/metadata%2Fidentity%2Foauth2%2Ftoken", kToken, false},
    {"encoded_letters", "/%6detadata/identity/oauth2/token", kToken, false},
    {"every_byte_encoded",
     "/%6d%65%74%61%64%61%74%61/%69%64%65%6e%74%69%74%79/%6f%61%75%74%68%32/%74%6f%6b%65%6e",
     kToken, false},

    // Double encoding: a valid escape left after one decoding is malformed.
    {"double_encoded_backslash", "/metadata%255cidentity%255coauth2%255ctoken", kMalformed, false},
    {"double_encoded_slash", "/metadata%252Fidentity/oauth2/token", kMalformed, false},
    {"double_encoded_letter", "/%256detadata/identity/oauth2/token", kMalformed, false},
    {"encoded_percent_without_hex_is_kept", "/a%25zz", "/a%zz", false},
    {"encoded_percent_at_end", "/a%25", "/a%", false},

    // Invalid escapes and control bytes.
    {"invalid_escape", "/metadata/identity/oauth2/token%zz", kMalformed, false},
    {"truncated_escape", "/metadata/instance%2", kMalformed, false},
    {"lone_percent", "/latest/100%", kMalformed, false},
    {"encoded_nul", "/metadata/identity%00/oauth2/token", kMalformed, false},
    {"encoded_newline", "/metadata/identity%0Aoauth2%0Atoken", kMalformed, false},
    {"encoded_tab", "/metadata%09/instance", kMalformed, false},
    {"encoded_del", "/metadata%7f/instance", kMalformed, false},
    {"raw_control_byte", "/metadata/\x01instance", kMalformed, false},
    {"invalid_escape_in_query_is_not_the_path", "/metadata/instance?x=%zz", "/metadata/instance",
     true},

    // Path parameters.
    {"semicolon_after_metadata", "/metadata;/identity/oauth2/token", kToken, false},
    {"parameters_in_every_segment", "/metadata;a=b/identity;x/oauth2;/token;v=1", kToken, false},
    {"encoded_semicolon", "/metadata%3B/identity/oauth2/token", kToken, false},
    {"parameter_only_segment", "/;x/metadata/identity/oauth2/token", kToken, false},
    {"dot_dot_with_parameter", "/x/..;/metadata/identity/oauth2/token", kToken, false},

    // Fragments.
    {"fragment_inside_token", "/metadata/identity/oauth2/to#ken", "/metadata/identity/oauth2/to",
     false},
    {"fragment_after_path", "/metadata/identity/oauth2/token#x", kToken, false},
    {"fragment_hides_query", "/metadata/instance#?x=1", "/metadata/instance", false},
    {"fragment_after_query", "/metadata/instance?x=1#y", "/metadata/instance", false},

    // Empty and dot segments, trailing slash.
    {"double_slash_prefix", "//metadata/identity/oauth2/token", kToken, false},
    {"double_slash_inside", "/metadata//identity/oauth2//token", kToken, false},
    {"dot_segment", "/metadata/./identity/oauth2/token", kToken, false},
    {"dot_dot_segment", "/x/../metadata/identity/oauth2/token", kToken, false},
    {"dot_dot_above_root", "/../../metadata/identity/oauth2/token", kToken, false},
    {"encoded_dot_dot", "/x/%2e%2e/metadata/identity/oauth2/token", kToken, false},
    {"encoded_dot_dot_upper", "/x/%2E%2E/metadata/identity/oauth2/token", kToken, false},
    {"trailing_slash", "/metadata/identity/oauth2/token/", kToken, false},
    {"trailing_dot", "/metadata/identity/oauth2/token/.", kToken, false},
    {"trailing_dot_dot", "/metadata/identity/oauth2/token/x/..", kToken, false},
    {"escape_to_instance", "/metadata/identity/oauth2/token/../../../instance",
     "/metadata/instance", false},
    {"only_slashes", "///", "/", false},
    {"only_dots", "/./..", "/", false},

    // Target forms.
    {"absolute_form", "http://169.254.169.254/metadata/identity/oauth2/token?resource=x", kToken,
     true},
    {"absolute_form_backslash", R"(http://h/metadata\identity\oauth2\token)", kToken, false},
    {"absolute_form_without_path", "http://169.254.169.254", "/", false},
    {"absolute_form_query_without_path", "http://h?a=b", "/", false},
    {"absolute_form_fragment_in_authority", "http://h#/metadata/instance", "/", false},
    {"empty", "", "/", false},
    {"asterisk", "*", "/*", false},
    {"relative", "metadata/identity/oauth2/token", kToken, false},
};

class CanonicalTable : public testing::TestWithParam<CanonCase> {};

TEST_P(CanonicalTable, CanonicalisesToThePathExpected) {
    const CanonCase& c = GetParam();
    const CanonicalTarget t = canonicalize(c.target);
    EXPECT_EQ(t.malformed(), c.path.empty()) << c.target;
    EXPECT_EQ(t.path(), c.path) << c.target;
    EXPECT_EQ(t.exact(), c.exact) << c.target;
}

TEST_P(CanonicalTable, CanonicalFormIsAFixedPointOnTheWire) {
    const CanonCase& c = GetParam();
    const CanonicalTarget t = canonicalize(c.target);
    if (t.malformed()) {
        return;
    }
    std::string wire;
    append_encoded_path(wire, t.path());
    const CanonicalTarget again = canonicalize(wire);
    ASSERT_FALSE(again.malformed()) << wire;
    EXPECT_EQ(again.path(), t.path()) << wire;
    EXPECT_EQ(again.exact(), wire == t.path()) << wire;
}

INSTANTIATE_TEST_SUITE_P(Canonical, CanonicalTable, testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string{info.param.name}; });

TEST(CanonicalTarget, KeepsRawPathAndQuery) {
    const CanonicalTarget t = canonicalize("/metadata%2Finstance?api-version=1&x=%2F#frag");
    EXPECT_EQ(t.raw_path(), "/metadata%2Finstance");
    EXPECT_EQ(t.query(), "api-version=1&x=%2F");
    EXPECT_TRUE(t.has_fragment());
    EXPECT_EQ(t.path(), "/metadata/instance");
    EXPECT_EQ(canonicalize("/x?").query(), "");
    EXPECT_EQ(canonicalize("/x??a=b").query(), "?a=b");
    EXPECT_EQ(canonicalize("/x").query(), "");
}

TEST(CanonicalTarget, AlreadyCanonicalPathIsAViewOfTheTarget) {
    const std::string target = "/metadata/identity/oauth2/token?resource=x";
    const CanonicalTarget t = canonicalize(target);
    EXPECT_EQ(t.path().data(), target.data());
    EXPECT_TRUE(t.exact());
}

TEST(CanonicalTarget, CopiesKeepTheirOwnCanonicalPath) {
    const std::string target = "/a/./b//c";
    CanonicalTarget copy;
    {
        const CanonicalTarget original = canonicalize(target);
        copy = original;
    }
    EXPECT_EQ(copy.path(), "/a/b/c");
}

TEST(CanonicalTarget, LongPathsAreCanonicalisedToo) {
    std::string target = "/" + std::string(5000, 'a') + R"(/..\metadata%5Cidentity;x/oauth2/token)";
    EXPECT_EQ(canonicalize(target).path(), kToken);
    std::string canonical = "/metadata/instance/" + std::string(5000, 'b');
    EXPECT_TRUE(canonicalize(canonical).exact());
}

TEST(CanonicalTarget, EncodingSpellsEveryUnusualByte) {
    std::string out;
    append_encoded_path(out, "/a b/%/?#/\xc3\xa9/x-y_z~!$&'()*+,=:@");
    EXPECT_EQ(out, "/a%20b/%25/%3F%23/%C3%A9/x-y_z~!$&'()*+,=:@");
}

}  // namespace
}  // namespace nmid::http
