#include <string>
#include <utility>

#include "pod_json_walker.hpp"

namespace nmid::pods_detail {

Result<void> Walker::parse_item(const Json& item, PodInfo& pod, bool& is_pod) {
    pod_name_.clear();
    if (!item.is_object()) {
        return fail("", expected("object", item));
    }
    if (const Json* kind = field(item, "kind")) {
        if (!kind->is_string()) {
            return fail("kind", expected("string", *kind));
        }
        if (kind->get_ref<const std::string&>() != "Pod") {
            is_pod = false;  // `kubectl get pods,services -o json` mixes kinds
            return {};
        }
    }
    const Json* metadata = field(item, "metadata");
    if (metadata == nullptr) {
        return fail("metadata", "missing");
    }
    if (!metadata->is_object()) {
        return fail("metadata", expected("object", *metadata));
    }
    NMID_PODS_TRY(opt_string(*metadata, "name", "metadata.name", pod.name));
    if (pod.name.empty()) {
        return fail("metadata.name", "missing");
    }
    NMID_PODS_TRY(opt_string(*metadata, "namespace", "metadata.namespace", pod.namespace_name));
    if (pod.namespace_name.empty()) {
        pod.namespace_name = "default";  // what kubectl assumes for a manifest without one
    }
    pod_name_ = pod.namespace_name + "/" + pod.name;
    NMID_PODS_TRY(opt_string(*metadata, "uid", "metadata.uid", pod.uid));
    if (const Json* labels = field(*metadata, "labels")) {
        if (!labels->is_object()) {
            return fail("metadata.labels", expected("object", *labels));
        }
        for (const auto& [k, v] : labels->items()) {
            if (!v.is_string()) {
                return fail("metadata.labels." + k, expected("string", v));
            }
            pod.labels.emplace(k, v.get<std::string>());
        }
    }
    if (const Json* deletion = field(*metadata, "deletionTimestamp")) {
        if (!deletion->is_string()) {
            return fail("metadata.deletionTimestamp", expected("string", *deletion));
        }
        pod.terminating = true;
    }
    if (const Json* owners = field(*metadata, "ownerReferences")) {
        NMID_PODS_TRY(parse_owners(*owners, pod));
    }
    if (const Json* spec = field(item, "spec")) {
        if (!spec->is_object()) {
            return fail("spec", expected("object", *spec));
        }
        NMID_PODS_TRY(opt_string(*spec, "serviceAccountName", "spec.serviceAccountName",
                                 pod.service_account));
        if (pod.service_account.empty()) {
            NMID_PODS_TRY(
                opt_string(*spec, "serviceAccount", "spec.serviceAccount", pod.service_account));
        }
        if (const Json* host = field(*spec, "hostNetwork")) {
            if (!host->is_boolean()) {
                return fail("spec.hostNetwork", expected("boolean", *host));
            }
            pod.host_network = host->get<bool>();
        }
        if (const Json* volumes = field(*spec, "volumes")) {
            parse_token_projections(*volumes, pod);
        }
    }
    if (const Json* status = field(item, "status")) {
        if (!status->is_object()) {
            return fail("status", expected("object", *status));
        }
        NMID_PODS_TRY(opt_string(*status, "phase", "status.phase", pod.phase));
        std::string pod_ip;
        NMID_PODS_TRY(opt_string(*status, "podIP", "status.podIP", pod_ip));
        NMID_PODS_TRY(add_ip(pod_ip, "status.podIP", pod));
        if (const Json* ips = field(*status, "podIPs")) {
            NMID_PODS_TRY(parse_pod_ips(*ips, pod));
        }
        if (const Json* containers = field(*status, "containerStatuses")) {
            NMID_PODS_TRY(parse_container_statuses(*containers, pod));
        }
    }
    return {};
}

Result<void> Walker::parse_owners(const Json& owners, PodInfo& pod) {
    if (!owners.is_array()) {
        return fail("metadata.ownerReferences", expected("array", owners));
    }
    std::size_t i = 0;
    for (const Json& owner : owners) {
        const std::string path = "metadata.ownerReferences[" + std::to_string(i++) + "]";
        if (!owner.is_object()) {
            return fail(path, expected("object", owner));
        }
        OwnerReference ref;
        NMID_PODS_TRY(opt_string(owner, "apiVersion", path + ".apiVersion", ref.api_version));
        NMID_PODS_TRY(opt_string(owner, "kind", path + ".kind", ref.kind));
        NMID_PODS_TRY(opt_string(owner, "name", path + ".name", ref.name));
        if (const Json* controller = field(owner, "controller")) {
            if (!controller->is_boolean()) {
                return fail(path + ".controller", expected("boolean", *controller));
            }
            ref.controller = controller->get<bool>();
        }
        // Kept as written: what counts (the MIC exception wants the controller, an apps/v1
        // ReplicaSet, exact case) is the resolver's decision.
        pod.owners.push_back(std::move(ref));
    }
    return {};
}

namespace {

// Bounds on what one pod's spec contributes (its volumes are written by tenants).
constexpr std::size_t kMaxTokenProjections = 16;
constexpr std::size_t kMaxVolumeName = 253;
constexpr std::size_t kMaxProjectionPath = 4096;
constexpr std::size_t kMaxAudience = 1024;

}  // namespace

// A string field of at most `limit` bytes, else "" (absent, another type or too long).
std::string Walker::bounded_string(const Json& obj, std::string_view key, std::size_t limit) {
    const Json* value = field(obj, key);
    if (value == nullptr || !value->is_string() ||
        value->get_ref<const std::string&>().size() > limit) {
        return {};
    }
    return value->get<std::string>();
}

// Only what workload identity's projected token source reads. A volume of another shape is
// skipped, not an error: the pod is still served by pod identity, and the projected source
// then answers "no token volume" for it.
void Walker::parse_token_projections(const Json& volumes, PodInfo& pod) {
    if (!volumes.is_array()) {
        return;
    }
    for (const Json& volume : volumes) {
        const Json* projected = volume.is_object() ? field(volume, "projected") : nullptr;
        const Json* sources =
            projected != nullptr && projected->is_object() ? field(*projected, "sources") : nullptr;
        if (sources == nullptr || !sources->is_array()) {
            continue;
        }
        const std::string name = bounded_string(volume, "name", kMaxVolumeName);
        for (const Json& source : *sources) {
            const Json* token = source.is_object() ? field(source, "serviceAccountToken") : nullptr;
            if (token == nullptr || !token->is_object() || name.empty()) {
                continue;
            }
            if (pod.token_projections.size() == kMaxTokenProjections) {
                return;
            }
            TokenProjection projection;
            projection.volume = name;
            projection.path = bounded_string(*token, "path", kMaxProjectionPath);
            projection.audience = bounded_string(*token, "audience", kMaxAudience);
            if (const Json* seconds = field(*token, "expirationSeconds");
                seconds != nullptr && seconds->is_number_integer()) {
                projection.expiration_seconds = seconds->get<std::int64_t>();
            }
            if (!projection.path.empty()) {
                pod.token_projections.push_back(std::move(projection));
            }
        }
    }
}

Result<void> Walker::parse_container_statuses(const Json& statuses, PodInfo& pod) {
    if (!statuses.is_array()) {
        return fail("status.containerStatuses", expected("array", statuses));
    }
    std::size_t i = 0;
    for (const Json& entry : statuses) {
        const std::string path = "status.containerStatuses[" + std::to_string(i++) + "]";
        if (!entry.is_object()) {
            return fail(path, expected("object", entry));
        }
        ++pod.container_statuses;
        const Json* state = field(entry, "state");
        if (state == nullptr) {
            continue;  // no state reported yet: not terminated
        }
        if (!state->is_object()) {
            return fail(path + ".state", expected("object", *state));
        }
        if (const Json* terminated = field(*state, "terminated")) {
            if (!terminated->is_object()) {
                return fail(path + ".state.terminated", expected("object", *terminated));
            }
            ++pod.containers_terminated;
        }
    }
    return {};
}

Result<void> Walker::parse_pod_ips(const Json& ips, PodInfo& pod) {
    if (!ips.is_array()) {
        return fail("status.podIPs", expected("array", ips));
    }
    std::size_t i = 0;
    for (const Json& entry : ips) {
        const std::string path = "status.podIPs[" + std::to_string(i++) + "]";
        if (entry.is_string()) {
            NMID_PODS_TRY(add_ip(entry.get_ref<const std::string&>(), path, pod));
            continue;
        }
        if (!entry.is_object()) {
            return fail(path, expected("object or string", entry));
        }
        std::string ip;
        NMID_PODS_TRY(opt_string(entry, "ip", path + ".ip", ip));
        NMID_PODS_TRY(add_ip(ip, path + ".ip", pod));
    }
    return {};
}

}  // namespace nmid::pods_detail
