#include "nmid/iptables/reconciler.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/this_coro.hpp>
#include <utility>

#include "nmid/iptables/route_localnet.hpp"

namespace nmid::iptables {

namespace asio = boost::asio;

namespace {

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& p : parts) {
        out += out.empty() ? "" : ", ";
        out += p;
    }
    return out;
}

bool is_cancelled(const asio::cancellation_state& state) {
    return state.cancelled() != asio::cancellation_type::none;
}

std::string program(const Command& command) {
    return command.argv.empty() ? std::string{} : command.argv.front();
}

}  // namespace

Reconciler::Reconciler(Settings settings, CommandRunner& runner, Clock& clock)
    : settings_(std::move(settings)),
      desired_{.metadata_ip = settings_.metadata_ip,
               .metadata_port = settings_.metadata_port,
               .target_ip = effective_target_ip(settings_),
               .target_port = settings_.target_port},
      runner_(runner),
      clock_(clock),
      random_(std::random_device{}()) {
    if (settings_.backend != BackendChoice::automatic) {
        const Backend backend =
            settings_.backend == BackendChoice::legacy ? Backend::legacy : Backend::nft;
        commands_.emplace(backend, settings_.binary_dir, settings_.lock_wait_seconds,
                          settings_.command_timeout);
        stats_.backend = backend;
        stats_.backend_reason = "--iptables-backend";
    }
}

ReconcilerStats Reconciler::stats() const {
    const std::lock_guard lock{mutex_};
    return stats_;
}

asio::awaitable<const Commands*> Reconciler::commands() {
    if (!commands_) {
        const Detection detection =
            co_await detect_backend(runner_, settings_.binary_dir, settings_.command_timeout);
        commands_.emplace(detection.backend, settings_.binary_dir, settings_.lock_wait_seconds,
                          settings_.command_timeout);
        spdlog::info("iptables backend {} ({})", to_string(detection.backend), detection.reason);
        const std::lock_guard lock{mutex_};
        stats_.backend = detection.backend;
        stats_.backend_reason = detection.reason;
    }
    co_return &*commands_;
}

asio::awaitable<std::optional<NatState>> Reconciler::read_state(const Commands& commands,
                                                                std::string& error) {
    const Command command = commands.save_nat();
    const CommandResult result = co_await runner_.run(command);
    if (!result.succeeded()) {
        error = program(command) + " -t nat: " + result.describe();
        co_return std::nullopt;
    }
    co_return parse_nat_save(result.out);
}

asio::awaitable<Result<SyncReport>> Reconciler::sync_once() {
    {
        const std::lock_guard lock{mutex_};
        ++stats_.syncs;
    }
    // Independent of iptables: fresh for /readyz even while the rules cannot be read.
    check_route_localnet();
    const Commands* commands = co_await this->commands();
    std::string error;
    const std::optional<NatState> before = co_await read_state(*commands, error);
    if (!before) {
        co_return fail_sync(std::move(error));
    }
    const Plan needed = plan(*before, desired_);
    SyncReport report;
    if (!needed.in_sync) {
        spdlog::debug("iptables restore input:\n{}", needed.restore_input);
        const Command restore = commands->restore(needed.restore_input);
        const CommandResult applied = co_await runner_.run(restore);
        if (!applied.succeeded()) {
            co_return fail_sync(program(restore) + ": " + applied.describe() + " (fixing " +
                                join(needed.reasons) + ")");
        }
        const std::optional<NatState> after = co_await read_state(*commands, error);
        if (!after) {
            co_return fail_sync(std::move(error));
        }
        const Plan remaining = plan(*after, desired_);
        if (!remaining.in_sync) {
            co_return fail_sync("rules still differ after restore: " + join(remaining.reasons));
        }
        report.changed = true;
        report.reasons = needed.reasons;
        spdlog::info("iptables rules applied: {}", join(needed.reasons));
    }
    bool recovered = false;
    {
        const std::lock_guard lock{mutex_};
        recovered = stats_.consecutive_errors > 0;
        stats_.consecutive_errors = 0;
        stats_.in_sync = true;
        stats_.ever_in_sync = true;
        stats_.last_success = clock_.wall_now();
        if (report.changed) {
            ++stats_.applies;
        }
    }
    if (recovered) {
        spdlog::info("iptables rules in sync again after {} failed attempt(s)", attempt_);
    }
    attempt_ = 0;
    co_await after_sync();
    co_return report;
}

asio::awaitable<void> Reconciler::after_sync() {
    bool done = false;
    {
        const std::lock_guard lock{mutex_};
        done = stats_.conntrack_done;
    }
    if (!settings_.enable_conntrack_deletion || done) {
        co_return;
    }
    // Flows opened before the jump existed keep going to the real IMDS until they end;
    // deleting them makes their next packet meet the DNAT (NMI's --enable-conntrack-deletion).
    const Command command =
        commands_->conntrack_delete(settings_.metadata_ip, settings_.metadata_port);
    const CommandResult result = co_await runner_.run(command);
    const std::optional<std::size_t> deleted = conntrack_deleted(result);
    if (!deleted) {
        note_error(program(command) + " -D: " + result.describe());
        co_return;
    }
    spdlog::info("conntrack: deleted {} flow(s) to {}:{}", *deleted, settings_.metadata_ip,
                 settings_.metadata_port);
    const std::lock_guard lock{mutex_};
    stats_.conntrack_done = true;
    stats_.conntrack_flows_deleted = *deleted;
}

void Reconciler::check_route_localnet() {
    if (!needs_route_localnet(desired_.target_ip)) {
        return;
    }
    RouteLocalnetReport report = read_route_localnet(settings_.proc_root);
    std::string warning;
    if (settings_.set_route_localnet && report.blocks_loopback_dnat()) {
        if (enable_route_localnet(settings_.proc_root)) {
            spdlog::info("set net.ipv4.conf.all.route_localnet=1 (--set-route-localnet)");
            report = read_route_localnet(settings_.proc_root);
        } else {
            warning = "cannot write net.ipv4.conf.all.route_localnet; ";
        }
    }
    const std::string description = describe_route_localnet(report, desired_.target_ip);
    warning = description.empty() ? std::string{} : warning + description;
    if (warning != logged_route_warning_) {
        if (!warning.empty()) {
            spdlog::warn("{}", warning);
        } else {
            spdlog::info("route_localnet allows DNAT to {}", desired_.target_ip);
        }
        logged_route_warning_ = warning;
    }
    const std::lock_guard lock{mutex_};
    stats_.route_localnet_warning = std::move(warning);
}

Result<SyncReport> Reconciler::fail_sync(std::string text) {
    ++attempt_;
    spdlog::warn("iptables sync failed (attempt {}): {}", attempt_, text);
    const std::lock_guard lock{mutex_};
    ++stats_.errors;
    ++stats_.consecutive_errors;
    stats_.in_sync = false;
    stats_.last_error = std::move(text);
    return Errc::io_error;
}

void Reconciler::note_error(std::string text) {
    spdlog::warn("{}", text);
    const std::lock_guard lock{mutex_};
    ++stats_.errors;
    stats_.last_error = std::move(text);
}

std::chrono::milliseconds Reconciler::next_retry_delay() {
    const auto interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(settings_.update_interval);
    const std::chrono::milliseconds cap = std::min(settings_.retry_cap, interval);
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    return backoff_delay(static_cast<int>(std::min<std::uint64_t>(attempt_, 62)),
                         std::min(settings_.retry_base, cap), cap, unit(random_));
}

asio::awaitable<void> Reconciler::run() {
    // Cancellation is the normal way out: observe it as a value, never as an exception.
    co_await asio::this_coro::throw_if_cancelled(false);
    const asio::cancellation_state cancellation = co_await asio::this_coro::cancellation_state;
    for (;;) {
        const Result<SyncReport> result = co_await sync_once();
        if (is_cancelled(cancellation)) {
            co_return;
        }
        const std::chrono::milliseconds delay =
            result
                ? std::chrono::duration_cast<std::chrono::milliseconds>(settings_.update_interval)
                : next_retry_delay();
        co_await clock_.wait_until(clock_.steady_now() + delay);
        if (is_cancelled(cancellation)) {
            co_return;
        }
    }
}

asio::awaitable<Result<void>> Reconciler::cleanup() {
    const Commands* commands = co_await this->commands();
    std::string error;
    const std::optional<NatState> before = co_await read_state(*commands, error);
    if (!before) {
        note_error("cleanup: " + error);
        co_return Errc::io_error;
    }
    const std::optional<std::string> input = render_cleanup(*before);
    if (!input) {
        spdlog::info("iptables cleanup: no {} chain or jump to remove", kChain);
        co_return Result<void>{};
    }
    const Command restore = commands->restore(*input);
    const CommandResult result = co_await runner_.run(restore);
    if (!result.succeeded()) {
        note_error("cleanup: " + program(restore) + ": " + result.describe());
        co_return Errc::io_error;
    }
    const std::optional<NatState> after = co_await read_state(*commands, error);
    if (!after) {
        note_error("cleanup: " + error);
        co_return Errc::io_error;
    }
    if (after->chain_exists || !after->jumps.empty()) {
        note_error("cleanup: chain or jumps still present after restore");
        co_return Errc::io_error;
    }
    {
        const std::lock_guard lock{mutex_};
        stats_.in_sync = false;
    }
    spdlog::info("iptables cleanup: removed {} jump(s) and the {} chain", before->jumps.size(),
                 kChain);
    co_return Result<void>{};
}

}  // namespace nmid::iptables
