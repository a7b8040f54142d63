#pragma once

// The ServiceAccounts of the cluster as workload identity reads them (issue 12 item 2): their
// azure.workload.identity annotations, by list+watch in all namespaces (kube::Reflector).

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>

#include "nmid/core/clock.hpp"
#include "nmid/kube/reflector.hpp"

namespace nmid::workload {

/// One ServiceAccount, as far as workload identity reads it. Immutable once published.
struct ServiceAccountInfo {
    std::string namespace_name;
    std::string name;
    std::string uid;
    std::string client_id;  ///< azure.workload.identity/client-id ("" when absent)
    std::string tenant_id;  ///< azure.workload.identity/tenant-id ("" when absent)
    bool has_client_id = false;
    /// Why an annotation was refused ("" when both are valid). A refused annotation keeps the
    /// ServiceAccount in the snapshot, so its pods get a 404 that says what is wrong.
    std::string invalid_reason;

    friend bool operator==(const ServiceAccountInfo&, const ServiceAccountInfo&) = default;
};

using ServiceAccountPtr = std::shared_ptr<const ServiceAccountInfo>;

/// Every ServiceAccount known, by "<namespace>/<name>". Entries that did not change are the
/// same pointers in the next snapshot.
struct ServiceAccountSnapshot {
    std::uint64_t generation = 0;
    std::unordered_map<std::string, ServiceAccountPtr> accounts;

    [[nodiscard]] ServiceAccountPtr find(std::string_view namespace_name,
                                         std::string_view name) const;
};

/// A client ID annotation nmid uses: 1 to 128 characters of [A-Za-z0-9._-] (a GUID in practice;
/// it goes into a form and a cache key). Pure.
[[nodiscard]] bool valid_client_id(std::string_view value) noexcept;
/// A tenant annotation nmid uses: a GUID or a domain name, [A-Za-z0-9.-], at most 253
/// characters, not starting with '.' or '-', no "..": it becomes a URL path segment. Pure.
[[nodiscard]] bool valid_tenant_id(std::string_view value) noexcept;

/// A ServiceAccount object (a list item or a watch event's object), or why it is unusable
/// (no name). Annotations are validated, never trimmed or case-folded. Pure; never throws.
[[nodiscard]] bool parse_service_account(const nlohmann::json& object, ServiceAccountInfo& out,
                                         std::string& detail);

struct ServiceAccountSourceStats {
    kube::ReflectorStats reflector;
    std::size_t accounts = 0;   ///< ServiceAccounts held
    std::size_t annotated = 0;  ///< of those, with a client-id annotation
    std::size_t invalid = 0;    ///< of those, with an annotation refused
};

/// ServiceAccounts by list+watch of `/api/v1/serviceaccounts` (all namespaces): a Reflector's
/// sink that publishes an immutable snapshot after every change. snapshot() and synced() are
/// thread-safe; run() drives the loop (state on `executor`).
class ServiceAccountSource final : public kube::ReflectorSink {
public:
    ServiceAccountSource(boost::asio::any_io_executor executor, kube::ApiServerClient& client,
                         Clock& clock, kube::ReflectorSettings settings);
    ServiceAccountSource(const ServiceAccountSource&) = delete;
    ServiceAccountSource& operator=(const ServiceAccountSource&) = delete;

    /// The list+watch until cancelled (see kube::Reflector::run).
    boost::asio::awaitable<void> run();

    [[nodiscard]] std::shared_ptr<const ServiceAccountSnapshot> snapshot() const;
    [[nodiscard]] bool synced() const noexcept { return reflector_.synced(); }
    [[nodiscard]] ServiceAccountSourceStats stats() const;

    boost::asio::awaitable<kube::ListApplied> apply_list(std::string body) override;
    kube::EventApplied apply_event(std::string_view line) override;

private:
    void publish();

    std::map<std::string, ServiceAccountPtr, std::less<>> accounts_;  ///< on the executor
    std::uint64_t generation_ = 0;
    std::atomic<std::shared_ptr<const ServiceAccountSnapshot>> snapshot_;
    std::atomic<std::size_t> annotated_{0};
    std::atomic<std::size_t> invalid_{0};
    kube::Reflector reflector_;  ///< last: it calls back into the members above
};

}  // namespace nmid::workload
