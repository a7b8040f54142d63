// The flag table, part 3: workload identity (issue 12). flag_table.cpp joins the parts.
#include <array>

#include "flag_table.hpp"

namespace nmid::config::detail {
namespace {

constexpr std::array<std::string_view, 2> kTokenSources{"tokenrequest", "projected"};

// GCC warns about members left to their defaults even in designated initializers; leaving
// them out is the point of the designated style here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// clang-format off
const std::array kWorkloadFlags{
    Flag{.name = "workload-identity", .group = FlagGroup::workload_identity,
         .format = Format::boolean,
         .help = "serve Azure AD workload identity to pods labelled "
                 "azure.workload.identity/use=true whose ServiceAccount has the "
                 "azure.workload.identity/client-id annotation (it wins over pod identity)",
         .target = [](ParseState& s) -> Target { return &s.config.workload.enabled; }},
    Flag{.name = "workload-identity-tenant-id", .group = FlagGroup::workload_identity,
         .value_name = "TENANT",
         .help = "tenant of ServiceAccounts without the azure.workload.identity/tenant-id "
                 "annotation",
         .target = [](ParseState& s) -> Target { return &s.config.workload.tenant_id; },
         .default_note = "$AZURE_TENANT_ID"},
    Flag{.name = "workload-identity-authority-host", .group = FlagGroup::workload_identity,
         .value_name = "URL",
         .help = "Azure AD authority of the federated exchange (https; its host must be an "
                 "Azure AD authority or on --aad-authority-allowlist)",
         .target = [](ParseState& s) -> Target { return &s.config.workload.authority_host; },
         .default_note = "$AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com/"},
    Flag{.name = "workload-identity-token-source", .group = FlagGroup::workload_identity,
         .format = Format::choice, .value_name = "SOURCE",
         .help = "the ServiceAccount token exchanged: tokenrequest (TokenRequest API, bound to "
                 "the calling pod) or projected (the file the kubelet projects into the pod)",
         .target = [](ParseState& s) -> Target { return &s.config.workload.token_source; },
         .choices = kTokenSources},
    Flag{.name = "kubelet-root-dir", .group = FlagGroup::workload_identity, .value_name = "DIR",
         .help = "the kubelet's root directory (projected token source: "
                 "<DIR>/pods/<uid>/volumes/kubernetes.io~projected/...)",
         .target = [](ParseState& s) -> Target { return &s.config.workload.kubelet_root_dir; }},
    Flag{.name = "workload-identity-max-concurrency", .group = FlagGroup::workload_identity,
         .format = Format::integer, .value_name = "N",
         .help = "Azure AD token requests in flight at most (a budget separate from IMDS's)",
         .target = [](ParseState& s) -> Target { return &s.config.workload.max_concurrency; },
         .min = 1, .max = 1'000},
    Flag{.name = "workload-identity-rate-limit", .group = FlagGroup::workload_identity,
         .format = Format::real, .value_name = "RPS",
         .help = "Azure AD token requests per second at most",
         .target = [](ParseState& s) -> Target { return &s.config.workload.rate_per_second; }},
};
// clang-format on
#pragma GCC diagnostic pop

}  // namespace

std::span<const Flag> workload_flags() {
    return kWorkloadFlags;
}

}  // namespace nmid::config::detail
