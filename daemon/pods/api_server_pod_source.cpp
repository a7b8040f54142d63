#include "nmid/pods/api_server_pod_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>
#include <vector>

#include "nmid/core/hex.hpp"
#include "nmid/pods/pod_list_json.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

constexpr auto kRepeatWarningEvery = std::chrono::seconds{60};
// The client's deadline for a watch, beyond the timeoutSeconds the server ends it at.
constexpr auto kWatchSlack = std::chrono::seconds{30};
constexpr std::size_t kBodyExcerpt = 200;

std::string one_line(std::string s) {
    for (char& c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            c = ' ';
        }
    }
    return s;
}

// "HTTP 403: <Status message>" for a log line; the start of the body when it is no Status.
std::string describe_status(int status, std::string_view body) {
    std::string what = "HTTP " + std::to_string(status);
    const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object()) {
        const auto it = doc.find("message");
        if (it != doc.end() && it->is_string()) {
            return what + ": " + one_line(it->get<std::string>());
        }
    }
    if (!body.empty()) {
        what += ": " + one_line(std::string{body.substr(0, std::min(body.size(), kBodyExcerpt))});
    }
    return what;
}

std::string pod_key(const PodInfo& pod) {
    return pod.namespace_name + "/" + pod.name;
}

asio::awaitable<bool> cancelled() {
    const auto state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

// What the loop does next.
enum class Next {
    list_cache,      ///< LIST resourceVersion=0 (start-up)
    list_not_older,  ///< LIST at the last resourceVersion, NotOlderThan (after 410)
    list_quorum,     ///< LIST without resourceVersion (the last one expired too)
    watch,           ///< WATCH from the last resourceVersion
    backoff_list,    ///< wait, then LIST again
    backoff_watch,   ///< wait, then resume the WATCH
    stop,            ///< cancelled
};

enum class Phase { listing, watching, backoff, stopped };

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

struct ApiServerPodSource::Core : std::enable_shared_from_this<ApiServerPodSource::Core> {
    Core(asio::any_io_executor ex, kube::ApiServerClient& c, Clock& clk,
         asio::any_io_executor parse_ex, ApiServerPodSourceSettings s)
        : executor(std::move(ex)),
          client(c),
          clock(clk),
          parse_executor(std::move(parse_ex)),
          settings(std::move(s)),
          rng(settings.seed != 0 ? settings.seed : std::random_device{}()),
          changed(executor, asio::steady_timer::time_point::max()) {}

    const asio::any_io_executor executor;
    kube::ApiServerClient& client;
    Clock& clock;
    const asio::any_io_executor parse_executor;
    const ApiServerPodSourceSettings settings;

    // Touched only on `executor`.
    std::mt19937_64 rng;
    std::map<std::string, PodInfo> pods;  ///< by namespace/name; sorted: a stable list order
    std::string rv;                       ///< last resourceVersion seen (opaque)
    Phase phase = Phase::listing;
    bool dirty = true;                         ///< `pods` changed since `published` was built
    std::shared_ptr<const PodList> published;  ///< what list() returned last
    asio::steady_timer changed;                ///< condition variable: cancelled on phase change
    int failures_in_row = 0;                   ///< drives the backoff
    int expired_in_row = 0;                    ///< 410s without an event in between
    bool failing = false;
    std::string last_warning_text;
    SteadyTime last_warning{};

    std::atomic<bool> synced{false};
    std::atomic<std::uint64_t> lists{0};
    std::atomic<std::uint64_t> list_failures{0};
    std::atomic<std::uint64_t> watches{0};
    std::atomic<std::uint64_t> watch_failures{0};
    std::atomic<std::uint64_t> expired{0};
    std::atomic<std::uint64_t> events{0};
    std::atomic<std::size_t> pod_count{0};

    void set_phase(Phase p) {
        if (phase != p) {
            phase = p;
            changed.cancel();  // wakes list() waiters, who look again
        }
    }

    // One line per failure episode, per change of cause, and once a minute while it lasts.
    void warn(std::string what) {
        failing = true;
        const auto now = clock.steady_now();
        if (what != last_warning_text || now - last_warning >= kRepeatWarningEvery) {
            spdlog::warn("pod list/watch: {}", what);
            last_warning = now;
            last_warning_text = std::move(what);
        }
    }

    void healthy() {
        failures_in_row = 0;
        if (failing) {
            spdlog::info("pod list/watch: recovered");
            failing = false;
            last_warning_text.clear();
        }
    }

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

    [[nodiscard]] std::string collection() const {
        return "/api/v1/pods?fieldSelector=" +
               percent_encode("spec.nodeName=" + settings.node_name);
    }

    asio::awaitable<Next> do_list(Next mode) {
        set_phase(Phase::listing);
        std::string target = collection();
        if (mode == Next::list_cache || (mode == Next::list_not_older && rv.empty())) {
            target += "&resourceVersion=0";
        } else if (mode == Next::list_not_older) {
            target +=
                "&resourceVersion=" + percent_encode(rv) + "&resourceVersionMatch=NotOlderThan";
        }
        auto response = co_await client.get(target, clock.steady_now() + settings.list_deadline);
        if (!response) {
            if (response.error() == Errc::cancelled) {
                co_return Next::stop;
            }
            list_failures.fetch_add(1, std::memory_order_relaxed);
            warn("LIST failed: " + response.error().message());
            co_return Next::backoff_list;
        }
        if (response->status == 410 && mode == Next::list_not_older) {
            // Not even a list at that resourceVersion: read the current state.
            expired.fetch_add(1, std::memory_order_relaxed);
            co_return Next::list_quorum;
        }
        if (response->status != 200) {
            list_failures.fetch_add(1, std::memory_order_relaxed);
            warn("LIST " + describe_status(response->status, response->body));
            co_return Next::backoff_list;
        }
        // A node's pod list is megabytes of JSON: parsed off this executor.
        ParsedPage parsed = co_await asio::co_spawn(
            parse_executor, parse_page(std::move(response->body)), asio::use_awaitable);
        if (!parsed.page) {
            list_failures.fetch_add(1, std::memory_order_relaxed);
            warn("LIST body did not parse: " + parsed.detail);
            co_return Next::backoff_list;
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
        rv = std::move(parsed.page->resource_version);
        lists.fetch_add(1, std::memory_order_relaxed);
        if (!synced.exchange(true, std::memory_order_acq_rel)) {
            spdlog::info("pod list/watch: synced, {} pods on node {}", pods.size(),
                         settings.node_name);
        }
        healthy();
        co_return Next::watch;
    }

    // Applies one watch line; false stops the stream with `next` set.
    bool on_line(std::string_view line, Next& next, bool& any_event) {
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
            return true;
        }
        std::string detail;
        auto event = parse_pod_watch_event(line, &detail);
        if (!event) {
            // An event lost: the pods can no longer be trusted to match the server.
            warn("watch event did not parse (" + detail + "); relisting");
            next = Next::backoff_list;
            return false;
        }
        using Type = PodWatchEvent::Type;
        switch (event->type) {
            case Type::error:
                if (event->status_code == 410) {
                    expired.fetch_add(1, std::memory_order_relaxed);
                    next = ++expired_in_row > 1 ? Next::backoff_list : Next::list_not_older;
                    spdlog::info("pod list/watch: resourceVersion expired ({}); relisting",
                                 event->message);
                } else {
                    warn("watch ERROR event " + std::to_string(event->status_code) + ": " +
                         event->message);
                    next = Next::backoff_watch;
                }
                return false;
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
        if (!event->resource_version.empty()) {
            rv = std::move(event->resource_version);
        }
        events.fetch_add(1, std::memory_order_relaxed);
        any_event = true;
        expired_in_row = 0;
        healthy();
        return true;
    }

    asio::awaitable<Next> do_watch() {
        set_phase(Phase::watching);
        auto timeout = settings.watch_timeout_min;
        if (settings.watch_timeout_max > settings.watch_timeout_min) {
            std::uniform_int_distribution<Seconds::rep> pick(
                settings.watch_timeout_min.count(), settings.watch_timeout_max.count() - 1);
            timeout = Seconds{pick(rng)};
        }
        const std::string target =
            collection() + "&watch=true&resourceVersion=" + percent_encode(rv) +
            "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout.count());
        const auto started = clock.steady_now();
        watches.fetch_add(1, std::memory_order_relaxed);
        Next next = Next::watch;
        bool any_event = false;
        auto result = co_await client.watch(target, started + timeout + kWatchSlack,
                                            [this, &next, &any_event](std::string_view line) {
                                                return on_line(line, next, any_event);
                                            });
        if (!result) {
            if (result.error() == Errc::cancelled) {
                co_return Next::stop;
            }
            watch_failures.fetch_add(1, std::memory_order_relaxed);
            if (result.error() == Errc::parse_error) {
                warn("watch stream unreadable (" + result.error().message() + "); relisting");
                co_return Next::backoff_list;
            }
            warn("watch stream broken: " + result.error().message());
            co_return Next::backoff_watch;  // resume from `rv`
        }
        if (result->status == 410) {
            expired.fetch_add(1, std::memory_order_relaxed);
            spdlog::info("pod list/watch: resourceVersion expired (HTTP 410); relisting");
            co_return ++expired_in_row > 1 ? Next::backoff_list : Next::list_not_older;
        }
        if (result->status != 200) {
            watch_failures.fetch_add(1, std::memory_order_relaxed);
            warn("WATCH " + describe_status(result->status, result->body));
            co_return result->status == 429 ? Next::backoff_watch : Next::backoff_list;
        }
        if (next != Next::watch) {
            co_return next;  // stopped by an event
        }
        if (result->end == kube::StreamEnd::closed && !any_event &&
            clock.steady_now() - started < settings.short_watch) {
            watch_failures.fetch_add(1, std::memory_order_relaxed);
            warn("watch ended at once without an event");
            co_return Next::backoff_watch;
        }
        co_return Next::watch;  // timeoutSeconds reached: resume from `rv`
    }

    [[nodiscard]] Millis backoff_delay() {
        Millis delay = settings.backoff_base;
        for (int i = 1; i < failures_in_row && delay < settings.backoff_cap; ++i) {
            delay *= 2;
        }
        delay = std::min(delay, settings.backoff_cap);
        if (settings.jitter > 0) {
            std::uniform_real_distribution<double> stretch(0.0, settings.jitter);
            delay +=
                Millis{static_cast<Millis::rep>(static_cast<double>(delay.count()) * stretch(rng))};
        }
        return delay;
    }

    static asio::awaitable<void> loop(std::shared_ptr<Core> self) {
        co_await asio::this_coro::throw_if_cancelled(false);
        Next next = Next::list_cache;
        for (;;) {
            const bool stop = co_await cancelled();
            if (stop || next == Next::stop) {
                break;
            }
            switch (next) {
                case Next::list_cache:
                case Next::list_not_older:
                case Next::list_quorum:
                    next = co_await self->do_list(next);
                    break;
                case Next::watch:
                    next = co_await self->do_watch();
                    break;
                case Next::backoff_list:
                case Next::backoff_watch: {
                    ++self->failures_in_row;
                    self->set_phase(Phase::backoff);
                    co_await self->clock.wait_until(self->clock.steady_now() +
                                                    self->backoff_delay());
                    next = next == Next::backoff_watch ? Next::watch : Next::list_not_older;
                    break;
                }
                case Next::stop:
                    break;
            }
        }
        self->set_phase(Phase::stopped);
    }

    static asio::awaitable<Result<std::shared_ptr<const PodList>>> wait_list(
        std::shared_ptr<Core> self, SteadyTime deadline) {
        co_await asio::this_coro::throw_if_cancelled(false);
        for (;;) {
            if (self->synced.load(std::memory_order_relaxed) && self->phase == Phase::watching) {
                co_return self->snapshot();
            }
            if (self->clock.steady_now() >= deadline) {
                co_return self->failing ? Errc::pod_source_failed : Errc::timeout;
            }
            const auto first =
                co_await (self->changed.async_wait(asio::as_tuple(asio::use_awaitable)) ||
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
                                       ApiServerPodSourceSettings settings)
    : core_(std::make_shared<Core>(std::move(executor), client, clock, std::move(parse_executor),
                                   std::move(settings))) {}

ApiServerPodSource::~ApiServerPodSource() = default;

asio::awaitable<void> ApiServerPodSource::run() {
    return asio::co_spawn(core_->executor, Core::loop(core_), asio::use_awaitable);
}

asio::awaitable<Result<std::shared_ptr<const PodList>>> ApiServerPodSource::list(
    SteadyTime deadline) {
    return asio::co_spawn(core_->executor, Core::wait_list(core_, deadline), asio::use_awaitable);
}

bool ApiServerPodSource::synced() const noexcept {
    return core_->synced.load(std::memory_order_acquire);
}

ApiServerPodSourceStats ApiServerPodSource::stats() const {
    ApiServerPodSourceStats s;
    s.lists = core_->lists.load(std::memory_order_relaxed);
    s.list_failures = core_->list_failures.load(std::memory_order_relaxed);
    s.watches = core_->watches.load(std::memory_order_relaxed);
    s.watch_failures = core_->watch_failures.load(std::memory_order_relaxed);
    s.expired = core_->expired.load(std::memory_order_relaxed);
    s.events = core_->events.load(std::memory_order_relaxed);
    s.pods = core_->pod_count.load(std::memory_order_relaxed);
    s.synced = core_->synced.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid
