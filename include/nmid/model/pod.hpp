#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nmid {

/// One `metadata.ownerReferences` entry, as far as nmid reads it (fields as written: no case
/// folding). Kubernetes lets at most one entry of a pod be the controller.
struct OwnerReference {
    std::string api_version;  ///< `apiVersion` ("apps/v1")
    std::string kind;         ///< `kind` ("ReplicaSet")
    std::string name;
    bool controller = false;  ///< `controller: true`

    friend bool operator==(const OwnerReference&, const OwnerReference&) = default;
};

/// One `spec.volumes[].projected.sources[].serviceAccountToken` of a pod: the ServiceAccount
/// token the kubelet writes to `<kubelet root>/pods/<uid>/volumes/kubernetes.io~projected/
/// <volume>/<path>` (workload identity's projected token source).
struct TokenProjection {
    std::string volume;    ///< the volume's name
    std::string path;      ///< serviceAccountToken.path (relative, may contain '/')
    std::string audience;  ///< "" when absent (the API server's own audiences)
    std::int64_t expiration_seconds = 0;  ///< 0 when absent

    friend bool operator==(const TokenProjection&, const TokenProjection&) = default;
};

/// What nmid knows about one pod on this node. Immutable once published.
struct PodInfo {
    std::string namespace_name;
    std::string name;
    std::string uid;
    std::string service_account;
    std::string phase;                          ///< Pending, Running, ... ("" when absent)
    std::vector<OwnerReference> owners;         ///< metadata.ownerReferences, in order
    std::map<std::string, std::string> labels;  ///< sorted: deterministic iteration
    std::vector<std::string> ips;               ///< status.podIP then status.podIPs, deduplicated
    bool host_network = false;
    bool terminating = false;  ///< metadata.deletionTimestamp present
    /// Entries of status.containerStatuses, and of those the ones whose `state.terminated` is
    /// set (the container has exited). Init and ephemeral containers are not counted.
    std::size_t container_statuses = 0;
    std::size_t containers_terminated = 0;
    std::vector<TokenProjection> token_projections;  ///< in spec order

    friend bool operator==(const PodInfo&, const PodInfo&) = default;
};

using PodInfoPtr = std::shared_ptr<const PodInfo>;

/// One full read of a pod source (kubelet `/pods`, a PodList file, an API-server list).
struct PodList {
    std::vector<PodInfo> pods;
};

}  // namespace nmid
