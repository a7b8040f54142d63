#include "pod_snapshot.hpp"

#include <utility>

#include "nmid/pods/pod_eligibility.hpp"

namespace nmid::pods_detail {

namespace asio = boost::asio;

IpKey to_key(const asio::ip::address& ip) {
    if (ip.is_v4()) {
        return asio::ip::make_address_v6(asio::ip::v4_mapped, ip.to_v4()).to_bytes();
    }
    return ip.to_v6().to_bytes();  // scope id dropped: pod IPs carry none
}

namespace {

bool same_pod(const PodInfo& a, const PodInfo& b) {
    return a.namespace_name == b.namespace_name && a.name == b.name && a.uid == b.uid;
}

}  // namespace

std::string name_key(std::string_view ns, std::string_view name) {
    std::string key;
    key.reserve(ns.size() + name.size() + 1);
    key.append(ns).append("/").append(name);
    return key;
}

std::shared_ptr<const Snapshot> build_snapshot(std::shared_ptr<const PodList> list) {
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->list = std::move(list);
    snapshot->by_ip.reserve(snapshot->list->pods.size() * 2);
    for (const PodInfo& pod : snapshot->list->pods) {
        if (answered_for(pod)) {
            snapshot->by_name.insert_or_assign(name_key(pod.namespace_name, pod.name),
                                               PodInfoPtr{snapshot->list, &pod});
        }
        if (!indexed_by_ip(pod)) {
            continue;
        }
        // Aliasing pointer: each PodInfoPtr keeps the whole list alive, no per-pod allocation.
        PodInfoPtr ptr{snapshot->list, &pod};
        bool indexed = false;
        for (const std::string& text : pod.ips) {
            boost::system::error_code ec;
            const auto addr = asio::ip::make_address(text, ec);
            if (ec) {
                continue;  // parse_pod_list validates IPs; other sources may not
            }
            indexed = true;
            auto [it, inserted] = snapshot->by_ip.try_emplace(to_key(addr), ptr);
            if (!inserted && it->second && !same_pod(*it->second, pod)) {
                it->second = nullptr;
            }
        }
        if (indexed) {
            ++snapshot->indexed_pods;
        }
    }
    return snapshot;
}

}  // namespace nmid::pods_detail
