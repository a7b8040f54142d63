#pragma once

// The immutable IP -> pod snapshot PodIndex publishes, and how it is built from a PodList.
// Pure; private to the pods module.

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "nmid/model/pod.hpp"

namespace nmid::pods_detail {

// IPv4 is keyed in its IPv4-mapped IPv6 form, so `::ffff:a.b.c.d` and `a.b.c.d` are one key.
using IpKey = std::array<unsigned char, 16>;

struct IpKeyHash {
    std::size_t operator()(const IpKey& key) const noexcept {
        std::uint64_t hi = 0;
        std::uint64_t lo = 0;
        std::memcpy(&hi, key.data(), sizeof hi);
        std::memcpy(&lo, key.data() + sizeof hi, sizeof lo);
        // Pod IPs differ in the low bytes; one multiply spreads them over the buckets.
        return static_cast<std::size_t>((hi * 0x9E3779B97F4A7C15ULL) ^ lo) * 0xC2B2AE3D27D4EB4FULL;
    }
};

IpKey to_key(const boost::asio::ip::address& ip);

struct Snapshot {
    std::shared_ptr<const PodList> list;
    std::size_t indexed_pods = 0;
    /// A null pointer marks an IP claimed by several pods.
    std::unordered_map<IpKey, PodInfoPtr, IpKeyHash> by_ip;
    /// "namespace/name" of every pod answered_for() (hostNetwork ones too: /host/token
    /// names the pod instead of trusting an address).
    std::unordered_map<std::string, PodInfoPtr> by_name;
};

std::string name_key(std::string_view ns, std::string_view name);

/// Indexes `list`: the pods answered_for() by name, those indexed_by_ip() also by IP (an IP
/// claimed by two pods maps to null).
std::shared_ptr<const Snapshot> build_snapshot(std::shared_ptr<const PodList> list);

}  // namespace nmid::pods_detail
