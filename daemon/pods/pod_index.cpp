#include "nmid/pods/pod_index.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <optional>
#include <utility>

#include "pod_snapshot.hpp"
#include "read_flight.hpp"

namespace nmid {

using pods_detail::build_snapshot;
using pods_detail::cancelled;
using pods_detail::Flight;
using pods_detail::IpKey;
using pods_detail::name_key;
using pods_detail::Snapshot;
using pods_detail::to_key;
using pods_detail::wait_done;

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

constexpr auto kRepeatWarningEvery = std::chrono::seconds{60};

}  // namespace

struct PodIndex::Core : std::enable_shared_from_this<PodIndex::Core> {
    Core(asio::any_io_executor ex, PodSource& src, Clock& clk, PodSettings s)
        : executor(std::move(ex)), source(src), clock(clk), settings(std::move(s)) {}

    const asio::any_io_executor executor;
    PodSource& source;
    Clock& clock;
    const PodSettings settings;

    // Read from any thread.
    std::atomic<std::shared_ptr<const Snapshot>> snapshot{
        build_snapshot(std::make_shared<const PodList>())};
    std::atomic<bool> ready{false};
    std::atomic<std::uint64_t> refreshes{0};
    std::atomic<std::uint64_t> failures{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> coalesced{0};
    std::atomic<std::uint64_t> stale_waits{0};
    std::atomic<std::uint64_t> refreshes_ahead{0};
    std::atomic<SteadyTime::rep> last_refresh{0};
    /// Start of the last successful read; stored after the snapshot it confirms, so a reader
    /// that sees a time also sees that snapshot or a newer one.
    std::atomic<SteadyTime::rep> fresh_as_of{SteadyTime::min().time_since_epoch().count()};
    /// A refresh-ahead read was posted and has not completed: one post per read, not one
    /// per request.
    std::atomic<bool> ahead_pending{false};

    // Touched only on `executor`.
    std::shared_ptr<Flight> flight;  ///< the read planned or in progress, if any
    std::uint64_t reads_started = 0;
    bool have_completed = false;
    SteadyTime last_completed{};
    std::uint64_t failure_streak = 0;
    boost::system::error_code last_failure;
    SteadyTime last_warning{};

    [[nodiscard]] Result<PodInfoPtr> lookup(const IpKey& key) const {
        const auto snap = snapshot.load(std::memory_order_acquire);
        const auto it = snap->by_ip.find(key);
        if (it == snap->by_ip.end()) {
            return Errc::pod_not_found;
        }
        if (!it->second) {
            return Errc::pod_ip_ambiguous;
        }
        return it->second;
    }

    // Joins the planned or running read, or plans one: now, or `min_refresh_interval` after
    // the previous read completed, whichever is later.
    std::shared_ptr<Flight> join_or_start() {
        if (flight) {
            coalesced.fetch_add(1, std::memory_order_relaxed);
            return flight;
        }
        return start_read();
    }

    // Plans a read; only when none is planned or in flight.
    std::shared_ptr<Flight> start_read() {
        auto start = clock.steady_now();
        if (have_completed) {
            start = std::max(start, last_completed + settings.min_refresh_interval);
        }
        auto planned = std::make_shared<Flight>(executor);
        flight = planned;
        // The read owns itself (and keeps the core alive) until it ends, by its deadline. It
        // may run to completion inside co_spawn (dispatch on the same executor, a source that
        // does not suspend), which resets `flight`: hence the local.
        asio::co_spawn(executor, fly(shared_from_this(), planned, start), asio::detached);
        return planned;
    }

    static asio::awaitable<void> fly(std::shared_ptr<Core> self, std::shared_ptr<Flight> flight,
                                     SteadyTime start) {
        Result<void> outcome = Errc::pod_source_failed;
        try {
            if (start > self->clock.steady_now()) {
                co_await self->clock.wait_until(start);
            }
            flight->seq = ++self->reads_started;
            const auto started = self->clock.steady_now();
            const auto deadline = started + self->settings.refresh_deadline;
            auto listed = co_await self->source.list(deadline);
            if (!listed) {
                outcome = listed.error();
            } else if (!*listed) {
                outcome = Errc::pod_source_failed;
            } else {
                self->publish(std::move(*listed), started);
                outcome = {};
            }
        } catch (const std::exception& e) {
            // A throwing source is a bug; waiters still get an answer and reads continue.
            spdlog::error("pod index: pod source threw: {}", e.what());
            outcome = Errc::pod_source_failed;
        }
        self->complete(*flight, outcome);
    }

    // `started`: when the read began; the list shows the source as of then or later.
    void publish(std::shared_ptr<const PodList> list, SteadyTime started) {
        const auto current = snapshot.load(std::memory_order_acquire);
        if (current->list != list) {
            snapshot.store(build_snapshot(std::move(list)), std::memory_order_release);
        }
        // Reads never overlap, so start times only grow; the max is for clarity.
        const auto as_of = std::max(started.time_since_epoch().count(),
                                    fresh_as_of.load(std::memory_order_relaxed));
        fresh_as_of.store(as_of, std::memory_order_release);
        const auto now = clock.steady_now();
        last_refresh.store(now.time_since_epoch().count(), std::memory_order_relaxed);
        refreshes.fetch_add(1, std::memory_order_relaxed);
        if (!ready.exchange(true, std::memory_order_acq_rel)) {
            const auto snap = snapshot.load(std::memory_order_acquire);
            spdlog::info("pod index: ready, {} pods listed, {} indexed by {} IPs",
                         snap->list->pods.size(), snap->indexed_pods, snap->by_ip.size());
        }
    }

    void complete(Flight& done_flight, const Result<void>& outcome) {
        const auto now = clock.steady_now();
        if (outcome) {
            if (failure_streak > 0) {
                spdlog::info("pod index: refresh recovered after {} failed reads", failure_streak);
            }
            failure_streak = 0;
        } else {
            failures.fetch_add(1, std::memory_order_relaxed);
            ++failure_streak;
            // One line per failure episode (and per change of cause, and once a minute while
            // it lasts), never one per waiter or per poll.
            if (failure_streak == 1 || outcome.error() != last_failure ||
                now - last_warning >= kRepeatWarningEvery) {
                spdlog::warn(
                    "pod index: refresh failed: {} ({} in a row); keeping the previous snapshot",
                    outcome.error().message(), failure_streak);
                last_warning = now;
            }
            last_failure = outcome.error();
        }
        have_completed = true;
        last_completed = now;
        if (flight.get() == &done_flight) {
            flight.reset();
        }
        ahead_pending.store(false, std::memory_order_release);
        done_flight.result = outcome;
        done_flight.finished = true;
        done_flight.done.cancel();
    }

    // True when a request that arrived at `arrival` may be answered from the snapshot.
    [[nodiscard]] bool fresh_for(SteadyTime arrival) const {
        if (settings.freshness <= Millis::zero()) {
            return true;
        }
        const SteadyTime as_of{SteadyTime::duration{fresh_as_of.load(std::memory_order_acquire)}};
        return as_of > arrival - settings.freshness;
    }

    // The answer the snapshot can give, or nullopt when a read must come first.
    [[nodiscard]] std::optional<Result<PodInfoPtr>> usable(const IpKey& key, bool need_fresh,
                                                           SteadyTime arrival) const {
        if (need_fresh && !fresh_for(arrival)) {
            return std::nullopt;
        }
        auto found = lookup(key);
        if (!found && found.error() == Errc::pod_not_found) {
            return std::nullopt;
        }
        return found;
    }

    // find_fresh()'s fast path; from any thread.
    [[nodiscard]] std::optional<Result<PodInfoPtr>> try_fresh(const IpKey& key) {
        const auto now = clock.steady_now();
        auto answer = usable(key, /*need_fresh=*/true, now);
        if (answer && settings.freshness > Millis::zero()) {
            const SteadyTime as_of{
                SteadyTime::duration{fresh_as_of.load(std::memory_order_relaxed)}};
            if (as_of <= now - settings.freshness / 2) {
                refresh_ahead();
            }
        }
        return answer;
    }

    void refresh_ahead() {
        if (ahead_pending.exchange(true, std::memory_order_acq_rel)) {
            return;
        }
        asio::post(executor, [self = shared_from_this()] {
            if (self->flight) {
                return;  // the read in flight renews the snapshot (and clears the flag)
            }
            self->refreshes_ahead.fetch_add(1, std::memory_order_relaxed);
            self->start_read();
        });
    }

    // Waits for reads until the snapshot answers `key`. `need_fresh`: only from a snapshot
    // fresh for a request that arrived at `arrival` (find_fresh); otherwise any (find_or_refresh).
    static asio::awaitable<Result<PodInfoPtr>> wait_and_find(std::shared_ptr<Core> self, IpKey key,
                                                             bool need_fresh, SteadyTime arrival) {
        co_await asio::this_coro::throw_if_cancelled(false);
        const auto deadline = self->clock.steady_now() + self->settings.refresh_deadline;
        const auto reads_at_miss = self->reads_started;
        for (;;) {
            // Looks again first: the snapshot may have changed while hopping executors or
            // during the previous read.
            if (auto answer = self->usable(key, need_fresh, arrival)) {
                co_return std::move(*answer);
            }
            auto flight = self->join_or_start();
            if (!flight->finished) {
                const auto first = co_await (wait_done(flight) || self->clock.wait_until(deadline));
                (void)first;  // `flight->finished` says which
            }
            // Named, not `if (co_await ...)`: g++ 12.2 miscompiles a co_await in a condition.
            const bool stop = co_await cancelled();
            if (stop) {
                co_return Errc::cancelled;
            }
            if (!flight->finished) {
                co_return Errc::timeout;
            }
            if (auto answer = self->usable(key, need_fresh, arrival)) {
                co_return std::move(*answer);
            }
            if (flight->seq > reads_at_miss) {
                // A read that started after the request has answered: it failed (a stale
                // mapping is never served), or the IP is unknown.
                if (!flight->result) {
                    co_return Errc::pod_source_failed;
                }
                co_return Errc::pod_not_found;
            }
            if (self->clock.steady_now() >= deadline) {
                co_return Errc::timeout;
            }
        }
    }

    static asio::awaitable<Result<PodInfoPtr>> find_or_refresh(asio::any_io_executor executor,
                                                               std::shared_ptr<Core> self,
                                                               IpKey key) {
        if (auto found = self->lookup(key); found || found.error() != Errc::pod_not_found) {
            co_return found;
        }
        self->misses.fetch_add(1, std::memory_order_relaxed);
        co_return co_await asio::co_spawn(
            executor, wait_and_find(self, key, /*need_fresh=*/false, SteadyTime{}),
            asio::use_awaitable);
    }

    static asio::awaitable<Result<PodInfoPtr>> find_fresh(asio::any_io_executor executor,
                                                          std::shared_ptr<Core> self, IpKey key) {
        const auto arrival = self->clock.steady_now();
        if (auto answer = self->try_fresh(key)) {
            co_return std::move(*answer);
        }
        if (self->fresh_for(arrival)) {
            self->misses.fetch_add(1, std::memory_order_relaxed);
        } else {
            self->stale_waits.fetch_add(1, std::memory_order_relaxed);
        }
        co_return co_await asio::co_spawn(
            executor, wait_and_find(self, key, /*need_fresh=*/true, arrival), asio::use_awaitable);
    }

    static asio::awaitable<Result<void>> refresh_once(std::shared_ptr<Core> self) {
        co_await asio::this_coro::throw_if_cancelled(false);
        auto flight = self->join_or_start();
        co_await wait_done(flight);
        if (!flight->finished) {
            co_return Errc::cancelled;
        }
        co_return flight->result;
    }

    static asio::awaitable<void> poll(std::shared_ptr<Core> self) {
        co_await asio::this_coro::throw_if_cancelled(false);
        bool stop = false;
        while (!stop) {
            const Result<void> outcome = co_await refresh_once(self);
            (void)outcome;  // failures are logged by the read itself
            stop = co_await cancelled();
            if (!stop) {
                co_await self->clock.wait_until(self->clock.steady_now() +
                                                self->settings.poll_interval);
                stop = co_await cancelled();
            }
        }
    }
};

PodIndex::PodIndex(asio::any_io_executor executor, PodSource& source, Clock& clock,
                   PodSettings settings)
    : executor_(executor),
      core_(std::make_shared<Core>(std::move(executor), source, clock, std::move(settings))) {}

PodIndex::~PodIndex() = default;

Result<PodInfoPtr> PodIndex::find(const asio::ip::address& ip) const {
    return core_->lookup(to_key(ip));
}

std::shared_ptr<const PodList> PodIndex::pods() const {
    return core_->snapshot.load(std::memory_order_acquire)->list;
}

Result<PodInfoPtr> PodIndex::find_by_name(std::string_view namespace_name,
                                          std::string_view name) const {
    const auto snap = core_->snapshot.load(std::memory_order_acquire);
    const auto it = snap->by_name.find(name_key(namespace_name, name));
    if (it == snap->by_name.end()) {
        return Errc::pod_not_found;
    }
    return it->second;
}

asio::awaitable<Result<PodInfoPtr>> PodIndex::find_or_refresh(const asio::ip::address& ip) {
    // Not a coroutine itself: the key is computed before the caller's `ip` can go away.
    return Core::find_or_refresh(executor_, core_, to_key(ip));
}

asio::awaitable<Result<PodInfoPtr>> PodIndex::find_fresh(const asio::ip::address& ip) {
    // Not a coroutine itself: the key is computed before the caller's `ip` can go away.
    return Core::find_fresh(executor_, core_, to_key(ip));
}

std::optional<Result<PodInfoPtr>> PodIndex::try_find_fresh(const asio::ip::address& ip) {
    return core_->try_fresh(to_key(ip));
}

asio::awaitable<Result<void>> PodIndex::refresh() {
    return asio::co_spawn(executor_, Core::refresh_once(core_), asio::use_awaitable);
}

asio::awaitable<void> PodIndex::run() {
    return asio::co_spawn(executor_, Core::poll(core_), asio::use_awaitable);
}

bool PodIndex::ready() const noexcept {
    return core_->ready.load(std::memory_order_acquire);
}

PodIndexStats PodIndex::stats() const {
    const auto snap = core_->snapshot.load(std::memory_order_acquire);
    PodIndexStats s;
    s.pods = snap->indexed_pods;
    s.ips = snap->by_ip.size();
    s.refreshes = core_->refreshes.load(std::memory_order_relaxed);
    s.refresh_failures = core_->failures.load(std::memory_order_relaxed);
    s.misses = core_->misses.load(std::memory_order_relaxed);
    s.coalesced_waiters = core_->coalesced.load(std::memory_order_relaxed);
    s.stale_waits = core_->stale_waits.load(std::memory_order_relaxed);
    s.refreshes_ahead = core_->refreshes_ahead.load(std::memory_order_relaxed);
    s.last_refresh =
        SteadyTime{SteadyTime::duration{core_->last_refresh.load(std::memory_order_relaxed)}};
    s.fresh_as_of =
        SteadyTime{SteadyTime::duration{core_->fresh_as_of.load(std::memory_order_relaxed)}};
    return s;
}

}  // namespace nmid
