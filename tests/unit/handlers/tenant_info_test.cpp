// /metadata/identity/info's pure parts (issue 14): where a tenant comes from, IMDS's answer
// read as hostile input, and the body nmid writes.
#include "nmid/handlers/tenant_info.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nmid::handlers::detail {
namespace {

// The tenant rule is workload::valid_tenant_id's (a GUID or a domain name), applied to what
// IMDS answers: every refused spelling stays out of the answer.
TEST(TenantInfo, ValidTenantIds) {
    auto from_imds = [](const std::string& tenant) {
        return parse_tenant_info(nlohmann::json{{"tenantId", tenant}}.dump());
    };
    EXPECT_TRUE(from_imds("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    EXPECT_TRUE(from_imds("contoso.onmicrosoft.com"));
    EXPECT_TRUE(from_imds(std::string(253, 'a')));
    const std::vector<std::string> refused = {
        "",    std::string(254, 'a'),  "a b",         "a\"b", "a/b",  "a\\b",
        "t\n", std::string("a\0b", 3), "caf\xc3\xa9", "../x", "a%2fb"};
    for (const std::string& t : refused) {
        EXPECT_FALSE(from_imds(t)) << t;
    }
}

TEST(TenantInfo, TenantOfEachIdentityType) {
    AzureIdentity msi;
    msi.type = 0;
    msi.tenant_id = "ignored-for-managed-identities";
    EXPECT_TRUE(tenant_of(msi).ask_imds);
    EXPECT_FALSE(tenant_of(msi).tenant);
    for (int type : {1, 2}) {
        AzureIdentity sp;
        sp.type = type;
        sp.tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        const IdentityTenant t = tenant_of(sp);
        EXPECT_FALSE(t.ask_imds);
        ASSERT_TRUE(t.tenant);
        EXPECT_EQ(*t.tenant, sp.tenant_id);
        sp.tenant_id = "evil\",\"x\":\"y";  // a tenant-written object: never echoed
        EXPECT_FALSE(tenant_of(sp).tenant);
        EXPECT_FALSE(tenant_of(sp).ask_imds);
    }
}

TEST(TenantInfo, ImdsAnswersReadAsHostileInput) {
    struct Case {
        const char* body;
        std::optional<std::string> tenant;
    };
    const std::vector<Case> cases = {
        {R"({"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47"})",
         "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        {R"({"tenantId":"t1","other":[1,2]})", "t1"},
        {R"({"tenantid":"t1"})", std::nullopt},
        {R"({"tenantId":7})", std::nullopt},
        {R"({"tenantId":""})", std::nullopt},
        {R"({"tenantId":"a\"b"})", std::nullopt},
        {R"(["t1"])", std::nullopt},
        {R"({"tenantId":"t1")", std::nullopt},
        {"", std::nullopt},
        {"<html>", std::nullopt},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(parse_tenant_info(c.body), c.tenant) << c.body;
    }
}

TEST(TenantInfo, AnswerBody) {
    EXPECT_EQ(tenant_info_json("t-1"), R"({"tenantId":"t-1"})");
    EXPECT_EQ(nlohmann::json::parse(tenant_info_json("contoso.com"))["tenantId"], "contoso.com");
}

}  // namespace
}  // namespace nmid::handlers::detail
