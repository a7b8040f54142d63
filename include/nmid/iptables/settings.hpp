#pragma once

// Settings of the iptables module (issue 4). `config` fills them from flags; `app` hands the
// struct to the Reconciler by value (house rule R8).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"

namespace nmid::iptables {

/// The two xtables backends of iptables >= 1.8.
enum class Backend { nft, legacy };

/// `--iptables-backend=auto|nft|legacy`.
enum class BackendChoice { automatic, nft, legacy };

/// "nft" or "legacy".
[[nodiscard]] std::string_view to_string(Backend backend) noexcept;
/// "auto", "nft" or "legacy".
[[nodiscard]] std::string_view to_string(BackendChoice choice) noexcept;
/// Parses "auto", "nft" or "legacy" (exact, lower case); nullopt otherwise.
[[nodiscard]] std::optional<BackendChoice> parse_backend_choice(std::string_view text) noexcept;

struct Settings {
    BackendChoice backend = BackendChoice::automatic;  ///< --iptables-backend
    std::string metadata_ip{"169.254.169.254"};        ///< --metadata-ip
    std::uint16_t metadata_port = 80;                  ///< --metadata-port
    /// DNAT target address: --nmi-listen-address; `0.0.0.0` means 127.0.0.1 (NMI's rule).
    std::string target_ip{"127.0.0.1"};
    std::uint16_t target_port = 2579;          ///< --nmi-port
    std::chrono::seconds update_interval{60};  ///< --ipt-update-interval-sec
    bool set_route_localnet = false;           ///< --set-route-localnet
    bool enable_conntrack_deletion = true;     ///< --enable-conntrack-deletion (fail closed)
    bool cleanup_on_exit = false;              ///< --cleanup-rules-on-exit (read by `app`)
    std::string proc_root{"/proc"};            ///< where net/ipv4/conf lives (tests: temp dir)
    /// Directory of the iptables binaries; empty: looked up in PATH.
    std::string binary_dir{};
    /// `--wait=<seconds>` given to iptables-restore: how long legacy waits for the xtables
    /// lock (0: not at all). iptables-nft-restore takes no lock and ignores it.
    int lock_wait_seconds = 10;
    /// Every command is killed when it runs longer than this (lock wait included).
    std::chrono::milliseconds command_timeout{30'000};
    std::chrono::milliseconds retry_base{1'000};  ///< first retry delay after an error
    std::chrono::milliseconds retry_cap{60'000};  ///< longest retry delay
};

/// The DNAT target actually used: `target_ip`, or 127.0.0.1 when it is 0.0.0.0.
[[nodiscard]] std::string effective_target_ip(const Settings& settings);

/// Checks what ends up in iptables-restore input: IPv4 dotted quads for both addresses
/// (nothing else can reach the rule text), non-zero ports, a positive interval, a positive
/// timeout, a lock wait >= 0, 0 < retry_base <= retry_cap.
/// Errors: Errc::invalid_config.
[[nodiscard]] Result<void> validate(const Settings& settings);

/// Same checks, with a message naming the flag at fault (empty when valid), for `config`.
[[nodiscard]] std::string validation_error(const Settings& settings);

}  // namespace nmid::iptables
