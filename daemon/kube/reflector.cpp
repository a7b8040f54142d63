#include "nmid/kube/reflector.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <utility>

#include "nmid/core/cancelled.hpp"
#include "nmid/core/hex.hpp"

namespace nmid::kube {
namespace {

namespace asio = boost::asio;

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

// `collection` plus `&` or `?` for the next parameter.
std::string with_query(const std::string& collection) {
    return collection + (collection.find('?') == std::string::npos ? "?" : "&");
}

}  // namespace

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

// What the loop does next.
enum class Reflector::Next {
    list_cache,      ///< LIST resourceVersion=0 (start-up)
    list_not_older,  ///< LIST at the last resourceVersion, NotOlderThan (after 410)
    list_quorum,     ///< LIST without resourceVersion (the last one expired too)
    watch,           ///< WATCH from the last resourceVersion
    backoff_list,    ///< wait, then LIST again
    backoff_watch,   ///< wait, then resume the WATCH
    stop,            ///< cancelled
};

Reflector::Reflector(asio::any_io_executor executor, ApiServerClient& client, Clock& clock,
                     ReflectorSink& sink, std::string collection, ReflectorSettings settings)
    : executor_(std::move(executor)),
      client_(client),
      clock_(clock),
      sink_(sink),
      collection_(std::move(collection)),
      settings_(std::move(settings)),
      rng_(settings_.seed != 0 ? settings_.seed : std::random_device{}()),
      changed_(executor_, asio::steady_timer::time_point::max()) {}

void Reflector::set_phase(Phase p) {
    if (phase_ != p) {
        phase_ = p;
        changed_.cancel();  // wakes waiters, who look again
    }
}

// One line per failure episode, per change of cause, and once a minute while it lasts.
void Reflector::warn(std::string what) {
    failing_ = true;
    const auto now = clock_.steady_now();
    if (what != last_warning_text_ || now - last_warning_ >= kRepeatWarningEvery) {
        spdlog::warn("{}: {}", settings_.name, what);
        last_warning_ = now;
        last_warning_text_ = std::move(what);
    }
}

void Reflector::healthy() {
    failures_in_row_ = 0;
    if (failing_) {
        spdlog::info("{}: recovered", settings_.name);
        failing_ = false;
        last_warning_text_.clear();
    }
}

asio::awaitable<Reflector::Next> Reflector::do_list(Next mode) {
    set_phase(Phase::listing);
    std::string target = collection_;
    if (mode == Next::list_cache || (mode == Next::list_not_older && rv_.empty())) {
        target = with_query(collection_) + "resourceVersion=0";
    } else if (mode == Next::list_not_older) {
        target = with_query(collection_) + "resourceVersion=" + percent_encode(rv_) +
                 "&resourceVersionMatch=NotOlderThan";
    }
    auto response = co_await client_.get(target, clock_.steady_now() + settings_.list_deadline);
    if (!response) {
        if (response.error() == Errc::cancelled) {
            co_return Next::stop;
        }
        list_failures_.fetch_add(1, std::memory_order_relaxed);
        warn("LIST failed: " + response.error().message());
        co_return Next::backoff_list;
    }
    if (response->status == 410 && mode == Next::list_not_older) {
        // Not even a list at that resourceVersion: read the current state.
        expired_.fetch_add(1, std::memory_order_relaxed);
        co_return Next::list_quorum;
    }
    if (response->status != 200) {
        list_failures_.fetch_add(1, std::memory_order_relaxed);
        warn("LIST " + describe_status(response->status, response->body));
        co_return Next::backoff_list;
    }
    ListApplied applied = co_await sink_.apply_list(std::move(response->body));
    if (!applied.ok) {
        list_failures_.fetch_add(1, std::memory_order_relaxed);
        warn("LIST body did not parse: " + applied.detail);
        co_return Next::backoff_list;
    }
    rv_ = std::move(applied.resource_version);
    lists_.fetch_add(1, std::memory_order_relaxed);
    if (!synced_.exchange(true, std::memory_order_acq_rel)) {
        spdlog::info("{}: synced, {} objects", settings_.name, applied.objects);
    }
    healthy();
    co_return Next::watch;
}

// Applies one watch line; false stops the stream with `next` set.
bool Reflector::on_line(std::string_view line, Next& next, bool& any_event) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
        return true;
    }
    EventApplied event = sink_.apply_event(line);
    switch (event.kind) {
        case EventApplied::Kind::unreadable:
            // An event lost: the objects can no longer be trusted to match the server.
            warn("watch event did not parse (" + event.message + "); relisting");
            next = Next::backoff_list;
            return false;
        case EventApplied::Kind::gone:
            expired_.fetch_add(1, std::memory_order_relaxed);
            next = ++expired_in_row_ > 1 ? Next::backoff_list : Next::list_not_older;
            spdlog::info("{}: resourceVersion expired ({}); relisting", settings_.name,
                         event.message);
            return false;
        case EventApplied::Kind::error:
            warn("watch ERROR event " + std::to_string(event.code) + ": " + event.message);
            next = Next::backoff_watch;
            return false;
        case EventApplied::Kind::applied:
            break;
    }
    if (!event.resource_version.empty()) {
        rv_ = std::move(event.resource_version);
    }
    events_.fetch_add(1, std::memory_order_relaxed);
    any_event = true;
    expired_in_row_ = 0;
    healthy();
    return true;
}

asio::awaitable<Reflector::Next> Reflector::do_watch() {
    set_phase(Phase::watching);
    auto timeout = settings_.watch_timeout_min;
    if (settings_.watch_timeout_max > settings_.watch_timeout_min) {
        std::uniform_int_distribution<Seconds::rep> pick(settings_.watch_timeout_min.count(),
                                                         settings_.watch_timeout_max.count() - 1);
        timeout = Seconds{pick(rng_)};
    }
    const std::string target =
        with_query(collection_) + "watch=true&resourceVersion=" + percent_encode(rv_) +
        "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout.count());
    const auto started = clock_.steady_now();
    watches_.fetch_add(1, std::memory_order_relaxed);
    Next next = Next::watch;
    bool any_event = false;
    auto result = co_await client_.watch(target, started + timeout + kWatchSlack,
                                         [this, &next, &any_event](std::string_view line) {
                                             return on_line(line, next, any_event);
                                         });
    if (!result) {
        if (result.error() == Errc::cancelled) {
            co_return Next::stop;
        }
        watch_failures_.fetch_add(1, std::memory_order_relaxed);
        if (result.error() == Errc::parse_error) {
            warn("watch stream unreadable (" + result.error().message() + "); relisting");
            co_return Next::backoff_list;
        }
        warn("watch stream broken: " + result.error().message());
        co_return Next::backoff_watch;  // resume from `rv`
    }
    if (result->status == 410) {
        expired_.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("{}: resourceVersion expired (HTTP 410); relisting", settings_.name);
        co_return ++expired_in_row_ > 1 ? Next::backoff_list : Next::list_not_older;
    }
    if (result->status != 200) {
        watch_failures_.fetch_add(1, std::memory_order_relaxed);
        warn("WATCH " + describe_status(result->status, result->body));
        co_return result->status == 429 ? Next::backoff_watch : Next::backoff_list;
    }
    if (next != Next::watch) {
        co_return next;  // stopped by an event
    }
    if (result->end == StreamEnd::closed && !any_event &&
        clock_.steady_now() - started < settings_.short_watch) {
        watch_failures_.fetch_add(1, std::memory_order_relaxed);
        warn("watch ended at once without an event");
        co_return Next::backoff_watch;
    }
    co_return Next::watch;  // timeoutSeconds reached: resume from `rv`
}

Millis Reflector::backoff_delay() {
    Millis delay = settings_.backoff_base;
    for (int i = 1; i < failures_in_row_ && delay < settings_.backoff_cap; ++i) {
        delay *= 2;
    }
    delay = std::min(delay, settings_.backoff_cap);
    if (settings_.jitter > 0) {
        std::uniform_real_distribution<double> stretch(0.0, settings_.jitter);
        delay +=
            Millis{static_cast<Millis::rep>(static_cast<double>(delay.count()) * stretch(rng_))};
    }
    return delay;
}

asio::awaitable<void> Reflector::run() {
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
                next = co_await do_list(next);
                break;
            case Next::watch:
                next = co_await do_watch();
                break;
            case Next::backoff_list:
            case Next::backoff_watch: {
                ++failures_in_row_;
                set_phase(Phase::backoff);
                co_await clock_.wait_until(clock_.steady_now() + backoff_delay());
                next = next == Next::backoff_watch ? Next::watch : Next::list_not_older;
                break;
            }
            case Next::stop:
                break;
        }
    }
    set_phase(Phase::stopped);
}

ReflectorStats Reflector::stats() const {
    ReflectorStats s;
    s.lists = lists_.load(std::memory_order_relaxed);
    s.list_failures = list_failures_.load(std::memory_order_relaxed);
    s.watches = watches_.load(std::memory_order_relaxed);
    s.watch_failures = watch_failures_.load(std::memory_order_relaxed);
    s.expired = expired_.load(std::memory_order_relaxed);
    s.events = events_.load(std::memory_order_relaxed);
    s.synced = synced_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace nmid::kube
