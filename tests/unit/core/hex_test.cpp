#include "nmid/core/hex.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace nmid {
namespace {

TEST(HexValue, DigitsOfBothCasesAndNothingElse) {
    static_assert(hex_value('0') == 0 && hex_value('9') == 9);
    static_assert(hex_value('a') == 10 && hex_value('F') == 15);
    for (const char c : std::string_view{"gG/:@`\0 %-", 10}) {
        EXPECT_EQ(hex_value(c), -1) << static_cast<int>(c);
    }
    EXPECT_EQ(hex_value('c'), 12);
    EXPECT_EQ(hex_value('D'), 13);
}

TEST(PercentEncode, KeepsUnreservedAndEncodesEveryOtherByte) {
    EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
    EXPECT_EQ(percent_encode("spec.nodeName=node 1/x+y&z"), "spec.nodeName%3Dnode%201%2Fx%2By%26z");
    EXPECT_EQ(percent_encode(std::string{"\x00\xff\x7f", 3}), "%00%FF%7F");
    EXPECT_EQ(percent_encode(""), "");
}

struct DecodeCase {
    std::string in;
    bool plus_is_space;
    std::string out;
};

TEST(PercentDecode, DecodesValidEscapesAndKeepsTheRest) {
    const std::vector<DecodeCase> cases{
        {"a%20b%2fc%2F", true, "a b/c/"},
        {"a+b", true, "a b"},
        {"a+b", false, "a+b"},
        {"%2B", true, "+"},
        {"%", true, "%"},
        {"%4", true, "%4"},
        {"ab%4", true, "ab%4"},
        {"%41", true, "A"},
        {"%zz%41", true, "%zzA"},
        {"%%41", true, "%A"},
        {"%00x", false, std::string{"\x00x", 2}},
        {"", true, ""},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(percent_decode(c.in, c.plus_is_space), c.out) << c.in;
    }
}

TEST(PercentDecode, RoundTripsPercentEncode) {
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    EXPECT_EQ(percent_decode(percent_encode(all), true), all);
}

}  // namespace
}  // namespace nmid
