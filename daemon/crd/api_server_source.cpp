#include "nmid/crd/api_server_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "crd_watcher.hpp"
#include "nmid/crd/crd_parse.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using crd_detail::is_cancelled;

}  // namespace

std::string_view plural_name(CrdResource resource) noexcept {
    switch (resource) {
        case CrdResource::identities:
            return "azureidentities";
        case CrdResource::bindings:
            return "azureidentitybindings";
        case CrdResource::exceptions:
            return "azurepodidentityexceptions";
        case CrdResource::assigned:
            return "azureassignedidentities";
    }
    return "unknown";
}

ApiServerCrdSource::ApiServerCrdSource(kube::ApiServerClient& client, Clock& clock,
                                       ApiServerCrdSettings settings)
    : client_(client), clock_(clock), settings_(std::move(settings)) {
    std::uint64_t seed = settings_.random_seed;
    if (seed == 0) {
        std::random_device device;
        seed = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    }
    rng_.seed(seed);
    for (auto& r : stats_.resources) {
        r.confirmed_at = clock_.steady_now();
    }
}

ApiServerCrdStats ApiServerCrdSource::stats() const {
    const std::lock_guard lock{stats_mutex_};
    return stats_;
}

Millis ApiServerCrdSource::snapshot_age() const {
    const SteadyTime now = clock_.steady_now();
    SteadyTime oldest = now;
    const std::lock_guard lock{stats_mutex_};
    for (std::size_t i = 0; i < kCrdResourceCount; ++i) {
        if (static_cast<CrdResource>(i) == CrdResource::assigned &&
            settings_.mode == OperationMode::managed) {
            continue;  // not watched in managed mode
        }
        oldest = std::min(oldest, stats_.resources[i].confirmed_at);
    }
    return std::chrono::duration_cast<Millis>(now - oldest);
}

asio::awaitable<void> ApiServerCrdSource::run(Publish publish) {
    // Watchers and the publisher share state: keep them on one strand even when the caller's
    // executor is an io_context run by several threads.
    const auto executor = co_await asio::this_coro::executor;
    co_await asio::co_spawn(asio::make_strand(executor), run_on_strand(std::move(publish)),
                            asio::use_awaitable);
}

asio::awaitable<void> ApiServerCrdSource::run_on_strand(Publish publish) {
    using asio::experimental::awaitable_operators::operator&&;
    co_await asio::this_coro::throw_if_cancelled(false);
    Shared shared{co_await asio::this_coro::executor};
    shared.publish = std::move(publish);
    for (std::size_t i = 0; i < kCrdResourceCount; ++i) {
        const auto r = static_cast<CrdResource>(i);
        if (r == CrdResource::assigned && settings_.mode == OperationMode::managed) {
            continue;  // managed mode resolves from identities and bindings only
        }
        shared.stores[i] = crd_detail::make_store(r);
    }
    std::vector<std::unique_ptr<Watcher>> watchers;
    for (std::size_t i = 0; i < kCrdResourceCount; ++i) {
        if (shared.stores[i]) {
            watchers.push_back(
                std::make_unique<Watcher>(*this, shared, static_cast<CrdResource>(i)));
        }
    }

    auto publisher = [this, &shared]() -> asio::awaitable<void> {
        co_await asio::this_coro::throw_if_cancelled(false);
        const asio::cancellation_state cancellation = co_await asio::this_coro::cancellation_state;
        for (;;) {
            if (shared.dirty && shared.all_synced()) {
                shared.dirty = false;
                CrdSnapshot snapshot;
                for (const auto& store : shared.stores) {
                    if (store) {
                        store->append_to(snapshot);
                    }
                }
                normalize_crds(snapshot);
                if (!shared.published) {
                    spdlog::info(
                        "crds synced from the API server: {} identities, {} bindings, {} "
                        "exceptions, {} assigned identities",
                        snapshot.identities.size(), snapshot.bindings.size(),
                        snapshot.exceptions.size(), snapshot.assigned.size());
                }
                shared.published = true;
                {
                    const std::lock_guard lock{stats_mutex_};
                    ++stats_.publishes;
                    stats_.ready = true;
                }
                shared.publish(std::make_shared<const CrdSnapshot>(std::move(snapshot)));
            }
            if (is_cancelled(cancellation)) {
                co_return;
            }
            co_await shared.wake.async_wait(asio::as_tuple(asio::use_awaitable));
            if (is_cancelled(cancellation)) {
                co_return;
            }
        }
    };

    auto idle = []() -> asio::awaitable<void> { co_return; };
    auto run_watcher = [&watchers, &idle](std::size_t i) {
        return i < watchers.size() ? watchers[i]->run() : idle();
    };
    co_await (run_watcher(0) && run_watcher(1) && run_watcher(2) && run_watcher(3) && publisher());
}

}  // namespace nmid
