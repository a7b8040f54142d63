#include "nmid/net/url.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nmid::net {
namespace {

struct Case {
    std::string in;
    bool https;
    std::string host;
    std::uint16_t port;
    std::string authority;
    std::string path;
    std::string query;
};

TEST(ParseHttpUrl, SplitsTheParts) {
    const std::vector<Case> cases{
        {"https://login.microsoftonline.com/", true, "login.microsoftonline.com", 443,
         "login.microsoftonline.com", "/", ""},
        {"http://127.0.0.1:8080", false, "127.0.0.1", 8080, "127.0.0.1:8080", "", ""},
        {"HTTPS://Host.Example:6443/base/path", true, "Host.Example", 6443, "Host.Example:6443",
         "/base/path", ""},
        {"https://[::1]:10250/pods", true, "::1", 10250, "[::1]:10250", "/pods", ""},
        {"http://[fe80::1]", false, "fe80::1", 80, "[fe80::1]", "", ""},
        {"https://h/p?q=1#f", true, "h", 443, "h", "/p", "?q=1#f"},
        {"https://h?q", true, "h", 443, "h", "", "?q"},
        {"https://h#frag/x", true, "h", 443, "h", "", "#frag/x"},
        {"http://my_host-1.local:1/", false, "my_host-1.local", 1, "my_host-1.local:1", "/", ""},
        {"http://h:65535", false, "h", 65535, "h:65535", "", ""},
    };
    for (const auto& c : cases) {
        const auto url = parse_http_url(c.in);
        ASSERT_TRUE(url.has_value()) << c.in;
        EXPECT_EQ(*url, (HttpUrl{c.https, c.host, c.port, c.authority, c.path, c.query})) << c.in;
    }
}

TEST(ParseHttpUrl, RejectsWhatIsNotAnHttpOrigin) {
    for (const char* in : {
             "",
             "login.microsoftonline.com",
             "ftp://h/",
             "https//h/",
             "https://",
             "https:///path",
             "https://user@h/",
             "https://user:pw@h/",
             "https://h:/",
             "https://h:0/",
             "https://h:65536/",
             "https://h:99999999999/",
             "https://h:8a/",
             "https://h:-1/",
             "https://h:1:2/",
             "https://ho st/",
             "https://h%41/",
             "https://[::1/",
             "https://[::1]x/",
             "https://[::1]:/",
             "https://[]/",
             "https://[abcd]/",
             "https://[::g]/",
         }) {
        EXPECT_EQ(parse_http_url(in).error(), Errc::invalid_config) << in;
    }
}

}  // namespace
}  // namespace nmid::net
