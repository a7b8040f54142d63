#include "nmid/iptables/route_localnet.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace nmid::iptables {

namespace fs = std::filesystem;

namespace {

fs::path conf_dir(const std::string& proc_root) {
    return fs::path{proc_root} / "sys" / "net" / "ipv4" / "conf";
}

// "1\n" -> true, "0\n" -> false; anything else (missing file, junk) -> nullopt.
std::optional<bool> read_flag(const fs::path& file) {
    std::ifstream in{file};
    std::string value;
    if (!in || !(in >> value)) {
        return std::nullopt;
    }
    if (value == "0") {
        return false;
    }
    if (value == "1") {
        return true;
    }
    return std::nullopt;
}

}  // namespace

std::vector<std::string> RouteLocalnetReport::blocked_interfaces() const {
    std::vector<std::string> out;
    if (all_enabled) {
        return out;
    }
    for (const InterfaceLocalnet& i : interfaces) {
        if (!i.enabled) {
            out.push_back(i.name);
        }
    }
    return out;
}

bool needs_route_localnet(std::string_view target_ip) {
    const std::string text{target_ip};
    in_addr addr{};
    if (::inet_pton(AF_INET, text.c_str(), &addr) != 1) {
        return false;
    }
    return (ntohl(addr.s_addr) >> 24) == 127;
}

RouteLocalnetReport read_route_localnet(const std::string& proc_root) {
    RouteLocalnetReport report;
    const fs::path conf = conf_dir(proc_root);
    const std::optional<bool> all = read_flag(conf / "all" / "route_localnet");
    if (!all) {
        report.error = "cannot read " + (conf / "all" / "route_localnet").string();
        return report;
    }
    report.readable = true;
    report.all_enabled = *all;
    report.default_enabled = read_flag(conf / "default" / "route_localnet").value_or(false);
    std::error_code ec;
    for (fs::directory_iterator it{conf, ec}, end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name == "all" || name == "default" || name == "lo") {
            continue;
        }
        const std::optional<bool> flag = read_flag(it->path() / "route_localnet");
        if (flag) {
            report.interfaces.push_back({.name = name, .enabled = *flag});
        }
    }
    std::sort(
        report.interfaces.begin(), report.interfaces.end(),
        [](const InterfaceLocalnet& a, const InterfaceLocalnet& b) { return a.name < b.name; });
    return report;
}

Result<void> enable_route_localnet(const std::string& proc_root) {
    std::ofstream out{conf_dir(proc_root) / "all" / "route_localnet"};
    if (!out) {
        return Errc::io_error;
    }
    out << "1\n";
    out.flush();
    if (!out) {
        return Errc::io_error;
    }
    return {};
}

std::string describe_route_localnet(const RouteLocalnetReport& report, std::string_view target_ip) {
    if (!needs_route_localnet(target_ip)) {
        return {};
    }
    if (!report.readable) {
        return "route_localnet unknown (" + report.error + "): DNAT to " + std::string{target_ip} +
               " works only where it is 1";
    }
    if (!report.blocks_loopback_dnat()) {
        return {};
    }
    const std::vector<std::string> blocked = report.blocked_interfaces();
    std::ostringstream text;
    text << "route_localnet is off (net.ipv4.conf.all.route_localnet=0; off";
    constexpr std::size_t kMaxNamed = 8;
    for (std::size_t i = 0; i < blocked.size() && i < kMaxNamed; ++i) {
        text << (i == 0 ? " on " : ", ") << blocked[i];
    }
    if (blocked.size() > kMaxNamed) {
        text << " and " << blocked.size() - kMaxNamed << " more";
    }
    if (!report.default_enabled) {
        text << (blocked.empty() ? " for new interfaces" : " and for new interfaces");
    }
    text << "): DNAT to " << target_ip
         << " is dropped as martian; use --set-route-localnet or a node IP in "
            "--nmi-listen-address";
    return text.str();
}

}  // namespace nmid::iptables
