#include "crd_watcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <limits>
#include <random>
#include <utility>

#include "nmid/core/hex.hpp"
#include "nmid/crd/watch_event.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using crd_detail::is_cancelled;
using crd_detail::object_key;

constexpr std::string_view kCollectionBase = "/apis/aadpodidentity.k8s.io/v1/";
// client-go counts a watch that ends this quickly without any event as a failure, so a
// proxy that closes every stream at once does not turn into a reconnect storm.
constexpr Millis kMinWatchDuration{1'000};
constexpr std::size_t kMaxLoggedError = 300;

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

std::string clip(std::string s) {
    if (s.size() > kMaxLoggedError) {
        s.resize(kMaxLoggedError);
        s += "...";
    }
    return s;
}

// "410 Expired: too old resource version" from a Status body; the status alone otherwise.
std::string describe_status(int status, std::string_view body) {
    std::string out = std::to_string(status);
    const json doc = json::parse(body.begin(), body.end(), nullptr, false);
    if (doc.is_object()) {
        for (const char* field : {"reason", "message"}) {
            const auto it = doc.find(field);
            if (it != doc.end() && it->is_string()) {
                out += ' ';
                out += it->get_ref<const std::string&>();
            }
        }
    }
    return clip(std::move(out));
}

}  // namespace

ApiServerCrdSource::Watcher::Watcher(ApiServerCrdSource& source, Shared& shared,
                                     CrdResource resource)
    : source_(source),
      shared_(shared),
      resource_(resource),
      index_(static_cast<std::size_t>(resource)),
      store_(*shared.stores[index_]) {
    collection_ = std::string{kCollectionBase} + std::string{plural_name(resource)};
    if (resource == CrdResource::assigned) {
        selector_ = "labelSelector=" + percent_encode("nodename=" + source.settings_.node_name);
    }
}

asio::awaitable<void> ApiServerCrdSource::Watcher::run() {
    co_await asio::this_coro::throw_if_cancelled(false);
    const asio::cancellation_state cancellation = co_await asio::this_coro::cancellation_state;
    while (!is_cancelled(cancellation)) {
        if (need_list_) {
            const bool listed = co_await list();
            if (is_cancelled(cancellation)) {
                co_return;
            }
            if (!listed) {
                co_await backoff();
                continue;
            }
        }
        const Outcome outcome = co_await watch();
        if (is_cancelled(cancellation)) {
            co_return;
        }
        switch (outcome) {
            case Outcome::ended:
                break;
            case Outcome::gone:
                need_list_ = true;
                // 410 right after a fresh list, twice in a row: do not hammer the server.
                if (++gone_streak_ > 1) {
                    co_await backoff();
                }
                break;
            case Outcome::failed:
                co_await backoff();
                break;
        }
    }
}

std::string ApiServerCrdSource::Watcher::with_selector(std::string query) const {
    if (!selector_.empty()) {
        query += query.empty() ? "" : "&";
        query += selector_;
    }
    return query;
}

asio::awaitable<bool> ApiServerCrdSource::Watcher::list() {
    // First list from the watch cache (resourceVersion=0, cheap for the API server with
    // thousands of nodes); after 410 not older than what we saw (so nothing goes back in
    // time); if that is gone too, a quorum read.
    std::string query;
    switch (list_from_) {
        case ListFrom::cache:
            query = "resourceVersion=0";
            break;
        case ListFrom::not_older:
            query = "resourceVersion=" + percent_encode(rv_) + "&resourceVersionMatch=NotOlderThan";
            break;
        case ListFrom::latest:
            break;
    }
    query = with_selector(std::move(query));
    std::string target = collection_;
    if (!query.empty()) {
        target += '?';
        target += query;
    }
    const auto deadline = source_.clock_.steady_now() + source_.settings_.request_deadline;
    const Result<kube::Response> r = co_await source_.client_.get(std::move(target), deadline);
    if (!r) {
        if (r.error() != Errc::cancelled) {
            fail("list failed: " + r.error().message());
        }
        co_return false;
    }
    if (r->status == 410) {
        update_stats([](CrdWatchStats& s) { ++s.gone; });
        list_from_ = ListFrom::latest;
        fail("list answered " + describe_status(r->status, r->body));
        co_return false;
    }
    if (r->status != 200) {
        fail("list answered " + describe_status(r->status, r->body));
        co_return false;
    }
    const json doc = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    const json* items = nullptr;
    std::string list_rv;
    if (doc.is_object()) {
        const auto md = doc.find("metadata");
        if (md != doc.end() && md->is_object()) {
            const auto rv = md->find("resourceVersion");
            if (rv != md->end() && rv->is_string()) {
                list_rv = rv->get_ref<const std::string&>();
            }
        }
        const auto it = doc.find("items");
        if (it != doc.end() && (it->is_array() || it->is_null())) {
            items = &*it;
        }
    }
    if (items == nullptr || list_rv.empty()) {
        fail("list body is not a list with items and metadata.resourceVersion");
        co_return false;
    }
    std::string first_error;
    const std::size_t skipped =
        store_.replace(items->is_null() ? json::array() : *items, first_error);
    if (skipped > 0) {
        spdlog::warn("crd watch {}: skipped {} objects that do not parse, e.g. {}",
                     plural_name(resource_), skipped, clip(first_error));
    }
    rv_ = std::move(list_rv);
    need_list_ = false;
    list_from_ = ListFrom::not_older;
    const bool relist = shared_.synced[index_];
    shared_.synced[index_] = true;
    update_stats([&](CrdWatchStats& s) {
        ++s.lists;
        s.relists += relist ? 1 : 0;
        s.errors += skipped;
        s.objects = store_.size();
        s.synced = true;
        s.resource_version = rv_;
        s.confirmed_at = source_.clock_.steady_now();
    });
    spdlog::info("crd watch {}: listed {} objects at resourceVersion {}", plural_name(resource_),
                 store_.size(), rv_);
    shared_.mark_dirty();
    co_return true;
}

asio::awaitable<ApiServerCrdSource::Watcher::Outcome> ApiServerCrdSource::Watcher::watch() {
    const auto base = source_.settings_.watch_timeout.count();
    std::uniform_int_distribution<std::int64_t> spread{0, std::max<std::int64_t>(base, 1) - 1};
    const std::int64_t timeout_seconds = base + spread(source_.rng_);
    std::string target =
        collection_ + "?" +
        with_selector("watch=1&allowWatchBookmarks=true&resourceVersion=" + percent_encode(rv_) +
                      "&timeoutSeconds=" + std::to_string(timeout_seconds));
    if (watches_++ > 0) {
        update_stats([](CrdWatchStats& s) { ++s.watch_restarts; });
    }
    const SteadyTime started = source_.clock_.steady_now();
    const SteadyTime deadline =
        started + Seconds{timeout_seconds} + source_.settings_.request_deadline;
    StreamState state;
    const Result<kube::WatchResult> r = co_await source_.client_.watch(
        std::move(target), deadline,
        [this, &state](std::string_view line) { return on_line(line, state); });
    if (state.applied > 0) {
        attempt_ = 0;
        gone_streak_ = 0;
    }
    if (!r) {
        if (r.error() == Errc::cancelled) {
            co_return Outcome::failed;
        }
        fail("watch stream failed: " + r.error().message() + "; resuming from resourceVersion " +
             rv_);
        co_return Outcome::failed;
    }
    if (r->status == 410) {
        update_stats([](CrdWatchStats& s) { ++s.gone; });
        spdlog::info("crd watch {}: resourceVersion {} is gone ({}); listing again",
                     plural_name(resource_), rv_, describe_status(r->status, r->body));
        co_return Outcome::gone;
    }
    if (r->status != 200) {
        fail("watch answered " + describe_status(r->status, r->body));
        co_return Outcome::failed;
    }
    if (state.gone) {
        co_return Outcome::gone;
    }
    if (state.failed) {
        co_return Outcome::failed;
    }
    if (r->end == kube::StreamEnd::closed && state.applied == 0 &&
        source_.clock_.steady_now() - started < kMinWatchDuration) {
        fail("watch ended at once without any event");
        co_return Outcome::failed;
    }
    if (r->end == kube::StreamEnd::closed) {
        // The server ended the stream after timeoutSeconds: nothing was missed up to now.
        update_stats([&](CrdWatchStats& s) { s.confirmed_at = source_.clock_.steady_now(); });
    }
    attempt_ = 0;
    co_return Outcome::ended;
}

bool ApiServerCrdSource::Watcher::on_line(std::string_view raw, StreamState& state) {
    const std::string_view line = trim(raw);
    if (line.empty()) {
        return true;
    }
    Result<WatchEvent> event = parse_watch_event(line);
    if (!event) {
        fail("malformed watch line of " + std::to_string(line.size()) + " bytes");
        state.failed = true;
        return false;
    }
    switch (event->type) {
        case WatchEventType::added:
        case WatchEventType::modified: {
            std::string error;
            if (!store_.upsert(event->object, error)) {
                fail("dropped an object that does not parse: " + clip(error));
            }
            break;
        }
        case WatchEventType::deleted:
            if (const auto key = object_key(event->object)) {
                store_.erase(*key);
            }
            break;
        case WatchEventType::bookmark:
            break;
        case WatchEventType::error:
            if (event->code == 410) {
                update_stats([](CrdWatchStats& s) { ++s.gone; });
                spdlog::info("crd watch {}: resourceVersion {} is gone ({} {}); listing again",
                             plural_name(resource_), rv_, event->reason, clip(event->message));
                state.gone = true;
            } else {
                fail("watch ERROR event " + std::to_string(event->code) + " " + event->reason +
                     " " + clip(event->message));
                state.failed = true;
            }
            return false;
    }
    if (!event->resource_version.empty()) {
        rv_ = event->resource_version;
    }
    ++state.applied;
    const bool bookmark = event->type == WatchEventType::bookmark;
    update_stats([&](CrdWatchStats& s) {
        ++(bookmark ? s.bookmarks : s.events);
        s.objects = store_.size();
        s.resource_version = rv_;
        s.confirmed_at = source_.clock_.steady_now();
    });
    if (!bookmark) {
        shared_.mark_dirty();
    }
    return true;
}

asio::awaitable<void> ApiServerCrdSource::Watcher::backoff() {
    const auto& settings = source_.settings_;
    const auto base = std::max(settings.backoff_base, Millis{1});
    Millis delay = std::max(settings.backoff_cap, base);
    // base * 2^attempt without overflow: stop doubling at the cap.
    Millis d = base;
    for (unsigned i = 0; i < attempt_ && d < delay; ++i) {
        d *= 2;
    }
    delay = std::min(d, delay);
    // "Equal jitter": somewhere in [delay/2, delay], so retries of many nodes spread out
    // and the wait still grows.
    std::uniform_int_distribution<std::int64_t> jitter{delay.count() / 2, delay.count()};
    const Millis wait{jitter(source_.rng_)};
    if (attempt_ < std::numeric_limits<unsigned>::max()) {
        ++attempt_;
    }
    co_await source_.clock_.wait_until(source_.clock_.steady_now() + wait);
}

void ApiServerCrdSource::Watcher::fail(const std::string& what) {
    update_stats([](CrdWatchStats& s) { ++s.errors; });
    spdlog::warn("crd watch {}: {}", plural_name(resource_), what);
}

}  // namespace nmid
