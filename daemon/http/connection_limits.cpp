#include "connection_limits.hpp"

namespace nmid::http::detail {

Admission admit(std::size_t peer_connections, std::size_t active, std::size_t max_per_peer,
                std::size_t max_connections) noexcept {
    if (max_per_peer != 0 && peer_connections >= max_per_peer) {
        return Admission::over_peer_limit;
    }
    if (active >= max_connections) {
        return Admission::over_global_limit;
    }
    return Admission::accept;
}

Peer& PeerTable::reserve(const boost::asio::ip::address& address) {
    Peer& peer = peers_[address];
    if (peer.count == 0) {
        peer.address = address;
    }
    ++peer.count;
    return peer;
}

void PeerTable::release(Peer& peer) noexcept {
    if (--peer.count == 0 && peer.first == nullptr) {
        peers_.erase(peer.address);
    }
}

std::size_t PeerTable::count(const boost::asio::ip::address& address) const {
    const auto it = peers_.find(address);
    return it == peers_.end() ? 0 : it->second.count;
}

void PeerTable::link(Peer& peer, PeerLink& link) noexcept {
    link.peer = &peer;
    link.prev = peer.last;
    link.next = nullptr;
    if (peer.last != nullptr) {
        peer.last->next = &link;
    } else {
        peer.first = &link;
    }
    peer.last = &link;
}

void PeerTable::unlink(PeerLink& link) noexcept {
    Peer* const peer = link.peer;
    if (peer == nullptr) {
        return;
    }
    (link.prev != nullptr ? link.prev->next : peer->first) = link.next;
    (link.next != nullptr ? link.next->prev : peer->last) = link.prev;
    link.peer = nullptr;
    link.prev = nullptr;
    link.next = nullptr;
}

PeerLink* PeerTable::claim_idle(Peer& peer) noexcept {
    // A claim can lose to the connection waking up; then the next oldest is tried, a few
    // times (a connection flipping between busy and idle faster than this scan is not idle).
    constexpr int kAttempts = 4;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        PeerLink* oldest = nullptr;
        std::int64_t oldest_since = 0;
        for (PeerLink* l = peer.first; l != nullptr; l = l->next) {
            const std::int64_t since = l->mark.idle_since();
            if (since != 0 && (oldest == nullptr || since < oldest_since)) {
                oldest = l;
                oldest_since = since;
            }
        }
        if (oldest == nullptr) {
            return nullptr;
        }
        if (oldest->mark.claim(oldest_since)) {
            unlink(*oldest);
            return oldest;
        }
    }
    return nullptr;
}

PeerLink* PeerTable::claim_idle_of_busiest() noexcept {
    Peer* busiest = nullptr;
    for (auto& [address, peer] : peers_) {
        if (busiest == nullptr || peer.count > busiest->count) {
            busiest = &peer;
        }
    }
    return busiest == nullptr ? nullptr : claim_idle(*busiest);
}

}  // namespace nmid::http::detail
