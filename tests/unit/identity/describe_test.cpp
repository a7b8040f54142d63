#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "builders.hpp"
#include "nmid/identity/resolver.hpp"

namespace nmid::identity {
namespace {

constexpr const char* kClientId = "00000000-0000-0000-0000-0000000000a1";
constexpr const char* kClientIdRedacted = "0000##### REDACTED #####00a1";

// The texts of every denial, and which NMI text each one keeps (reference nmi-behaviour 3.5):
//
// | reason                       | NMI source                  | text                        |
// |------------------------------|-----------------------------|-----------------------------|
// | no_binding_label             | managed.go (*)              | failed to get AzureIdentities for
// pod <ns>/<name>, error: <cause> | | no_matching_binding          | managed.go (*)              |
// same shape, cause names the selector | | no_identity_for_binding      | managed.go (*) | same
// shape, cause names the namespace | | requested_identity_not_bound | managed.go, standard.go     |
// no azure identity found for request clientID <cid> | | no_assignment                |
// standard.go, CREATED wait   | [clientID in request: <cid>, ]getting assigned identities for pod
// <ns>/<name> in CREATED state failed after <created> attempts, retry duration [<s>]s, error:
// <nil>. Check MIC pod logs for identity assignment errors | | assignment_pending           |
// standard.go, ASSIGNED wait  | same in ASSIGNED state after <created+assigned> attempts |
//
// (*) NMI itself answered these three with `no azure identity found for request clientID
// <cid>`: its binding lookup returned an empty list rather than an error. nmid uses the shape
// NMI used for a failed lookup so the text says which link is missing.
struct DescribeCase {
    const char* name;
    DenyReason reason;
    TokenQuery query;
    const char* expected;
};

TEST(Describe, NmiTextsTable) {
    const PodInfo p = test::pod("apps", "web-7d9", {{"aadpodidbinding", "web"}});
    const IdentitySettings settings{.mode = OperationMode::standard,
                                    .force_namespaced = false,
                                    .mic_namespace = "default",
                                    .retry_attempts_for_created = 16,
                                    .retry_attempts_for_assigned = 4,
                                    .find_identity_retry_interval = std::chrono::seconds{5}};
    const std::vector<DescribeCase> cases = {
        {"no label",
         DenyReason::no_binding_label,
         {},
         "failed to get AzureIdentities for pod apps/web-7d9, error: pod has no aadpodidbinding "
         "label"},
        {"no binding",
         DenyReason::no_matching_binding,
         {},
         "failed to get AzureIdentities for pod apps/web-7d9, error: no AzureIdentityBinding in "
         "namespace apps has selector web"},
        {"no identity",
         DenyReason::no_identity_for_binding,
         {},
         "failed to get AzureIdentities for pod apps/web-7d9, error: the AzureIdentityBindings "
         "with selector web name no AzureIdentity in namespace apps"},
        {"client id not bound", DenyReason::requested_identity_not_bound,
         test::by_client_id(kClientId),
         "no azure identity found for request clientID 0000##### REDACTED #####00a1"},
        {"resource id not bound", DenyReason::requested_identity_not_bound,
         test::by_resource_id("/subscriptions/s/resourcegroups/rg/providers/"
                              "Microsoft.ManagedIdentity/userAssignedIdentities/kv"),
         "no azure identity found for request resourceID /subscriptions/s/resourcegroups/rg/"
         "providers/Microsoft.ManagedIdentity/userAssignedIdentities/kv"},
        {"object id not bound", DenyReason::requested_identity_not_bound,
         test::by_object_id("11111111-2222-3333-4444-555555555555"),
         "no azure identity found for request objectID 1111##### REDACTED #####5555"},
        {"no assignment",
         DenyReason::no_assignment,
         {},
         "getting assigned identities for pod apps/web-7d9 in CREATED state failed after 16 "
         "attempts, retry duration [5]s, error: <nil>. Check MIC pod logs for identity "
         "assignment errors"},
        {"no assignment, client id requested", DenyReason::no_assignment,
         test::by_client_id(kClientId),
         "clientID in request: 0000##### REDACTED #####00a1, getting assigned identities for pod "
         "apps/web-7d9 in CREATED state failed after 16 attempts, retry duration [5]s, error: "
         "<nil>. Check MIC pod logs for identity assignment errors"},
        {"no assignment, resource id requested: no prefix", DenyReason::no_assignment,
         test::by_resource_id("/subscriptions/s"),
         "getting assigned identities for pod apps/web-7d9 in CREATED state failed after 16 "
         "attempts, retry duration [5]s, error: <nil>. Check MIC pod logs for identity "
         "assignment errors"},
        {"pending",
         DenyReason::assignment_pending,
         {},
         "getting assigned identities for pod apps/web-7d9 in ASSIGNED state failed after 20 "
         "attempts, retry duration [5]s, error: <nil>. Check MIC pod logs for identity "
         "assignment errors"},
        {"pending, client id requested", DenyReason::assignment_pending,
         test::by_client_id(kClientId),
         "clientID in request: 0000##### REDACTED #####00a1, getting assigned identities for pod "
         "apps/web-7d9 in ASSIGNED state failed after 20 attempts, retry duration [5]s, error: "
         "<nil>. Check MIC pod logs for identity assignment errors"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(describe(c.reason, p, c.query, settings), c.expected);
    }
}

TEST(Describe, StandardNumbersComeFromSettings) {
    const PodInfo p = test::pod("ns", "p");
    IdentitySettings settings;
    settings.retry_attempts_for_created = 3;
    settings.retry_attempts_for_assigned = 2;
    settings.find_identity_retry_interval = std::chrono::seconds{7};
    EXPECT_EQ(describe(DenyReason::no_assignment, p, {}, settings),
              "getting assigned identities for pod ns/p in CREATED state failed after 3 attempts, "
              "retry duration [7]s, error: <nil>. Check MIC pod logs for identity assignment "
              "errors");
    EXPECT_EQ(describe(DenyReason::assignment_pending, p, {}, settings),
              "getting assigned identities for pod ns/p in ASSIGNED state failed after 5 "
              "attempts, retry duration [7]s, error: <nil>. Check MIC pod logs for identity "
              "assignment errors");
}

TEST(Describe, NeverContainsTheClearClientId) {
    const PodInfo p = test::pod("ns", "p", {{"aadpodidbinding", "x"}});
    for (const DenyReason r :
         {DenyReason::no_binding_label, DenyReason::no_matching_binding,
          DenyReason::no_identity_for_binding, DenyReason::requested_identity_not_bound,
          DenyReason::no_assignment, DenyReason::assignment_pending}) {
        const std::string text = describe(r, p, test::by_client_id(kClientId), {});
        EXPECT_EQ(text.find(kClientId), std::string::npos) << text;
        EXPECT_FALSE(text.empty());
    }
    EXPECT_NE(
        describe(DenyReason::requested_identity_not_bound, p, test::by_client_id(kClientId), {})
            .find(kClientIdRedacted),
        std::string::npos);
}

struct RedactCase {
    const char* input;
    const char* expected;
};

TEST(Redact, NmiRegexTable) {
    // NMI: ^(\S{4})(\S|\s)*(\S{4})$ -> $1##### REDACTED #####$3 (Go regexp: runes, \s is
    // [\t\n\f\r ]); no match leaves the value unchanged.
    const std::vector<RedactCase> cases = {
        {"", ""},
        {"abc", "abc"},
        {"1234567", "1234567"},
        {"12345678", "1234##### REDACTED #####5678"},
        {"00000000-0000-0000-0000-0000000000a1", "0000##### REDACTED #####00a1"},
        {"abcd efgh", "abcd##### REDACTED #####efgh"},
        {"abcd\tefgh", "abcd##### REDACTED #####efgh"},
        {"abc defgh", "abc defgh"},
        {"abcdefg h", "abcdefg h"},
        {"abcdefgh ", "abcdefgh "},
        {" abcdefgh", " abcdefgh"},
        {"abcd\vefgh", "abcd##### REDACTED #####efgh"},  // \v is not \s in RE2
        {"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"},  // 4 runes
        {"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9x\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
         "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9##### REDACTED #####\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"},
        {"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",  // invalid bytes are one rune each, as in Go
         "\xFF\xFF\xFF\xFF##### REDACTED #####\xFF\xFF\xFF\xFF"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.input);
        EXPECT_EQ(redact(c.input), c.expected);
    }
}

}  // namespace
}  // namespace nmid::identity
