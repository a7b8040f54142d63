#include "nmid/cloud/base64.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace nmid::cloud {
namespace {

struct Vector {
    std::string bytes;
    std::string std_text;
    std::string url_unpadded;
};

TEST(Base64, EncodesRfc4648VectorsInBothAlphabets) {
    const Vector vectors[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
        {std::string("\xfb\xff\xbf", 3), "+/+/", "-_-_"},
        {std::string("\x00\x01", 2), "AAE=", "AAE"},
    };
    for (const auto& v : vectors) {
        EXPECT_EQ(base64_encode(v.bytes), v.std_text) << v.std_text;
        EXPECT_EQ(base64url_encode(v.bytes, /*pad=*/false), v.url_unpadded) << v.std_text;
        std::string padded = v.url_unpadded;
        while (padded.size() % 4 != 0) {
            padded += '=';
        }
        EXPECT_EQ(base64url_encode(v.bytes, /*pad=*/true), padded) << v.std_text;
        EXPECT_EQ(base64_decode(v.std_text), std::optional<std::string>{v.bytes}) << v.std_text;
    }
}

TEST(Base64, DecodesBinaryRoundTrip) {
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all += static_cast<char>(i);
    }
    EXPECT_EQ(base64_decode(base64_encode(all)), std::optional<std::string>{all});
}

TEST(Base64, RejectsWhatKubernetesNeverSends) {
    const char* bad[] = {
        "Zg",        // missing padding
        "Zg=",       // short padding
        "Z===",      // too much padding
        "Zm9v!A==",  // outside the alphabet
        "Zm-_",      // URL alphabet
        "Zm=v",      // padding in the middle
        "Zh==",      // non-zero trailing bits
        "Zm9 v",     // space
    };
    for (const char* text : bad) {
        EXPECT_EQ(base64_decode(text), std::nullopt) << text;
    }
}

}  // namespace
}  // namespace nmid::cloud
