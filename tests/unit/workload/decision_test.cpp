#include "nmid/workload/decision.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace nmid::workload {
namespace {

constexpr std::string_view kClient = "6f0a6a3e-7e3b-4b38-9a4c-0123456789ab";

PodInfo pod(bool labelled, bool projected = false) {
    PodInfo p;
    p.namespace_name = "shop";
    p.name = "web-0";
    p.uid = "11111111-2222-3333-4444-555555555555";
    p.service_account = "web";
    if (labelled) {
        p.labels["azure.workload.identity/use"] = "true";
    }
    p.labels["aadpodidbinding"] = "kv-reader";  // a pod-identity binding label too
    if (projected) {
        p.token_projections.push_back({.volume = "azure-identity-token",
                                       .path = "azure-identity-token",
                                       .audience = "api://AzureADTokenExchange",
                                       .expiration_seconds = 3600});
    }
    return p;
}

ServiceAccountInfo account(std::string client_id = std::string{kClient}, std::string tenant = {}) {
    ServiceAccountInfo a;
    a.namespace_name = "shop";
    a.name = "web";
    a.uid = "sa-uid";
    a.has_client_id = !client_id.empty();
    a.client_id = std::move(client_id);
    a.tenant_id = std::move(tenant);
    return a;
}

struct Row {
    const char* name;
    PodInfo pod;
    std::optional<ServiceAccountInfo> account;
    identity::TokenQuery query;
    DecisionSettings settings;
    Verdict verdict;
    Denial denial = Denial::account_unknown;
    std::string_view tenant{};
};

TEST(WorkloadDecision, EveryRowOfTheDecisionTable) {
    const DecisionSettings tenant_flag{.default_tenant = "tenant-flag"};
    ServiceAccountInfo invalid = account();
    invalid.invalid_reason = "tenant-id \"../x\" is not a tenant ID or domain";
    ServiceAccountInfo annotated_tenant = account(std::string{kClient}, "tenant-annotation");
    const std::string upper_client = "6F0A6A3E-7E3B-4B38-9A4C-0123456789AB";
    const Row rows[] = {
        {"no label: pod identity decides, whatever the account",
         pod(false),
         account(),
         {},
         tenant_flag,
         Verdict::not_workload},
        {"no label and no account",
         pod(false),
         std::nullopt,
         {},
         tenant_flag,
         Verdict::not_workload},
        {"labelled, account unknown",
         pod(true),
         std::nullopt,
         {},
         tenant_flag,
         Verdict::deny,
         Denial::account_unknown},
        {"labelled, no client-id annotation",
         pod(true),
         account(""),
         {},
         tenant_flag,
         Verdict::deny,
         Denial::no_client_id},
        {"labelled, invalid annotation",
         pod(true),
         invalid,
         {},
         tenant_flag,
         Verdict::deny,
         Denial::invalid_annotation},
        {"labelled, no tenant anywhere",
         pod(true),
         account(),
         {},
         {},
         Verdict::deny,
         Denial::no_tenant},
        {"served with the flag's tenant",
         pod(true),
         account(),
         {},
         tenant_flag,
         Verdict::serve,
         Denial::account_unknown,
         "tenant-flag"},
        {"the annotation's tenant wins over the flag",
         pod(true),
         annotated_tenant,
         {},
         tenant_flag,
         Verdict::serve,
         Denial::account_unknown,
         "tenant-annotation"},
        {"client_id equal to the annotation",
         pod(true),
         account(),
         {.client_id = kClient},
         tenant_flag,
         Verdict::serve,
         Denial::account_unknown,
         "tenant-flag"},
        {"client_id equal but for ASCII case (a GUID)",
         pod(true),
         account(),
         {.client_id = upper_client},
         tenant_flag,
         Verdict::serve,
         Denial::account_unknown,
         "tenant-flag"},
        {"client_id of another identity",
         pod(true),
         account(),
         {.client_id = "00000000-0000-0000-0000-000000000001"},
         tenant_flag,
         Verdict::deny,
         Denial::client_id_mismatch},
        {"msi_res_id names nothing here",
         pod(true),
         account(),
         {.resource_id = "/subscriptions/s/resourcegroups/rg/providers/"
                         "Microsoft.ManagedIdentity/userAssignedIdentities/x"},
         tenant_flag,
         Verdict::deny,
         Denial::selector_unsupported},
        {"object_id names nothing here",
         pod(true),
         account(),
         {.object_id = "00000000-0000-0000-0000-0000000000aa"},
         tenant_flag,
         Verdict::deny,
         Denial::selector_unsupported},
        {"object_id even with the right client_id",
         pod(true),
         account(),
         {.client_id = kClient, .object_id = "00000000-0000-0000-0000-0000000000aa"},
         tenant_flag,
         Verdict::deny,
         Denial::selector_unsupported},
        {"projected source, pod without the volume",
         pod(true),
         account(),
         {},
         {.default_tenant = "tenant-flag", .projected = true},
         Verdict::deny,
         Denial::no_projected_token},
        {"projected source, pod with the volume",
         pod(true, true),
         account(),
         {},
         {.default_tenant = "tenant-flag", .projected = true},
         Verdict::serve,
         Denial::account_unknown,
         "tenant-flag"},
        {"tokenrequest source needs no volume",
         pod(true),
         account(),
         {},
         tenant_flag,
         Verdict::serve,
         Denial::account_unknown,
         "tenant-flag"},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        const ServiceAccountInfo* a = row.account ? &*row.account : nullptr;
        const Decision d = decide(row.pod, a, row.query, row.settings);
        EXPECT_EQ(d.verdict, row.verdict);
        if (row.verdict == Verdict::deny) {
            EXPECT_EQ(d.denial, row.denial);
        }
        if (row.verdict == Verdict::serve) {
            EXPECT_EQ(d.client_id, a->client_id);
            EXPECT_EQ(d.tenant_id, row.tenant);
        }
    }
}

TEST(WorkloadDecision, ProjectionIsChosenByItsExactAudience) {
    PodInfo p = pod(true);
    p.token_projections.push_back({.volume = "kube-api", .path = "token", .audience = ""});
    p.token_projections.push_back(
        {.volume = "other", .path = "token", .audience = "api://AzureADTokenExchange/"});
    EXPECT_EQ(azure_projection(p), nullptr);
    p.token_projections.push_back({.volume = "azure",
                                   .path = "token/azure-identity-token",
                                   .audience = "api://AzureADTokenExchange"});
    ASSERT_NE(azure_projection(p), nullptr);
    EXPECT_EQ(azure_projection(p)->volume, "azure");
}

TEST(WorkloadDecision, EachDenialSaysWhatToFixWithoutAClearClientId) {
    const PodInfo p = pod(true);
    const ServiceAccountInfo a = account();
    const identity::TokenQuery other{.client_id = "00000000-0000-0000-0000-000000000001"};
    const struct {
        Denial denial;
        std::string_view must_contain;
    } cases[] = {
        {Denial::account_unknown, "ServiceAccount shop/web is not known"},
        {Denial::no_client_id, "has no azure.workload.identity/client-id annotation"},
        {Denial::no_tenant, "--workload-identity-tenant-id"},
        {Denial::selector_unsupported, "msi_res_id, mi_res_id and object_id name nothing here"},
        {Denial::client_id_mismatch, "is not the workload identity of pod shop/web-0"},
        {Denial::no_projected_token, "audience api://AzureADTokenExchange"},
    };
    for (const auto& c : cases) {
        const std::string text = describe(c.denial, p, &a, other);
        EXPECT_NE(text.find(c.must_contain), std::string::npos) << text;
        EXPECT_EQ(text.find(kClient), std::string::npos) << text;
        EXPECT_EQ(text.find(other.client_id), std::string::npos) << text;
        EXPECT_EQ(errc_for(c.denial), Errc::identity_not_found);
    }
}

}  // namespace
}  // namespace nmid::workload
