#include "nmid/crd/identity_validation.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nmid/cloud/aad_endpoint.hpp"
#include "nmid/core/ascii.hpp"

namespace nmid {
namespace {

constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";

ObjectMeta meta(std::string ns, std::string name, std::string rv = {}) {
    ObjectMeta m;
    m.namespace_name = std::move(ns);
    m.name = std::move(name);
    m.resource_version = std::move(rv);
    return m;
}

AzureIdentity msi(std::string client_id, std::string resource_id) {
    AzureIdentity id;
    id.meta.namespace_name = "team-b";
    id.meta.name = "msi";
    id.type = 0;
    id.client_id = std::move(client_id);
    id.resource_id = std::move(resource_id);
    return id;
}

/// A valid type 1 identity in namespace team-b naming its own Secret.
AzureIdentity service_principal() {
    AzureIdentity id;
    id.meta.namespace_name = "team-b";
    id.meta.name = "sp";
    id.type = 1;
    id.client_id = "00000000-0000-0000-0000-0000000000c1";
    id.tenant_id = kTenant;
    id.client_password = {.namespace_name = "team-b", .name = "sp-secret"};
    return id;
}

std::optional<RejectReason> reason_of(const AzureIdentity& id, const IdentityPolicy& policy) {
    const auto r = validate(id, policy);
    return r ? std::optional{r->reason} : std::nullopt;
}

struct Case {
    const char* what;
    std::function<void(AzureIdentity&)> change;  ///< applied to service_principal()
    std::optional<RejectReason> want;            ///< nullopt: accepted
};

TEST(ValidateIdentity, ManagedIdentityNeedsAClientIdOrAResourceId) {
    const IdentityPolicy strict;
    EXPECT_EQ(reason_of(msi("", ""), strict), RejectReason::no_client_or_resource_id);
    EXPECT_EQ(reason_of(msi("c1", ""), strict), std::nullopt);
    EXPECT_EQ(reason_of(msi("", "/subscriptions/s/resourcegroups/rg/x"), strict), std::nullopt);
    EXPECT_EQ(reason_of(msi("c1", "/subscriptions/s/x"), strict), std::nullopt);
    // A managed identity's Secret reference and endpoint are not used: not checked.
    AzureIdentity odd = msi("c1", "");
    odd.ad_endpoint = "http://anything/";
    odd.client_password = {.namespace_name = "team-a", .name = "x"};
    EXPECT_EQ(reason_of(odd, strict), std::nullopt);
}

TEST(ValidateIdentity, ServicePrincipalTable) {
    const IdentityPolicy strict;
    const std::vector<Case> cases = {
        {"valid, default endpoint", [](AzureIdentity&) {}, std::nullopt},
        {"type 2 valid", [](AzureIdentity& id) { id.type = 2; }, std::nullopt},
        {"type 3", [](AzureIdentity& id) { id.type = 3; }, RejectReason::unsupported_type},
        {"type -1", [](AzureIdentity& id) { id.type = -1; }, RejectReason::unsupported_type},
        {"no tenant", [](AzureIdentity& id) { id.tenant_id.clear(); }, RejectReason::no_tenant_id},
        {"tenant with a slash", [](AzureIdentity& id) { id.tenant_id = "t/../evil"; },
         RejectReason::tenant_id_invalid},
        {"tenant ..", [](AzureIdentity& id) { id.tenant_id = ".."; },
         RejectReason::tenant_id_invalid},
        {"domain tenant", [](AzureIdentity& id) { id.tenant_id = "contoso.onmicrosoft.com"; },
         std::nullopt},
        {"bad auxiliary tenant",
         [](AzureIdentity& id) {
             id.auxiliary_tenant_ids = {"ok-tenant", "a?b"};
         },
         RejectReason::tenant_id_invalid},
        {"no client id", [](AzureIdentity& id) { id.client_id.clear(); },
         RejectReason::no_client_id},
        {"type 2 no client id",
         [](AzureIdentity& id) {
             id.type = 2;
             id.client_id.clear();
         },
         RejectReason::no_client_id},
        {"no secret name", [](AzureIdentity& id) { id.client_password.name.clear(); },
         RejectReason::no_secret_reference},
        {"no secret namespace",
         [](AzureIdentity& id) { id.client_password.namespace_name.clear(); },
         RejectReason::no_secret_reference},
        // Finding 3: a tenant in namespace team-b naming team-a's Secret.
        {"secret in another namespace",
         [](AzureIdentity& id) { id.client_password.namespace_name = "team-a"; },
         RejectReason::cross_namespace_secret},
        {"type 2 secret in another namespace",
         [](AzureIdentity& id) {
             id.type = 2;
             id.client_password.namespace_name = "kube-system";
         },
         RejectReason::cross_namespace_secret},
        {"public cloud",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com/"; },
         std::nullopt},
        {"US Gov", [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.us"; },
         std::nullopt},
        {"China", [](AzureIdentity& id) { id.ad_endpoint = "https://login.chinacloudapi.cn/"; },
         std::nullopt},
        {"China partner",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.partner.microsoftonline.cn/"; },
         std::nullopt},
        {"upper-case scheme and host",
         [](AzureIdentity& id) { id.ad_endpoint = "HTTPS://LOGIN.MicrosoftOnline.com/"; },
         std::nullopt},
        {"explicit port 443",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com:443/"; },
         std::nullopt},
        {"Azure AD on another port",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com:8443/"; },
         RejectReason::ad_endpoint_not_allowed},
        // Finding 3: plain http hands the secret to anyone on the path.
        {"http", [](AzureIdentity& id) { id.ad_endpoint = "http://login.microsoftonline.com/"; },
         RejectReason::ad_endpoint_not_https},
        {"http to a tenant's host",
         [](AzureIdentity& id) { id.ad_endpoint = "http://attacker.example/"; },
         RejectReason::ad_endpoint_not_https},
        {"https to a tenant's host",
         [](AzureIdentity& id) { id.ad_endpoint = "https://attacker.example/"; },
         RejectReason::ad_endpoint_not_allowed},
        {"look-alike suffix",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com.evil.io/"; },
         RejectReason::ad_endpoint_not_allowed},
        {"trailing dot",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com./"; },
         RejectReason::ad_endpoint_not_allowed},
        {"user info",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com@evil.io/"; },
         RejectReason::ad_endpoint_invalid},
        {"backslash before @",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com\\@evil.io/"; },
         RejectReason::ad_endpoint_invalid},
        {"fragment hides the host",
         [](AzureIdentity& id) { id.ad_endpoint = "https://evil.io#@login.microsoftonline.com/"; },
         RejectReason::ad_endpoint_not_allowed},
        {"percent-encoded host",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login%2emicrosoftonline.com/"; },
         RejectReason::ad_endpoint_invalid},
        {"IPv6 literal", [](AzureIdentity& id) { id.ad_endpoint = "https://[::1]/"; },
         RejectReason::ad_endpoint_invalid},
        {"empty port",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com:/"; },
         RejectReason::ad_endpoint_invalid},
        {"relative", [](AzureIdentity& id) { id.ad_endpoint = "login.microsoftonline.com"; },
         RejectReason::ad_endpoint_invalid},
        {"ftp", [](AzureIdentity& id) { id.ad_endpoint = "ftp://login.microsoftonline.com/"; },
         RejectReason::ad_endpoint_not_https},
        {"space in path",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com/a b/"; },
         RejectReason::ad_endpoint_invalid},
        {"path and query kept",
         [](AzureIdentity& id) { id.ad_endpoint = "https://login.microsoftonline.com/x/?q#f"; },
         std::nullopt},
    };
    for (const Case& c : cases) {
        AzureIdentity id = service_principal();
        c.change(id);
        const auto got = validate(id, strict);
        EXPECT_EQ(got ? std::optional{got->reason} : std::nullopt, c.want) << c.what;
        if (got) {
            EXPECT_FALSE(got->text.empty()) << c.what;
            // The endpoint is never echoed (it may carry user info); at most its checked host.
            if (!id.ad_endpoint.empty()) {
                EXPECT_EQ(got->text.find(id.ad_endpoint), std::string::npos) << c.what;
            }
            EXPECT_EQ(got->text.find('@'), std::string::npos) << c.what << ": " << got->text;
        }
    }
}

TEST(ValidateIdentity, PolicyAllowsCrossNamespaceSecretsOnlyWhenAsked) {
    AzureIdentity id = service_principal();
    id.client_password.namespace_name = "team-a";
    EXPECT_EQ(reason_of(id, {}), RejectReason::cross_namespace_secret);
    EXPECT_EQ(reason_of(id, {.allow_cross_namespace_secrets = true}), std::nullopt);
    // The other rules still apply.
    id.ad_endpoint = "http://login.microsoftonline.com/";
    EXPECT_EQ(reason_of(id, {.allow_cross_namespace_secrets = true}),
              RejectReason::ad_endpoint_not_https);
}

TEST(ValidateIdentity, AllowlistAddsHostsWithAnyPortOrOnePort) {
    const IdentityPolicy policy{
        .extra_authorities = {{.host = "127.0.0.1"}, {.host = "aad.test", .port = 8443}}};
    const std::vector<std::pair<std::string, std::optional<RejectReason>>> cases = {
        {"https://127.0.0.1:41234/", std::nullopt},
        {"https://127.0.0.1/", std::nullopt},
        {"http://127.0.0.1:41234/", RejectReason::ad_endpoint_not_https},
        {"https://aad.test:8443/", std::nullopt},
        {"https://AAD.test:8443/adfs/", std::nullopt},
        {"https://aad.test/", RejectReason::ad_endpoint_not_allowed},
        {"https://aad.test:8444/", RejectReason::ad_endpoint_not_allowed},
        {"https://127.0.0.2:41234/", RejectReason::ad_endpoint_not_allowed},
        {"https://login.microsoftonline.com/", std::nullopt},
    };
    for (const auto& [endpoint, want] : cases) {
        AzureIdentity id = service_principal();
        id.ad_endpoint = endpoint;
        EXPECT_EQ(reason_of(id, policy), want) << endpoint;
    }
    AzureIdentity fake = service_principal();
    fake.ad_endpoint = "https://127.0.0.1:41234/";
    EXPECT_EQ(reason_of(fake, {}), RejectReason::ad_endpoint_not_allowed);
}

// The host validate() checks must be the host the AAD client connects to: for every endpoint
// validate() accepts, cloud::parse_aad_endpoint (what the fetch uses) agrees on https, host and
// port, and the host is an allowed one.
TEST(ValidateIdentity, AcceptedEndpointsAreParsedAlikeByTheAadClient) {
    const IdentityPolicy policy{.extra_authorities = {{.host = "127.0.0.1"}}};
    const std::vector<std::string> endpoints = {
        "",
        "https://login.microsoftonline.com/",
        "https://LOGIN.microsoftonline.com",
        "https://login.microsoftonline.com:443/tenant-path/",
        "https://login.microsoftonline.com/?x=1#frag",
        "https://login.microsoftonline.com#@evil.io/",
        "https://login.microsoftonline.com?@evil.io/",
        "https://login.microsoftonline.com@evil.io/",
        "https://login.microsoftonline.com:443@evil.io/",
        "https://login.microsoftonline.com\\@evil.io/",
        "https://login.microsoftonline.com%40evil.io/",
        "https://login.microsoftonline.com:443:80/",
        "https://[login.microsoftonline.com]/",
        "https://127.0.0.1:1/",
        "https://127.0.0.1:65535/x/",
        "https://127.0.0.1:65536/",
        "https://127.0.0.1:0/",
        "https://evil.io/login.microsoftonline.com/",
        "https:///login.microsoftonline.com/",
        "https://login.microsoftonline.com /",
        "https://login.microsoftonline.com\t/",
        "https://login.microsoftonline.com\r\n@evil.io/",
        "https:/login.microsoftonline.com/",
        " https://login.microsoftonline.com/",
    };
    std::size_t accepted = 0;
    for (const std::string& endpoint : endpoints) {
        AzureIdentity id = service_principal();
        id.ad_endpoint = endpoint;
        if (validate(id, policy)) {
            continue;
        }
        ++accepted;
        const auto parsed = cloud::parse_aad_endpoint(endpoint, kTenant);
        ASSERT_TRUE(parsed.has_value()) << endpoint;
        EXPECT_TRUE(parsed->https) << endpoint;
        const bool azure =
            iequals(parsed->host, "login.microsoftonline.com") && parsed->port == 443;
        const bool allowlisted = parsed->host == "127.0.0.1";
        EXPECT_TRUE(azure || allowlisted) << endpoint << " -> " << parsed->host;
    }
    EXPECT_EQ(accepted, 9U);
}

TEST(AadAuthorityAllowlist, ParsesHostsAndPorts) {
    const auto ok = parse_aad_authority_allowlist(" 127.0.0.1:8443, Login.Contoso.example ,,aad_1");
    ASSERT_TRUE(ok.has_value());
    const std::vector<AadAuthority> want = {
        {.host = "127.0.0.1", .port = 8443},
        {.host = "login.contoso.example"},
        {.host = "aad_1"},
    };
    EXPECT_EQ(*ok, want);
    EXPECT_TRUE(parse_aad_authority_allowlist("")->empty());
    for (const char* bad : {"https://aad.test", "aad.test:0", "aad.test:65536", "aad.test:",
                            "aad.test/x", "[::1]:443", "a b", "user@aad.test", ":443"}) {
        std::string error;
        EXPECT_FALSE(parse_aad_authority_allowlist(bad, &error).has_value()) << bad;
        EXPECT_NE(error.find('"'), std::string::npos) << bad;
    }
}

TEST(AadAuthorityAllowlist, MakesThePolicyFromTheSettings) {
    CrdSettings settings;
    settings.allow_cross_namespace_secrets = true;
    settings.aad_authority_allowlist = "127.0.0.1";
    const auto policy = make_identity_policy(settings);
    ASSERT_TRUE(policy.has_value());
    EXPECT_TRUE(policy->allow_cross_namespace_secrets);
    ASSERT_EQ(policy->extra_authorities.size(), 1U);
    EXPECT_EQ(policy->extra_authorities[0].host, "127.0.0.1");
    std::string error;
    settings.aad_authority_allowlist = "x y";
    EXPECT_FALSE(make_identity_policy(settings, &error));
    EXPECT_FALSE(error.empty());
}

TEST(RejectReason, EveryReasonHasItsOwnName) {
    std::vector<std::string_view> names;
    for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
        const auto name = to_string(static_cast<RejectReason>(i));
        EXPECT_NE(name, "unknown") << i;
        EXPECT_EQ(std::find(names.begin(), names.end(), name), names.end()) << name;
        names.push_back(name);
    }
}

TEST(ScreenSnapshot, DropsRefusedIdentitiesAndAssignmentsAndKeepsTheRest) {
    CrdSnapshot in;
    AzureIdentity good = msi("c1", "");
    good.meta.name = "a-good";
    AzureIdentity nameless = msi("", "");  // finding 2
    nameless.meta.name = "b-nameless";
    nameless.meta.resource_version = "17";
    AzureIdentity thief = service_principal();  // finding 3
    thief.meta.name = "c-thief";
    thief.client_password.namespace_name = "team-a";
    in.identities = {good, nameless, thief};
    AzureIdentityBinding binding;
    binding.meta = meta("team-b", "bind");
    binding.azure_identity = "b-nameless";
    binding.selector = "x";
    in.bindings = {binding};
    in.exceptions.emplace_back();
    AzureAssignedIdentity ok_assignment;
    ok_assignment.meta = meta("team-b", "pod-team-b-a-good");
    ok_assignment.identity_ref = good;
    AzureAssignedIdentity bad_assignment;
    bad_assignment.meta = meta("team-b", "pod-team-b-b-nameless", "99");
    bad_assignment.identity_ref = nameless;
    in.assigned = {ok_assignment, bad_assignment};

    const ScreenedSnapshot out = screen_snapshot(in, {});
    ASSERT_TRUE(out.kept.has_value());
    ASSERT_EQ(out.kept->identities.size(), 1U);
    EXPECT_EQ(out.kept->identities[0], good);
    EXPECT_EQ(out.kept->bindings, in.bindings);  // left for the resolver to find nothing
    EXPECT_EQ(out.kept->exceptions, in.exceptions);
    ASSERT_EQ(out.kept->assigned.size(), 1U);
    EXPECT_EQ(out.kept->assigned[0], ok_assignment);

    ASSERT_EQ(out.rejected.size(), 3U);
    EXPECT_EQ(out.rejected[0].kind, "AzureIdentity");
    EXPECT_EQ(out.rejected[0].name, "b-nameless");
    EXPECT_EQ(out.rejected[0].resource_version, "17");
    EXPECT_EQ(out.rejected[0].rejection.reason, RejectReason::no_client_or_resource_id);
    EXPECT_EQ(out.rejected[1].name, "c-thief");
    EXPECT_EQ(out.rejected[1].rejection.reason, RejectReason::cross_namespace_secret);
    EXPECT_EQ(out.rejected[2].kind, "AzureAssignedIdentity");
    EXPECT_EQ(out.rejected[2].namespace_name, "team-b");
    EXPECT_EQ(out.rejected[2].name, "pod-team-b-b-nameless");
    EXPECT_EQ(out.rejected[2].resource_version, "99");
    EXPECT_NE(out.rejected[2].rejection.text.find("team-b/b-nameless"), std::string::npos);
}

TEST(ScreenSnapshot, NothingRefusedMeansNoCopy) {
    CrdSnapshot in;
    in.identities = {msi("c1", ""), service_principal()};
    const ScreenedSnapshot out = screen_snapshot(in, {});
    EXPECT_FALSE(out.kept.has_value());
    EXPECT_TRUE(out.rejected.empty());
}

}  // namespace
}  // namespace nmid
