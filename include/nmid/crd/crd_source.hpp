#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>

#include "nmid/config/settings.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/crd.hpp"

namespace nmid {

/// Where identities, bindings, exceptions and assignments come from: a YAML/JSON file
/// (standalone) or an API-server list+watch (in a cluster).
class CrdSource {
public:
    using Publish = std::function<void(CrdSnapshotPtr)>;
    virtual ~CrdSource() = default;
    /// Runs until cancelled, calling `publish` with a complete snapshot after the first
    /// successful read and after every change. Errors are logged and retried inside, never
    /// thrown. Executor: the caller's. Cancellation: returns.
    virtual boost::asio::awaitable<void> run(Publish publish) = 0;

    /// How long ago the source last confirmed that what it published is current (by the
    /// injected clock): for the API server, the last successful LIST, event or BOOKMARK, or
    /// a watch the server ended normally, of the least recently confirmed resource; before
    /// every resource was listed, the time since the source was created. A file is read
    /// whenever it changes: always 0. Thread-safe. Compare with tokens_allowed().
    [[nodiscard]] virtual Millis snapshot_age() const = 0;
};

/// --crd-max-staleness: may tokens be served from a snapshot of age `age`? `max` 0 (the
/// default) never denies; otherwise the snapshot may be at most `max` old. Pure.
[[nodiscard]] constexpr bool tokens_allowed(Millis age, Millis max) noexcept {
    return max <= Millis{0} || age <= max;
}

}  // namespace nmid
