// The token route for pods labelled azure.workload.identity/use=true (issue 12): the decision
// (workload/decision.hpp), the Azure AD cache, and Azure AD's own errors passed on.
#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "nmi_handler_detail.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/handlers/errors.hpp"
#include "nmid/handlers/imds_json.hpp"
#include "nmid/identity/resolver.hpp"
#include "nmid/workload/constants.hpp"
#include "nmid/workload/decision.hpp"
#include "nmid/workload/workload_token_source.hpp"

namespace nmid::handlers {

namespace asio = boost::asio;
using http::HttpResponse;

namespace {

constexpr std::string_view kSource = "workload-identity";

/// Per I/O thread: the cache key of recently served ServiceAccounts, so a repeated request
/// builds and hashes no key. A slot matches a ServiceAccount entry by address while the
/// snapshot it came from is alive (a weak reference that shares the entry's ownership: the
/// memo never keeps a replaced snapshot in memory, and an address in a live snapshot is that
/// entry's alone); slots of another handler never match. Safe because snapshot entries are
/// immutable and the key depends only on the entry and the handler's settings. No reference
/// into it lives across a co_await.
class WorkloadKeyMemo {
public:
    using KeyPtr = std::shared_ptr<const NmiHandler::WorkloadKey>;
    using AccountPtr = std::shared_ptr<const workload::ServiceAccountInfo>;

    KeyPtr find(std::uint64_t owner, const AccountPtr& account) const {
        const Slot& slot = slots_[index(account)];
        if (slot.owner != owner || slot.address != account.get() || slot.account.expired() ||
            slot.account.owner_before(account) || account.owner_before(slot.account)) {
            return nullptr;
        }
        return slot.key;
    }

    void store(std::uint64_t owner, const AccountPtr& account, KeyPtr key) {
        slots_[index(account)] = {owner, account.get(), account, std::move(key)};
    }

private:
    static constexpr std::size_t kSlots = 32;
    struct Slot {
        std::uint64_t owner = 0;
        const workload::ServiceAccountInfo* address = nullptr;
        std::weak_ptr<const workload::ServiceAccountInfo> account;
        KeyPtr key;
    };
    static std::size_t index(const AccountPtr& account) {
        return (reinterpret_cast<std::uintptr_t>(account.get()) >> 4U) % kSlots;
    }
    std::array<Slot, kSlots> slots_{};
};

WorkloadKeyMemo& workload_key_memo() {
    thread_local WorkloadKeyMemo memo;
    return memo;
}

identity::TokenQuery token_query(const TokenParams& params) {
    return {params.client_id, params.resource_id, params.object_id};
}

/// Azure AD's `error` and `error_description` from an upstream body, when it is Azure AD's
/// JSON error (both strings).
std::optional<std::pair<std::string, std::string>> aad_error(std::string_view body) {
    const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
        return std::nullopt;
    }
    const auto error = doc.find("error");
    const auto description = doc.find("error_description");
    if (error == doc.end() || description == doc.end() || !error->is_string() ||
        !description->is_string()) {
        return std::nullopt;
    }
    return std::pair{error->get<std::string>(), description->get<std::string>()};
}

}  // namespace

WorkloadDependencies::Verdict WorkloadDependencies::decide(
    const PodInfo& pod, const identity::TokenQuery& query) const {
    Verdict v;
    v.account = find_account(pod.namespace_name, workload::service_account_of(pod));
    v.decision = workload::decide(pod, v.account.get(), query,
                                  {.default_tenant = default_tenant, .projected = projected});
    return v;
}

bool NmiHandler::workload_pod(const Context& ctx) const {
    return deps_.workload != nullptr && workload::uses_workload_identity(*ctx.pod);
}

std::optional<HttpResponse> NmiHandler::workload_now(Context& ctx) {
    const WorkloadDependencies& wi = *deps_.workload;
    ctx.source = kSource;
    const identity::TokenQuery query = token_query(ctx.params);
    const auto [account, decision] = wi.decide(*ctx.pod, query);
    if (decision.verdict != workload::Verdict::serve) {
        return token_failure(ctx, workload::errc_for(decision.denial),
                             workload::describe(decision.denial, *ctx.pod, account.get(), query));
    }
    WorkloadKeyMemo& memo = workload_key_memo();
    ctx.workload_key = memo.find(id_, account);
    if (!ctx.workload_key) {
        auto key = std::make_shared<WorkloadKey>();
        key->key = prepare_identity(workload::workload_identity(account->namespace_name,
                                                                account->name, decision.client_id,
                                                                decision.tenant_id, wi.authority));
        key->redacted = identity::redact(decision.client_id);
        ctx.workload_key = key;
        memo.store(id_, account, std::move(key));
    }
    ctx.identity = ctx.workload_key->redacted;
    if (ctx.params.bypass_cache) {
        return std::nullopt;  // a forced fetch is the cache's full path
    }
    std::optional<CacheResult> result =
        wi.cache.try_get(TokenKey{ctx.workload_key->key, ctx.resource});
    if (!result) {
        return std::nullopt;
    }
    ctx.cache = to_string(result->outcome);
    return workload_answer(*result, ctx);
}

asio::awaitable<HttpResponse> NmiHandler::workload_token(Context& ctx) {
    if (std::optional<HttpResponse> answer = workload_now(ctx)) {
        co_return std::move(*answer);
    }
    const TokenRequest request{.identity = ctx.workload_key->key.identity,
                               .resource = std::string{ctx.resource}};
    const std::string requester = detail::requester_of(ctx);
    const CacheResult result = co_await deps_.workload->cache.get(
        request, requester, GetOptions{.force_refresh = ctx.params.bypass_cache});
    ctx.cache = to_string(result.outcome);
    co_return workload_answer(result, ctx);
}

HttpResponse NmiHandler::workload_answer(const CacheResult& result, Context& ctx) const {
    if (result.token) {
        return detail::json_ok(token_json(result.token, ctx.resource, deps_.clock.unix_seconds()));
    }
    // Azure AD's own error (AADSTS70021 "no matching federated identity record", ...) reaches
    // the pod as Azure AD wrote it, so a misconfigured federation is diagnosable from the
    // pod's error message.
    if (auto aad = aad_error(result.error.upstream_body)) {
        ctx.error = result.error.code;
        return error_response_as(result.error.code, aad->first, aad->second, settings_,
                                 result.error.retry_after);
    }
    return token_failure(ctx, result.error.code, detail::fetch_failure_text(result.error),
                         result.error.retry_after);
}

}  // namespace nmid::handlers
