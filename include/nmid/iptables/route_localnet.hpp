#pragma once

// route_localnet: a DNAT from PREROUTING to 127.0.0.1 works only when the kernel accepts
// routing to 127/8 on the interface the packet came in on, i.e. when
// net.ipv4.conf.all.route_localnet or net.ipv4.conf.<if>.route_localnet is 1 (the kernel ORs
// the two). Otherwise the packet is a martian and is dropped silently: pods time out.

#include <string>
#include <string_view>
#include <vector>

#include "nmid/core/errc.hpp"

namespace nmid::iptables {

struct InterfaceLocalnet {
    std::string name{};
    bool enabled = false;
    friend bool operator==(const InterfaceLocalnet&, const InterfaceLocalnet&) = default;
};

struct RouteLocalnetReport {
    bool readable = false;     ///< conf/all/route_localnet could be read
    bool all_enabled = false;  ///< net.ipv4.conf.all.route_localnet == 1
    /// net.ipv4.conf.default.route_localnet == 1: what new interfaces (pod veths) start with.
    bool default_enabled = false;
    /// Every interface under conf/ except all, default and lo, sorted by name.
    std::vector<InterfaceLocalnet> interfaces{};
    std::string error{};  ///< why it is not readable

    /// Interfaces where DNAT to 127.0.0.1 would be dropped (none when `all` is on).
    [[nodiscard]] std::vector<std::string> blocked_interfaces() const;
    /// True when some present or future interface would drop DNAT to 127.0.0.1.
    [[nodiscard]] bool blocks_loopback_dnat() const {
        return readable && !all_enabled && (!default_enabled || !blocked_interfaces().empty());
    }
};

/// True when `target_ip` is in 127.0.0.0/8, the case that needs route_localnet.
[[nodiscard]] bool needs_route_localnet(std::string_view target_ip);

/// Reads `<proc_root>/sys/net/ipv4/conf/{all,<if>}/route_localnet`. Small synchronous reads
/// of procfs (or of a test directory). Never throws.
[[nodiscard]] RouteLocalnetReport read_route_localnet(const std::string& proc_root);

/// Writes "1" to `<proc_root>/sys/net/ipv4/conf/all/route_localnet` (--set-route-localnet).
/// Enables it for every interface, present and future (pod veths come and go).
/// Errors: Errc::io_error (read-only /proc/sys, missing NET_ADMIN).
[[nodiscard]] Result<void> enable_route_localnet(const std::string& proc_root);

/// One line for the log and /readyz; empty when nothing is wrong: the target is not on
/// loopback, or route_localnet is on. Otherwise, e.g.
/// "route_localnet is off (net.ipv4.conf.all.route_localnet=0; off on eth0, cali12 and for new
///  interfaces): DNAT to 127.0.0.1 is dropped as martian; use --set-route-localnet or a node
///  IP in --nmi-listen-address".
[[nodiscard]] std::string describe_route_localnet(const RouteLocalnetReport& report,
                                                  std::string_view target_ip);

}  // namespace nmid::iptables
