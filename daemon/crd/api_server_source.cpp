#include "nmid/crd/api_server_source.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "crd_json.hpp"
#include "nmid/core/hex.hpp"
#include "nmid/crd/crd_parse.hpp"

namespace nmid {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using crd_detail::CrdKind;
using Key = std::pair<std::string, std::string>;  // (namespace, name)

constexpr std::string_view kCollectionBase = "/apis/aadpodidentity.k8s.io/v1/";
// client-go counts a watch that ends this quickly without any event as a failure, so a
// proxy that closes every stream at once does not turn into a reconnect storm.
constexpr Millis kMinWatchDuration{1'000};
constexpr std::size_t kMaxLoggedError = 300;

bool is_cancelled(const asio::cancellation_state& state) {
    return state.cancelled() != asio::cancellation_type::none;
}

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

std::optional<Key> object_key(const json& object) {
    if (!object.is_object()) {
        return std::nullopt;
    }
    const auto md = object.find("metadata");
    if (md == object.end() || !md->is_object()) {
        return std::nullopt;
    }
    const auto name = md->find("name");
    if (name == md->end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
        return std::nullopt;
    }
    // As crd_json: a missing namespace is "default".
    std::string ns = "default";
    const auto it = md->find("namespace");
    if (it != md->end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        ns = it->get_ref<const std::string&>();
    }
    return Key{std::move(ns), name->get_ref<const std::string&>()};
}

CrdKind crd_kind_of(CrdResource r) {
    switch (r) {
        case CrdResource::identities:
            return CrdKind::identity;
        case CrdResource::bindings:
            return CrdKind::binding;
        case CrdResource::exceptions:
            return CrdKind::exception;
        case CrdResource::assigned:
            return CrdKind::assigned;
    }
    return CrdKind::identity;
}

// The objects of one resource, keyed by (namespace, name). Typed per kind below.
class ObjectStore {
public:
    virtual ~ObjectStore() = default;
    /// Inserts or replaces the object. An object that does not convert is removed instead
    /// (fail closed: a binding changed into something unreadable must stop granting) and
    /// false is returned with `error` set.
    virtual bool upsert(const json& object, std::string& error) = 0;
    virtual void erase(const Key& key) = 0;
    /// Replaces every object with `items` (an array); returns how many items were skipped
    /// because they did not convert, the first reason in `first_error`.
    virtual std::size_t replace(const json& items, std::string& first_error) = 0;
    virtual void append_to(CrdSnapshot& out) const = 0;
    [[nodiscard]] virtual std::size_t size() const = 0;
};

template <class T>
class TypedStore final : public ObjectStore {
public:
    TypedStore(CrdKind kind, std::vector<T> CrdSnapshot::*field) : kind_(kind), field_(field) {}

    bool upsert(const json& object, std::string& error) override {
        T item;
        if (!convert(object, item, error)) {
            if (const auto key = object_key(object)) {
                objects_.erase(*key);
            }
            return false;
        }
        Key key{item.meta.namespace_name, item.meta.name};
        objects_.insert_or_assign(std::move(key), std::move(item));
        return true;
    }

    void erase(const Key& key) override { objects_.erase(key); }

    std::size_t replace(const json& items, std::string& first_error) override {
        std::map<Key, T> fresh;
        std::size_t skipped = 0;
        for (const auto& object : items) {
            T item;
            std::string error;
            if (!convert(object, item, error)) {
                if (first_error.empty()) {
                    first_error = std::move(error);
                }
                ++skipped;
                continue;
            }
            Key key{item.meta.namespace_name, item.meta.name};
            fresh.insert_or_assign(std::move(key), std::move(item));
        }
        objects_ = std::move(fresh);
        return skipped;
    }

    void append_to(CrdSnapshot& out) const override {
        auto& vec = out.*field_;
        vec.reserve(vec.size() + objects_.size());
        for (const auto& [key, item] : objects_) {
            vec.push_back(item);
        }
    }

    [[nodiscard]] std::size_t size() const override { return objects_.size(); }

private:
    bool convert(const json& object, T& out, std::string& error) const {
        CrdSnapshot scratch;
        if (!crd_detail::append_object(object, kind_, scratch, error)) {
            return false;
        }
        out = std::move((scratch.*field_).back());
        return true;
    }

    CrdKind kind_;
    std::vector<T> CrdSnapshot::*field_;
    std::map<Key, T> objects_;
};

std::unique_ptr<ObjectStore> make_store(CrdResource r) {
    const CrdKind kind = crd_kind_of(r);
    switch (r) {
        case CrdResource::identities:
            return std::make_unique<TypedStore<AzureIdentity>>(kind, &CrdSnapshot::identities);
        case CrdResource::bindings:
            return std::make_unique<TypedStore<AzureIdentityBinding>>(kind, &CrdSnapshot::bindings);
        case CrdResource::exceptions:
            return std::make_unique<TypedStore<AzurePodIdentityException>>(
                kind, &CrdSnapshot::exceptions);
        case CrdResource::assigned:
            return std::make_unique<TypedStore<AzureAssignedIdentity>>(kind,
                                                                       &CrdSnapshot::assigned);
    }
    return nullptr;
}

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

Result<WatchEvent> parse_watch_event(std::string_view line) {
    json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
        return Errc::parse_error;
    }
    const auto type = doc.find("type");
    if (type == doc.end() || !type->is_string()) {
        return Errc::parse_error;
    }
    WatchEvent event;
    const auto& name = type->get_ref<const std::string&>();
    if (name == "ADDED") {
        event.type = WatchEventType::added;
    } else if (name == "MODIFIED") {
        event.type = WatchEventType::modified;
    } else if (name == "DELETED") {
        event.type = WatchEventType::deleted;
    } else if (name == "BOOKMARK") {
        event.type = WatchEventType::bookmark;
    } else if (name == "ERROR") {
        event.type = WatchEventType::error;
    } else {
        return Errc::parse_error;
    }
    const auto object = doc.find("object");
    if (object == doc.end() || !object->is_object()) {
        return Errc::parse_error;
    }
    event.object = std::move(*object);
    const json& obj = event.object;
    if (const auto md = obj.find("metadata"); md != obj.end() && !md->is_null()) {
        if (!md->is_object()) {
            return Errc::parse_error;
        }
        if (const auto rv = md->find("resourceVersion"); rv != md->end() && !rv->is_null()) {
            if (!rv->is_string()) {
                return Errc::parse_error;
            }
            event.resource_version = rv->get_ref<const std::string&>();
        }
    }
    if (event.type == WatchEventType::error) {
        if (const auto code = obj.find("code"); code != obj.end() && !code->is_null()) {
            if (!code->is_number_integer()) {
                return Errc::parse_error;
            }
            const auto v = code->get<std::int64_t>();
            if (v < 0 || v > 999) {
                return Errc::parse_error;
            }
            event.code = static_cast<int>(v);
        }
        for (auto [field, out] :
             {std::pair{"reason", &event.reason}, std::pair{"message", &event.message}}) {
            if (const auto it = obj.find(field); it != obj.end() && it->is_string()) {
                *out = it->get_ref<const std::string&>();
            }
        }
    }
    return event;
}

/// State shared by the watchers and the publisher of one run(); lives in run()'s frame and
/// is touched on its strand only.
struct ApiServerCrdSource::Shared {
    explicit Shared(const asio::any_io_executor& executor)
        : wake{executor, asio::steady_timer::time_point::max()} {}

    void mark_dirty() {
        dirty = true;
        wake.cancel();  // the publisher re-checks `dirty` before every wait
    }

    [[nodiscard]] bool all_synced() const {
        for (std::size_t i = 0; i < kCrdResourceCount; ++i) {
            if (stores[i] != nullptr && !synced[i]) {
                return false;
            }
        }
        return true;
    }

    std::array<std::unique_ptr<ObjectStore>, kCrdResourceCount> stores{};
    std::array<bool, kCrdResourceCount> synced{};
    bool dirty = false;
    bool published = false;
    asio::steady_timer wake;  ///< never expires; cancelled to wake the publisher
    Publish publish;
};

/// List+watch of one resource (client-go's Reflector).
class ApiServerCrdSource::Watcher {
public:
    Watcher(ApiServerCrdSource& source, Shared& shared, CrdResource resource)
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

    asio::awaitable<void> run() {
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

private:
    enum class Outcome { ended, gone, failed };
    enum class ListFrom { cache, not_older, latest };

    struct StreamState {
        std::size_t applied = 0;  ///< events and bookmarks
        bool gone = false;
        bool failed = false;
    };

    template <class F>
    void update_stats(F&& f) {
        const std::lock_guard lock{source_.stats_mutex_};
        f(source_.stats_.resources[index_]);
    }

    std::string with_selector(std::string query) const {
        if (!selector_.empty()) {
            query += query.empty() ? "" : "&";
            query += selector_;
        }
        return query;
    }

    asio::awaitable<bool> list() {
        // First list from the watch cache (resourceVersion=0, cheap for the API server with
        // thousands of nodes); after 410 not older than what we saw (so nothing goes back in
        // time); if that is gone too, a quorum read.
        std::string query;
        switch (list_from_) {
            case ListFrom::cache:
                query = "resourceVersion=0";
                break;
            case ListFrom::not_older:
                query =
                    "resourceVersion=" + percent_encode(rv_) + "&resourceVersionMatch=NotOlderThan";
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
        });
        spdlog::info("crd watch {}: listed {} objects at resourceVersion {}",
                     plural_name(resource_), store_.size(), rv_);
        shared_.mark_dirty();
        co_return true;
    }

    asio::awaitable<Outcome> watch() {
        const auto base = source_.settings_.watch_timeout.count();
        std::uniform_int_distribution<std::int64_t> spread{0, std::max<std::int64_t>(base, 1) - 1};
        const std::int64_t timeout_seconds = base + spread(source_.rng_);
        std::string target = collection_ + "?" +
                             with_selector("watch=1&allowWatchBookmarks=true&resourceVersion=" +
                                           percent_encode(rv_) +
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
            fail("watch stream failed: " + r.error().message() +
                 "; resuming from resourceVersion " + rv_);
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
        attempt_ = 0;
        co_return Outcome::ended;
    }

    bool on_line(std::string_view raw, StreamState& state) {
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
        });
        if (!bookmark) {
            shared_.mark_dirty();
        }
        return true;
    }

    asio::awaitable<void> backoff() {
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

    void fail(const std::string& what) {
        update_stats([](CrdWatchStats& s) { ++s.errors; });
        spdlog::warn("crd watch {}: {}", plural_name(resource_), what);
    }

    ApiServerCrdSource& source_;
    Shared& shared_;
    CrdResource resource_;
    std::size_t index_;
    ObjectStore& store_;
    std::string collection_;
    std::string selector_;  ///< "labelSelector=..." or ""
    std::string rv_;
    bool need_list_ = true;
    ListFrom list_from_ = ListFrom::cache;
    unsigned attempt_ = 0;      ///< consecutive failures, for the backoff
    unsigned gone_streak_ = 0;  ///< 410s in a row without any event in between
    std::uint64_t watches_ = 0;
};

ApiServerCrdSource::ApiServerCrdSource(kube::ApiServerClient& client, Clock& clock,
                                       ApiServerCrdSettings settings)
    : client_(client), clock_(clock), settings_(std::move(settings)) {
    std::uint64_t seed = settings_.random_seed;
    if (seed == 0) {
        std::random_device device;
        seed = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    }
    rng_.seed(seed);
}

ApiServerCrdStats ApiServerCrdSource::stats() const {
    const std::lock_guard lock{stats_mutex_};
    return stats_;
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
        shared.stores[i] = make_store(r);
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
