// Fuzz target: workload identity's untrusted inputs (issue 12): ServiceAccount objects and
// watch lines (tenants write the annotations), the API server's TokenRequest answer, and the
// projected token file's JWT. The first byte picks the input, the rest is the bytes.
//
// Invariants:
// - nothing throws;
// - a parsed ServiceAccount has a name and namespace, and its client and tenant annotations
//   are either refused (empty, with a reason) or valid by valid_client_id / valid_tenant_id;
// - a TokenRequest answer taken as a token holds a JWT-shaped token of at most 16 KiB that
//   expires after now, and a refused one never echoes the token;
// - jwt_times never claims an expiry it did not read.

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "nmid/workload/projected_token.hpp"
#include "nmid/workload/service_account_token.hpp"
#include "nmid/workload/service_accounts.hpp"

using nmid::fuzz::check;

namespace {

constexpr std::int64_t kNow = 1'764'979'200;

// apply_event() touches no client: a list+watch that is never run.
class NoClient final : public nmid::kube::ApiServerClient {
public:
    boost::asio::awaitable<nmid::Result<nmid::kube::Response>> get(std::string,
                                                                   nmid::SteadyTime) override {
        co_return nmid::Errc::io_error;
    }
    boost::asio::awaitable<nmid::Result<nmid::kube::Response>> post(std::string, std::string,
                                                                    nmid::SteadyTime) override {
        co_return nmid::Errc::io_error;
    }
    boost::asio::awaitable<nmid::Result<nmid::kube::Response>> patch(std::string, std::string,
                                                                     std::string,
                                                                     nmid::SteadyTime) override {
        co_return nmid::Errc::io_error;
    }
    boost::asio::awaitable<nmid::Result<nmid::kube::WatchResult>> watch(
        std::string, nmid::SteadyTime, nmid::kube::LineHandler) override {
        co_return nmid::Errc::io_error;
    }
};

void check_account(const nmid::workload::ServiceAccountInfo& a) {
    check(!a.name.empty() && !a.namespace_name.empty(), "account without a name");
    check(a.client_id.empty() || nmid::workload::valid_client_id(a.client_id),
          "an invalid client-id was kept");
    check(a.tenant_id.empty() || nmid::workload::valid_tenant_id(a.tenant_id),
          "an invalid tenant-id was kept");
}

void fuzz_one(std::string_view input) {
    if (input.empty()) {
        return;
    }
    const std::string_view bytes = input.substr(1);
    switch (static_cast<unsigned char>(input[0]) % 4) {
        case 0: {
            const auto doc = nlohmann::json::parse(bytes, nullptr, false);
            nmid::workload::ServiceAccountInfo account;
            std::string detail;
            if (!doc.is_discarded() &&
                nmid::workload::parse_service_account(doc, account, detail)) {
                check_account(account);
            }
            break;
        }
        case 1: {
            static boost::asio::io_context ioc;
            static NoClient client;
            static nmid::SystemClock clock;
            static nmid::workload::ServiceAccountSource source{
                ioc.get_executor(), client, clock, {}};
            (void)source.apply_event(bytes);
            for (const auto& [key, account] : source.snapshot()->accounts) {
                check(key == account->namespace_name + "/" + account->name,
                      "key of another account");
                check_account(*account);
            }
            break;
        }
        case 2: {
            const auto r = nmid::workload::parse_token_request_response(
                nmid::kube::Response{201, std::string{bytes}, {}}, kNow);
            if (r) {
                check(
                    !r->token.empty() && r->token.size() <= nmid::workload::kMaxServiceAccountToken,
                    "token size");
                check(r->token.find_first_of(" \r\n\"") == std::string::npos,
                      "token not JWT-shaped");
                check(r->expires_on > kNow, "token already expired");
            }
            break;
        }
        default: {
            const auto times = nmid::workload::jwt_times(bytes);
            check(!times || bytes.find('.') != std::string_view::npos, "times without a JWT");
            break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, fuzz_one);
}
