#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/pod.hpp"
#include "nmid/pods/pod_source.hpp"

namespace nmid {

/// Counters for metrics and /readyz. Read with relaxed ordering (exact under one I/O thread).
struct PodIndexStats {
    /// Pods in the index: indexed_by_ip() (pod_eligibility.hpp) and with an IP (terminal,
    /// terminated-while-terminating and hostNetwork pods of the list are not counted).
    std::size_t pods = 0;
    std::size_t ips = 0;                 ///< IPs in the index (ambiguous ones included)
    std::uint64_t refreshes = 0;         ///< successful source reads
    std::uint64_t refresh_failures = 0;  ///< failed source reads
    /// find_or_refresh() and find_fresh() calls that found no pod in the snapshot and waited
    /// for a read (find() alone is not counted, so find() then find_or_refresh() counts once).
    std::uint64_t misses = 0;
    std::uint64_t coalesced_waiters = 0;  ///< refresh waits that joined a read already planned
    /// find_fresh() calls whose snapshot was at or past the freshness bound, so they waited
    /// for a revalidating read (zero under steady traffic: see refreshes_ahead).
    std::uint64_t stale_waits = 0;
    /// Reads started by find_fresh() traffic at half the freshness bound, before it expires.
    std::uint64_t refreshes_ahead = 0;
    SteadyTime last_refresh{};  ///< last successful read completed (Clock::steady_now)
    /// Start of the last successful read: the snapshot shows the source as of this time or
    /// later (SteadyTime::min() before the first read).
    SteadyTime fresh_as_of = SteadyTime::min();
};

/// IP -> pod for the pods of this node, fed by a PodSource.
///
/// Only pods indexed_by_ip() are indexed (pod_eligibility.hpp: Pending or Running, phase
/// absent counting as Pending; not hostNetwork; not terminating with every container
/// terminated, whose IP may already be a new pod's). An IP claimed by two or more indexed pods is
/// ambiguous and never resolved. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as
/// IPv4.
///
/// The index is an immutable snapshot published atomically: find() is a hash lookup from any
/// thread. Reads of the source are coalesced: at most one is in flight, misses share it, and
/// a new read starts no sooner than `min_refresh_interval` after the previous one completed.
/// A failed read keeps the previous snapshot.
///
/// Freshness bound F (`settings.freshness`, 0: none): find_fresh() answers a request that
/// arrives at time t only from a snapshot produced by a successful read that started after
/// t - F; an older mapping is revalidated through the same coalesced read first. Every
/// find_fresh() answered from a snapshot at least F/2 old starts one background read (if none
/// is in flight), so while requests keep coming the snapshot is renewed before it reaches F
/// and they never wait (as long as a read takes less than F/2).
///
/// Lifetime: `source` and `clock` must outlive the index and any read it started (a read ends
/// by its deadline, `refresh_deadline` after it starts).
class PodIndex {
public:
    /// `executor`: where reads, waits and the poll loop run (a strand or a single-threaded
    /// io_context). Settings are used as given (validated by `config`).
    PodIndex(boost::asio::any_io_executor executor, PodSource& source, Clock& clock,
             PodSettings settings);
    ~PodIndex();
    PodIndex(const PodIndex&) = delete;
    PodIndex& operator=(const PodIndex&) = delete;

    /// The pod owning `ip` in the current snapshot; no waiting, no allocation, no lock besides
    /// the snapshot's atomic load. Thread-safe.
    /// Errors: Errc::pod_not_found, Errc::pod_ip_ambiguous.
    [[nodiscard]] Result<PodInfoPtr> find(const boost::asio::ip::address& ip) const;

    /// The pod `namespace_name/name` in the current snapshot if answered_for() (hostNetwork
    /// pods included), for `/host/token`, which names the pod. Thread-safe.
    /// Errors: Errc::pod_not_found.
    [[nodiscard]] Result<PodInfoPtr> find_by_name(std::string_view namespace_name,
                                                  std::string_view name) const;

    /// find(); on Errc::pod_not_found joins (or starts) the one coalesced read shared by all
    /// waiters, waits at most `refresh_deadline` (measured with the injected Clock), then
    /// looks again. A waiter whose joined read had started before its miss waits for the next
    /// read too (within the same deadline), so a pod is never missed because of an earlier read.
    /// Executor: any; the wait runs on the index's executor. `ip` is copied at the call.
    /// Cancellation: per-operation cancellation of the awaiting coroutine abandons the wait
    /// (Errc::cancelled), never the read.
    /// Errors: as find(), plus Errc::pod_source_failed (the read failed and the IP is still
    /// unknown), Errc::timeout (no read completed in time), Errc::cancelled.
    boost::asio::awaitable<Result<PodInfoPtr>> find_or_refresh(const boost::asio::ip::address& ip);

    /// The pod owning `ip`, from a snapshot fresher than the bound: find_or_refresh() that
    /// also waits when the snapshot is at or past `settings.freshness` (measured from the start
    /// of the read that produced it to the call), and then answers only from a read started
    /// after `now - freshness`. Starts a background read when the snapshot is half-way to the
    /// bound. With `freshness` 0 it is find_or_refresh(). Hot paths call try_find_fresh()
    /// first: it answers most requests without a coroutine frame.
    /// Executor: any; waits run on the index's executor. `ip` is copied at the call.
    /// Cancellation: abandons the wait (Errc::cancelled), never the read.
    /// Errors: Errc::pod_not_found, Errc::pod_ip_ambiguous (both only from a fresh snapshot),
    /// Errc::pod_source_failed (the revalidating read failed: a stale mapping is never
    /// served), Errc::timeout (no read completed within `refresh_deadline`), Errc::cancelled.
    boost::asio::awaitable<Result<PodInfoPtr>> find_fresh(const boost::asio::ip::address& ip);

    /// The non-waiting part of find_fresh(): its answer when the current snapshot is fresh
    /// enough and knows `ip` (a pod, or Errc::pod_ip_ambiguous), std::nullopt when the caller
    /// must `co_await find_fresh(ip)` (snapshot stale, or `ip` unknown). No allocation, no
    /// lock; may post one background read to the index's executor. Thread-safe.
    [[nodiscard]] std::optional<Result<PodInfoPtr>> try_find_fresh(
        const boost::asio::ip::address& ip);

    /// One read now (start-up); joins a read already in flight or planned. Waits for the read
    /// itself (bounded by the source's deadline), not by `refresh_deadline`.
    /// Executor: any. Cancellation: abandons the wait (Errc::cancelled).
    /// Errors: the source's (Errc::pod_source_failed, parse_error, timeout, ...).
    boost::asio::awaitable<Result<void>> refresh();

    /// Reads the source every `poll_interval` (after each read completes) until cancelled.
    /// Executor: any; the loop runs on the index's executor. Cancellation: per-operation
    /// cancellation of the awaiting coroutine; returns normally. Read failures are logged.
    boost::asio::awaitable<void> run();

    /// The pod list of the current snapshot (every pod the source listed, indexed or not).
    /// Thread-safe; the list is immutable.
    [[nodiscard]] std::shared_ptr<const PodList> pods() const;

    /// True after the first successful read. Thread-safe.
    [[nodiscard]] bool ready() const noexcept;
    /// Thread-safe.
    [[nodiscard]] PodIndexStats stats() const;

private:
    struct Core;
    boost::asio::any_io_executor executor_;
    std::shared_ptr<Core> core_;  ///< shared with reads in flight, which may outlive `this`
};

}  // namespace nmid
