// Fuzz target: IMDS's `/metadata/identity/info` answer as nmid reads it (issue 14,
// handlers/tenant_info): parse_tenant_info on the body as received, and the answer nmid writes.
//
// Invariants:
// - nothing throws;
// - an accepted tenant is a valid tenant id (workload::valid_tenant_id: a GUID or domain name);
// - the body nmid writes for it is a JSON object whose only member is that tenant.

#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "nmid/handlers/tenant_info.hpp"
#include "nmid/workload/service_accounts.hpp"

using nmid::fuzz::check;

namespace {

void fuzz_one(std::string_view body) {
    const auto tenant = nmid::handlers::detail::parse_tenant_info(body);
    if (!tenant) {
        return;
    }
    check(nmid::workload::valid_tenant_id(*tenant), "an accepted tenant is valid");
    const auto answer =
        nlohmann::json::parse(nmid::handlers::detail::tenant_info_json(*tenant), nullptr, false);
    check(answer.is_object() && answer.size() == 1 && answer["tenantId"] == *tenant,
          "the answer holds the tenant and nothing else");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, fuzz_one);
}
