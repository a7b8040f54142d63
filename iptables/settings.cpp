#include "nmid/iptables/settings.hpp"

#include <arpa/inet.h>

#include <string>

namespace nmid::iptables {

namespace {

// inet_pton accepts exactly four decimal dotted parts, so nothing but an IPv4 address can
// reach the restore text (no spaces, newlines or options smuggled in through a flag).
bool is_ipv4(const std::string& text) {
    in_addr addr{};
    return ::inet_pton(AF_INET, text.c_str(), &addr) == 1;
}

}  // namespace

std::string_view to_string(Backend backend) noexcept {
    return backend == Backend::legacy ? "legacy" : "nft";
}

std::string_view to_string(BackendChoice choice) noexcept {
    switch (choice) {
        case BackendChoice::nft:
            return "nft";
        case BackendChoice::legacy:
            return "legacy";
        case BackendChoice::automatic:
            break;
    }
    return "auto";
}

std::optional<BackendChoice> parse_backend_choice(std::string_view text) noexcept {
    if (text == "auto") {
        return BackendChoice::automatic;
    }
    if (text == "nft") {
        return BackendChoice::nft;
    }
    if (text == "legacy") {
        return BackendChoice::legacy;
    }
    return std::nullopt;
}

std::string effective_target_ip(const Settings& settings) {
    return settings.target_ip == "0.0.0.0" ? std::string{"127.0.0.1"} : settings.target_ip;
}

std::string validation_error(const Settings& settings) {
    if (!is_ipv4(settings.metadata_ip)) {
        return "--metadata-ip must be an IPv4 address, got '" + settings.metadata_ip + "'";
    }
    if (!is_ipv4(settings.target_ip)) {
        return "--nmi-listen-address must be an IPv4 address for the DNAT rule, got '" +
               settings.target_ip + "'";
    }
    if (settings.metadata_port == 0) {
        return "--metadata-port must not be 0";
    }
    if (settings.target_port == 0) {
        return "--nmi-port must not be 0 when iptables rules are managed";
    }
    if (settings.update_interval.count() <= 0) {
        return "--ipt-update-interval-sec must be positive";
    }
    if (settings.command_timeout.count() <= 0) {
        return "iptables command timeout must be positive";
    }
    if (settings.lock_wait_seconds < 0) {
        return "iptables lock wait must not be negative";
    }
    if (settings.retry_base.count() <= 0 || settings.retry_cap < settings.retry_base) {
        return "iptables retry delays must satisfy 0 < base <= cap";
    }
    return {};
}

Result<void> validate(const Settings& settings) {
    if (!validation_error(settings).empty()) {
        return Errc::invalid_config;
    }
    return {};
}

}  // namespace nmid::iptables
