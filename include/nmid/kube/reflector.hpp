#pragma once

// List+watch of one Kubernetes collection with relist and backoff, as client-go's Reflector
// does it: the one loop behind every API-server watch of nmid (pods of the node,
// ServiceAccounts; the identity objects' watchers are next). Consumers parse; the loop decides.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "nmid/config/settings.hpp"
#include "nmid/core/clock.hpp"
#include "nmid/kube/client.hpp"

namespace nmid::kube {

/// The loop's knobs (defaults mirror client-go's Reflector).
struct ReflectorSettings {
    std::string name{"list/watch"};  ///< log prefix, e.g. "pod list/watch"
    Millis list_deadline{30'000};    ///< one LIST request
    Seconds watch_timeout_min{300};  ///< `timeoutSeconds` of a watch: uniform in [min, max)
    Seconds watch_timeout_max{600};  ///< (so that nodes do not all reconnect at once)
    Millis backoff_base{800};        ///< first retry delay after a failure, doubled per failure
    Millis backoff_cap{30'000};
    double jitter = 0.5;        ///< each delay is stretched by a uniform fraction in [0, jitter)
    Millis short_watch{1'000};  ///< a watch that ends cleanly this fast with no event failed
    std::uint64_t seed = 0;     ///< randomness of jitter and timeouts (0: std::random_device)
};

/// What a LIST body gave the consumer.
struct ListApplied {
    bool ok = false;
    std::string resource_version{};  ///< the list's (where the watch starts)
    std::string detail{};            ///< why it did not parse (when !ok)
    std::size_t objects = 0;         ///< held after it (for the "synced" line)
};

/// What one watch line gave the consumer.
struct EventApplied {
    enum class Kind {
        applied,     ///< ADDED, MODIFIED, DELETED or BOOKMARK taken
        gone,        ///< an ERROR event with code 410: relist
        error,       ///< another ERROR event: resume the watch after a backoff
        unreadable,  ///< the line did not parse: an event is lost, relist
    };
    Kind kind = Kind::applied;
    std::string resource_version{};  ///< the event's ("" when none)
    std::string message{};           ///< ERROR event message, or the parse detail
    int code = 0;                    ///< ERROR event code
};

/// The consumer's half: parse and hold the objects. Called on the reflector's executor.
class ReflectorSink {
public:
    virtual ~ReflectorSink() = default;
    /// Replace every object with the LIST `body` (may parse elsewhere and resume here).
    virtual boost::asio::awaitable<ListApplied> apply_list(std::string body) = 0;
    /// Apply one non-blank watch line.
    virtual EventApplied apply_event(std::string_view line) = 0;
};

struct ReflectorStats {
    std::uint64_t lists = 0;           ///< successful LISTs
    std::uint64_t list_failures = 0;   ///< failed LISTs (transport, status, parse)
    std::uint64_t watches = 0;         ///< watch requests made
    std::uint64_t watch_failures = 0;  ///< watches that ended in an error (resumed with backoff)
    std::uint64_t expired = 0;         ///< relists because the resourceVersion expired (410)
    std::uint64_t events = 0;          ///< watch events applied (bookmarks included)
    bool synced = false;               ///< the first LIST succeeded
};

/// GET `collection` (which may carry a query, e.g. a fieldSelector), then watch from the list's
/// resourceVersion with bookmarks and a random timeoutSeconds:
/// - every event moves the resourceVersion (opaque strings, never compared);
/// - 410 Gone, as the watch's HTTP status or as an ERROR event: relist at the last
///   resourceVersion (`resourceVersionMatch=NotOlderThan`), and if that is 410 too (or a second
///   410 comes without an event in between), relist without one (a quorum read);
/// - a stream cut by an error (transport, another ERROR event, a very short watch, 429):
///   resume the watch from the last resourceVersion after a backoff (`backoff_base` doubling
///   to `backoff_cap`, stretched by jitter, waited on the injected Clock); a failed LIST,
///   an unreadable event or another non-200 watch: back off, then relist; a clean end: watch
///   again at once.
/// The first LIST uses `resourceVersion=0` (the API server's watch cache). Failures are
/// logged once per episode and cause (and once a minute while they last), recovery once.
/// State lives on `executor` (a strand or a single-threaded io_context); `client`, `clock`
/// and `sink` outlive run().
class Reflector {
public:
    enum class Phase { listing, watching, backoff, stopped };

    Reflector(boost::asio::any_io_executor executor, ApiServerClient& client, Clock& clock,
              ReflectorSink& sink, std::string collection, ReflectorSettings settings);

    /// The loop until cancelled (per-operation cancellation of the awaiting coroutine closes
    /// the watch; returns normally). Runs on the reflector's executor. Call it once.
    boost::asio::awaitable<void> run();

    // On the reflector's executor only:
    [[nodiscard]] Phase phase() const { return phase_; }
    /// True while a failure episode lasts (a failed or cut LIST or watch, not yet recovered).
    [[nodiscard]] bool failing() const { return failing_; }
    /// A timer that never expires and is cancelled at every phase change: a condition
    /// variable for consumers waiting for `watching`.
    [[nodiscard]] boost::asio::steady_timer& changed() { return changed_; }

    /// Thread-safe.
    [[nodiscard]] bool synced() const noexcept { return synced_.load(std::memory_order_acquire); }
    [[nodiscard]] ReflectorStats stats() const;

private:
    enum class Next;
    boost::asio::awaitable<Next> do_list(Next mode);
    boost::asio::awaitable<Next> do_watch();
    bool on_line(std::string_view line, Next& next, bool& any_event);
    void set_phase(Phase p);
    void warn(std::string what);
    void healthy();
    [[nodiscard]] Millis backoff_delay();

    boost::asio::any_io_executor executor_;
    ApiServerClient& client_;
    Clock& clock_;
    ReflectorSink& sink_;
    std::string collection_;
    ReflectorSettings settings_;
    std::mt19937_64 rng_;
    std::string rv_;
    Phase phase_ = Phase::listing;
    boost::asio::steady_timer changed_;
    int failures_in_row_ = 0;
    int expired_in_row_ = 0;
    bool failing_ = false;
    std::string last_warning_text_;
    SteadyTime last_warning_{};
    std::atomic<bool> synced_{false};
    std::atomic<std::uint64_t> lists_{0}, list_failures_{0}, watches_{0}, watch_failures_{0},
        expired_{0}, events_{0};
};

/// "HTTP 403: <Status message>" for a log line; the start of the body when it is no Status.
[[nodiscard]] std::string describe_status(int status, std::string_view body);

}  // namespace nmid::kube
