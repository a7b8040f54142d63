#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "support/fake_http_server.hpp"

namespace nmid::test {

/// One resource type the fake serves, e.g. `aadpodidentity.k8s.io/v1 azureidentities`.
struct FakeResource {
    std::string group{};    ///< "" for the core group (`/api/v1`)
    std::string version{};  ///< "v1"
    std::string plural{};   ///< "azureidentities"; unique across the resources of one fake
    std::string kind{};     ///< "AzureIdentity"
    std::string singular{};
    bool namespaced = true;
    std::vector<std::string> short_names{};

    [[nodiscard]] std::string api_version() const {
        return group.empty() ? version : group + "/" + version;
    }
};

/// The four aadpodidentity.k8s.io/v1 kinds, core v1 pods and secrets.
[[nodiscard]] std::vector<FakeResource> default_fake_resources();

struct FakeApiServerOptions {
    std::string address{"127.0.0.1"};
    /// Non-empty: every request must carry `Authorization: Bearer <token>` (401 Status
    /// otherwise). Change it later with set_token().
    std::string token{};
    /// Prefix of every resourceVersion the fake hands out ("" gives "1", "2", ...). A
    /// non-numeric prefix catches clients that compare or parse resourceVersions.
    std::string resource_version_prefix{};
    /// A watch from a resourceVersion older than the compaction point is answered like
    /// kube-apiserver's watch cache (200, an ERROR 410 event, end of stream) instead of an
    /// HTTP 410 Status.
    bool expired_watch_as_error_event = false;
    std::vector<FakeResource> resources = default_fake_resources();
};

/// One watch the fake opened (open or not).
struct FakeWatch {
    std::string plural{};
    std::string namespace_name{};  ///< "" = all namespaces
    std::string label_selector{};
    std::string field_selector{};
    std::string resource_version{};  ///< as requested
    std::string timeout_seconds{};   ///< as requested ("" when absent)
    bool bookmarks = false;          ///< allowWatchBookmarks=true
    std::size_t stream = 0;          ///< FakeHttpServer stream index
    std::size_t request = 0;         ///< index into requests()
    bool ended = false;              ///< ended or cut by the fake
};

/// An in-memory Kubernetes API server on top of FakeHttpServer, speaking the real wire
/// formats (reference/wire-formats.md §1): LIST (`<Kind>List`, list resourceVersion, CR items
/// with `kind`/`apiVersion`, core items without), GET of one object, WATCH as a chunked
/// stream of `{"type":...,"object":...}\n` lines (history replay from a resourceVersion,
/// synthetic ADDED without one, BOOKMARK on request, ERROR/HTTP 410 after compaction),
/// equality label selectors and the field selectors `metadata.name`, `metadata.namespace`
/// and `spec.nodeName` (400 for others), bearer-token checks and the discovery documents
/// kubectl reads (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`, `/version`).
/// Objects are changed by the test (create/update/remove), which bumps one global
/// resourceVersion and pushes events to every matching open watch.
/// Not thread-safe: use it and run its io_context on one thread.
class FakeApiServer {
public:
    /// Builds the underlying FakeHttpServer for a handler: the way to pass server options
    /// (TLS, another address) through, e.g.
    /// `[&](auto h) { return std::make_unique<FakeHttpServer>(ioc, std::move(h), addr, tls); }`.
    using ServerFactory = std::function<std::unique_ptr<FakeHttpServer>(FakeHttpServer::Handler)>;

    explicit FakeApiServer(boost::asio::io_context& ioc, FakeApiServerOptions options = {});
    FakeApiServer(FakeApiServerOptions options, const ServerFactory& make_server);
    ~FakeApiServer();
    FakeApiServer(const FakeApiServer&) = delete;
    FakeApiServer& operator=(const FakeApiServer&) = delete;

    [[nodiscard]] FakeHttpServer& http() { return *server_; }
    [[nodiscard]] std::uint16_t port() const { return server_->port(); }

    // --- objects ----------------------------------------------------------------------------

    /// Stores `object` (must have metadata.name; namespace "default" when a namespaced
    /// resource has none) as a new object: sets uid, creationTimestamp and a new
    /// resourceVersion, records an ADDED event. Replaces an existing object of the same name
    /// (then MODIFIED). Returns the new resourceVersion.
    std::string create(std::string_view plural, nlohmann::json object);
    /// Replaces an existing object (keeping its uid) as MODIFIED; creates it when missing.
    std::string update(std::string_view plural, nlohmann::json object);
    /// Deletes an object (DELETED with a deletionTimestamp and a new resourceVersion).
    /// Returns false when it does not exist.
    bool remove(std::string_view plural, std::string_view namespace_name, std::string_view name);
    /// The stored object (with kind/apiVersion), or nullopt.
    [[nodiscard]] std::optional<nlohmann::json> object(std::string_view plural,
                                                       std::string_view namespace_name,
                                                       std::string_view name) const;
    /// The current (latest) resourceVersion.
    [[nodiscard]] std::string resource_version() const;

    // --- watches ----------------------------------------------------------------------------

    /// Every watch opened so far, in order.
    [[nodiscard]] const std::vector<FakeWatch>& watches() const { return watches_; }
    /// Watches whose stream is still open.
    [[nodiscard]] std::size_t open_watches() const;
    /// Sends a BOOKMARK at the current resourceVersion to every open watch that asked for
    /// bookmarks.
    void bookmark();
    /// Forgets the history up to now: watches from an older resourceVersion get 410.
    void compact();
    /// Sends `{"type":"ERROR",...,"code":410}` to every open watch and ends it.
    void expire_watches();
    /// Ends every open watch cleanly (as when timeoutSeconds passes).
    void end_watches();
    /// Writes `partial` (e.g. half an event line) to every open watch, then cuts its
    /// connection without the last chunk.
    void cut_watches(const std::string& partial = {});
    /// Writes raw bytes (one chunk) to watch `index` of watches().
    void push_raw(std::size_t index, std::string bytes);

    // --- behaviour --------------------------------------------------------------------------

    void set_token(std::string token) { options_.token = std::move(token); }
    /// The next `times` requests whose path contains `path_part` are answered with `status`
    /// and a Status body (`reason`), with `Retry-After` when `retry_after` is not empty.
    void fail_next(std::string path_part, int status, std::string reason, int times = 1,
                   std::string retry_after = {});
    /// Holds (FakeResponse::hold) every non-watch answer until http().release().
    void set_hold(bool hold) { hold_ = hold; }

    /// Every request received, in order (FakeHttpServer::received()).
    [[nodiscard]] const std::vector<FakeRequest>& requests() const { return server_->received(); }

private:
    using ObjectKey = std::tuple<std::string, std::string, std::string>;  // plural, ns, name

    struct Event {
        std::uint64_t rv = 0;
        std::string plural;
        std::optional<nlohmann::json> before;  ///< state before the change
        std::optional<nlohmann::json> after;   ///< state after (nullopt: deleted)
    };

    struct Failure {
        std::string path_part;
        int status = 500;
        std::string reason;
        int remaining = 0;
        std::string retry_after;
    };

    FakeResponse handle(const FakeRequest& request);
    [[nodiscard]] const FakeResource* find_resource(std::string_view plural) const;
    std::string store(std::string_view plural, nlohmann::json object, bool keep_uid);
    void publish(const Event& event);
    [[nodiscard]] std::string rv_string(std::uint64_t rv) const;
    [[nodiscard]] std::optional<std::uint64_t> parse_rv(std::string_view rv) const;
    [[nodiscard]] bool watch_open(const FakeWatch& w) const;

    FakeApiServerOptions options_;
    std::map<std::string, FakeResource, std::less<>> resources_;  ///< by plural
    std::map<ObjectKey, nlohmann::json> objects_;
    std::vector<Event> history_;
    std::uint64_t rv_ = 100;
    std::uint64_t compacted_ = 0;  ///< watches from a resourceVersion below this get 410
    std::uint64_t next_uid_ = 1;
    std::vector<FakeWatch> watches_;
    std::vector<Failure> failures_;
    bool hold_ = false;
    std::unique_ptr<FakeHttpServer> server_;  ///< last: destroyed first (its handler uses this)
};

}  // namespace nmid::test
