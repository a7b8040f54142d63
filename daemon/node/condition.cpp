#include "nmid/node/condition.hpp"

#include <nlohmann/json.hpp>

#include "nmid/core/time_format.hpp"

namespace nmid::node {
namespace {

bool subdomain_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

Condition from_checks(const std::vector<Check>& checks) {
    Condition c;
    std::string failing;
    for (const auto& check : checks) {
        if (check.ready) {
            continue;
        }
        if (!failing.empty()) {
            failing += "; ";
        }
        failing += check.name + ": " + (check.detail.empty() ? "not ready" : check.detail);
    }
    c.ready = failing.empty();
    c.reason = c.ready ? kReasonReady : kReasonNotReady;
    c.message = c.ready ? "nmid is ready" : "nmid is not ready: " + failing;
    if (c.message.size() > kMaxMessage) {
        c.message.resize(kMaxMessage);
    }
    return c;
}

std::string status_patch(const Condition& condition, WallTime heartbeat, WallTime transition) {
    const nlohmann::json entry{{"type", kConditionType},
                               {"status", condition.ready ? "True" : "False"},
                               {"reason", condition.reason},
                               {"message", condition.message},
                               {"lastHeartbeatTime", format_rfc3339(heartbeat)},
                               {"lastTransitionTime", format_rfc3339(transition)}};
    const nlohmann::json patch{{"status", {{"conditions", nlohmann::json::array({entry})}}}};
    // Invalid UTF-8 (a detail quoting hostile input) is replaced, never a throw.
    return patch.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<std::string> status_target(std::string_view node) {
    constexpr std::size_t kMaxName = 253;
    if (node.empty() || node.size() > kMaxName || !alnum(node.front()) || !alnum(node.back())) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
        if (!subdomain_char(node[i])) {
            return std::nullopt;
        }
        // Labels are separated by single dots and neither start nor end with '-'.
        if (node[i] == '.' && (!alnum(node[i - 1]) || !alnum(node[i + 1]))) {
            return std::nullopt;
        }
    }
    return "/api/v1/nodes/" + std::string{node} + "/status";
}

bool should_write(const Written& written, const Condition& now, SteadyTime at,
                  std::chrono::nanoseconds heartbeat) {
    return !written.condition || *written.condition != now || at - written.at >= heartbeat;
}

}  // namespace nmid::node
