#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nmid/http/message.hpp"

namespace nmid::metrics {
class Metrics;
}

namespace nmid::handlers {

/// One line of `/readyz`: a module and whether it is ready, with a plain reason when not.
struct ReadinessCheck {
    std::string name;
    bool ready = false;
    std::string detail;
};

/// The admin listener's handler: `/healthz` (alive: NMI's `Active` body), `/readyz`
/// (200 only when every check passes, one line per check), `/metrics` (Prometheus text).
class AdminHandler final : public http::RequestHandler {
public:
    AdminHandler(metrics::Metrics& metrics, std::function<std::vector<ReadinessCheck>()> checks);
    boost::asio::awaitable<http::HttpResponse> handle(const http::HttpRequest& request) override;

private:
    metrics::Metrics& metrics_;
    std::function<std::vector<ReadinessCheck>()> checks_;
};

}  // namespace nmid::handlers
