#include "nmid/identity/resolver.hpp"

#include <algorithm>
#include <span>
#include <string_view>
#include <tuple>

#include "nmid/core/ascii.hpp"
#include "nmid/identity/explain.hpp"
#include "resolver_detail.hpp"

namespace nmid::identity {
namespace {

constexpr std::string_view kBindingLabel = "aadpodidbinding";
constexpr std::string_view kBehaviorAnnotation = "aadpodidentity.k8s.io/Behavior";
constexpr std::string_view kBehaviorNamespaced = "namespaced";
constexpr std::string_view kMicReplicaSetPrefix = "mic-";
constexpr std::string_view kMicOwnerApiVersion = "apps/v1";
constexpr std::string_view kMicOwnerKind = "ReplicaSet";
constexpr std::string_view kStateCreated = "Created";
constexpr std::string_view kStateAssigned = "Assigned";

// Comparisons use ASCII folding (iequals): Kubernetes namespaces and label values and ARM
// resource IDs are ASCII. NMI's strings.EqualFold folds Unicode too, which makes no
// difference for them.

bool key_less(const ObjectMeta& a, const ObjectMeta& b) {
    return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
}

// The objects of one namespace. CrdSnapshot vectors are sorted by (namespace, name)
// (model/crd.hpp), so this is two binary searches instead of a scan of the whole cluster.
template <class T>
std::span<const T> in_namespace(const std::vector<T>& items, std::string_view ns) {
    const auto first = std::partition_point(items.begin(), items.end(), [ns](const T& item) {
        return std::string_view{item.meta.namespace_name} < ns;
    });
    const auto last = std::partition_point(first, items.end(), [ns](const T& item) {
        return std::string_view{item.meta.namespace_name} == ns;
    });
    return {first, last};
}

const AzureIdentity* find_by_name(std::span<const AzureIdentity> same_namespace,
                                  std::string_view name) {
    const auto it = std::partition_point(
        same_namespace.begin(), same_namespace.end(),
        [name](const AzureIdentity& id) { return std::string_view{id.meta.name} < name; });
    return it != same_namespace.end() && it->meta.name == name ? &*it : nullptr;
}

// The one selector honoured, in the order TokenQuery documents.
enum class SelectorKind { none, client_id, resource_id, object_id };

struct Selector {
    SelectorKind kind = SelectorKind::none;
    std::string_view value;
};

Selector selector_of(const TokenQuery& query) {
    if (!query.client_id.empty()) {
        return {SelectorKind::client_id, query.client_id};
    }
    if (!query.resource_id.empty()) {
        return {SelectorKind::resource_id, query.resource_id};
    }
    if (!query.object_id.empty()) {
        return {SelectorKind::object_id, query.object_id};
    }
    return {};
}

bool matches(const AzureIdentity& id, const Selector& selector) {
    switch (selector.kind) {
        case SelectorKind::none:
            return true;
        case SelectorKind::client_id:
            // Exact, as NMI: a client ID in another case is not the identity that was bound.
            return id.client_id == selector.value;
        case SelectorKind::resource_id:
            // The one deliberate loosening of NMI (which compared exactly): ARM resource IDs
            // are case-insensitive, and SDKs and `az` print resource groups in either case.
            return iequals(id.resource_id, selector.value);
        case SelectorKind::object_id:
            return id.object_id == selector.value;
    }
    return false;
}

// Keeps the candidate whose (namespace, name) sorts first, so the choice among several
// bound identities never depends on informer or file order (NMI's was effectively random).
void keep_first(const AzureIdentity*& best, const AzureIdentity& candidate) {
    if (best == nullptr || key_less(candidate.meta, best->meta)) {
        best = &candidate;
    }
}

Decision bound(const AzureIdentity* id) {
    return {.kind = DecisionKind::bound, .identity = id, .reason = DenyReason::no_binding_label};
}

Decision denied(DenyReason reason) {
    return {.kind = DecisionKind::denied, .identity = nullptr, .reason = reason};
}

Decision resolve_managed(const PodInfo& pod, const CrdSnapshot& crds, const Selector& selector) {
    // A function-local string: std::map<std::string, ...>::find takes a std::string, and this
    // one is built once, not per request.
    static const std::string label_key{kBindingLabel};
    const auto label = pod.labels.find(label_key);
    // NMI looked up bindings with selector "" for an unlabelled pod, so a binding with an
    // empty selector handed its identity to every unlabelled pod of the namespace. Not here.
    if (label == pod.labels.end() || label->second.empty()) {
        return denied(DenyReason::no_binding_label);
    }

    const auto identities = in_namespace(crds.identities, pod.namespace_name);
    bool any_binding = false;
    bool any_identity = false;
    const AzureIdentity* best = nullptr;
    for (const auto& binding : in_namespace(crds.bindings, pod.namespace_name)) {
        if (binding.selector != label->second) {
            continue;
        }
        any_binding = true;
        const AzureIdentity* id = find_by_name(identities, binding.azure_identity);
        if (id == nullptr) {
            continue;
        }
        any_identity = true;
        if (matches(*id, selector)) {
            keep_first(best, *id);
        }
    }
    if (best != nullptr) {
        return bound(best);
    }
    if (!any_binding) {
        return denied(DenyReason::no_matching_binding);
    }
    if (!any_identity) {
        return denied(DenyReason::no_identity_for_binding);
    }
    return denied(DenyReason::requested_identity_not_bound);
}

Decision resolve_standard(const PodInfo& pod, const CrdSnapshot& crds, const Selector& selector,
                          const IdentitySettings& settings) {
    // Assignments are few on a node (MIC labels them by node), and they are sorted by their
    // own namespace, not the pod's, so a scan it is.
    bool any_usable = false;
    bool pending = false;
    const AzureIdentity* best = nullptr;
    for (const auto& assigned : crds.assigned) {
        if (assigned.pod != pod.name || assigned.pod_namespace != pod.namespace_name) {
            continue;
        }
        const AzureIdentity& id = assigned.identity_ref;
        // NMI dropped these after its wait; dropping them first means an identity the pod may
        // not use never makes it wait or decides which message it gets.
        if ((settings.force_namespaced || detail::is_namespaced_identity(id)) &&
            id.meta.namespace_name != pod.namespace_name) {
            continue;
        }
        const bool usable = detail::usable_state(assigned.status);
        if (usable) {
            any_usable = true;
            if (matches(id, selector)) {
                keep_first(best, id);
            }
        } else if (assigned.status == kStateCreated && matches(id, selector)) {
            pending = true;
        }
    }
    if (best != nullptr) {
        return bound(best);
    }
    if (pending) {
        return denied(DenyReason::assignment_pending);
    }
    return denied(any_usable ? DenyReason::requested_identity_not_bound
                             : DenyReason::no_assignment);
}

}  // namespace

namespace detail {

bool is_namespaced_identity(const AzureIdentity& id) {
    static const std::string annotation_key{kBehaviorAnnotation};
    const auto it = id.meta.annotations.find(annotation_key);
    return it != id.meta.annotations.end() && it->second == kBehaviorNamespaced;
}

bool usable_state(std::string_view status) {
    // "" is written by MIC before 1.6 and is as good as Assigned (NMI accepted it too).
    return status.empty() || status == kStateAssigned;
}

const std::pair<const std::string, std::string>* matching_label(
    const AzurePodIdentityException& exception, const PodInfo& pod) {
    for (const auto& entry : exception.pod_labels) {
        const auto label = pod.labels.find(entry.first);
        if (label != pod.labels.end() && iequals(label->second, entry.second)) {
            return &entry;
        }
    }
    return nullptr;
}

}  // namespace detail

bool is_mic(const PodInfo& pod, const IdentitySettings& settings) {
    // MIC only runs beside standard mode (managed mode has no MIC to exempt). NMI took any
    // ownerReference of kind "replicaset" in any case, controller or not, of any apiVersion:
    // a pod in the MIC namespace could name a made-up owner `mic-x` and be passed through to
    // IMDS as the node. Here only the controller reference counts (the API server allows one;
    // a second is treated as forged) and it must be exactly an apps/v1 ReplicaSet.
    // NMI matched the name with `^mic-*` ("mic" then any number of '-'), which also excepts a
    // `microservice-...` Deployment in that namespace. nmid requires "mic-".
    if (settings.mode != OperationMode::standard ||
        !iequals(pod.namespace_name, settings.mic_namespace)) {
        return false;
    }
    const OwnerReference* controller = nullptr;
    for (const OwnerReference& owner : pod.owners) {
        if (!owner.controller) {
            continue;
        }
        if (controller != nullptr) {
            return false;
        }
        controller = &owner;
    }
    return controller != nullptr && controller->api_version == kMicOwnerApiVersion &&
           controller->kind == kMicOwnerKind && controller->name.starts_with(kMicReplicaSetPrefix);
}

Decision resolve(const PodInfo& pod, const CrdSnapshot& crds, const TokenQuery& query,
                 const IdentitySettings& settings) {
    if (is_mic(pod, settings) || is_excepted(pod, crds.exceptions)) {
        return {.kind = DecisionKind::excepted,
                .identity = nullptr,
                .reason = DenyReason::no_binding_label};
    }
    const Selector selector = selector_of(query);
    return settings.mode == OperationMode::managed
               ? resolve_managed(pod, crds, selector)
               : resolve_standard(pod, crds, selector, settings);
}

bool assignment_expected(const PodInfo& pod, const CrdSnapshot& crds,
                         const IdentitySettings& settings) {
    const auto label = pod.labels.find("aadpodidbinding");
    if (label == pod.labels.end() || label->second.empty()) {
        return false;
    }
    return std::any_of(crds.bindings.begin(), crds.bindings.end(), [&](const auto& b) {
        return b.selector == label->second &&
               (!settings.force_namespaced || b.meta.namespace_name == pod.namespace_name);
    });
}

bool is_excepted(const PodInfo& pod, const std::vector<AzurePodIdentityException>& exceptions) {
    const auto same_namespace = in_namespace(exceptions, pod.namespace_name);
    return std::any_of(same_namespace.begin(), same_namespace.end(),
                       [&pod](const auto& e) { return detail::matching_label(e, pod) != nullptr; });
}

}  // namespace nmid::identity
