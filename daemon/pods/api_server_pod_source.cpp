#include "nmid/pods/api_server_pod_source.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <utility>

#include "nmid/core/hex.hpp"
#include "nmid/kube/reflector.hpp"
#include "nmid/pods/pod_list_json.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

std::string pod_key(const PodInfo& pod) {
    return pod.namespace_name + "/" + pod.name;
}

asio::awaitable<bool> cancelled() {
    const auto state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

kube::ReflectorSettings reflector_settings(const ApiServerPodSourceSettings& s) {
    kube::ReflectorSettings r = s;
    r.name = "pod list/watch";
    return r;
}

struct ParsedPage {
    Result<PodListPage> page = Errc::parse_error;
    std::string detail;
};

asio::awaitable<ParsedPage> parse_page(std::string body) {
    ParsedPage out;
    out.page = parse_pod_list_page(body, &out.detail);
    co_return out;
}

}  // namespace

// The pods of the node as the list+watch knows them: the Reflector's sink.
struct ApiServerPodSource::Core : kube::ReflectorSink {
    Core(asio::any_io_executor ex, kube::ApiServerClient& c, Clock& clk,
         asio::any_io_executor parse_ex, const ApiServerPodSourceSettings& s)
        : executor(std::move(ex)),
          clock(clk),
          parse_executor(std::move(parse_ex)),
          node_name(s.node_name),
          reflector(executor, c, clock, *this,
                    "/api/v1/pods?fieldSelector=" + percent_encode("spec.nodeName=" + s.node_name),
                    reflector_settings(s)) {}

    const asio::any_io_executor executor;
    Clock& clock;
    const asio::any_io_executor parse_executor;
    const std::string node_name;

    // Touched only on `executor`.
    std::map<std::string, PodInfo> pods;       ///< by namespace/name; sorted: a stable list order
    bool dirty = true;                         ///< `pods` changed since `published` was built
    std::shared_ptr<const PodList> published;  ///< what list() returned last
    std::atomic<std::size_t> pod_count{0};
    kube::Reflector reflector;  ///< last: it calls back into the members above

    std::shared_ptr<const PodList> snapshot() {
        if (dirty || !published) {
            auto list = std::make_shared<PodList>();
            list->pods.reserve(pods.size());
            for (const auto& [key, pod] : pods) {
                list->pods.push_back(pod);
            }
            published = std::move(list);
            dirty = false;
        }
        return published;
    }

    asio::awaitable<kube::ListApplied> apply_list(std::string body) override {
        // A node's pod list is megabytes of JSON: parsed off this executor.
        ParsedPage parsed = co_await asio::co_spawn(parse_executor, parse_page(std::move(body)),
                                                    asio::use_awaitable);
        kube::ListApplied out;
        if (!parsed.page) {
            out.detail = std::move(parsed.detail);
            co_return out;
        }
        std::map<std::string, PodInfo> fresh;
        for (PodInfo& pod : parsed.page->list.pods) {
            std::string key = pod_key(pod);
            fresh.insert_or_assign(std::move(key), std::move(pod));
        }
        if (fresh != pods) {
            pods = std::move(fresh);
            dirty = true;
        }
        pod_count.store(pods.size(), std::memory_order_relaxed);
        out.ok = true;
        out.resource_version = std::move(parsed.page->resource_version);
        out.objects = pods.size();
        co_return out;
    }

    kube::EventApplied apply_event(std::string_view line) override {
        std::string detail;
        auto event = parse_pod_watch_event(line, &detail);
        using Kind = kube::EventApplied::Kind;
        if (!event) {
            return {.kind = Kind::unreadable, .message = std::move(detail)};
        }
        using Type = PodWatchEvent::Type;
        switch (event->type) {
            case Type::error:
                return {.kind = event->status_code == 410 ? Kind::gone : Kind::error,
                        .message = std::move(event->message),
                        .code = event->status_code};
            case Type::added:
            case Type::modified: {
                std::string key = pod_key(event->pod);
                const auto it = pods.find(key);
                if (it == pods.end()) {
                    pods.emplace(std::move(key), std::move(event->pod));
                    dirty = true;
                } else if (!(it->second == event->pod)) {
                    it->second = std::move(event->pod);
                    dirty = true;
                }
                break;
            }
            case Type::deleted:
                if (pods.erase(pod_key(event->pod)) > 0) {
                    dirty = true;
                }
                break;
            case Type::bookmark:
                break;
        }
        pod_count.store(pods.size(), std::memory_order_relaxed);
        return {.kind = Kind::applied, .resource_version = std::move(event->resource_version)};
    }

    static asio::awaitable<void> loop(std::shared_ptr<Core> self) {
        co_await self->reflector.run();
    }

    static asio::awaitable<Result<std::shared_ptr<const PodList>>> wait_list(
        std::shared_ptr<Core> self, SteadyTime deadline) {
        co_await asio::this_coro::throw_if_cancelled(false);
        kube::Reflector& r = self->reflector;
        for (;;) {
            if (r.synced() && r.phase() == kube::Reflector::Phase::watching) {
                co_return self->snapshot();
            }
            if (self->clock.steady_now() >= deadline) {
                co_return r.failing() ? Errc::pod_source_failed : Errc::timeout;
            }
            const auto first =
                co_await (r.changed().async_wait(asio::as_tuple(asio::use_awaitable)) ||
                          self->clock.wait_until(deadline));
            (void)first;  // either way: look again
            const bool stop = co_await cancelled();
            if (stop) {
                co_return Errc::cancelled;
            }
        }
    }
};

ApiServerPodSource::ApiServerPodSource(asio::any_io_executor executor,
                                       kube::ApiServerClient& client, Clock& clock,
                                       asio::any_io_executor parse_executor,
                                       const ApiServerPodSourceSettings& settings)
    : core_(std::make_shared<Core>(std::move(executor), client, clock, std::move(parse_executor),
                                   settings)) {}

ApiServerPodSource::~ApiServerPodSource() = default;

asio::awaitable<void> ApiServerPodSource::run() {
    return asio::co_spawn(core_->executor, Core::loop(core_), asio::use_awaitable);
}

asio::awaitable<Result<std::shared_ptr<const PodList>>> ApiServerPodSource::list(
    SteadyTime deadline) {
    return asio::co_spawn(core_->executor, Core::wait_list(core_, deadline), asio::use_awaitable);
}

bool ApiServerPodSource::synced() const noexcept {
    return core_->reflector.synced();
}

ApiServerPodSourceStats ApiServerPodSource::stats() const {
    ApiServerPodSourceStats s;
    static_cast<kube::ReflectorStats&>(s) = core_->reflector.stats();
    s.pods = core_->pod_count.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid
