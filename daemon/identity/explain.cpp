// Why a pod gets its answer: resolve() plus, for every object it looked at, whether it matched
// and why. Runs only for /debug/explain, so it may allocate freely.

#include "nmid/identity/explain.hpp"

#include <algorithm>
#include <string>
#include <tuple>

#include "resolver_detail.hpp"

namespace nmid::identity {
namespace {

constexpr std::string_view kBindingLabel = "aadpodidbinding";

std::string quoted(std::string_view s) {
    std::string out{"\""};
    out += s;
    out += '"';
    return out;
}

std::string ref(const ObjectMeta& meta) {
    return meta.namespace_name + "/" + meta.name;
}

Consideration considered(ConsideredKind kind, const ObjectMeta& meta, bool matched,
                         std::string why) {
    return Consideration{.kind = kind,
                         .namespace_name = meta.namespace_name,
                         .name = meta.name,
                         .matched = matched,
                         .why = std::move(why)};
}

Consideration mic_check(const PodInfo& pod, const IdentitySettings& settings) {
    Consideration c{.kind = ConsideredKind::mic,
                    .namespace_name = {},
                    .name = "mic",
                    .matched = is_mic(pod, settings),
                    .why = {}};
    if (c.matched) {
        c.why = "the pod is MIC itself (controller apps/v1 ReplicaSet mic-* in namespace " +
                quoted(settings.mic_namespace) + "): its requests go to IMDS as the node";
    } else {
        c.why = "not MIC (MIC is a pod in namespace " + quoted(settings.mic_namespace) +
                " whose controller is an apps/v1 ReplicaSet named mic-*)";
    }
    return c;
}

Consideration exception_check(const AzurePodIdentityException& e, const PodInfo& pod) {
    if (const auto* hit = detail::matching_label(e, pod)) {
        return considered(ConsideredKind::exception, e.meta, true,
                          "podLabels " + hit->first + "=" + hit->second +
                              " matches the pod's label (value compared without case): "
                              "requests go to IMDS as the node");
    }
    std::string why = "no podLabels entry matches the pod's labels (wants any of";
    for (const auto& [key, value] : e.pod_labels) {
        why += ' ';
        why += key;
        why += '=';
        why += value;
    }
    why += e.pod_labels.empty() ? " nothing)" : ")";
    return considered(ConsideredKind::exception, e.meta, false, std::move(why));
}

const AzureIdentity* identity_named(const CrdSnapshot& crds, std::string_view ns,
                                    std::string_view name) {
    const auto it =
        std::find_if(crds.identities.begin(), crds.identities.end(), [&](const AzureIdentity& id) {
            return id.meta.namespace_name == ns && id.meta.name == name;
        });
    return it == crds.identities.end() ? nullptr : &*it;
}

void explain_managed(const PodInfo& pod, const CrdSnapshot& crds, Explanation& out) {
    const auto label = pod.labels.find(std::string{kBindingLabel});
    const bool labelled = label != pod.labels.end() && !label->second.empty();
    for (const auto& binding : crds.bindings) {
        if (binding.meta.namespace_name != pod.namespace_name) {
            continue;
        }
        if (!labelled) {
            out.considered.push_back(
                considered(ConsideredKind::binding, binding.meta, false,
                           "the pod has no aadpodidbinding label (the binding selects " +
                               quoted(binding.selector) + ")"));
            continue;
        }
        if (binding.selector != label->second) {
            out.considered.push_back(considered(ConsideredKind::binding, binding.meta, false,
                                                "selector " + quoted(binding.selector) +
                                                    " is not the pod's aadpodidbinding label " +
                                                    quoted(label->second) + " (compared exactly)"));
            continue;
        }
        const AzureIdentity* id = identity_named(crds, pod.namespace_name, binding.azure_identity);
        if (id == nullptr) {
            out.considered.push_back(considered(
                ConsideredKind::binding, binding.meta, false,
                "selector matches, but it names AzureIdentity " + quoted(binding.azure_identity) +
                    ", which does not exist in namespace " + quoted(pod.namespace_name)));
            continue;
        }
        out.considered.push_back(considered(ConsideredKind::binding, binding.meta, true,
                                            "selector " + quoted(binding.selector) +
                                                " matches: the pod may use AzureIdentity " +
                                                ref(id->meta)));
        out.usable.push_back(id);
    }
}

void explain_standard(const PodInfo& pod, const CrdSnapshot& crds, const IdentitySettings& settings,
                      Explanation& out) {
    for (const auto& assigned : crds.assigned) {
        if (assigned.pod != pod.name || assigned.pod_namespace != pod.namespace_name) {
            continue;
        }
        const AzureIdentity& id = assigned.identity_ref;
        const std::string state = assigned.status.empty() ? "\"\"" : assigned.status;
        if ((settings.force_namespaced || detail::is_namespaced_identity(id)) &&
            id.meta.namespace_name != pod.namespace_name) {
            out.considered.push_back(considered(
                ConsideredKind::assignment, assigned.meta, false,
                "assigns AzureIdentity " + ref(id.meta) + " from another namespace, refused by " +
                    (settings.force_namespaced ? std::string{"--forceNamespaced"}
                                               : std::string{"its namespaced Behavior"})));
            continue;
        }
        if (!detail::usable_state(assigned.status)) {
            out.considered.push_back(
                considered(ConsideredKind::assignment, assigned.meta, false,
                           "AzureIdentity " + ref(id.meta) + " in state " + state +
                               (assigned.status == "Created"
                                    ? ": MIC has not finished assigning it to the node"
                                    : ": not usable")));
            continue;
        }
        out.considered.push_back(considered(
            ConsideredKind::assignment, assigned.meta, true,
            "AzureIdentity " + ref(id.meta) + " in state " + state + ": the pod may use it"));
        out.usable.push_back(&id);
    }
}

}  // namespace

std::string_view to_string(ConsideredKind kind) noexcept {
    switch (kind) {
        case ConsideredKind::mic:
            return "mic";
        case ConsideredKind::exception:
            return "exception";
        case ConsideredKind::binding:
            return "binding";
        case ConsideredKind::assignment:
            return "assignment";
    }
    return "unknown";
}

Explanation explain(const PodInfo& pod, const CrdSnapshot& crds, const IdentitySettings& settings) {
    Explanation out;
    out.decision = resolve(pod, crds, TokenQuery{}, settings);
    if (settings.mode == OperationMode::standard) {
        out.considered.push_back(mic_check(pod, settings));
    }
    for (const auto& e : crds.exceptions) {
        if (e.meta.namespace_name == pod.namespace_name) {
            out.considered.push_back(exception_check(e, pod));
        }
    }
    if (settings.mode == OperationMode::managed) {
        explain_managed(pod, crds, out);
    } else {
        explain_standard(pod, crds, settings, out);
    }
    if (out.decision.kind != DecisionKind::bound) {
        out.usable.clear();
        return out;
    }
    std::sort(out.usable.begin(), out.usable.end(), [](const auto* a, const auto* b) {
        return std::tie(a->meta.namespace_name, a->meta.name) <
               std::tie(b->meta.namespace_name, b->meta.name);
    });
    out.usable.erase(std::unique(out.usable.begin(), out.usable.end()), out.usable.end());
    return out;
}

}  // namespace nmid::identity
