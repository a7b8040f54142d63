#include "nmid/node/condition_reporter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <stdexcept>

#include "nmid/core/cancelled.hpp"

namespace nmid::node {

namespace asio = boost::asio;
using std::chrono::nanoseconds;

namespace {

constexpr std::string_view kPatchType = "application/strategic-merge-patch+json";
constexpr std::size_t kMaxLoggedBody = 512;

std::string checked_target(std::string_view node) {
    auto target = status_target(node);
    if (!target) {
        throw std::invalid_argument("--node-condition: the node name \"" + std::string{node} +
                                    "\" is not a valid Kubernetes node name");
    }
    return std::move(*target);
}

}  // namespace

ConditionReporter::ConditionReporter(kube::ApiServerClient& api, Clock& clock,
                                     ReporterSettings settings,
                                     std::function<std::vector<Check>()> checks)
    : api_(api),
      clock_(clock),
      settings_(std::move(settings)),
      target_(checked_target(settings_.node)),
      checks_(std::move(checks)) {}

asio::awaitable<bool> ConditionReporter::write(const Condition& condition, nanoseconds timeout) {
    const WallTime now = clock_.wall_now();
    if (transition_ready_ != condition.ready) {
        transition_ready_ = condition.ready;
        transition_ = now;
    }
    std::string body = status_patch(condition, now, transition_);
    const auto deadline = clock_.steady_now() + timeout;
    auto response =
        co_await api_.patch(target_, std::move(body), std::string{kPatchType}, deadline);
    const int status = response ? response->status : 0;
    last_status_.store(status, std::memory_order_relaxed);
    if (response && status >= 200 && status < 300) {
        writes_.fetch_add(1, std::memory_order_relaxed);
        written_ready_.store(condition.ready, std::memory_order_relaxed);
        if (consecutive_failures_ > 0 || !written_.condition ||
            written_.condition->ready != condition.ready) {
            spdlog::info("node condition {}={} on node {} ({})", kConditionType,
                         condition.ready ? "True" : "False", settings_.node, condition.message);
        }
        co_return true;
    }
    failures_.fetch_add(1, std::memory_order_relaxed);
    if (consecutive_failures_ == 0) {
        // Once per run of failures: a 403 here is RBAC or the ValidatingAdmissionPolicy
        // (deploy/optional/node-condition.yaml), a 404 a wrong --node.
        spdlog::error("node condition: PATCH {} failed: {}", target_,
                      response ? "HTTP " + std::to_string(status) + ": " +
                                     response->body.substr(0, kMaxLoggedBody)
                               : response.error().message());
    }
    co_return false;
}

asio::awaitable<void> ConditionReporter::run() {
    co_await asio::this_coro::throw_if_cancelled(false);
    SteadyTime retry_at{};
    for (;;) {
        const bool stop = co_await cancelled();
        if (stop) {
            co_return;
        }
        const Condition now = from_checks(checks_());
        const SteadyTime at = clock_.steady_now();
        if (at >= retry_at && should_write(written_, now, at, settings_.heartbeat)) {
            const bool ok = co_await write(now, settings_.request_timeout);
            if (ok) {
                written_ = Written{.condition = now, .at = at};
                consecutive_failures_ = 0;
                retry_at = SteadyTime{};
            } else {
                ++consecutive_failures_;
                const int shift = std::min(consecutive_failures_ - 1, 16);
                const nanoseconds backoff = std::min<nanoseconds>(
                    settings_.backoff_cap, std::chrono::seconds{1} * (std::int64_t{1} << shift));
                retry_at = clock_.steady_now() + backoff;
            }
        }
        co_await clock_.wait_until(clock_.steady_now() + settings_.interval);
    }
}

asio::awaitable<void> ConditionReporter::write_stopping() {
    const Condition stopping{
        .ready = false, .reason = std::string{kReasonStopping}, .message = "nmid is stopping"};
    (void)co_await write(stopping, settings_.stop_timeout);
}

ReporterStats ConditionReporter::stats() const {
    return ReporterStats{.writes = writes_.load(std::memory_order_relaxed),
                         .failures = failures_.load(std::memory_order_relaxed),
                         .written_ready = written_ready_.load(std::memory_order_relaxed),
                         .last_status = last_status_.load(std::memory_order_relaxed)};
}

}  // namespace nmid::node
