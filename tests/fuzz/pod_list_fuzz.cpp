// Fuzz target: PodList and single pod JSON (pods/pod_list_json). The input is read three
// ways: as a whole pod list (kubelet `/pods`, `kubectl get pods -o json`, an API-server list
// page), as one pod (an item of a PodList) and as the object of a watch event.
//
// Invariants:
// - nothing throws (the parsers promise never to throw);
// - a parsed pod has a name and a namespace, and its IPs are canonical, distinct addresses
//   (what the pod index keys on);
// - an API-server page that parses gives the same pods as parse_pod_list();
// - PodListDecoder returns the same pods as parse_pod_list(), and the same pointer for the
//   same body twice;
// - a pod read as a PodList item and as a watch event's object is the same pod.

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "fuzz_check.hpp"
#include "nmid/pods/pod_list_json.hpp"

using nmid::fuzz::check;

namespace {

void check_pod(const nmid::PodInfo& pod) {
    check(!pod.name.empty(), "pod without a name");
    check(!pod.namespace_name.empty(), "pod without a namespace");
    std::set<std::string> seen;
    for (const std::string& ip : pod.ips) {
        boost::system::error_code ec;
        const boost::asio::ip::address a = boost::asio::ip::make_address(ip, ec);
        check(!ec, "pod IP that is not an address");
        check(a.to_string() == ip, "pod IP not in canonical text");
        check(!a.is_v6() || !a.to_v6().is_v4_mapped(), "IPv4-mapped pod IP");
        check(seen.insert(ip).second, "duplicate pod IP");
    }
}

void check_list(const nmid::Result<nmid::PodList>& list) {
    if (list) {
        for (const nmid::PodInfo& pod : list->pods) {
            check_pod(pod);
        }
    }
}

void fuzz_one(std::string_view text) {
    std::string detail;
    const nmid::Result<nmid::PodList> list = nmid::parse_pod_list(text, &detail);
    check_list(list);

    const nmid::Result<nmid::PodListPage> page = nmid::parse_pod_list_page(text);
    if (page) {
        check(list && page->list.pods == list->pods, "a page's pods differ from the list's");
    }

    nmid::PodListDecoder decoder;
    const auto first = decoder.decode(text);
    check(first.has_value() == list.has_value(), "decoder and parser disagree");
    if (first) {
        check((*first)->pods == list->pods, "decoder and parser give other pods");
        const auto again = decoder.decode(text);
        check(again && *again == *first, "same body decoded twice gives another list");
    }

    // One pod: as the only item of a PodList, and as a watch event's object (when the input
    // is one JSON value, so that wrapping it cannot make two documents of different shapes).
    if (!nlohmann::json::accept(text)) {
        return;
    }
    const std::string as_item = R"({"kind":"PodList","items":[)" + std::string(text) + "]}";
    const nmid::Result<nmid::PodList> item = nmid::parse_pod_list(as_item);
    check_list(item);
    const std::string as_event = R"({"type":"ADDED","object":)" + std::string(text) + "}";
    const nmid::Result<nmid::PodWatchEvent> event = nmid::parse_pod_watch_event(as_event);
    if (event) {
        check_pod(event->pod);
        if (item && item->pods.size() == 1) {
            check(item->pods.front() == event->pod, "a pod reads differently in a watch event");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return nmid::fuzz::run_no_throw(data, size, fuzz_one);
}
