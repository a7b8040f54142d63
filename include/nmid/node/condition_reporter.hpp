#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/kube/client.hpp"
#include "nmid/node/condition.hpp"

namespace nmid::node {

struct ReporterSettings {
    std::string node;  ///< this node's name (--node / NODE_NAME)
    std::chrono::nanoseconds interval{std::chrono::seconds{1}};   ///< readiness checked this often
    std::chrono::nanoseconds heartbeat{std::chrono::minutes{5}};  ///< rewritten at least this often
    std::chrono::nanoseconds request_timeout{std::chrono::seconds{10}};
    std::chrono::nanoseconds stop_timeout{std::chrono::seconds{3}};  ///< write_stopping()'s bound
    std::chrono::nanoseconds backoff_cap{std::chrono::seconds{60}};  ///< after failed writes
};

/// Counters for metrics. Read from any thread.
struct ReporterStats {
    std::uint64_t writes = 0;    ///< successful PATCHes
    std::uint64_t failures = 0;  ///< failed PATCHes (transport or non-2xx)
    bool written_ready = false;  ///< the status last written (true: True)
    int last_status = 0;         ///< HTTP status of the last PATCH (0: none or transport error)
};

/// Writes the `NmidReady` condition of this node (--node-condition): True once every
/// readiness check passes, False with the failing checks otherwise, rewritten when it changes
/// and every `heartbeat`. Failed writes are retried with exponential backoff (1 s doubling,
/// capped). Only `/api/v1/nodes/<node>/status` is ever addressed.
/// Lifetime: `api`, `clock` and `checks` outlive run() and stop_write().
class ConditionReporter {
public:
    /// Throws std::invalid_argument when `settings.node` is not a valid node name.
    ConditionReporter(kube::ApiServerClient& api, Clock& clock, ReporterSettings settings,
                      std::function<std::vector<Check>()> checks);

    /// Until cancelled. Executor: any.
    boost::asio::awaitable<void> run();
    /// At shutdown: writes False with reason NmidStopping, once, within stop_timeout (a
    /// failure is logged, never thrown). Executor: any.
    boost::asio::awaitable<void> write_stopping();

    [[nodiscard]] ReporterStats stats() const;

private:
    boost::asio::awaitable<bool> write(const Condition& condition,
                                       std::chrono::nanoseconds timeout);

    kube::ApiServerClient& api_;
    Clock& clock_;
    ReporterSettings settings_;
    std::string target_;
    std::function<std::vector<Check>()> checks_;
    Written written_;
    WallTime transition_{};
    std::optional<bool> transition_ready_;  ///< the status transition_ belongs to
    int consecutive_failures_ = 0;
    std::atomic<std::uint64_t> writes_{0};
    std::atomic<std::uint64_t> failures_{0};
    std::atomic<bool> written_ready_{false};
    std::atomic<int> last_status_{0};
};

}  // namespace nmid::node
