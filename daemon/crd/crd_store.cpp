#include "nmid/crd/crd_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace nmid {

namespace asio = boost::asio;

/// One suspended wait_newer: a timer that never expires by itself, cancelled (on its own
/// executor) by publish.
struct CrdStore::Waiter {
    explicit Waiter(const asio::any_io_executor& ex)
        : timer(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer timer;
};

CrdStore::CrdStore(IdentityPolicy policy)
    : policy_(std::move(policy)),
      snapshot_(std::make_shared<const CrdSnapshot>()),
      rejections_(std::make_shared<const std::vector<RejectedIdentity>>()) {}

CrdSnapshotPtr CrdStore::snapshot() const noexcept {
    return snapshot_.load(std::memory_order_acquire);
}

void CrdStore::publish(CrdSnapshotPtr snapshot) {
    if (snapshot == nullptr) {
        snapshot = std::make_shared<const CrdSnapshot>();
    }
    ScreenedSnapshot screened = screen_snapshot(*snapshot, policy_);
    if (screened.kept) {
        snapshot = std::make_shared<const CrdSnapshot>(std::move(*screened.kept));
    }
    auto rejected =
        std::make_shared<const std::vector<RejectedIdentity>>(std::move(screened.rejected));
    {
        const std::lock_guard lock{publish_mutex_};
        std::set<LoggedKey> now;
        for (const RejectedIdentity& r : *rejected) {
            LoggedKey key{r.kind, r.namespace_name, r.name, r.resource_version, r.rejection.reason};
            if (!logged_.contains(key)) {
                // Names and reasons only: an identity holds no secret, and the text never
                // echoes adEndpoint (it may carry user info).
                spdlog::warn("identity refused: {} {}/{} (resourceVersion {}): {}: {}", r.kind,
                             r.namespace_name, r.name,
                             r.resource_version.empty() ? "-" : r.resource_version,
                             to_string(r.rejection.reason), r.rejection.text);
            }
            now.insert(std::move(key));
        }
        logged_ = std::move(now);
        rejections_.store(std::move(rejected), std::memory_order_release);
    }
    snapshot_.store(std::move(snapshot), std::memory_order_release);
    // After the store: whoever sees the new generation also sees the new snapshot.
    generation_.fetch_add(1, std::memory_order_acq_rel);
    std::vector<std::shared_ptr<Waiter>> woken;
    {
        const std::lock_guard lock{waiters_mutex_};
        woken.swap(waiters_);
    }
    for (auto& w : woken) {
        // A timer may only be touched from its own executor; the waiter may sit on another
        // thread's strand.
        asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
    }
}

CrdStore::Rejections CrdStore::rejections() const noexcept {
    return rejections_.load(std::memory_order_acquire);
}

std::array<std::size_t, kRejectReasonCount> CrdStore::rejection_counts() const {
    std::array<std::size_t, kRejectReasonCount> counts{};
    for (const RejectedIdentity& r : *rejections()) {
        ++counts.at(static_cast<std::size_t>(r.rejection.reason));
    }
    return counts;
}

bool CrdStore::ready() const noexcept {
    return generation() > 0;
}

std::uint64_t CrdStore::generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
}

std::size_t CrdStore::waiters() const {
    const std::lock_guard lock{waiters_mutex_};
    return waiters_.size();
}

asio::awaitable<std::uint64_t> CrdStore::wait_newer(std::uint64_t seen, Clock& clock,
                                                    SteadyTime deadline) {
    using asio::experimental::awaitable_operators::operator||;
    auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
    {
        // Registered before the check, under the lock publish takes: a publish either is
        // seen by the check or finds this waiter.
        const std::lock_guard lock{waiters_mutex_};
        if (generation() > seen || clock.steady_now() >= deadline) {
            co_return generation();
        }
        waiters_.push_back(waiter);
    }
    co_await (waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              clock.wait_until(deadline));
    {
        const std::lock_guard lock{waiters_mutex_};
        std::erase(waiters_, waiter);
    }
    co_return generation();
}

}  // namespace nmid
