#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/iptables/backend.hpp"
#include "nmid/iptables/rules.hpp"
#include "nmid/iptables/settings.hpp"

namespace nmid::iptables {

/// For metrics, logs and /readyz. A copy, taken under the reconciler's lock.
struct ReconcilerStats {
    std::uint64_t syncs = 0;    ///< sync attempts (read, plan, restore when needed, verify)
    std::uint64_t applies = 0;  ///< restores that changed the rules and were verified
    std::uint64_t errors = 0;   ///< failed syncs, failed conntrack deletions, failed cleanups
    std::uint64_t consecutive_errors = 0;  ///< failed syncs since the last good one
    std::string last_error{};              ///< text of the latest error (kept after recovery)
    bool in_sync = false;       ///< the latest sync verified the rules (false after a failure)
    bool ever_in_sync = false;  ///< some sync verified the rules (NMI's "Active")
    std::optional<WallTime> last_success{};  ///< Clock::wall_now() of the latest good sync
    std::optional<Backend> backend{};        ///< once chosen (at the first sync)
    std::string backend_reason{};            ///< why (detection) or "--iptables-backend"
    bool conntrack_done = false;             ///< the one-time conntrack deletion succeeded
    std::uint64_t conntrack_flows_deleted = 0;
    /// describe_route_localnet() at the latest sync (prefixed with a write failure under
    /// --set-route-localnet); empty when fine or not needed.
    std::string route_localnet_warning{};
};

/// What one good sync did.
struct SyncReport {
    bool changed = false;                ///< a restore was needed (and verified)
    std::vector<std::string> reasons{};  ///< Plan::reasons of that restore
};

/// Keeps the nat rules in place: at start and every `update_interval`, reads the nat table,
/// plans, restores when needed and verifies by reading again. Errors are retried with
/// exponential backoff and jitter (`retry_base` .. `retry_cap`, never later than the regular
/// interval), counted and logged, never fatal. After the first verified sync it optionally
/// deletes conntrack flows to the metadata endpoint (retried at later syncs until it works)
/// and checks route_localnet at the start of every sync (setting it with
/// `set_route_localnet`), when the DNAT target is on loopback.
///
/// Executor: every coroutine runs on the caller's executor; run(), sync_once() and cleanup()
/// must not overlap. stats() is thread-safe.
/// Lifetime: `runner` and `clock` outlive the reconciler.
class Reconciler {
public:
    /// `settings` must be valid (iptables::validate).
    Reconciler(Settings settings, CommandRunner& runner, Clock& clock);

    /// Syncs now, then every `update_interval` (or sooner after an error), waiting on the
    /// clock. Returns when the awaiting coroutine is cancelled (terminal cancellation, as the
    /// daemon's task group emits). Never throws for iptables failures.
    boost::asio::awaitable<void> run();

    /// One sync. Chooses the backend first if not yet done.
    /// Errors: Errc::io_error (a command failed, or the rules still differ after the
    /// restore); the text is in stats().last_error.
    boost::asio::awaitable<Result<SyncReport>> sync_once();

    /// Removes the jumps and the chain (--cleanup-rules-on-exit, `nmid cleanup`) and verifies
    /// by reading again. Chooses the backend first if not yet done. Nothing to remove is
    /// success. Errors: Errc::io_error; the text is in stats().last_error.
    boost::asio::awaitable<Result<void>> cleanup();

    [[nodiscard]] ReconcilerStats stats() const;

private:
    boost::asio::awaitable<const Commands*> commands();
    /// The parsed nat table; nullopt with `error` set when iptables-save failed.
    boost::asio::awaitable<std::optional<NatState>> read_state(const Commands& commands,
                                                               std::string& error);
    boost::asio::awaitable<void> after_sync();
    void check_route_localnet();
    /// Counts and logs a failed sync; the value sync_once() returns.
    Result<SyncReport> fail_sync(std::string text);
    /// Counts and logs an error that is not a failed sync (conntrack, cleanup).
    void note_error(std::string text);
    std::chrono::milliseconds next_retry_delay();

    Settings settings_;
    DesiredRules desired_;
    CommandRunner& runner_;
    Clock& clock_;
    std::optional<Commands> commands_{};
    std::minstd_rand random_;
    std::uint64_t attempt_ = 0;  ///< consecutive failed syncs, for the backoff
    std::string logged_route_warning_{};

    mutable std::mutex mutex_;  ///< guards stats_ (read by /readyz and metrics threads)
    ReconcilerStats stats_;
};

}  // namespace nmid::iptables
