#include "nmid/cloud/aad_endpoint.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nmid::cloud {
namespace {

constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";

struct Case {
    const char* ad_endpoint;
    bool https;
    const char* host;
    std::uint16_t port;
    const char* authority;
    const char* token_url;
};

TEST(AadEndpoint, ResolvesTheTokenUrlAsAdalDoes) {
    const Case cases[] = {
        {"", true, "login.microsoftonline.com", 443, "login.microsoftonline.com",
         "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        {"https://login.chinacloudapi.cn/", true, "login.chinacloudapi.cn", 443,
         "login.chinacloudapi.cn",
         "https://login.chinacloudapi.cn/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        // No trailing slash: same as with one (empty path resolves to "/").
        {"https://login.microsoftonline.us", true, "login.microsoftonline.us", 443,
         "login.microsoftonline.us",
         "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        // A path keeps its directory only with a trailing slash (relative resolution).
        {"HTTPS://aad.example:8443/adfs/", true, "aad.example", 8443, "aad.example:8443",
         "https://aad.example:8443/adfs/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        {"https://aad.example/adfs", true, "aad.example", 443, "aad.example",
         "https://aad.example/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        {"http://127.0.0.1:8080/", false, "127.0.0.1", 8080, "127.0.0.1:8080",
         "http://127.0.0.1:8080/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        {"http://[::1]:9000/x/?q=1#f", false, "::1", 9000, "[::1]:9000",
         "http://[::1]:9000/x/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token"
         "?api-version=1.0"},
        {"http://aad.local", false, "aad.local", 80, "aad.local",
         "http://aad.local/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/token?api-version=1.0"},
    };
    for (const auto& c : cases) {
        const auto e = parse_aad_endpoint(c.ad_endpoint, kTenant);
        ASSERT_TRUE(e.has_value()) << c.ad_endpoint;
        EXPECT_EQ(e->https, c.https) << c.ad_endpoint;
        EXPECT_EQ(e->host, c.host) << c.ad_endpoint;
        EXPECT_EQ(e->port, c.port) << c.ad_endpoint;
        EXPECT_EQ(e->authority, c.authority) << c.ad_endpoint;
        EXPECT_EQ(e->token_url, c.token_url) << c.ad_endpoint;
        EXPECT_EQ(e->origin() + e->token_target, e->token_url) << c.ad_endpoint;
    }
}

TEST(AadEndpoint, AcceptsDomainTenants) {
    const auto e = parse_aad_endpoint("", "contoso.onmicrosoft.com");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->token_target, "/contoso.onmicrosoft.com/oauth2/token?api-version=1.0");
}

TEST(AadEndpoint, RejectsWhatCannotBeAnAuthority) {
    const char* bad_endpoints[] = {
        "login.microsoftonline.com/",  // no scheme
        "ftp://login.microsoftonline.com/",
        "https://user:pw@login.microsoftonline.com/",
        "https:///path/",
        "https://host:0/",
        "https://host:65536/",
        "https://host:/",
        "https://host:80x/",
        "https://[::1/",
        "https://[zz::1]/",
        "https://ho st/",
        "https://host/pa th/",
        "https://host\r\nX: y/",
    };
    for (const char* endpoint : bad_endpoints) {
        EXPECT_EQ(parse_aad_endpoint(endpoint, kTenant).error(), Errc::invalid_config) << endpoint;
    }
    const char* bad_tenants[] = {"", ".", "..", "a/b", "a?b", "a#b", "a b", "a%2F"};
    for (const char* tenant : bad_tenants) {
        EXPECT_EQ(parse_aad_endpoint("", tenant).error(), Errc::invalid_config) << tenant;
    }
}

}  // namespace
}  // namespace nmid::cloud
