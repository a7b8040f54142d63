#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>

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
};

}  // namespace nmid
