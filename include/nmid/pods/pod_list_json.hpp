#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "nmid/core/errc.hpp"
#include "nmid/model/pod.hpp"

namespace nmid {

/// Parses a Kubernetes pod list as kubelet `/pods` prints it (`kind: PodList`, `items` may be
/// `null`, items without `kind`) or as `kubectl get pods -o json` prints it (`kind: List`).
///
/// Only the fields nmid uses are kept; everything else (containers, env, managedFields, ...)
/// is skipped while lexing, so no document tree is built for it. Per item:
/// metadata.{namespace (absent: "default"), name (required), uid, labels, deletionTimestamp,
/// ownerReferences[].{apiVersion, kind, name, controller}}, spec.{serviceAccountName, else
/// serviceAccount, hostNetwork}, status.{phase, podIP, podIPs (objects `{"ip":..}` or plain
/// strings), containerStatuses[].state.terminated (counted, not kept)}. IPs are stored in
/// canonical text (IPv4-mapped IPv6 as IPv4), podIP first, deduplicated. JSON `null` counts
/// as absent. Items of a `List` whose `kind` is not `Pod` are skipped.
///
/// Pure; never throws. Errors: Errc::parse_error for invalid JSON, a `Status` object, a
/// missing `items` key, or a wrong type / invalid IP in a field nmid uses; `error_detail`
/// (when given) then receives one line naming the item and the field.
[[nodiscard]] Result<PodList> parse_pod_list(std::string_view json,
                                             std::string* error_detail = nullptr);

/// An API-server pod list (`GET /api/v1/pods?...`): the pods and the list's
/// `metadata.resourceVersion`, where the watch that follows starts ("" when absent).
struct PodListPage {
    PodList list;
    std::string resource_version;
};

/// parse_pod_list() plus the list's resourceVersion. Pure; never throws.
/// Errors: as parse_pod_list(), plus a non-string `metadata.resourceVersion`.
[[nodiscard]] Result<PodListPage> parse_pod_list_page(std::string_view json,
                                                      std::string* error_detail = nullptr);

/// One event of a pod watch stream: `{"type":...,"object":...}` (one line of the stream).
struct PodWatchEvent {
    enum class Type { added, modified, deleted, bookmark, error };
    Type type = Type::added;
    /// `object.metadata.resourceVersion` (ADDED, MODIFIED, DELETED, BOOKMARK); opaque.
    std::string resource_version;
    /// ADDED, MODIFIED, DELETED: the pod as parse_pod_list() reads an item (the object of a
    /// DELETED event is the pod's last state).
    PodInfo pod;
    int status_code = 0;  ///< ERROR: the Status object's `code` (410: resourceVersion expired)
    std::string message;  ///< ERROR: the Status object's `message`, control characters blanked
};

/// Parses one watch event line. A BOOKMARK is read for its resourceVersion only (its object
/// is a skeleton); an ERROR for its Status code and message. Pure; never throws.
/// Errors: Errc::parse_error for invalid JSON, an unknown `type`, a missing or non-object
/// `object`, an object of another kind than Pod, or a pod field as parse_pod_list() rejects.
[[nodiscard]] Result<PodWatchEvent> parse_pod_watch_event(std::string_view line,
                                                          std::string* error_detail = nullptr);

/// Parses successive bodies of one polled source (kubelet `/pods`). A body byte-identical to
/// the last one parsed returns the same pointer without parsing, so PodSource::list() can
/// hand the index an unchanged pointer and both the parse (milliseconds for a full node) and
/// the index rebuild are skipped on the common poll where nothing changed.
/// Not thread-safe: one instance per source, used from one executor.
class PodListDecoder {
public:
    /// Errors: as parse_pod_list(). A failed body is not remembered.
    Result<std::shared_ptr<const PodList>> decode(std::string_view body,
                                                  std::string* error_detail = nullptr);

private:
    std::string last_body_;
    std::shared_ptr<const PodList> last_;
};

}  // namespace nmid
