// Inputs the crd_parse fuzz target found (tests/fuzz): a --crds-file is written by operators,
// but nmid must never hang, throw or write a multi-line log record because of one.
#include <gtest/gtest.h>

#include <string>

#include "nmid/crd/crd_parse.hpp"

namespace nmid {
namespace {

std::string error_of(std::string_view text) {
    std::string detail;
    const auto result = parse_crds(text, &detail);
    EXPECT_FALSE(result.has_value()) << text;
    return detail;
}

// yaml-cpp 0.7's LoadAll loops forever, growing memory, on these two bytes; each document is
// now loaded on its own.
TEST(CrdParseHostile, TwoBytesThatHangYamlCppLoadAllAreAnEmptySnapshot) {
    std::string detail;
    const auto result = parse_crds(",\n", &detail);
    ASSERT_TRUE(result.has_value()) << detail;
    EXPECT_TRUE(result->identities.empty());
    const auto more = parse_crds("---\n,\n---\n,\n", &detail);
    ASSERT_TRUE(more.has_value()) << detail;
}

// nlohmann's dump() throws on invalid UTF-8: the error text replaces it instead.
TEST(CrdParseHostile, InvalidUtf8ApiVersionIsAnErrorNotAnException) {
    std::string text = "apiVersion: \"\xe4\"\nkind: AzureIdentity\nmetadata: {name: x}\n";
    std::string detail;
    EXPECT_NO_THROW({ detail = error_of(text); });
    EXPECT_NE(detail.find("apiVersion must be aadpodidentity.k8s.io/v1"), std::string::npos)
        << detail;
}

// yaml-cpp quotes the input in its messages; a detail is logged as one line.
TEST(CrdParseHostile, YamlErrorDetailIsOneLine) {
    const std::string text =
        std::string{"apiVersion: aadpodidentity.k8s.io/P"} + '\0' +
        "\nkind: AzureIdentity\nmetadata:\n  name: sp\n  namespace: team-a\n  x: [\n\"\n";
    const std::string detail = error_of(text);
    EXPECT_FALSE(detail.empty());
    for (const char c : detail) {
        EXPECT_GE(static_cast<unsigned char>(c), 0x20) << detail;
    }
}

}  // namespace
}  // namespace nmid
