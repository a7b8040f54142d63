#pragma once

#include <functional>
#include <string>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/http/message.hpp"

namespace nmid {
class PodIndex;
class CrdStore;
class TokenCache;
namespace handlers {
struct WorkloadDependencies;
}
}  // namespace nmid

namespace nmid::explain {

/// What the debug listener reads. References must outlive the handler.
struct DebugDependencies {
    PodIndex& pods;
    CrdStore& crds;
    TokenCache& cache;
    Clock& clock;
    std::function<Millis()> crd_age;                     ///< CrdSource::snapshot_age
    handlers::WorkloadDependencies* workload = nullptr;  ///< --workload-identity, else null
    IdentitySettings identity;
    std::string pod_source;  ///< "kubelet", "apiserver", "file"
};

/// The debug listener's handler (`--debug-address`, loopback by default): `GET /debug/explain`
/// with the query of parse_query() answers the report as text or JSON (200, also for a pod not
/// found: the report says so), 400 with the reason for a bad query, 405 for another method,
/// 404 for another path. Reads snapshots only: never fetches a token or waits for a source.
class DebugHandler final : public http::RequestHandler {
public:
    explicit DebugHandler(DebugDependencies deps);
    boost::asio::awaitable<http::HttpResponse> handle(const http::HttpRequest& request) override;

private:
    DebugDependencies deps_;
};

}  // namespace nmid::explain
