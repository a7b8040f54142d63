#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "nmid/core/clock.hpp"
#include "nmid/core/errc.hpp"
#include "nmid/model/pod.hpp"

namespace nmid {

/// Where the pod index learns pods: a PodList file (standalone), the kubelet `/pods`
/// endpoint, or an API-server pod list. One call is one full read.
class PodSource {
public:
    virtual ~PodSource() = default;
    /// Reads every pod of this node. May return the same pointer as the previous call when
    /// the source knows nothing changed (the index then skips its rebuild).
    /// Executor: any; parsing of large bodies must not block the caller's executor for long.
    /// Errors: Errc::pod_source_failed, Errc::parse_error, Errc::timeout, Errc::cancelled.
    virtual boost::asio::awaitable<Result<std::shared_ptr<const PodList>>> list(
        SteadyTime deadline) = 0;
};

}  // namespace nmid
