#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nmid/iptables/command_runner.hpp"
#include "nmid/iptables/settings.hpp"

namespace nmid::iptables {

/// Command lines for one backend. Pure: builds argv, runs nothing.
class Commands {
public:
    /// `binary_dir` empty: bare names (PATH lookup); otherwise "<dir>/<name>".
    Commands(Backend backend, std::string binary_dir, int lock_wait_seconds,
             std::chrono::milliseconds timeout);

    [[nodiscard]] Backend backend() const { return backend_; }
    /// `iptables-<backend>-save -t nat` (iptables-save takes no lock, so no -w).
    [[nodiscard]] Command save_nat() const;
    /// `iptables-<backend>-restore --wait=<lock_wait> --noflush`, `input` on stdin
    /// (legacy waits for /run/xtables.lock that long; nft accepts and ignores it).
    [[nodiscard]] Command restore(std::string input) const;
    /// `conntrack -D -d <ip> -p tcp --dport <port>`: flows whose original destination is the
    /// metadata endpoint (conntrack takes no xtables lock).
    [[nodiscard]] Command conntrack_delete(std::string_view ip, std::uint16_t port) const;

private:
    [[nodiscard]] std::string binary(std::string_view name) const;

    Backend backend_;
    std::string binary_dir_{};
    int lock_wait_seconds_;
    std::chrono::milliseconds timeout_;
};

/// What backend detection saw, for the start-up log.
struct Detection {
    Backend backend = Backend::nft;
    std::string reason{};  ///< e.g. "kubelet chains in iptables-nft-save -t mangle"
};

/// Picks the backend as kubernetes-sigs/iptables-wrappers does (the wrapper kube-proxy's
/// image uses):
///  1. KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY in `iptables-nft-save -t mangle` or
///     `ip6tables-nft-save -t mangle`: nft;
///  2. the same chains in `iptables-legacy-save` or `ip6tables-legacy-save` (all tables:
///     `-t mangle` would make the legacy kernel module create the table): legacy;
///  3. otherwise count rule lines of legacy (v4+v6) and nft (v4+v6) saves: legacy when it
///     has strictly more, else nft.
/// A command that fails counts as empty output (the wrapper ignores errors too). Stops at the
/// first step that decides. Executor: the caller's. Never fails: nft when all else fails.
boost::asio::awaitable<Detection> detect_backend(CommandRunner& runner, std::string_view binary_dir,
                                                 std::chrono::milliseconds timeout);

/// Number of flows a `conntrack -D` run deleted, from its output ("conntrack v1.4.7
/// (conntrack-tools): 3 flow entries have been deleted."). Exit status 1 with "0 flow
/// entries" is conntrack's way of saying none matched, which is success here.
/// Errors: nullopt when the run failed for any other reason.
[[nodiscard]] std::optional<std::size_t> conntrack_deleted(const CommandResult& result);

}  // namespace nmid::iptables
