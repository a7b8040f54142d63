#include "nmid/handlers/admin_handler.hpp"

#include "nmid/http/router.hpp"
#include "nmid/metrics/metrics.hpp"

namespace nmid::handlers {

AdminHandler::AdminHandler(metrics::Metrics& metrics,
                           std::function<std::vector<ReadinessCheck>()> checks)
    : metrics_(metrics), checks_(std::move(checks)) {}

boost::asio::awaitable<http::HttpResponse> AdminHandler::handle(const http::HttpRequest& request) {
    http::HttpResponse response;
    response.content_type = "text/plain; charset=utf-8";
    const std::string_view path = http::route(request.target).path;
    if (path == "/healthz") {
        // NMI's body, so existing probes and scripts keep working.
        response.body = "Active";
    } else if (path == "/readyz") {
        bool ready = true;
        for (const auto& check : checks_()) {
            ready = ready && check.ready;
            response.body += check.name;
            response.body += check.ready ? ": ok" : ": not ready";
            if (!check.detail.empty()) {
                response.body += " (" + check.detail + ")";
            }
            response.body += '\n';
        }
        response.status = ready ? 200 : 503;
    } else if (path == "/metrics") {
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = metrics_.render();
    } else {
        response.status = 404;
        response.body = "not found\n";
    }
    co_return response;
}

}  // namespace nmid::handlers
