#include "nmid/kube/url.hpp"

#include <gtest/gtest.h>

namespace nmid::kube {
namespace {

struct UrlCase {
    const char* input;
    bool ok;
    const char* scheme;
    const char* host;
    std::uint16_t port;
    const char* path;
};

TEST(ParseUrl, Table) {
    const UrlCase cases[] = {
        {"https://10.0.0.1:443", true, "https", "10.0.0.1", 443, ""},
        {"https://10.0.0.1", true, "https", "10.0.0.1", 443, ""},
        {"http://10.240.0.4:10255", true, "http", "10.240.0.4", 10255, ""},
        {"http://10.240.0.4", true, "http", "10.240.0.4", 80, ""},
        {"HTTPS://Api.Example.com:6443/", true, "https", "Api.Example.com", 6443, ""},
        {"https://[fd00::1]:6443", true, "https", "fd00::1", 6443, ""},
        {"https://[::1]", true, "https", "::1", 443, ""},
        {"https://rancher.example/k8s/clusters/c-x/", true, "https", "rancher.example", 443,
         "/k8s/clusters/c-x"},
        {"https://h:1/a/b", true, "https", "h", 1, "/a/b"},
        {"ftp://h", false, "", "", 0, ""},
        {"10.0.0.1:443", false, "", "", 0, ""},
        {"https://", false, "", "", 0, ""},
        {"https://:443", false, "", "", 0, ""},
        {"https://h:", false, "", "", 0, ""},
        {"https://h:0", false, "", "", 0, ""},
        {"https://h:65536", false, "", "", 0, ""},
        {"https://h:12a", false, "", "", 0, ""},
        {"https://fd00::1:443", false, "", "", 0, ""},
        {"https://[fd00::1", false, "", "", 0, ""},
        {"https://[fd00::1]x", false, "", "", 0, ""},
        {"https://[host]:1", false, "", "", 0, ""},
        {"https://user:pw@h", false, "", "", 0, ""},
        {"https://h/?watch=1", false, "", "", 0, ""},
        {"https://h/#frag", false, "", "", 0, ""},
        {"https://h/a b", false, "", "", 0, ""},
        {"https://h o", false, "", "", 0, ""},
    };
    for (const auto& tc : cases) {
        const auto url = parse_url(tc.input);
        ASSERT_EQ(url.has_value(), tc.ok) << tc.input;
        if (!tc.ok) {
            EXPECT_EQ(url.error(), Errc::invalid_config) << tc.input;
            continue;
        }
        EXPECT_EQ(url->scheme, tc.scheme) << tc.input;
        EXPECT_EQ(url->host, tc.host) << tc.input;
        EXPECT_EQ(url->port, tc.port) << tc.input;
        EXPECT_EQ(url->path, tc.path) << tc.input;
        EXPECT_EQ(url->tls(), std::string_view{tc.scheme} == "https") << tc.input;
    }
}

}  // namespace
}  // namespace nmid::kube
