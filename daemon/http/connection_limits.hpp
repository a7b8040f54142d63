#pragma once

// Per-pod connection fairness (issue 11.4): how many connections each source IP holds, which of
// them wait idle between keep-alive requests, and which to close when a pod, or the listener, is
// at its cap. Private to the http module.

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace nmid::http::detail {

/// What the listener does with a new connection before trimming anything. Pure.
enum class Admission {
    accept,
    /// Its source IP already holds `max_per_peer`: close that IP's oldest idle keep-alive
    /// connection and accept, or, when it has none, 429 and close.
    over_peer_limit,
    /// `max_connections` are open: close an idle keep-alive connection of the IP holding the
    /// most connections and accept, or, when it has none, 503 and close.
    over_global_limit,
};

/// `peer_connections`: open (and being opened) connections from the new one's IP, without it;
/// `active`: open connections in all; `max_per_peer` 0: no per-IP cap. The per-IP cap is
/// checked first: a pod at its own cap trades one of its own connections, never another's.
[[nodiscard]] Admission admit(std::size_t peer_connections, std::size_t active,
                              std::size_t max_per_peer, std::size_t max_connections) noexcept;

/// Whether a connection waits idle for its next keep-alive request. Written without a lock by
/// the connection (idle before its wait, busy after), claimed under the PeerTable's lock by the
/// accept loop; whoever moves it first wins, so a connection that just received a request is
/// never closed under it, and a claimed one closes when it wakes.
class IdleMark {
public:
    /// Idle from `since` (any increasing tick count > 0; smaller is idle longer).
    void idle(std::int64_t since) noexcept { state_.store(since, std::memory_order_release); }
    /// Busy again. False when the connection was claimed meanwhile: it must close.
    [[nodiscard]] bool busy() noexcept {
        return state_.exchange(kBusy, std::memory_order_acq_rel) != kClaimed;
    }
    /// When idle, the tick it became idle; 0 otherwise.
    [[nodiscard]] std::int64_t idle_since() const noexcept {
        const std::int64_t s = state_.load(std::memory_order_acquire);
        return s > 0 ? s : 0;
    }
    /// Takes an idle connection that has been idle since `since`; false when it moved.
    [[nodiscard]] bool claim(std::int64_t since) noexcept {
        if (since <= 0) {
            return false;  // busy or already claimed
        }
        std::int64_t expected = since;
        return state_.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel);
    }

private:
    static constexpr std::int64_t kBusy = 0;
    static constexpr std::int64_t kClaimed = -1;
    std::atomic<std::int64_t> state_{kBusy};
};

struct Peer;

/// One connection's place in its IP's list. Lives with the connection; linked and unlinked
/// under the PeerTable's lock.
struct PeerLink {
    std::uint64_t id = 0;  ///< the connection's id in the server's registry
    IdleMark mark;
    Peer* peer = nullptr;  ///< null when not in a list (not yet linked, or claimed)
    PeerLink* prev = nullptr;
    PeerLink* next = nullptr;
};

/// One source IP: its connection count and its linked connections, oldest first.
struct Peer {
    boost::asio::ip::address address;
    std::size_t count = 0;  ///< reserved at accept, released when the connection ends
    PeerLink* first = nullptr;
    PeerLink* last = nullptr;
};

/// Connections per source IP. Not thread-safe: the server calls it under its registry mutex.
/// reserve/release/link/unlink are O(1) (one hash lookup at most); the claims scan the links of
/// one IP (at most its cap), or every IP for the busiest, and run only when a cap is reached.
class PeerTable {
public:
    /// Counts a new connection from `address`; the Peer stays valid until its last release().
    Peer& reserve(const boost::asio::ip::address& address);
    /// Uncounts a connection reserved with reserve(); forgets the IP at zero.
    void release(Peer& peer) noexcept;
    /// Open connections from `address` (0 for an unknown IP).
    [[nodiscard]] std::size_t count(const boost::asio::ip::address& address) const;
    /// Distinct IPs with connections.
    [[nodiscard]] std::size_t peers() const noexcept { return peers_.size(); }

    /// Adds `link` to the end of `peer`'s list (a reserved connection that is now registered).
    static void link(Peer& peer, PeerLink& link) noexcept;
    /// Takes `link` out of its list; no-op when it is in none.
    static void unlink(PeerLink& link) noexcept;

    /// Claims and unlinks `peer`'s connection idle longest; null when none is idle. The count
    /// is unchanged until that connection ends and is released.
    static PeerLink* claim_idle(Peer& peer) noexcept;
    /// claim_idle() on the IP holding the most connections (ties: any of them).
    PeerLink* claim_idle_of_busiest() noexcept;

private:
    std::unordered_map<boost::asio::ip::address, Peer> peers_;
};

}  // namespace nmid::http::detail
