// The I/O half of the ServiceAccount source: the Reflector's sink and the published snapshot.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "nmid/workload/service_accounts.hpp"

namespace nmid::workload {
namespace {

using Json = nlohmann::json;

std::string key_of(const ServiceAccountInfo& a) {
    return a.namespace_name + "/" + a.name;
}

std::string resource_version_of(const Json& object) {
    const auto metadata = object.find("metadata");
    if (metadata == object.end() || !metadata->is_object()) {
        return {};
    }
    const auto rv = metadata->find("resourceVersion");
    return rv != metadata->end() && rv->is_string() ? rv->get<std::string>() : std::string{};
}

}  // namespace

ServiceAccountSource::ServiceAccountSource(boost::asio::any_io_executor executor,
                                           kube::ApiServerClient& client, Clock& clock,
                                           kube::ReflectorSettings settings)
    : snapshot_(std::make_shared<const ServiceAccountSnapshot>()),
      reflector_(std::move(executor), client, clock, *this, "/api/v1/serviceaccounts",
                 std::move(settings)) {}

boost::asio::awaitable<void> ServiceAccountSource::run() {
    co_await reflector_.run();
}

std::shared_ptr<const ServiceAccountSnapshot> ServiceAccountSource::snapshot() const {
    return snapshot_.load(std::memory_order_acquire);
}

void ServiceAccountSource::publish() {
    auto next = std::make_shared<ServiceAccountSnapshot>();
    next->generation = ++generation_;
    next->accounts.reserve(accounts_.size());
    std::size_t annotated = 0;
    std::size_t invalid = 0;
    for (const auto& [key, account] : accounts_) {
        next->accounts.emplace(key, account);
        annotated += account->has_client_id ? 1 : 0;
        invalid += account->invalid_reason.empty() ? 0 : 1;
    }
    annotated_.store(annotated, std::memory_order_relaxed);
    invalid_.store(invalid, std::memory_order_relaxed);
    snapshot_.store(std::move(next), std::memory_order_release);
}

boost::asio::awaitable<kube::ListApplied> ServiceAccountSource::apply_list(std::string body) {
    kube::ListApplied out;
    const Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    const auto items = doc.is_object() ? doc.find("items") : doc.end();
    if (!doc.is_object() || items == doc.end() || !(items->is_array() || items->is_null())) {
        out.detail = "not a ServiceAccountList";
        co_return out;
    }
    std::map<std::string, ServiceAccountPtr, std::less<>> fresh;
    if (items->is_array()) {
        for (const Json& item : *items) {
            ServiceAccountInfo account;
            std::string detail;
            if (!parse_service_account(item, account, detail)) {
                out.detail = detail;
                co_return out;
            }
            std::string key = key_of(account);
            // Unchanged entries keep their pointer (and the handlers' memo of them).
            const auto old = accounts_.find(key);
            fresh.emplace(std::move(key),
                          old != accounts_.end() && *old->second == account
                              ? old->second
                              : std::make_shared<const ServiceAccountInfo>(std::move(account)));
        }
    }
    accounts_ = std::move(fresh);
    publish();
    out.ok = true;
    out.resource_version = resource_version_of(doc);
    out.objects = accounts_.size();
    co_return out;
}

kube::EventApplied ServiceAccountSource::apply_event(std::string_view line) {
    using Kind = kube::EventApplied::Kind;
    const Json event = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    const auto type = event.is_object() ? event.find("type") : event.end();
    const auto object = event.is_object() ? event.find("object") : event.end();
    if (!event.is_object() || type == event.end() || !type->is_string() || object == event.end() ||
        !object->is_object()) {
        return {.kind = Kind::unreadable, .message = "not a watch event"};
    }
    const std::string& kind = type->get_ref<const std::string&>();
    if (kind == "ERROR") {
        const auto code = object->find("code");
        const int status =
            code != object->end() && code->is_number_integer() ? code->get<int>() : 0;
        const auto message = object->find("message");
        return {.kind = status == 410 ? Kind::gone : Kind::error,
                .message = message != object->end() && message->is_string()
                               ? message->get<std::string>()
                               : std::string{},
                .code = status};
    }
    std::string rv = resource_version_of(*object);
    if (kind == "BOOKMARK") {
        return {.kind = Kind::applied, .resource_version = std::move(rv)};
    }
    ServiceAccountInfo account;
    std::string detail;
    if ((kind != "ADDED" && kind != "MODIFIED" && kind != "DELETED") ||
        !parse_service_account(*object, account, detail)) {
        return {.kind = Kind::unreadable,
                .message = detail.empty() ? "event type " + kind : detail};
    }
    std::string key = key_of(account);
    if (kind == "DELETED") {
        if (accounts_.erase(key) > 0) {
            publish();
        }
    } else {
        const auto it = accounts_.find(key);
        if (it == accounts_.end() || !(*it->second == account)) {
            accounts_.insert_or_assign(
                std::move(key), std::make_shared<const ServiceAccountInfo>(std::move(account)));
            publish();
        }
    }
    return {.kind = Kind::applied, .resource_version = std::move(rv)};
}

ServiceAccountSourceStats ServiceAccountSource::stats() const {
    ServiceAccountSourceStats s;
    s.reflector = reflector_.stats();
    s.accounts = snapshot()->accounts.size();
    s.annotated = annotated_.load(std::memory_order_relaxed);
    s.invalid = invalid_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid::workload
