// The /debug/explain query: hostile input like any other (the listener is loopback by default,
// but a person may bind it wider), so every parameter is checked before anything is looked up.

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <string>

#include "nmid/explain/report.hpp"
#include "nmid/http/router.hpp"
#include "nmid/workload/constants.hpp"

namespace nmid::explain {
namespace {

constexpr std::array<std::string_view, 4> kNames{"ip", "namespace", "pod", "format"};
constexpr std::size_t kMaxSubdomain = 253;

// RFC 1123 subdomain: labels joined by '.'.
bool dns_subdomain(std::string_view s) {
    if (s.empty() || s.size() > kMaxSubdomain) {
        return false;
    }
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = s.find('.', start);
        if (!workload::dns_label(s.substr(start, dot - start))) {
            return false;
        }
        if (dot == std::string_view::npos) {
            return true;
        }
        start = dot + 1;
    }
}

}  // namespace

std::variant<Query, std::string> parse_query(std::string_view query) {
    if (query.size() > kMaxQuery) {
        return "query longer than " + std::to_string(kMaxQuery) + " bytes";
    }
    std::array<int, kNames.size()> seen{};
    std::size_t start = 0;
    while (start <= query.size() && !query.empty()) {
        const std::size_t amp = std::min(query.find('&', start), query.size());
        const std::string_view pair = query.substr(start, amp - start);
        const std::string_view key = pair.substr(0, pair.find('='));
        const auto it = std::find(kNames.begin(), kNames.end(), key);
        if (it == kNames.end()) {
            return "unknown parameter (give ip=<pod IP>, or namespace=<ns>&pod=<name>, and "
                   "optionally format=text|json)";
        }
        if (++seen[static_cast<std::size_t>(it - kNames.begin())] > 1) {
            return "parameter " + std::string{key} + " given twice";
        }
        start = amp + 1;
    }
    std::array<std::string, kNames.size()> values;
    http::query_params(query, kNames, values);
    Query q;
    q.ip = std::move(values[0]);
    q.namespace_name = std::move(values[1]);
    q.pod = std::move(values[2]);
    const std::string& format = values[3];
    if (format == "json") {
        q.json = true;
    } else if (!format.empty() && format != "text") {
        return "format must be text or json";
    }
    const bool by_ip = !q.ip.empty();
    const bool by_name = !q.namespace_name.empty() || !q.pod.empty();
    if (by_ip == by_name) {
        return "give exactly one of ip=<pod IP> or namespace=<ns>&pod=<name>";
    }
    if (by_ip) {
        // make_address() reads a C string: an embedded NUL ("10.0.0.5%00") would end the
        // address early, so only address characters get that far (zone ids are refused too).
        const bool address_chars = std::all_of(q.ip.begin(), q.ip.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                   c == '.' || c == ':';
        });
        boost::system::error_code ec;
        if (address_chars) {
            boost::asio::ip::make_address(q.ip, ec);
        }
        if (!address_chars || ec) {
            return "ip is not an IPv4 or IPv6 address";
        }
        return q;
    }
    if (!workload::dns_label(q.namespace_name)) {
        return "namespace must be a Kubernetes namespace name (a DNS label)";
    }
    if (!dns_subdomain(q.pod)) {
        return "pod must be a Kubernetes pod name (a DNS subdomain)";
    }
    return q;
}

}  // namespace nmid::explain
